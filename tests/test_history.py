"""Snapshot history: backfills, point-in-time windows from the rollup, trends, attribution, lineage."""

import datetime as dt
import shutil
from decimal import Decimal

import dagster as dg
import duckdb
import polars as pl
import pytest
import yaml

from cs_assets import settings
from cs_assets.demo.generator import DEMO_AS_OF
from cs_assets.deployment import load_deployment
from cs_assets.indicators.compute import compute_account_indicators, renewal_date_as_of
from cs_assets.publish.queries import score_change
from cs_assets.scoring.attribution import MODEL_CHANGE, attribute_change
from cs_assets.sources.normalise import clean
from resources import staging
from resources.landing import LandingZoneResource
from tests.harness import make_home, published, run_graph

RANGE = [DEMO_AS_OF - dt.timedelta(days=i) for i in range(9, -1, -1)]  # 10 snapshots, oldest first


@pytest.fixture(scope="module")
def history_home(tmp_path_factory):
    home = make_home(tmp_path_factory.mktemp("history"), "home")
    instance = dg.DagsterInstance.ephemeral()
    result = run_graph(home, RANGE, instance=instance)
    assert result.success
    return home, instance, result


def _without_computed_at(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.drop("computed_at").sort(pl.all())


def test_range_run_publishes_every_snapshot_once(history_home):
    home, _, _ = history_home
    health = published(home)
    assert sorted(health["snapshot_date"].unique().to_list()) == RANGE
    assert health.group_by("snapshot_date", "account_id").len()["len"].max() == 1
    values = published(home, "account_indicator_values")
    assert values.height == health.height


def test_one_snapshot_alone_equals_the_same_snapshot_in_a_backfill(history_home, tmp_path):
    home, _, _ = history_home
    alone = tmp_path / "alone"
    shutil.copytree(settings.landing_dir(home), settings.landing_dir(alone))
    day = RANGE[4]
    assert run_graph(alone, day).success
    in_range = published(home).filter(pl.col("snapshot_date") == day)
    assert _without_computed_at(published(alone)).equals(_without_computed_at(in_range))


def test_a_backfill_read_and_written_date_by_date_publishes_what_one_read_whole_does(
    history_home, tmp_path, monkeypatch
):
    # the path of a large backfill: every staged input cut date by date, every long table streamed
    monkeypatch.setattr(staging, "READ_WHOLE_ROWS", 0)
    home, _, _ = history_home
    streamed = tmp_path / "streamed"
    shutil.copytree(settings.landing_dir(home), settings.landing_dir(streamed))
    assert run_graph(streamed, RANGE).success
    for table in ("account_health", "account_health_contributions", "account_indicator_values", "account_notes"):
        ours, theirs = published(streamed, table), published(home, table)
        assert ours.height > 0, table
        bookkeeping = ["computed_at"]  # when the rows were written
        assert ours.drop(bookkeeping, strict=False).equals(theirs.drop(bookkeeping, strict=False)), table


def test_rerunning_snapshots_replaces_them(history_home):
    home, instance, _ = history_home
    before = published(home)
    assert run_graph(home, RANGE[-3:], instance=instance).success
    after = published(home)
    assert after.height == before.height
    assert _without_computed_at(after).equals(_without_computed_at(before))


def test_compiled_indicators_match_a_direct_scan_of_the_raw_events(history_home):
    """The indicators compiled from the catalogue give what a hand-written scan of the raw events
    gives, late arrivals included."""
    home, _, _ = history_home
    deployment = load_deployment()
    landing = LandingZoneResource(landing_dir=str(settings.landing_dir(home)))
    frames = {name: clean(spec, landing.read(spec)) for name, spec in deployment.contract.sources.items()}
    usage = frames["usage_events"]
    day = RANGE[2]
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    seen = usage.filter((pl.col("occurred_at") < end) & (pl.col("received_at") < end))
    last30 = seen.filter(pl.col("occurred_at") >= end - dt.timedelta(days=30))
    direct = last30.group_by("account_id").agg(
        active_users_30d=pl.col("user_id").filter(pl.col("event_type") == "login").n_unique(),
        jobs_run_30d=(pl.col("event_type") == "job_run").sum().cast(pl.Int64),
        page_load_p75_ms=pl.col("load_ms")
        .filter(pl.col("event_type") == "page_view")
        .cast(pl.Float64)
        .quantile(0.75, interpolation="linear"),
    )
    compiled = compute_account_indicators(frames, deployment.contract, deployment.catalogue, day)
    joined = direct.join(compiled, on="account_id", suffix="_compiled")
    assert joined.height > 50
    for column in ("active_users_30d", "jobs_run_30d", "page_load_p75_ms"):
        assert joined[column].cast(pl.Float64).equals(joined[f"{column}_compiled"].cast(pl.Float64), null_equal=True), (
            column
        )
    late = usage.filter(pl.col("received_at").dt.date() > pl.col("occurred_at").dt.date())
    assert late.height > 0  # the demo has late arrivals, so the arrival-day cut is exercised


def test_renewal_date_steps_back_whole_years():
    crm = pl.DataFrame({"renewal_date": [dt.date(2027, 3, 15), dt.date(2026, 11, 30), dt.date(2026, 1, 1)]})
    got = crm.select(renewal_date_as_of(dt.date(2026, 2, 1)))["renewal_date"].to_list()
    # the 2027 renewal was 2026-03-15 then; 2026-11-30 stays (after Feb 2026 already, within one year);
    # a renewal already in the past is left as exported
    assert got == [dt.date(2026, 3, 15), dt.date(2026, 11, 30), dt.date(2026, 1, 1)]


def test_trend_view_gives_changes_and_band_transitions(history_home):
    home, _, _ = history_home
    con = duckdb.connect(str(settings.warehouse_path(home)), read_only=True)
    try:
        rows = con.execute(
            "SELECT t.account_id, t.snapshot_date, t.change_7d, t.band_transition, t.previous_band, t.band, "
            "t.health_score - h.health_score AS expected "
            "FROM published.account_health_trend t JOIN published.account_health h "
            "ON h.account_id = t.account_id AND h.snapshot_date = t.snapshot_date - 7 "
            "WHERE t.snapshot_date = ?",
            [RANGE[-1]],
        ).fetchall()
        transitions = con.execute(
            "SELECT count(*) FROM published.account_health_trend WHERE band_transition IS NOT NULL"
        ).fetchone()[0]
        first = con.execute(
            "SELECT count(*) FROM published.account_health_trend WHERE snapshot_date = ? AND change_7d IS NOT NULL",
            [RANGE[0]],
        ).fetchone()[0]
    finally:
        con.close()
    assert rows and all(r[2] == r[6] for r in rows)
    assert all((r[3] is None) == (r[4] == r[5]) for r in rows)
    assert transitions > 0
    assert first == 0  # nothing published 7 days before the first snapshot


def test_attribution_adds_up_exactly_without_and_with_a_model_change():
    before = pl.DataFrame(
        {"account_id": ["A"] * 2, "indicator": ["x", "y"], "points": [Decimal("30.1234"), Decimal("20.0001")]}
    )
    after = pl.DataFrame(
        {"account_id": ["A"] * 2, "indicator": ["x", "z"], "points": [Decimal("25.0000"), Decimal("40.5000")]}
    )
    parts = attribute_change(before, after)
    assert parts["change"].sum() == Decimal("65.5000") - Decimal("50.1235")
    assert dict(zip(parts["indicator"], parts["change"])) == {
        "x": Decimal("-5.1234"),
        "y": Decimal("-20.0001"),
        "z": Decimal("40.5000"),
    }
    old_model = pl.DataFrame(
        {"account_id": ["A"] * 2, "indicator": ["x", "y"], "points": [Decimal("27.0000"), Decimal("21.0000")]}
    )
    parts = attribute_change(before, after, old_model)
    assert parts["change"].sum() == Decimal("65.5000") - Decimal("50.1235")
    assert dict(zip(parts["indicator"], parts["change"]))[MODEL_CHANGE] == Decimal("65.5000") - Decimal("48.0000")


def test_model_change_is_separated_from_data_change(history_home, tmp_path):
    home, instance, _ = history_home
    raw = yaml.safe_load(settings.DEFAULT_MODEL_PATH.read_text())
    raw["subscores"]["co"]["weight"], raw["subscores"]["cx"]["weight"] = 0.5, 0.5
    model = tmp_path / "model.yaml"
    model.write_text(yaml.safe_dump(raw))
    work = tmp_path / "work"
    shutil.copytree(home, work)
    assert run_graph(work, RANGE[-1], instance=instance, model_path=model).success
    health = published(work)
    versions = health.group_by("snapshot_date").agg(pl.col("model_version").first()).sort("snapshot_date")
    assert versions["model_version"][-1] != versions["model_version"][0]
    con = duckdb.connect(str(settings.warehouse_path(work)), read_only=True)
    try:
        checked = 0
        for account in health.filter(pl.col("snapshot_date") == RANGE[-1])["account_id"].head(25):
            change = score_change(con, account, RANGE[0], RANGE[-1])
            parts = change["parts"]
            assert parts["change"].sum() == change["score_after"] - change["score_before"]
            assert MODEL_CHANGE in parts["indicator"].to_list()
            checked += 1
    finally:
        con.close()
    assert checked == 25


def test_explain_since_and_trace(history_home, capsys):
    from cs_assets.cli import main

    home, _, result = history_home
    account = published(home).filter(pl.col("snapshot_date") == RANGE[-1])["account_id"][0]
    assert main(["--home", str(home), "explain", account, "--since", RANGE[0].isoformat(), "--trace"]) == 0
    out = capsys.readouterr().out
    assert f"change since {RANGE[0]}" in out
    lineage = published(home, "snapshot_lineage").filter(pl.col("snapshot_date") == RANGE[-1])
    assert set(lineage["asset_key"]) >= {"crm_accounts", "usage_events", "account_indicators"}
    usage = lineage.filter(pl.col("asset_key") == "usage_events").row(0, named=True)
    assert usage["run_id"] in out and usage["data_version"][:16] in out
    # a source's data version is the hash of its files: unchanged files, unchanged version
    landing = LandingZoneResource(landing_dir=str(settings.landing_dir(home)))
    assert usage["data_version"] == landing.fingerprint(load_deployment().contract["usage_events"])
