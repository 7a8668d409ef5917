"""CSM judgement: a sentiment from a CRM export becomes an indicator that expires, its free-text
reason is kept and never scored, and explain shows it apart from what was measured."""

import datetime as dt

import polars as pl
import pytest

from cs_assets import settings
from cs_assets.demo.generator import DEMO_AS_OF
from cs_assets.deployment import DEFAULT_CONFIG_DIR, load_catalogue, load_deployment
from cs_assets.indicators.catalogue import IndicatorConfigError
from cs_assets.indicators.compiler import aggregate_source
from tests.harness import make_home, published, run_graph

DEPLOYMENT = load_deployment()
SPEC = DEPLOYMENT.contract["csm_sentiment"]
SENTIMENT = DEPLOYMENT.catalogue.indicators["csm_sentiment"]


def notes(*rows: tuple[str, str, str, str, str]) -> pl.LazyFrame:
    return pl.LazyFrame(
        {
            "note_id": [r[0] for r in rows],
            "account_id": [r[1] for r in rows],
            "recorded_at": [dt.datetime.fromisoformat(r[2]) for r in rows],
            "sentiment": [r[3] for r in rows],
            "reason": [r[4] for r in rows],
        },
        schema_overrides={"recorded_at": pl.Datetime("us", "UTC")},
    )


def sentiment_on(frame: pl.LazyFrame, day: dt.date) -> dict[str, tuple[float | None, str | None]]:
    out = aggregate_source(frame, SPEC, [SENTIMENT], day, None).collect()
    return {r["account_id"]: (r["csm_sentiment"], r["csm_sentiment_note"]) for r in out.iter_rows(named=True)}


def test_the_latest_note_counts_until_it_expires_on_the_right_day():
    frame = notes(
        ("N-1", "A", "2026-09-01T10:00:00+00:00", "red", "Sponsor left"),
        ("N-2", "B", "2026-09-20T09:00:00+00:00", "yellow", "Rollout stalled"),
        ("N-3", "B", "2026-09-25T09:00:00+00:00", "green", "Great QBR"),
    )
    assert SENTIMENT.window_days == 45
    # recorded on 1 September: counts from that day for 45 days, up to 15 October
    assert sentiment_on(frame, dt.date(2026, 8, 31)).get("A") is None
    assert sentiment_on(frame, dt.date(2026, 9, 1))["A"] == (0.0, "Sponsor left")
    assert sentiment_on(frame, dt.date(2026, 10, 15))["A"] == (0.0, "Sponsor left")
    assert sentiment_on(frame, dt.date(2026, 10, 16))["A"] == (None, None)  # expired: no data, not red
    # the newest note wins, with its own reason; before it, the older one
    assert sentiment_on(frame, dt.date(2026, 9, 24))["B"] == (50.0, "Rollout stalled")
    assert sentiment_on(frame, dt.date(2026, 9, 25))["B"] == (100.0, "Great QBR")


def test_two_notes_at_the_same_time_are_decided_by_the_key_whatever_the_file_order():
    one = ("N-7", "A", "2026-09-01T10:00:00+00:00", "red", "first")
    two = ("N-8", "A", "2026-09-01T10:00:00+00:00", "green", "second")
    day = dt.date(2026, 9, 2)
    assert sentiment_on(notes(one, two), day)["A"] == sentiment_on(notes(two, one), day)["A"] == (100.0, "second")


def test_a_text_column_needs_a_map_of_exactly_its_vocabulary(tmp_path):
    text = (DEFAULT_CONFIG_DIR / "indicators.yaml").read_text(encoding="utf-8")
    broken = tmp_path / "indicators.yaml"
    broken.write_text(text.replace("map: {red: 0, yellow: 50, green: 100}", "map: {red: 0, green: 100}"))
    with pytest.raises(
        IndicatorConfigError,
        match=r"`indicators.csm_sentiment.map`: must map exactly the vocabulary of csm_sentiment.sentiment \(red, yellow, green\); missing yellow",
    ):
        load_catalogue(broken, DEPLOYMENT.contract)
    broken.write_text(text.replace("    map: {red: 0, yellow: 50, green: 100}\n", ""))
    with pytest.raises(
        IndicatorConfigError, match=r"sentiment is String: `latest` of a text column needs `map` to numbers"
    ):
        load_catalogue(broken, DEPLOYMENT.contract)


def test_a_run_keeps_the_reason_and_explain_shows_the_judgement_apart(tmp_path, capsys):
    from cs_assets.cli import main

    home = make_home(tmp_path, "judged")
    assert run_graph(home, DEMO_AS_OF).success
    kept = published(home, "account_notes")
    assert kept.height > 0 and (kept["indicator"] == "csm_sentiment").all() and kept["note"].is_not_null().all()
    values = published(home, "account_indicator_values").select("account_id", "csm_sentiment")
    joined = kept.join(values, on="account_id")
    assert (joined["value"] == joined["csm_sentiment"]).all()
    account = kept["account_id"][0]
    assert main(["--home", str(home), "explain", account]) == 0
    out = capsys.readouterr().out
    measured, _, judged = out.partition("judgement (recorded by a person, not measured)")
    assert "csm_sentiment" not in measured and "csm_sentiment" in judged
    assert f"note: {kept['note'][0]}  (kept, never scored)" in judged


def test_in_a_run_a_note_expires_on_the_right_day(tmp_path):
    home = make_home(tmp_path, "expiry")
    path = settings.landing_dir(home) / DEPLOYMENT.contract["csm_sentiment"].path
    path.write_text(
        "note_id,account_id,recorded_at,sentiment,reason,recorded_by\n"
        "N-1,ACC-000001,2026-09-01T10:00:00+00:00,red,Sponsor left,csm.a@example.com\n"
        # a recent note of another account keeps the source fresh
        "N-2,ACC-000002,2026-10-14T10:00:00+00:00,green,Great QBR,csm.b@example.com\n",
        encoding="utf-8",
    )
    days = [dt.date(2026, 10, 15), dt.date(2026, 10, 16)]
    assert run_graph(home, days).success
    values = published(home, "account_indicator_values").filter(pl.col("account_id") == "ACC-000001")
    by_day = dict(zip(values["snapshot_date"], values["csm_sentiment"]))
    assert by_day == {days[0]: 0.0, days[1]: None}  # red through its 45th day, then no data
    notes = published(home, "account_notes").filter(pl.col("account_id") == "ACC-000001")
    assert notes.select("snapshot_date", "note").rows() == [(days[0], "Sponsor left")]
