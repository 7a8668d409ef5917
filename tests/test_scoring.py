"""Scoring maths on hand-computed cases, without Dagster."""

from decimal import Decimal

import polars as pl
import pytest

from cs_assets.scoring.composite import apportion_points, compute_composite
from cs_assets.scoring.indicator_scores import score_expression, score_indicators
from cs_assets.scoring.model_config import parse_model
from cs_assets.scoring.segments import assign_segments
from cs_assets.scoring.subscores import compute_subscores, with_effective_weights


def small_model(**overrides) -> dict:
    raw = {
        "version": 1,
        "name": "test",
        "subscores": {"co": {"weight": 3}, "cx": {"weight": 1}},
        "indicators": {
            "seat_penetration": {
                "subscore": "co",
                "weight": 2,
                "direction": "higher_is_better",
                "scoring": {"function": "linear", "worst": 0.0, "best": 0.5},
                "missing": {"policy": "score", "score": 0},
            },
            "champion_days_inactive": {
                "subscore": "co",
                "weight": 1,
                "direction": "lower_is_better",
                "scoring": {"function": "thresholds", "cuts": [7, 30], "scores": [100, 50, 0]},
                "missing": {"policy": "exclude"},
            },
            "page_load_p75_ms": {
                "subscore": "cx",
                "weight": 1,
                "direction": "lower_is_better",
                "scoring": {"function": "linear", "worst": 3000, "best": 1000},
                "missing": {"policy": "score", "score": 50},
            },
        },
        "bands": [
            {"name": "red", "min_score": 0},
            {"name": "yellow", "min_score": 40},
            {"name": "green", "min_score": 70},
        ],
        "lifecycle": {"onboarding_days": 90, "renewal_window_days": 60},
        "triage": {
            "onboarding": {"red": "P1", "yellow": "P2", "green": "P4"},
            "adoption": {"red": "P1", "yellow": "P3", "green": "P4"},
            "renewal_window": {"red": "P1", "yellow": "P1", "green": "P3"},
        },
    }
    raw.update(overrides)
    return raw


def _scores(rule_name: str, values: list) -> list:
    model = parse_model(small_model())
    frame = pl.DataFrame({"v": values}, schema={"v": pl.Float64})
    return frame.select(score_expression(model.indicator(rule_name), pl.col("v")).alias("s"))["s"].to_list()


def test_linear_is_bounded_and_clipped_in_both_directions():
    assert _scores("seat_penetration", [-1.0, 0.0, 0.125, 0.25, 0.5, 0.9]) == [0.0, 0.0, 25.0, 50.0, 100.0, 100.0]
    assert _scores("page_load_p75_ms", [500.0, 1000.0, 2000.0, 3000.0, 9000.0]) == [100.0, 100.0, 50.0, 0.0, 0.0]


def test_thresholds_use_half_open_intervals():
    # value < 7 -> 100, 7 <= value < 30 -> 50, value >= 30 -> 0
    assert _scores("champion_days_inactive", [0.0, 6.9, 7.0, 29.0, 30.0, 400.0]) == [100, 100, 50, 50, 0, 0]


@pytest.fixture()
def indicators() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "account_id": ["A", "B", "C"],
            "seat_penetration": [0.25, None, 0.5],
            "champion_days_inactive": [10, None, 2],
            "page_load_p75_ms": [2000.0, None, 1000.0],
        }
    )


def test_points_add_up_and_missing_policies(indicators):
    model = parse_model(small_model())
    weighted = with_effective_weights(score_indicators(indicators, model), model)
    contributions = apportion_points(weighted)
    by = {(r["account_id"], r["indicator"]): r for r in contributions.iter_rows(named=True)}

    # A: co = (2*50 + 1*50)/3 = 50; cx = 50; composite = 0.75*50 + 0.25*50 = 50
    assert by[("A", "seat_penetration")]["points"] == Decimal("25.0000")
    assert by[("A", "champion_days_inactive")]["points"] == Decimal("12.5000")
    assert by[("A", "page_load_p75_ms")]["points"] == Decimal("12.5000")
    # B: champion excluded -> seat penetration carries all of co; missing values scored by policy
    assert by[("B", "champion_days_inactive")]["indicator_score"] is None
    assert by[("B", "champion_days_inactive")]["points"] == Decimal("0")
    assert by[("B", "seat_penetration")]["subscore_share"] == 1.0
    assert by[("B", "seat_penetration")]["points"] == Decimal("0")
    assert by[("B", "page_load_p75_ms")]["points"] == Decimal("12.5000")

    subscores = compute_subscores(contributions)
    composite = compute_composite(contributions, subscores)
    got = {r["account_id"]: r for r in composite.iter_rows(named=True)}
    assert got["A"]["health_score"] == Decimal("50.0000")
    assert (got["A"]["co_score"], got["A"]["cx_score"]) == (50.0, 50.0)
    assert got["B"]["health_score"] == Decimal("12.5000")
    assert got["C"]["health_score"] == Decimal("100.0000")
    # A's biggest drag: seat penetration lost 25 of 50 possible points
    assert got["A"]["drag_1_indicator"] == "seat_penetration"
    assert got["A"]["drag_1_value"] == 0.25
    assert got["A"]["drag_1_points_lost"] == 25.0


def test_largest_remainder_makes_points_sum_exactly_to_rounded_total():
    # seven equal weights of 1/7: every share is 14.285714..., naive rounding would drift
    raw = small_model()
    raw["subscores"] = {"co": {"weight": 1}, "cx": {"weight": 0}}
    model = parse_model(raw)
    weighted = pl.DataFrame(
        {
            "account_id": ["A"] * 7,
            "indicator": [f"i{n}" for n in range(7)],
            "subscore": ["co"] * 7,
            "indicator_score": [100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 99.99999],
            "composite_share": [1 / 7] * 7,
        }
    )
    points = apportion_points(weighted)
    assert points["points"].sum() == Decimal("100.0000")
    assert set(points["points"].to_list()) <= {Decimal("14.2857"), Decimal("14.2858")}
    assert model.subscore_weights["cx"] == 0


def test_segments_band_lifecycle_and_triage():
    model = parse_model(small_model())
    scores = pl.DataFrame(
        {"account_id": ["A", "B", "C", "D"], "health_score": [39.9999, 40.0, 70.0, 10.0]},
        schema={"account_id": pl.String, "health_score": pl.Decimal(9, 4)},
    )
    indicators = pl.DataFrame(
        {
            "account_id": ["A", "B", "C", "D"],
            "is_active": [True, True, True, False],
            "tenure_days": [30, 400, 400, 800],
            "days_to_renewal": [300, 45, 200, 10],
            "size_tier": ["SMB", "Mid", "Enterprise", "SMB"],
        }
    )
    seg = {r["account_id"]: r for r in assign_segments(scores, indicators, model).iter_rows(named=True)}
    assert (seg["A"]["band"], seg["A"]["lifecycle_stage"], seg["A"]["triage_priority"]) == ("red", "onboarding", "P1")
    assert (seg["B"]["band"], seg["B"]["lifecycle_stage"], seg["B"]["triage_priority"]) == (
        "yellow",
        "renewal_window",
        "P1",
    )
    assert (seg["C"]["band"], seg["C"]["lifecycle_stage"], seg["C"]["triage_priority"]) == ("green", "adoption", "P4")
    assert seg["D"]["lifecycle_stage"] == "churned" and seg["D"]["triage_priority"] is None
