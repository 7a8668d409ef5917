"""Scoring assets: indicator scores and points, CO/CX sub-scores, composite score, segments.

Thin wrappers: the maths lives in the sibling modules as plain functions over polars frames.
"""

import dagster as dg
import polars as pl

from cs_assets.metadata import markdown_table
from cs_assets.scoring.charts import score_histogram_markdown
from cs_assets.scoring.composite import apportion_points, compute_composite
from cs_assets.scoring.indicator_scores import score_indicators
from cs_assets.scoring.segments import assign_segments
from cs_assets.scoring.subscores import compute_subscores, with_effective_weights
from resources.model import HealthModelResource

OWNER = "team:customer-success-analytics"
GROUP = "scoring"


def _preview(frame: pl.DataFrame, rows: int = 10) -> dg.MetadataValue:
    return dg.MetadataValue.md(markdown_table(frame, rows))


@dg.asset(group_name=GROUP, kinds={"polars"}, owners=[OWNER])
def indicator_contributions(
    context: dg.AssetExecutionContext, health_model: HealthModelResource, account_indicators: pl.DataFrame
) -> pl.DataFrame:
    """Per account and indicator: raw value, 0-100 indicator score, weight and the points it adds to the health score."""
    model = health_model.load()
    active = account_indicators.filter(pl.col("is_active"))
    weighted = with_effective_weights(score_indicators(active, model), model)
    contributions = apportion_points(weighted).with_columns(model_version=pl.lit(model.version))
    context.add_output_metadata(
        {
            "model_version": model.version,
            "indicators": len(model.indicators),
            "missing_values": int(contributions["is_missing"].sum()),
        }
    )
    return contributions


@dg.asset(group_name=GROUP, kinds={"polars"}, owners=[OWNER])
def account_subscores(indicator_contributions: pl.DataFrame) -> pl.DataFrame:
    """CO (customer outcome) and CX (customer experience) sub-scores, 0-100, per active account."""
    return compute_subscores(indicator_contributions)


@dg.asset(group_name=GROUP, kinds={"polars"}, owners=[OWNER])
def account_health_scores(
    context: dg.AssetExecutionContext,
    health_model: HealthModelResource,
    indicator_contributions: pl.DataFrame,
    account_subscores: pl.DataFrame,
) -> pl.DataFrame:
    """Composite health score (0-100) per active account, with the three indicators that pull it down most."""
    model = health_model.load()
    scores = compute_composite(indicator_contributions, account_subscores)
    values = scores["health_score"].cast(pl.Float64)
    context.add_output_metadata(
        {
            "accounts": scores.height,
            "mean_score": round(float(values.mean()), 2) if scores.height else 0.0,
            "median_score": round(float(values.median()), 2) if scores.height else 0.0,
            "score_distribution": dg.MetadataValue.md(
                score_histogram_markdown(
                    values, [(b.name, b.min_score) for b in model.bands], f"Health scores (model {model.version})"
                )
            ),
        }
    )
    return scores


@dg.asset(group_name=GROUP, kinds={"polars"}, owners=[OWNER])
def account_segments(
    context: dg.AssetExecutionContext,
    health_model: HealthModelResource,
    account_health_scores: pl.DataFrame,
    account_indicators: pl.DataFrame,
) -> pl.DataFrame:
    """Band (red/yellow/green), lifecycle stage, size tier and triage priority per active account."""
    segments = assign_segments(account_health_scores, account_indicators, health_model.load())
    band_counts = segments.group_by("band").len().sort("band")
    context.add_output_metadata(
        {
            **{f"band_{b}": n for b, n in band_counts.iter_rows()},
            "triage_counts": _preview(segments.group_by("triage_priority").len().sort("triage_priority")),
        }
    )
    return segments
