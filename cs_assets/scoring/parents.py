"""Parent accounts: a rolled-up score per parent from its children's health scores.

A family is a parent account and the accounts whose CRM parent column names it; the parent
itself counts when it is scored too. Each member's share of the family is its weight (a numeric
CRM column, ARR by default, or `equal`) over the family's total; a family whose weights are all
missing or zero is weighted equally, and says so. The members' parts are apportioned like an
account's points (4-decimal fixed point, largest remainders), so for every parent they add up
exactly to the rolled-up score.
"""

import polars as pl

from cs_assets.scoring.composite import apportion_points
from cs_assets.scoring.model_config import HealthModel
from cs_assets.scoring.segments import band_expression

EQUAL = "equal"
PARENT, MEMBER = "parent_account_id", "account_id"
ROLLUP_COLUMNS = ["parent_account_id", "rollup_score", "rollup_band", "members", "weight_basis", "weight_total"]
PART_COLUMNS = ["parent_account_id", "account_id", "health_score", "weight", "weight_share", "points"]


def rollup_parents(
    scores: pl.DataFrame, accounts: pl.DataFrame, model: HealthModel, parent_column: str, weight: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Rolled-up parents (one row each) and their members' parts (one row per member).

    `scores`: account_id, health_score of one snapshot. `accounts`: account_id, the parent column
    and, unless `weight` is `equal`, the weight column, for the same snapshot."""
    for column in (parent_column, *([] if weight == EQUAL else [weight])):
        if column not in accounts.columns:
            raise ValueError(f"parent roll-up: {column!r} is not a column of the accounts (CRM) table")
    links = accounts.select(
        MEMBER,
        pl.col(parent_column).cast(pl.String).str.strip_chars().alias(PARENT),
        (pl.lit(1.0) if weight == EQUAL else pl.col(weight).cast(pl.Float64)).alias("weight"),
    )
    children = links.filter(pl.col(PARENT).is_not_null() & (pl.col(PARENT) != "") & (pl.col(PARENT) != pl.col(MEMBER)))
    # a scored parent is a member of its own family
    parents = children.select(PARENT).unique()
    selves = links.join(parents, left_on=MEMBER, right_on=PARENT, how="inner").with_columns(
        pl.col(MEMBER).alias(PARENT)
    )
    members = (
        pl.concat([children, selves.select(children.columns)], how="vertical")
        .join(scores.select(MEMBER, pl.col("health_score").cast(pl.Float64)), on=MEMBER, how="inner")
        .with_columns(weight=pl.when(pl.col("weight") > 0).then(pl.col("weight")).otherwise(0.0))
    )
    total = pl.col("weight").sum().over(PARENT)
    members = members.with_columns(
        weight_basis=pl.when(total > 0).then(pl.lit(weight)).otherwise(pl.lit(f"{EQUAL} (no {weight} in the family)"))
        if weight != EQUAL
        else pl.lit(EQUAL),
        weight_share=pl.when(total > 0).then(pl.col("weight") / total).otherwise(1.0 / pl.len().over(PARENT)),
    )
    # apportioned like points: the parent is the "account", each member an "indicator"
    parts = apportion_points(
        members.rename({MEMBER: "member"}).select(
            pl.col(PARENT).alias("account_id"),
            pl.col("member").alias("indicator"),
            pl.col("weight_share").alias("composite_share"),
            pl.col("health_score").alias("indicator_score"),
            "health_score",
            "weight",
            "weight_share",
            "weight_basis",
        )
    ).rename({"account_id": PARENT, "indicator": MEMBER})
    rollups = (
        parts.group_by(PARENT)
        .agg(
            rollup_score=pl.col("points").sum(),
            members=pl.len().cast(pl.Int64),
            weight_basis=pl.col("weight_basis").first(),
            weight_total=pl.col("weight").sum(),
        )
        .with_columns(rollup_band=band_expression(model, pl.col("rollup_score").cast(pl.Float64)))
        .select(ROLLUP_COLUMNS)
        .sort(PARENT)
    )
    return rollups, parts.select(PART_COLUMNS).sort(PARENT, MEMBER)
