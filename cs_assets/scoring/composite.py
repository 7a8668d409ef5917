"""The composite health score (0-100) and the per-indicator points that make it up.

Points are fixed-point decimals with 4 places. They are apportioned with the largest-remainder
method so that, for every account, the points add up to the published score exactly (not just
to float precision), and the score itself is the exact rounding of the unrounded total.
"""

from decimal import Decimal

import polars as pl

from cs_assets.scoring.model_config import SEGMENT_MODEL

POINT_SCALE = 10_000  # 4 decimal places
DECIMAL = pl.Decimal(9, 4)
DRAG_COUNT = 3


def to_decimal(units: pl.Expr) -> pl.Expr:
    return (units.cast(pl.Decimal(18, 0)) * pl.lit(Decimal(1) / POINT_SCALE, dtype=pl.Decimal(5, 4))).cast(DECIMAL)


def apportion_points(weighted: pl.DataFrame) -> pl.DataFrame:
    """Add `points` (Decimal(9,4)) and `max_points` to the weighted indicator scores."""
    raw = pl.col("composite_share") * pl.col("indicator_score").fill_null(0.0) * POINT_SCALE
    frame = weighted.with_columns(raw_units=raw).with_columns(
        floor_units=pl.col("raw_units").floor().cast(pl.Int64),
        target_units=pl.col("raw_units").sum().over("account_id").round(0).cast(pl.Int64),
    )
    frame = frame.with_columns(
        remainder=pl.col("raw_units") - pl.col("floor_units"),
        deficit=pl.col("target_units") - pl.col("floor_units").sum().over("account_id"),
    )
    # rank by remainder, ties by indicator name, so the extra units go to the same rows every run
    frame = frame.sort("account_id", "remainder", "indicator", descending=[False, True, False]).with_columns(
        rank=pl.int_range(pl.len()).over("account_id")
    )
    return (
        frame.with_columns(units=pl.col("floor_units") + (pl.col("rank") < pl.col("deficit")).cast(pl.Int64))
        .with_columns(points=to_decimal(pl.col("units")))
        # an indicator at 100 may get the unit the apportioning hands out: at least its points,
        # so that "points lost" (max_points - points) is never negative
        .with_columns(
            max_points=pl.max_horizontal(
                (pl.col("composite_share") * 100.0).round(4), pl.col("points").cast(pl.Float64)
            )
        )
        .drop("raw_units", "floor_units", "target_units", "remainder", "deficit", "rank")
        .sort("account_id", "indicator")
    )


def compute_composite(contributions: pl.DataFrame, subscores: pl.DataFrame) -> pl.DataFrame:
    """One row per account: health_score (sum of points), co/cx, and the top drags."""
    # the segment model that scored the account (one per account), when the frame says
    segment = [pl.col(SEGMENT_MODEL).first()] if SEGMENT_MODEL in contributions.columns else []
    totals = contributions.group_by("account_id").agg(
        pl.col("points").sum().cast(DECIMAL).alias("health_score"), *segment
    )
    lost = (
        contributions.filter(pl.col("max_points") > 0)
        .with_columns(points_lost=(pl.col("max_points") - pl.col("points").cast(pl.Float64)).round(4))
        .sort("account_id", "points_lost", "indicator", descending=[False, True, False])
        .group_by("account_id", maintain_order=True)
        .head(DRAG_COUNT)
        .with_columns(n=pl.int_range(pl.len()).over("account_id") + 1)
    )
    drags = lost.pivot(
        on="n",
        index="account_id",
        values=["indicator", "raw_value", "points_lost"],
        on_columns=list(range(1, DRAG_COUNT + 1)),
    )
    rename = {}
    for n in range(1, DRAG_COUNT + 1):
        rename[f"indicator_{n}"] = f"drag_{n}_indicator"
        rename[f"raw_value_{n}"] = f"drag_{n}_value"
        rename[f"points_lost_{n}"] = f"drag_{n}_points_lost"
    drags = drags.rename(rename)
    drag_cols = [f"drag_{n}_{part}" for n in range(1, DRAG_COUNT + 1) for part in ("indicator", "value", "points_lost")]
    return (
        totals.join(subscores, on="account_id", how="left")
        .join(drags, on="account_id", how="left")
        .with_columns(pl.col("co_score").round(2), pl.col("cx_score").round(2))
        .select("account_id", "health_score", "co_score", "cx_score", *drag_cols, *([SEGMENT_MODEL] if segment else []))
        .sort("account_id")
    )
