"""Segment assignment: band from the score, lifecycle stage from the contract, triage from both."""

from typing import TYPE_CHECKING

import polars as pl

from cs_assets.scoring.model_config import HealthModel

if TYPE_CHECKING:
    from polars.expr.whenthen import ChainedThen, Then


def band_expression(model: HealthModel, score: pl.Expr) -> pl.Expr:
    """Highest band whose cut point the score reaches."""
    chain: Then | ChainedThen | None = None
    for band in sorted(model.bands, key=lambda b: b.min_score, reverse=True):
        cond = score >= band.min_score
        chain = pl.when(cond).then(pl.lit(band.name)) if chain is None else chain.when(cond).then(pl.lit(band.name))
    if chain is None:
        raise ValueError("the health model has no bands")
    return chain.otherwise(pl.lit(model.bands[0].name))


def lifecycle_expression(model: HealthModel) -> pl.Expr:
    """churned > renewal_window > onboarding > adoption.

    The renewal window wins over onboarding because a renewal at risk is the more urgent call.
    """
    return (
        pl.when(~pl.col("is_active"))
        .then(pl.lit("churned"))
        .when(pl.col("days_to_renewal").is_between(0, model.renewal_window_days))
        .then(pl.lit("renewal_window"))
        .when(pl.col("tenure_days") < model.onboarding_days)
        .then(pl.lit("onboarding"))
        .otherwise(pl.lit("adoption"))
    )


def triage_expression(model: HealthModel) -> pl.Expr:
    mapping = {f"{stage}|{band}": prio for stage, row in model.triage.items() for band, prio in row.items()}
    key = pl.concat_str(pl.col("lifecycle_stage"), pl.lit("|"), pl.col("band"))
    return key.replace_strict(mapping, default=None, return_dtype=pl.String)


def assign_segments(scores: pl.DataFrame, indicators: pl.DataFrame, model: HealthModel) -> pl.DataFrame:
    """One row per scored account: band, lifecycle_stage, size_tier, triage_priority."""
    frame = scores.join(
        indicators.select("account_id", "is_active", "tenure_days", "days_to_renewal", "size_tier"),
        on="account_id",
        how="left",
    )
    return (
        frame.with_columns(
            band=band_expression(model, pl.col("health_score").cast(pl.Float64)),
            lifecycle_stage=lifecycle_expression(model),
        )
        .with_columns(triage_priority=triage_expression(model))
        .select("account_id", "band", "lifecycle_stage", "size_tier", "triage_priority")
        .sort("account_id")
    )
