"""CO (customer outcome) and CX (customer experience) sub-scores.

A sub-score is the weighted mean of its indicators' scores over the indicators that have data
(or that score missing data by policy); excluded indicators hand their weight to the others.
"""

import polars as pl

from cs_assets.scoring.model_config import SUBSCORES, HealthModel


def with_effective_weights(scores: pl.DataFrame, model: HealthModel) -> pl.DataFrame:
    """Add each indicator's share of its sub-score and of the composite score.

    `subscore_share` sums to 1 within an account's sub-score; `composite_share` sums to 1 over
    the account, so `composite_share * indicator_score` are points that add up to the score.
    """
    counted = pl.col("indicator_score").is_not_null()
    weight_in_use = pl.when(counted).then(pl.col("weight")).otherwise(0.0)
    sub_weight = pl.col("subscore").replace_strict(model.subscore_weights, return_dtype=pl.Float64)
    return scores.with_columns(
        subscore_share=pl.when(counted)
        .then(pl.col("weight") / weight_in_use.sum().over("account_id", "subscore"))
        .otherwise(0.0)
        .fill_nan(0.0),
    ).with_columns(composite_share=pl.col("subscore_share") * sub_weight)


def compute_subscores(weighted: pl.DataFrame) -> pl.DataFrame:
    """One row per account: co_score and cx_score (0-100, unrounded)."""
    points = pl.col("subscore_share") * pl.col("indicator_score").fill_null(0.0)
    return (
        weighted.group_by("account_id", "subscore")
        .agg(value=points.sum())
        .pivot(on="subscore", index="account_id", values="value", on_columns=list(SUBSCORES))
        .rename({s: f"{s}_score" for s in SUBSCORES})
        .sort("account_id")
    )
