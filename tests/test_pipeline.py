"""End to end: real Dagster runs over generated demo data, published into a real DuckDB file."""

import datetime as dt
import shutil
import warnings
from pathlib import Path

import duckdb
import polars as pl
import pytest

from checks.score_checks import (
    EVERY_ACTIVE_ACCOUNT_ONCE,
    POINTS_SUM_TO_SCORE,
    SCORE_IN_RANGE,
    health_score_in_range,
    points_sum_to_score,
)
from cs_assets import settings
from cs_assets.demo.generator import DEMO_AS_OF
from cs_assets.scoring.model_config import load_model
from tests.harness import copy_home, make_home, published, run_graph


@pytest.fixture(scope="module")
def scored_home(published_demo_home, tmp_path_factory) -> Path:
    return copy_home(published_demo_home, tmp_path_factory.mktemp("e2e") / "home")


def expected_active_accounts(home: Path, as_of: dt.date) -> set[str]:
    crm = pl.read_csv(settings.landing_dir(home) / "crm/accounts.csv", infer_schema=False)
    crm = crm.with_columns(
        pl.col("account_id").str.strip_chars(),
        pl.col("contract_start_date").str.to_date(),
        pl.col("churn_date").str.to_date(),
    )
    active = crm.filter(
        (pl.col("contract_start_date") <= as_of) & (pl.col("churn_date").is_null() | (pl.col("churn_date") > as_of))
    )
    return set(active["account_id"])


def test_every_active_account_scored_once_in_range(scored_home):
    health = published(scored_home)
    assert health["snapshot_date"].unique().to_list() == [DEMO_AS_OF]
    assert health["account_id"].is_unique().all()
    assert set(health["account_id"]) == expected_active_accounts(scored_home, DEMO_AS_OF)
    scores = health["health_score"].cast(pl.Float64)
    assert scores.min() >= 0 and scores.max() <= 100
    assert health["band"].is_in(["red", "yellow", "green"]).all()
    assert health["lifecycle_stage"].is_in(["onboarding", "adoption", "renewal_window"]).all()
    assert health["triage_priority"].null_count() == 0
    assert (health["model_version"] == load_model(settings.DEFAULT_MODEL_PATH).version).all()
    # the score must spread accounts, not give everyone the same number
    assert scores.std() > 5


def test_contributions_sum_exactly_to_score(scored_home):
    con = duckdb.connect(str(settings.warehouse_path(scored_home)), read_only=True)
    try:
        mismatches = con.execute(
            """
            SELECT h.account_id, h.health_score, sum(c.points) AS total, count(*) AS n
            FROM published.account_health h
            JOIN published.account_health_contributions c USING (account_id, snapshot_date)
            GROUP BY ALL HAVING sum(c.points) <> h.health_score
            """
        ).fetchall()
        types = dict(
            con.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = 'account_health_contributions'"
            ).fetchall()
        )
        n_indicators = con.execute(
            "SELECT count(DISTINCT indicator) FROM published.account_health_contributions"
        ).fetchone()[0]
    finally:
        con.close()
    assert mismatches == []
    assert types["points"] == "DECIMAL(9,4)"
    assert n_indicators == len(load_model(settings.DEFAULT_MODEL_PATH).indicators)


def test_blocking_score_checks_passed(scored_home):
    # the module fixture's run: re-run cheaply here to get the check evaluations
    result = run_graph(scored_home, DEMO_AS_OF)
    evaluations = {(e.asset_key.to_user_string(), e.check_name): e.passed for e in result.get_asset_check_evaluations()}
    for name in (SCORE_IN_RANGE, EVERY_ACTIVE_ACCOUNT_ONCE, POINTS_SUM_TO_SCORE):
        assert evaluations[("account_health_scores", name)] is True
    failed = [key for key, passed in evaluations.items() if not passed]
    assert failed == []
    # every source is checked for freshness, volume and duplicates; the others for unknown accounts
    for source in ("crm_accounts", "usage_events", "support_tickets", "survey_responses", "engagement_events"):
        for check in ("freshness", "volume", "duplicates"):
            assert (source, check) in evaluations
    assert ("usage_events", "unknown_accounts") in evaluations
    assert ("usage_events", "usage_coverage") in evaluations
    assert ("published/account_health", "band_shift") in evaluations


def test_rerunning_a_snapshot_replaces_it_and_is_deterministic(scored_home, tmp_path):
    before = published(scored_home).drop("computed_at")
    assert run_graph(scored_home, DEMO_AS_OF).success
    after = published(scored_home).drop("computed_at")
    assert after.equals(before)

    other = make_home(tmp_path, "other")
    assert run_graph(other, DEMO_AS_OF).success
    assert published(other).drop("computed_at").equals(before)
    assert (
        published(other, "account_health_contributions")
        .drop("computed_at")
        .equals(published(scored_home, "account_health_contributions").drop("computed_at"))
    )


def test_earlier_snapshot_sees_only_data_of_its_day(scored_home):
    earlier = DEMO_AS_OF - dt.timedelta(days=120)
    assert run_graph(scored_home, earlier).success
    health = published(scored_home)
    snap = health.filter(pl.col("snapshot_date") == earlier)
    assert set(snap["account_id"]) == expected_active_accounts(scored_home, earlier)
    # the later snapshot is still there, untouched
    assert set(health.filter(pl.col("snapshot_date") == DEMO_AS_OF)["account_id"]) == expected_active_accounts(
        scored_home, DEMO_AS_OF
    )
    # tenure is measured at the end of its own day, not of the newest one
    values = published(scored_home, "account_indicator_values").filter(pl.col("snapshot_date") == earlier)
    crm = (
        pl.read_csv(settings.landing_dir(scored_home) / "crm/accounts.csv", infer_schema=False)
        .select(pl.col("account_id").str.strip_chars(), pl.col("contract_start_date").str.to_date())
        .unique()
    )  # the export repeats some accounts (duplicates, later versions)
    tenure = values.join(crm, on="account_id").with_columns(
        expected=(pl.lit(earlier) - pl.col("contract_start_date")).dt.total_days()
    )
    assert tenure.height == snap.height
    assert (tenure["tenure_days"] == tenure["expected"].cast(pl.Float64)).all()


def test_bad_value_in_source_fails_clearly_and_keeps_published_scores(scored_home, tmp_path):
    home = tmp_path / "broken"
    shutil.copytree(scored_home, home)
    before = published(home)
    crm_path = settings.landing_dir(home) / "crm/accounts.csv"
    crm = pl.read_csv(crm_path, infer_schema=False)
    crm = crm.with_columns(
        licensed_seats=pl.when(pl.int_range(pl.len()) == 4).then(pl.lit("ten")).otherwise(pl.col("licensed_seats"))
    )
    crm.write_csv(crm_path)

    result = run_graph(home, DEMO_AS_OF)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    error = failure.step_failure_data.error
    message = error.cause.message if error.cause else error.message
    assert "source crm_accounts" in message
    assert "column 'licensed_seats' row 5: cannot read 'ten'" in message
    assert published(home).equals(before)


def test_score_checks_fail_on_broken_scores():
    day = dt.date(2026, 10, 31)
    scores = pl.DataFrame(
        {"account_id": ["A", "B"], "health_score": [50.0, 101.0], "co_score": [50.0, 90.0], "cx_score": [50.0, 90.0]}
    ).with_columns(pl.col("health_score").cast(pl.Decimal(9, 4)), snapshot_date=pl.lit(day))
    result = health_score_in_range(scores)
    assert not result.passed and result.metadata["accounts_out_of_range"].value == 1

    points = pl.DataFrame({"account_id": ["A", "A"], "points": [25.0, 24.9999]}).with_columns(
        pl.col("points").cast(pl.Decimal(9, 4)), snapshot_date=pl.lit(day)
    )
    result = points_sum_to_score(scores.head(1), points.lazy())
    assert not result.passed and result.metadata["sample_account_ids"].value == "A"


@pytest.mark.slow
def test_cli_run_and_explain(tmp_path, capsys):
    from cs_assets.cli import main

    home = tmp_path / "cli"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["--home", str(home), "run", "--accounts", "60", "--seed", "5"]) == 0
    # Dagster's beta notices are for this project's developers, not for someone running the CLI
    assert not [w for w in caught if "currently in beta" in str(w.message)]
    out = capsys.readouterr().out
    assert "succeeded: snapshot 2026-10-31" in out
    assert "band" in out and "total" in out

    account = published(home).sort("health_score")["account_id"][0]
    score = published(home).filter(pl.col("account_id") == account)["health_score"][0]
    assert main(["--home", str(home), "explain", account]) == 0
    out = capsys.readouterr().out
    assert f"health {score}" in out
    total_line = [line for line in out.splitlines() if line.strip().startswith("total")][0]
    assert total_line.split()[-1] == str(score)

    assert main(["--home", str(home), "explain", "ACC-NOPE"]) == 2
    assert main(["--home", str(home), "run", "--as-of", "31/10/2026"]) == 2
    assert "expected a date as YYYY-MM-DD, got '31/10/2026'" in capsys.readouterr().err
