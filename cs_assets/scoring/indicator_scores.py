"""Indicator scoring: each raw indicator value becomes a 0-100 score by the model's rule.

Pure polars. The result is long (one row per account and indicator) because that is the shape
people read when they ask "why is this account red": value, score, weight, points.
"""

from typing import TYPE_CHECKING

import polars as pl

from cs_assets.scoring.model_config import HealthModel, IndicatorRule

if TYPE_CHECKING:
    from polars.expr.whenthen import ChainedThen, Then

LONG_COLUMNS = [
    "account_id",
    "indicator",
    "subscore",
    "raw_value",
    "is_missing",
    "indicator_score",
    "weight",
]


def score_expression(rule: IndicatorRule, value: pl.Expr) -> pl.Expr:
    """0-100 score of `value` under `rule`, before the missing-data policy."""
    if rule.function == "linear":
        worst, best = rule.bounds
        # the same formula serves both directions, because worst > best when lower is better
        return ((value - worst) / (best - worst)).clip(0.0, 1.0) * 100.0
    if rule.function == "piecewise_linear":
        # straight lines between the points, flat beyond the first and the last
        xs, ys = rule.bounds, rule.scores
        chain: Then | ChainedThen = pl.when(value <= xs[0]).then(pl.lit(ys[0]))
        for (x0, y0), (x1, y1) in zip(zip(xs, ys), zip(xs[1:], ys[1:])):
            chain = chain.when(value <= x1).then(pl.lit(y0) + (value - x0) * ((y1 - y0) / (x1 - x0)))
        return chain.otherwise(pl.lit(ys[-1]))
    chain = pl.when(value < rule.bounds[0]).then(pl.lit(rule.scores[0]))
    for cut, score in zip(rule.bounds[1:], rule.scores[1:-1]):
        chain = chain.when(value < cut).then(pl.lit(score))
    return chain.otherwise(pl.lit(rule.scores[-1]))


def apply_missing_policy(rule: IndicatorRule, value: pl.Expr, score: pl.Expr) -> pl.Expr:
    if rule.missing_policy == "score":
        return pl.when(value.is_null()).then(pl.lit(rule.missing_score)).otherwise(score)
    return pl.when(value.is_null()).then(pl.lit(None, dtype=pl.Float64)).otherwise(score)


def score_indicators(indicators: pl.DataFrame, model: HealthModel) -> pl.DataFrame:
    """Long table of indicator scores for every row of `indicators` (one per account)."""
    parts = []
    for rule in model.indicators:
        if rule.name not in indicators.columns:
            raise KeyError(f"indicator `{rule.name}` is in the model but not in the indicator table")
        value = pl.col(rule.name).cast(pl.Float64)
        parts.append(
            indicators.select(
                "account_id",
                indicator=pl.lit(rule.name),
                subscore=pl.lit(rule.subscore),
                raw_value=value,
                is_missing=value.is_null(),
                indicator_score=apply_missing_policy(rule, value, score_expression(rule, value)),
                weight=pl.lit(rule.weight, dtype=pl.Float64),
            )
        )
    return pl.concat(parts).sort("account_id", "indicator").select(LONG_COLUMNS)
