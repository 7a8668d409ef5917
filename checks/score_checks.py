"""Invariants of the scores, checked before anything is published.

All three are blocking ERROR checks on `account_health_scores`: if one fails, the publish step
never starts and the last published snapshot stays as it was.
"""

import datetime as dt

import dagster as dg
import polars as pl

from checks.dq_config import BAND_SHIFT
from cs_assets.frames import scalar

SCORE_IN_RANGE = "health_score_in_range"
EVERY_ACTIVE_ACCOUNT_ONCE = "every_active_account_scored_once"
POINTS_SUM_TO_SCORE = "points_sum_to_score"

SCORES = dg.AssetKey("account_health_scores")
PUBLISHED_HEALTH = dg.AssetKey(["published", "account_health"])


def _sample(values: pl.Series, n: int = 5) -> str:
    return ", ".join(str(v) for v in values.head(n).to_list())


def _snapshots(frame: pl.DataFrame) -> dict:
    # The UI lists a check on a partitioned asset without its partition: say which snapshots
    # this evaluation covered (one date, or the range of a backfill run).
    if frame.height == 0:
        return {"snapshots": "none"}
    dates = frame["snapshot_date"]
    first, last = scalar(dates.min(), dt.date), scalar(dates.max(), dt.date)
    return {"snapshots": str(first) if first == last else f"{first}..{last}"}


@dg.asset_check(
    asset=SCORES,
    name=SCORE_IN_RANGE,
    blocking=True,
    description="Health scores are within 0-100, and so are CO and CX where the account has data for them.",
)
def health_score_in_range(account_health_scores: pl.DataFrame) -> dg.AssetCheckResult:
    # a sub-score may be null (the account has nothing to measure in it); the health score never is
    outside = account_health_scores.filter(
        pl.any_horizontal(
            [~pl.col("health_score").cast(pl.Float64).is_between(0.0, 100.0) | pl.col("health_score").is_null()]
            + [~pl.col(c).cast(pl.Float64).is_between(0.0, 100.0).fill_null(True) for c in ("co_score", "cx_score")]
        )
    )
    return dg.AssetCheckResult(
        passed=outside.height == 0,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            **_snapshots(account_health_scores),
            "accounts_out_of_range": outside.height,
            "sample_account_ids": _sample(outside["account_id"]),
        },
    )


@dg.asset_check(
    asset=SCORES,
    name=EVERY_ACTIVE_ACCOUNT_ONCE,
    blocking=True,
    additional_ins={"account_indicators": dg.AssetIn("account_indicators")},
    description="Every account active on each snapshot date has exactly one score for it, and nothing else is scored.",
)
def every_active_account_scored_once(
    account_health_scores: pl.DataFrame, account_indicators: pl.LazyFrame
) -> dg.AssetCheckResult:
    key = ["snapshot_date", "account_id"]
    active = account_indicators.lazy().filter(pl.col("is_active")).select(key).collect()
    counts = account_health_scores.group_by(key).len()
    duplicated = counts.filter(pl.col("len") > 1)["account_id"]
    unscored = active.join(counts, on=key, how="anti")["account_id"]
    unexpected = counts.join(active, on=key, how="anti")["account_id"]
    return dg.AssetCheckResult(
        passed=duplicated.len() == 0 and unscored.len() == 0 and unexpected.len() == 0,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            **_snapshots(account_health_scores),
            "active_accounts": active.height,
            "scored_accounts": counts.height,
            "duplicated": duplicated.len(),
            "unscored": unscored.len(),
            "not_active_but_scored": unexpected.len(),
            "sample_unscored": _sample(unscored),
        },
    )


@dg.asset_check(
    asset=SCORES,
    name=POINTS_SUM_TO_SCORE,
    blocking=True,
    additional_ins={"indicator_contributions": dg.AssetIn("indicator_contributions")},
    description="The per-indicator points of every account add up to its health score exactly.",
)
def points_sum_to_score(
    account_health_scores: pl.DataFrame, indicator_contributions: pl.LazyFrame
) -> dg.AssetCheckResult:
    key = ["snapshot_date", "account_id"]
    # streamed: a backfill's per-indicator rows need not fit in memory, their sums do
    sums = indicator_contributions.lazy().group_by(key).agg(points=pl.col("points").sum()).collect(engine="streaming")
    joined = account_health_scores.select(*key, "health_score").join(sums, on=key, how="full", coalesce=True)
    mismatched = joined.filter(
        pl.col("points").is_null() | pl.col("health_score").is_null() | (pl.col("points") != pl.col("health_score"))
    )
    return dg.AssetCheckResult(
        passed=mismatched.height == 0,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            **_snapshots(account_health_scores),
            "mismatched_accounts": mismatched.height,
            "sample_account_ids": _sample(mismatched["account_id"]),
        },
    )


score_checks = [health_score_in_range, every_active_account_scored_once, points_sum_to_score]


def band_shift_result(
    previous: pl.DataFrame,
    current: pl.DataFrame,
    previous_date,
    max_share: float,
    severity: dg.AssetCheckSeverity,
    same_date: bool = False,
) -> dg.AssetCheckResult:
    """Share of accounts, scored in both snapshots, whose band changed since the last published one
    (or, `same_date`, against what is published for the very date this run scores again)."""
    if previous.height == 0:
        return dg.AssetCheckResult(
            asset_key=PUBLISHED_HEALTH,
            check_name=BAND_SHIFT,
            passed=True,
            severity=severity,
            description="no earlier published snapshot to compare with",
            metadata={**_snapshots(current), "compared_accounts": 0},
        )
    both = current.select("account_id", "band").join(
        previous.select("account_id", previous_band="band"), on="account_id", how="inner"
    )
    moved = both.filter(pl.col("band") != pl.col("previous_band"))
    share = moved.height / both.height if both.height else 0.0
    transitions = (
        moved.group_by("previous_band", "band")
        .len()
        .sort("len", "previous_band", "band", descending=[True, False, False])
    )
    summary = ", ".join(f"{a}->{b}: {n}" for a, b, n in transitions.iter_rows())
    return dg.AssetCheckResult(
        asset_key=PUBLISHED_HEALTH,
        check_name=BAND_SHIFT,
        passed=share <= max_share,
        severity=severity,
        description=f"{moved.height:,} of {both.height:,} accounts ({share:.1%}) changed band "
        + (
            f"against the published snapshot of {previous_date} that this run scores again"
            if same_date
            else f"since the snapshot of {previous_date}"
        )
        + f" (limit {max_share:.0%}){': ' + summary if summary else ''}",
        metadata={
            **_snapshots(current),
            "previous_snapshot": str(previous_date),
            "compared_with": "the same date, as published" if same_date else "the previous published snapshot",
            "compared_accounts": both.height,
            "changed_band": moved.height,
            "changed_share": round(share, 4),
            "transitions": summary or "none",
        },
    )
