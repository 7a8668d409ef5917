"""Account health stages: rules with hysteresis over the published history, the published table,
their use in action rules, and churn per stage in the validation report."""

import datetime as dt

import polars as pl
import pytest

from cs_assets import settings
from cs_assets.actions.evaluate import evaluate_actions
from cs_assets.actions.rules import ActionRulesError, parse_action_rules
from cs_assets.actions.stages import assign_stages
from cs_assets.demo.generator import DEMO_AS_OF
from cs_assets.deployment import load_deployment
from cs_assets.scoring.model_config import load_model
from tests.harness import make_home, published, run_graph

DAY0 = dt.date(2026, 3, 1)
MODEL = load_model(settings.DEFAULT_MODEL_PATH, load_deployment().catalogue)
STAGES = {
    "default": "growth",
    "rules": [
        {"name": "sunk", "enter_after": 3, "when": [{"field": "days_since_last_activity", "op": "gte", "value": 30}]},
        {"name": "rescue", "enter_after": 2, "when": [{"field": "band", "op": "eq", "value": "red"}]},
        {"name": "success", "enter_after": 3, "when": [{"field": "band", "op": "eq", "value": "green"}]},
    ],
}


def rules_with(stages: dict | None = STAGES, rules: list | None = None):
    raw = {"version": 1, "rules": rules or []}
    if stages is not None:
        raw["stages"] = stages
    return parse_action_rules(raw, "a.yaml", MODEL)


def history(bands: list[str], idle: list[float] | None = None, days: list[int] | None = None) -> pl.DataFrame:
    n = len(bands)
    return pl.DataFrame(
        {
            "account_id": ["A1"] * n,
            "snapshot_date": [DAY0 + dt.timedelta(days=d) for d in (days or range(n))],
            "band": bands,
            "days_since_last_activity": idle or [1.0] * n,
            "health_score": [50.0] * n,
            "csm_owner": ["csm@example.com"] * n,
        }
    )


def stages_of(frame: pl.DataFrame) -> list[str]:
    return assign_stages(frame, rules_with().stages)["health_stage"].to_list()


def test_an_account_moves_only_once_a_stage_held_long_enough_and_stays_until_another_does():
    bands = ["yellow", "red", "yellow", "red", "red", "red", "green", "green", "red", "green", "green", "green"]
    frame = history(bands)
    result = assign_stages(frame, rules_with().stages)
    assert result["heading_for"].to_list() == [
        "growth", "rescue", "growth", "rescue", "rescue", "rescue",
        "success", "success", "rescue", "success", "success", "success",
    ]  # fmt: skip
    # one red day is not enough (rescue needs 2); three green days are needed for success
    assert result["health_stage"].to_list() == [
        "growth", "growth", "growth", "growth", "rescue", "rescue",
        "rescue", "rescue", "rescue", "rescue", "rescue", "success",
    ]  # fmt: skip
    since = dict(zip(result["snapshot_date"], result["stage_since"]))
    assert since[DAY0 + dt.timedelta(days=5)] == DAY0 + dt.timedelta(days=4)
    assert since[DAY0 + dt.timedelta(days=11)] == DAY0 + dt.timedelta(days=11)


def test_the_first_snapshot_is_the_stage_it_points_to_and_the_first_rule_wins():
    # red and dark at once: sunk comes first in the file
    assert stages_of(history(["red", "red"], idle=[40.0, 40.0])) == ["sunk", "sunk"]
    assert stages_of(history(["green"])) == ["success"]


def test_a_missing_snapshot_restarts_the_count():
    # red, red with a day missing between them: not two snapshots in a row
    frame = history(["yellow", "red", "red", "red"], days=[0, 1, 3, 4])
    assert stages_of(frame) == ["growth", "growth", "growth", "rescue"]


def test_stage_rules_are_checked_and_action_rules_can_read_the_stage():
    with pytest.raises(ActionRulesError, match=r"`stages.rules\[0\] \(sunk\).when\[0\].field`: unknown field 'idle'"):
        rules_with({**STAGES, "rules": [{"name": "sunk", "when": [{"field": "idle", "op": "gt", "value": 1}]}]})
    with pytest.raises(ActionRulesError, match=r"`stages.rules\[0\].name`: 'growth' is the default stage"):
        rules_with({**STAGES, "rules": [{**STAGES["rules"][0], "name": "growth"}]})
    with pytest.raises(ActionRulesError, match=r"`stages.rules\[1\].name`: duplicate stage 'sunk'"):
        rules_with({**STAGES, "rules": [STAGES["rules"][0], STAGES["rules"][0]]})
    on_stage = {
        "name": "sinking",
        "action": "last attempt",
        "priority": "P2",
        "when": [{"field": "health_stage", "op": "eq", "value": "sunk"}],
    }
    with pytest.raises(
        ActionRulesError, match=r"health_stage is never 'sunken'; it is one of sunk, rescue, success, growth"
    ):
        rules_with(rules=[{**on_stage, "when": [{"field": "health_stage", "op": "eq", "value": "sunken"}]}])
    with pytest.raises(ActionRulesError, match=r"unknown field 'health_stage'"):
        rules_with(stages=None, rules=[on_stage])
    rules = rules_with(rules=[on_stage])
    frame = history(["yellow"] * 6, idle=[1, 31, 32, 33, 34, 35])
    staged = frame.join(assign_stages(frame, rules.stages), on=["account_id", "snapshot_date"])
    actions = evaluate_actions(staged, rules)
    assert actions.select("rule", "first_snapshot").rows() == [("sinking", DAY0 + dt.timedelta(days=3))]


@pytest.fixture(scope="module")
def staged_home(tmp_path_factory):
    home = make_home(tmp_path_factory.mktemp("stages"), "staged")
    dates = [DEMO_AS_OF - dt.timedelta(days=i) for i in range(20, -1, -1)]
    assert run_graph(home, dates).success
    return home


def test_a_run_publishes_every_snapshots_stage_and_actions_read_them(staged_home):
    stages = published(staged_home, "account_health_stages")
    health = published(staged_home)
    assert stages.height == health.height
    assert set(stages["health_stage"]) <= {"sunk", "rescue", "success", "growth"}
    assert stages["health_stage"].n_unique() >= 3
    # a red account has only been in rescue after two red snapshots in a row (or it was sunk)
    joined = health.join(stages, on=["account_id", "snapshot_date"]).sort("account_id", "snapshot_date")
    joined = joined.with_columns(before=pl.col("band").shift(1).over("account_id"))
    rescue = joined.filter(pl.col("health_stage") == "rescue", pl.col("stage_since") == pl.col("snapshot_date"))
    assert rescue.height > 0 and (rescue["before"] == "red").all()
    # the shipped `sinking` rule fires from the stage, and only for sunk accounts
    actions = published(staged_home, "account_actions").filter(pl.col("rule") == "sinking")
    at_trigger = actions.join(
        stages.rename({"snapshot_date": "first_snapshot"}), on=["account_id", "first_snapshot"], how="left"
    )
    assert actions.height > 0 and (at_trigger["health_stage"] == "sunk").all()
