"""Weekly cadence (CS_HEALTH_CADENCE=weekly): the same graph with one snapshot per week (Sunday),
trends in weeks, hysteresis counted in weeks, a Monday schedule, and validation that meets
every outcome's week."""

import datetime as dt

import dagster as dg
import polars as pl
import pytest

from cs_assets import settings
from cs_assets.actions.rules import parse_action_rules
from cs_assets.actions.stages import assign_stages
from cs_assets.demo.generator import DEMO_AS_OF, generate_demo_data
from cs_assets.deployment import load_deployment
from cs_assets.partitions import CADENCE_ENV, build_snapshot_partitions, cadence, snapshot_on_or_before
from cs_assets.scoring.model_config import load_model
from cs_assets.validation.outcomes import scores_before_outcomes
from tests.harness import definitions, make_home, published, run_graph

SUNDAYS = [dt.date(2026, 9, 27) + dt.timedelta(days=7 * i) for i in range(5)]  # .. 2026-10-25


@pytest.fixture
def weekly(monkeypatch):
    monkeypatch.setenv(CADENCE_ENV, "weekly")


def test_weekly_partitions_are_sundays_up_to_the_last_one_the_data_serves(weekly, tmp_path):
    landing = settings.landing_dir(tmp_path)
    generate_demo_data(landing, accounts=10, seed=3)  # as of Saturday 2026-10-31
    keys = build_snapshot_partitions(landing).get_partition_keys()
    assert keys[-1] == "2026-10-25" and keys[0] == "2025-01-05"
    assert all(dt.date.fromisoformat(k).weekday() == 6 for k in keys)
    assert snapshot_on_or_before(DEMO_AS_OF) == dt.date(2026, 10, 25)
    assert snapshot_on_or_before(dt.date(2026, 10, 25)) == dt.date(2026, 10, 25)


def test_a_wrong_cadence_is_named(monkeypatch):
    monkeypatch.setenv(CADENCE_ENV, "monthly")
    with pytest.raises(ValueError, match=r"CS_HEALTH_CADENCE must be daily or weekly, got 'monthly'"):
        cadence()


def test_the_weekly_schedule_scores_the_sunday_that_just_ended(weekly, tmp_path):
    defs = definitions(make_home(tmp_path, "w"))
    schedule = defs.get_repository_def().get_schedule_def("weekly_health_scores")
    assert schedule.cron_schedule == "0 2 * * 1"
    tick = dt.datetime(2026, 10, 26, 2, 0, tzinfo=dt.UTC)
    context = dg.build_schedule_context(scheduled_execution_time=tick, repository_def=defs.get_repository_def())
    requests = schedule.evaluate_tick(context).run_requests
    assert [r.partition_key for r in requests] == ["2026-10-25"]


def test_stages_and_actions_count_weeks_in_a_row_and_a_missing_week_restarts():
    model = load_model(settings.DEFAULT_MODEL_PATH, load_deployment().catalogue)
    rules = parse_action_rules(
        {
            "version": 1,
            "stages": {
                "default": "growth",
                "rules": [
                    {"name": "rescue", "enter_after": 2, "when": [{"field": "band", "op": "eq", "value": "red"}]}
                ],
            },
            "rules": [],
        },
        "a.yaml",
        model,
    )
    assert rules.stages is not None
    days = [SUNDAYS[0] + dt.timedelta(days=7 * i) for i in (0, 1, 2, 4, 5)]  # the fourth week is missing
    history = pl.DataFrame(
        {"account_id": ["A"] * 5, "snapshot_date": days, "band": ["yellow", "red", "red", "red", "red"]}
    )
    assert assign_stages(history, rules.stages, step_days=7)["health_stage"].to_list() == [
        "growth", "growth", "rescue", "rescue", "rescue",
    ]  # fmt: skip
    # counted in days, every weekly snapshot would look like a gap: nothing would ever hold twice
    assert assign_stages(history, rules.stages, step_days=1)["health_stage"].to_list() == ["growth"] * 5


def test_validation_meets_each_outcome_in_the_week_of_its_horizon():
    history = pl.DataFrame(
        {
            "account_id": ["A", "A"],
            "snapshot_date": [dt.date(2026, 9, 27), dt.date(2026, 10, 4)],
            "health_score": [40.0, 45.0],
        }
    )
    outcomes = pl.DataFrame({"account_id": ["A"], "outcome_date": [dt.date(2026, 10, 30)], "outcome": ["churned"]})
    # 30 days before 30 October is Wednesday 30 September: the Sunday before it, weekly
    weekly = scores_before_outcomes(history, outcomes, 30, step_days=7)
    assert weekly.select("snapshot_date", "health_score", "churned").rows() == [(dt.date(2026, 9, 27), 40.0, True)]
    assert scores_before_outcomes(history, outcomes, 30, step_days=1).is_empty()


def test_a_weekly_run_publishes_sundays_with_trends_in_weeks(weekly, tmp_path, capsys):
    from cs_assets.cli import main

    home = make_home(tmp_path, "weekly")
    assert run_graph(home, SUNDAYS).success
    health = published(home)
    assert sorted(set(health["snapshot_date"])) == SUNDAYS
    trend = published(home, "account_health_trend").filter(pl.col("snapshot_date") == SUNDAYS[-1])
    assert trend["change_7d"].is_not_null().sum() > 0 and trend["change_4w"].is_not_null().sum() > 0
    assert trend["change_30d"].is_null().all()  # no snapshot 30 days back
    joined = trend.join(
        health.filter(pl.col("snapshot_date") == SUNDAYS[-2]).select("account_id", last_week="health_score"),
        on="account_id",
    )
    assert (joined["change_7d"] == joined["health_score"] - joined["last_week"]).all()
    # the command line scores Sundays only, and says so
    assert main(["--home", str(home), "run", "--as-of", "2026-10-28"]) == 2
    assert "snapshot 2026-10-28 is not a snapshot date: with CS_HEALTH_CADENCE=weekly snapshots are Sundays" in (
        capsys.readouterr().err
    )
