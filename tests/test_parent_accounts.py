"""Parent accounts: a rolled-up score whose members' parts add up exactly, weighted by ARR or
equally, published per snapshot, and readable by action rules on the parent."""

import datetime as dt
from decimal import Decimal

import polars as pl
import pytest

from cs_assets import settings
from cs_assets.actions.rules import ActionRulesError, parse_action_rules
from cs_assets.demo.generator import DEMO_AS_OF
from cs_assets.deployment import load_deployment
from cs_assets.scoring.model_config import load_model
from cs_assets.scoring.parents import rollup_parents
from tests.harness import make_home, published, run_graph

MODEL = load_model(settings.DEFAULT_MODEL_PATH, load_deployment().catalogue)


def family() -> tuple[pl.DataFrame, pl.DataFrame]:
    scores = pl.DataFrame(
        {
            "account_id": ["P1", "C1", "C2", "C3", "Q1", "Q2", "LONE"],
            "health_score": [80.0, 40.0, 60.0, 33.3333, 50.0, 70.0, 90.0],
        }
    )
    accounts = pl.DataFrame(
        {
            "account_id": ["P1", "C1", "C2", "C3", "Q1", "Q2", "LONE", "C4"],
            # Q has no scored parent account; C4 is not scored (not active): it is not a member
            "parent_account_id": [None, "P1", "P1", " P1 ", "Q", "Q", "", "P1"],
            "arr_usd": [50_000.0, 30_000.0, 20_000.0, 0.0, None, None, 10.0, 99.0],
        }
    )
    return scores, accounts


def test_an_arr_weighted_rollup_includes_the_scored_parent_and_its_parts_add_up_exactly():
    rollups, parts = rollup_parents(*family(), MODEL, "parent_account_id", "arr_usd")
    p1 = rollups.filter(pl.col("parent_account_id") == "P1").row(0, named=True)
    # (80 x 50k + 40 x 30k + 60 x 20k + 33.33 x 0) / 100k = 64
    assert p1["rollup_score"] == Decimal("64.0000") and p1["members"] == 4 and p1["rollup_band"] == "yellow"
    assert p1["weight_basis"] == "arr_usd" and p1["weight_total"] == 100_000
    mine = parts.filter(pl.col("parent_account_id") == "P1")
    assert sorted(mine["account_id"]) == ["C1", "C2", "C3", "P1"]
    assert mine["points"].sum() == p1["rollup_score"]
    assert dict(zip(mine["account_id"], mine["weight_share"])) == {"C1": 0.3, "C2": 0.2, "C3": 0.0, "P1": 0.5}
    # a family without any ARR is weighted equally, and says so; no parent id means no family
    q = rollups.filter(pl.col("parent_account_id") == "Q").row(0, named=True)
    assert q["rollup_score"] == Decimal("60.0000") and q["weight_basis"] == "equal (no arr_usd in the family)"
    assert set(rollups["parent_account_id"]) == {"P1", "Q"}


def test_equal_weights_and_the_exact_sum_with_a_remainder():
    scores, accounts = family()
    rollups, parts = rollup_parents(scores, accounts, MODEL, "parent_account_id", "equal")
    p1 = rollups.filter(pl.col("parent_account_id") == "P1").row(0, named=True)
    # (80 + 40 + 60 + 33.3333) / 4 = 53.333325 -> 53.3333, and the four parts sum to it
    assert p1["rollup_score"] == Decimal("53.3333")
    assert parts.filter(pl.col("parent_account_id") == "P1")["points"].sum() == Decimal("53.3333")


def test_a_missing_column_is_named():
    scores, accounts = family()
    with pytest.raises(ValueError, match=r"parent roll-up: 'mrr_usd' is not a column of the accounts \(CRM\) table"):
        rollup_parents(scores, accounts, MODEL, "parent_account_id", "mrr_usd")


def test_a_run_publishes_each_parents_rollup_and_rules_act_on_the_parent(tmp_path):
    home = make_home(tmp_path, "families")
    days = [DEMO_AS_OF - dt.timedelta(days=1), DEMO_AS_OF]
    assert run_graph(home, days).success
    parents = published(home, "parent_account_health")
    members = published(home, "parent_account_members")
    health = published(home)
    assert parents.height > 0 and set(parents["snapshot_date"]) == set(days)
    # the members' parts add up to each roll-up exactly, and it is the ARR-weighted mean
    sums = members.group_by("parent_account_id", "snapshot_date").agg(
        pl.col("points").sum().alias("parts"),
        ((pl.col("health_score") * pl.col("weight")).sum() / pl.col("weight").sum()).alias("weighted"),
        pl.len().alias("n"),
    )
    joined = parents.join(sums, on=["parent_account_id", "snapshot_date"])
    assert joined.height == parents.height
    assert (joined["parts"] == joined["rollup_score"]).all() and (joined["n"] == joined["members"]).all()
    assert ((joined["weighted"] - joined["rollup_score"].cast(pl.Float64)).abs() < 1e-4).all()
    # members are scored accounts of that snapshot, with the scores published for them
    scored = members.join(
        health.select("account_id", "snapshot_date", "health_score"), on=["account_id", "snapshot_date"]
    )
    assert scored.height == members.height
    assert (scored["health_score"] == scored["health_score_right"].cast(pl.Float64)).all()
    # a rule on the roll-up reads it on the parent's own rows
    rules = parse_action_rules(
        {
            "version": 1,
            "rules": [
                {
                    "name": "family_red",
                    "action": "call",
                    "priority": "P1",
                    "when": [{"field": "rollup_band", "op": "in", "value": ["red", "yellow"]}],
                }
            ],
        },
        "a.yaml",
        MODEL,
    )
    assert rules.rules[0].conditions[0].field == "rollup_band"
    with pytest.raises(ActionRulesError, match=r"rollup_band is never 'amber'"):
        parse_action_rules(
            {
                "version": 1,
                "rules": [
                    {
                        "name": "x",
                        "action": "a",
                        "priority": "P1",
                        "when": [{"field": "rollup_band", "op": "eq", "value": "amber"}],
                    }
                ],
            },
            "a.yaml",
            MODEL,
        )
