"""CO (customer outcome) and CX (customer experience) sub-scores.

A sub-score is the weighted mean of its indicators' scores over the indicators that have data
(or that score missing data by policy); excluded indicators hand their weight to the others.
An account with nothing to measure in a sub-score has no value for it (null), and that
sub-score's weight goes to the other one for that account: "no data" never counts as zero.
"""

import polars as pl

from cs_assets.scoring.model_config import SUBSCORES, HealthModel

ACCOUNT = "account_id"


def with_effective_weights(scores: pl.DataFrame, model: HealthModel) -> pl.DataFrame:
    """Add each indicator's share of its sub-score and of the composite score.

    `subscore_share` sums to 1 within an account's sub-score; `composite_share` sums to 1 over
    the account, so `composite_share * indicator_score` are points that add up to the score.
    """
    counted = pl.col("indicator_score").is_not_null()
    weight_in_use = pl.when(counted).then(pl.col("weight")).otherwise(0.0)
    frame = scores.with_columns(
        _sub_total=weight_in_use.sum().over(ACCOUNT, "subscore"),
        _sub_weight=pl.col("subscore").replace_strict(model.subscore_weights, return_dtype=pl.Float64),
    )
    per_sub = frame.group_by(ACCOUNT, "subscore").agg(
        _has=(pl.col("_sub_total").first() > 0), _w=pl.col("_sub_weight").first()
    )
    per_account = per_sub.group_by(ACCOUNT).agg(
        _norm=pl.col("_w").filter(pl.col("_has")).sum(),
        _complete=(pl.col("_has") | (pl.col("_w") == 0)).all(),
    )
    # only an account missing a whole sub-score is re-weighted: every other account keeps the
    # model's sub-score weights exactly
    # ...and an account whose only measured sub-scores weigh 0 has nothing that counts: no share
    sub_weight = (
        pl.when(pl.col("_complete"))
        .then(pl.col("_sub_weight"))
        .when(pl.col("_norm") > 0)
        .then(pl.col("_sub_weight") / pl.col("_norm"))
        .otherwise(0.0)
    )
    return (
        frame.join(per_account, on=ACCOUNT, how="left", maintain_order="left")
        .with_columns(
            subscore_share=pl.when(counted).then(pl.col("weight") / pl.col("_sub_total")).otherwise(0.0).fill_nan(0.0),
        )
        .with_columns(
            composite_share=pl.col("subscore_share") * pl.when(pl.col("_sub_total") > 0).then(sub_weight).otherwise(0.0)
        )
        .drop("_sub_total", "_sub_weight", "_norm", "_complete")
    )


def compute_subscores(weighted: pl.DataFrame) -> pl.DataFrame:
    """One row per account: co_score and cx_score (0-100, unrounded; null without data)."""
    points = pl.col("subscore_share") * pl.col("indicator_score").fill_null(0.0)
    measured = pl.col("indicator_score").is_not_null() & (pl.col("weight") > 0)
    return (
        weighted.group_by(ACCOUNT, "subscore")
        .agg(value=pl.when(measured.any()).then(points.sum()))
        .pivot(on="subscore", index=ACCOUNT, values="value", on_columns=list(SUBSCORES))
        .rename({s: f"{s}_score" for s in SUBSCORES})
        .sort(ACCOUNT)
    )
