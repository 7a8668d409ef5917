"""Property tests (hypothesis) of the scoring maths: points add up to the score, attribution parts to the change.

Derandomized, no example database: every run, here and in CI, tries the same examples.
"""

import math
from decimal import Decimal
from fractions import Fraction

import polars as pl
import yaml
from hypothesis import example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from cs_assets import settings
from cs_assets.scoring.attribution import MODEL_CHANGE, attribute_change
from cs_assets.scoring.composite import DECIMAL, POINT_SCALE, apportion_points, compute_composite
from cs_assets.scoring.model_config import parse_model
from cs_assets.scoring.subscores import with_effective_weights

PROPERTIES = hypothesis_settings(derandomize=True, database=None, deadline=None, max_examples=100, print_blob=False)

NAMES = [f"ind_{n:02d}" for n in range(40)]
UNIT = Decimal(1) / POINT_SCALE  # 0.0001, one point unit

WEIGHTED_SCHEMA = {
    "account_id": pl.String,
    "indicator": pl.String,
    "subscore": pl.String,
    "raw_value": pl.Float64,
    "is_missing": pl.Boolean,
    "indicator_score": pl.Float64,
    "weight": pl.Float64,
    "subscore_share": pl.Float64,
    "composite_share": pl.Float64,
}

model_weights = st.one_of(st.just(0.0), st.integers(1, 5).map(float), st.floats(0.05, 10.0))
random_scores = st.one_of(st.none(), st.sampled_from([0.0, 100.0]), st.floats(0.0, 100.0))


@st.composite
def account_rows(draw, account: str) -> list[dict]:
    """One account's indicator rows as `with_effective_weights` leaves them for `apportion_points`.

    Indicators without a score (excluded) hand their weight to the others in their sub-score; a
    sub-score with nothing to measure hands its weight to the other one; an account with nothing
    to measure has only zero shares. Otherwise the composite shares sum to 1 (to float precision).
    """
    count = draw(st.one_of(st.just(1), st.integers(2, 8), st.integers(9, len(NAMES))))
    names = draw(st.lists(st.sampled_from(NAMES), min_size=count, max_size=count, unique=True))
    kind = draw(st.sampled_from(["random", "perfect", "zero"]))
    scores = {"random": random_scores, "perfect": st.just(100.0), "zero": st.just(0.0)}[kind]
    rows = [
        {
            "account_id": account,
            "indicator": name,
            "subscore": draw(st.sampled_from(["co", "cx"])),
            "indicator_score": draw(scores),
            "weight": draw(model_weights),
        }
        for name in names
    ]
    present = {r["subscore"] for r in rows}
    co_weight = draw(st.one_of(st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]), st.floats(0.0, 1.0)))
    sub_weights = {"co": co_weight, "cx": 1.0 - co_weight} if len(present) == 2 else {s: 1.0 for s in present}
    totals = {
        s: sum(r["weight"] for r in rows if r["subscore"] == s and r["indicator_score"] is not None) for s in present
    }
    complete = all(totals[s] > 0 or sub_weights[s] == 0 for s in present)
    with_data = sum(sub_weights[s] for s in present if totals[s] > 0)
    for r in rows:
        r["raw_value"] = r["indicator_score"]
        r["is_missing"] = r["indicator_score"] is None
        total, weight = totals[r["subscore"]], sub_weights[r["subscore"]]
        r["subscore_share"] = r["weight"] / total if r["indicator_score"] is not None and total > 0 else 0.0
        factor = weight if complete else (weight / with_data if with_data > 0 else 0.0)
        r["composite_share"] = r["subscore_share"] * factor if total > 0 else 0.0
    return rows


@st.composite
def weighted_frames(draw) -> pl.DataFrame:
    accounts = draw(st.integers(1, 4))
    rows = [row for a in range(accounts) for row in draw(account_rows(f"acc-{a}"))]
    return pl.DataFrame(rows, schema=WEIGHTED_SCHEMA, orient="row")


def raw_units(row: dict) -> float:
    """The unrounded points of a row in units of 0.0001, computed as `apportion_points` does (same float operations)."""
    return row["composite_share"] * (row["indicator_score"] or 0.0) * POINT_SCALE


def by_account(frame: pl.DataFrame) -> dict[str, list[dict]]:
    rows: dict[str, list[dict]] = {}
    for row in frame.iter_rows(named=True):
        rows.setdefault(row["account_id"], []).append(row)
    return rows


def exact_total(rows: list[dict]) -> Fraction:
    """The account's unrounded score, in units, from the very floats in the frame (no float rounding)."""
    return sum((Fraction(r["composite_share"]) * Fraction(r["indicator_score"] or 0.0) for r in rows), Fraction(0)) * (
        POINT_SCALE
    )


@PROPERTIES
@given(weighted_frames())
def test_points_always_add_up_to_the_score_exactly(weighted):
    points = apportion_points(weighted)
    subscores = pl.DataFrame(
        {"account_id": weighted["account_id"].unique()}, schema={"account_id": pl.String}
    ).with_columns(co_score=pl.lit(None, dtype=pl.Float64), cx_score=pl.lit(None, dtype=pl.Float64))
    scores = {r["account_id"]: r["health_score"] for r in compute_composite(points, subscores).iter_rows(named=True)}
    assert points.height == weighted.height
    assert points["points"].dtype == DECIMAL
    assert set(scores) == set(weighted["account_id"])
    for account, rows in by_account(points).items():
        score = scores[account]
        assert sum((r["points"] for r in rows), Decimal(0)) == score
        assert Decimal(0) <= score <= Decimal(100)
        # the score is the rounding of the unrounded total (to within float error on the total)
        unrounded = exact_total(rows)
        assert abs(Fraction(score) * POINT_SCALE - unrounded) <= Fraction(1, 2) + Fraction(1, 10**6), (
            f"score {score} is not the unrounded total {float(unrounded) / POINT_SCALE!r} rounded to 4 places"
        )


@PROPERTIES
@given(weighted_frames())
def test_each_indicator_gets_its_share_rounded_down_or_up_the_largest_remainders_up(weighted):
    points = apportion_points(weighted)
    for rows in by_account(points).values():
        down, up = [], []
        for r in rows:
            raw = raw_units(r)
            units = r["points"] * POINT_SCALE
            assert units in {math.floor(raw), math.ceil(raw)}, r
            assert Decimal(0) <= r["points"] <= Decimal(str(r["max_points"])) + UNIT, r
            if raw != math.floor(raw):
                (up if units == math.ceil(raw) else down).append((raw - math.floor(raw), r["indicator"]))
        # largest remainder first, ties to the indicator first by name
        if down and up:
            assert min(rem for rem, _ in up) >= max(rem for rem, _ in down)
            tied = min(rem for rem, _ in up)
            if tied == max(rem for rem, _ in down):
                assert max(n for rem, n in up if rem == tied) < min(n for rem, n in down if rem == tied)


@PROPERTIES
@given(weighted_frames(), st.randoms(use_true_random=False))
def test_points_are_the_same_every_run_whatever_the_order_of_the_rows(weighted, random):
    expected = apportion_points(weighted)
    assert_frame_equal(apportion_points(weighted), expected)
    order = list(range(weighted.height))
    random.shuffle(order)
    assert_frame_equal(apportion_points(weighted[order]), expected)


@PROPERTIES
@given(weighted_frames())
@example(
    pl.DataFrame(
        {
            "account_id": ["acc-0"] * 3,
            "indicator": NAMES[:3],
            "subscore": ["co"] * 3,
            "raw_value": [100.0] * 3,
            "is_missing": [False] * 3,
            "indicator_score": [100.0] * 3,
            "weight": [1.0] * 3,
            "subscore_share": [1 / 3] * 3,
            "composite_share": [1 / 3] * 3,
        },
        schema=WEIGHTED_SCHEMA,
    )
)
def test_points_never_exceed_max_points(weighted):
    points = apportion_points(weighted)
    over = points.filter(pl.col("points").cast(pl.Float64) > pl.col("max_points"))
    assert over.height == 0, over.select(
        "account_id", "indicator", "composite_share", "points", "max_points"
    ).to_dicts()


def test_points_add_up_to_the_score_when_only_a_zero_weight_subscore_has_data():
    raw = yaml.safe_load(settings.DEFAULT_MODEL_PATH.read_text())
    raw["subscores"]["co"]["weight"], raw["subscores"]["cx"]["weight"] = 0, 1
    model = parse_model(raw)
    scores = pl.DataFrame(
        {
            "account_id": ["A", "A"],
            "indicator": ["x", "y"],
            "subscore": ["co", "cx"],
            "raw_value": [1.0, None],
            "is_missing": [False, True],
            "indicator_score": [80.0, None],  # y excluded: cx has nothing to measure for A
            "weight": [1.0, 1.0],
        }
    )
    weighted = with_effective_weights(scores, model)
    points = apportion_points(weighted)
    score = points["points"].sum()
    # nothing that counts is measured: no share, no points, a score of 0 (as with no data at all)
    assert not weighted["composite_share"].is_nan().any()
    assert weighted["composite_share"].to_list() == [0.0, 0.0] and score == Decimal(0)


point_values = st.integers(0, 100 * POINT_SCALE).map(lambda units: Decimal(units) * UNIT)


def snapshot_points(draw, names: list[str]) -> dict[str, Decimal]:
    return {name: draw(point_values) for name in names}


def indicator_sets(pool: list[str]):
    return st.lists(st.sampled_from(pool), min_size=1, max_size=len(pool), unique=True)


@st.composite
def attribution_cases(draw) -> dict:
    """Before, after and (when the model changed) after re-scored with the earlier model, for 1-3 accounts."""
    model_changed = draw(st.booleans())
    accounts = {}
    for a in range(draw(st.integers(1, 3))):
        pool = NAMES[: draw(st.integers(1, 12))]
        before_names = draw(indicator_sets(pool))
        after_names = draw(st.one_of(st.just(before_names), indicator_sets(pool)))  # same, or added/removed
        case = {"before": snapshot_points(draw, before_names), "after": snapshot_points(draw, after_names)}
        if model_changed:
            # the later snapshot's data scored with the earlier model: that model's indicators, often before's
            old_names = draw(st.one_of(st.just(before_names), indicator_sets(pool)))
            case["rescored"] = snapshot_points(draw, old_names)
        accounts[f"acc-{a}"] = case
    return accounts


def points_frame(accounts: dict, which: str) -> pl.DataFrame:
    rows = [(a, name, value) for a, case in accounts.items() for name, value in case[which].items()]
    return pl.DataFrame(rows, schema={"account_id": pl.String, "indicator": pl.String, "points": DECIMAL}, orient="row")


def attribute(accounts: dict) -> pl.DataFrame:
    model_changed = "rescored" in next(iter(accounts.values()))
    rescored = points_frame(accounts, "rescored") if model_changed else None
    return attribute_change(points_frame(accounts, "before"), points_frame(accounts, "after"), rescored)


@PROPERTIES
@given(attribution_cases())
def test_change_parts_always_add_up_to_the_score_change_exactly(accounts):
    parts = attribute(accounts)
    assert parts["change"].dtype == DECIMAL
    for account, case in accounts.items():
        mine = parts.filter(pl.col("account_id") == account)
        change = sum(case["after"].values(), Decimal(0)) - sum(case["before"].values(), Decimal(0))
        assert sum(mine["change"].to_list(), Decimal(0)) == change
        assert (MODEL_CHANGE in mine["indicator"].to_list()) == ("rescored" in case)


@PROPERTIES
@given(attribution_cases())
def test_indicator_parts_are_the_data_change_and_the_model_change_is_the_rest(accounts):
    parts = attribute(accounts)
    for account, case in accounts.items():
        got = {r["indicator"]: r["change"] for r in parts.filter(pl.col("account_id") == account).iter_rows(named=True)}
        before, after = case["before"], case["after"]
        reference = case.get("rescored", after)  # indicator parts compare like with like: the same model
        expected = {
            name: reference.get(name, Decimal(0)) - before.get(name, Decimal(0))
            for name in set(before) | set(reference)
        }
        if "rescored" in case:
            expected[MODEL_CHANGE] = sum(after.values(), Decimal(0)) - sum(reference.values(), Decimal(0))
        assert got == expected
