"""Segment assignment: the segment model that scores an account, then band from the score (with
that segment's cut points), lifecycle stage from the contract, triage from both."""

from typing import TYPE_CHECKING

import polars as pl

from cs_assets.scoring.model_config import DEFAULT_SEGMENT, SEGMENT_MODEL, HealthModel

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


def segment_band_expression(model: HealthModel, score: pl.Expr, segment: pl.Expr) -> pl.Expr:
    """The band under the cut points of the account's segment model (`segment`: its name)."""
    if not model.segments:
        return band_expression(model, score)
    chain: Then | ChainedThen | None = None
    for s in model.segments:
        cond, band = segment == s.name, band_expression(s.model, score)
        chain = pl.when(cond).then(band) if chain is None else chain.when(cond).then(band)
    assert chain is not None
    return chain.otherwise(band_expression(model, score))


def with_segment_model(indicators: pl.DataFrame, model: HealthModel) -> pl.DataFrame:
    """`indicators` with `segment_model`: the first segment whose `when` matches, else the default.

    A `when` column may be any column of the indicator table (CRM columns, tenure_days, ...) or
    `lifecycle_stage`, derived here from the contract as `account_segments` derives it."""
    if SEGMENT_MODEL in indicators.columns:
        return indicators  # already chosen (a stored snapshot scored again)
    if not model.segments:
        return indicators.with_columns(pl.lit(DEFAULT_SEGMENT).alias(SEGMENT_MODEL))
    frame = indicators
    derived = "lifecycle_stage" not in frame.columns and any(
        c == "lifecycle_stage" for s in model.segments for c, _ in s.when
    )
    if derived:
        frame = frame.with_columns(lifecycle_stage=lifecycle_expression(model))
    chain: Then | ChainedThen | None = None
    for i, s in enumerate(model.segments):
        tests = []
        for column, values in s.when:
            if column not in frame.columns:
                raise ValueError(
                    f"health model segments[{i}] ({s.name}): `when` column {column!r} is not a column of the "
                    f"indicator table (columns: {', '.join(sorted(c for c in frame.columns if c != 'snapshot_date'))})"
                )
            tests.append(pl.col(column).is_in(list(values)).fill_null(False))
        cond = pl.all_horizontal(tests)
        chain = pl.when(cond).then(pl.lit(s.name)) if chain is None else chain.when(cond).then(pl.lit(s.name))
    assert chain is not None
    frame = frame.with_columns(chain.otherwise(pl.lit(DEFAULT_SEGMENT)).alias(SEGMENT_MODEL))
    return frame.drop("lifecycle_stage") if derived else frame


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
    segment = pl.col(SEGMENT_MODEL) if SEGMENT_MODEL in frame.columns else pl.lit(DEFAULT_SEGMENT)
    return (
        frame.with_columns(
            band=segment_band_expression(model, pl.col("health_score").cast(pl.Float64), segment),
            lifecycle_stage=lifecycle_expression(model),
        )
        .with_columns(triage_priority=triage_expression(model))
        .select("account_id", "band", "lifecycle_stage", "size_tier", "triage_priority")
        .sort("account_id")
    )
