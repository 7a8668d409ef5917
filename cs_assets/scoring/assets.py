"""Scoring assets: indicator scores and points, CO/CX sub-scores, composite score, segments.

Thin wrappers: the maths lives in the sibling modules as plain functions over polars frames,
applied to each snapshot date of the run in turn (`per_snapshot`).
"""

from collections.abc import Callable
from typing import TypedDict, cast

import dagster as dg
import polars as pl

from cs_assets.metadata import table_metadata
from cs_assets.partitions import SINGLE_RUN_BACKFILL
from cs_assets.publish.lineage import SCORE_COLUMN_LINEAGE
from cs_assets.scoring.charts import figure_markdown, score_histogram
from cs_assets.scoring.composite import apportion_points, compute_composite
from cs_assets.scoring.indicator_scores import score_indicators
from cs_assets.scoring.model_config import HealthModel
from cs_assets.scoring.segments import SEGMENT_MODEL, assign_segments, with_segment_model
from cs_assets.scoring.subscores import compute_subscores, with_effective_weights
from resources.model import HealthModelResource
from resources.staging import SnapshotParts, SnapshotSlices

OWNER = "team:customer-success-analytics"
GROUP = "scoring"
SNAPSHOT = "snapshot_date"


class _AssetArgs(TypedDict):
    group_name: str
    kinds: set[str]
    owners: list[str]
    partitions_def: dg.PartitionsDefinition
    backfill_policy: dg.BackfillPolicy
    automation_condition: dg.AutomationCondition


def per_snapshot(compute: Callable[..., pl.DataFrame], *frames: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """Apply `compute` to each snapshot date's slice of the frames; stack the results by date.

    The scoring maths works on one snapshot (it groups by account); the frames of a backfill
    hold many, and large staged inputs are read one date at a time (`SnapshotSlices`). Each
    result gets its `snapshot_date` back as the first column.
    """
    slices = [SnapshotSlices(f) for f in frames]
    dates = sorted(set().union(*(s.dates for s in slices)))
    results = [
        compute(*(s.rows(date) for s in slices)).select(pl.lit(date).alias(SNAPSHOT), pl.all().exclude(SNAPSHOT))
        for date in dates
    ]
    if not results:
        result = compute(*(s.empty for s in slices))
        return result.select(pl.lit(None, dtype=pl.Date).alias(SNAPSHOT), pl.all().exclude(SNAPSHOT)).clear()
    return pl.concat(results, how="vertical")


def _preview(frame: pl.DataFrame, rows: int = 10) -> dg.MetadataValue:
    return table_metadata(frame, rows)


def contributions_for(indicators: pl.DataFrame, model: HealthModel) -> pl.DataFrame:
    """Per active account and indicator: score, effective weight and points, each account under
    its segment's model (`segment_model`; a `segment_model` column in `indicators` is kept)."""
    active = with_segment_model(indicators.filter(pl.col("is_active")), model)
    unknown = sorted(set(active[SEGMENT_MODEL].unique().to_list()) - set(model.segment_names))
    if unknown:
        raise ValueError(
            f"model {model.version} has no segment {', '.join(map(repr, unknown))} "
            f"(segments: {', '.join(model.segment_names)})"
        )
    parts: list[pl.DataFrame] = []
    for name, segment_model in model.segment_models():
        rows = active.filter(pl.col(SEGMENT_MODEL) == name)
        if rows.is_empty() and parts:
            continue
        weighted = with_effective_weights(score_indicators(rows, segment_model), segment_model)
        parts.append(apportion_points(weighted).with_columns(pl.lit(name).alias(SEGMENT_MODEL)))
    return (
        pl.concat(parts, how="vertical")
        .sort("account_id", "indicator")
        .with_columns(model_version=pl.lit(model.version))
    )


def build_scoring_assets(partitions: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    """The four scoring steps, split by `partitions` (the snapshot dates the landing data serves)."""
    scoring: _AssetArgs = dict(
        group_name=GROUP,
        kinds={"polars"},
        owners=[OWNER],
        partitions_def=partitions,
        backfill_policy=SINGLE_RUN_BACKFILL,
        # and never past a failed blocking check upstream (cs_assets.gate.with_upstream_gate)
        automation_condition=dg.AutomationCondition.eager(),
    )

    @dg.asset(**scoring)
    def indicator_contributions(
        context: dg.AssetExecutionContext, health_model: HealthModelResource, account_indicators: pl.LazyFrame
    ) -> SnapshotParts:
        """Per account and indicator: raw value, 0-100 indicator score, weight and the points it adds to the health score."""
        model = health_model.for_run(context)
        context.add_output_metadata({"model_version": model.version, "indicators": len(model.indicators)})
        # accounts x indicators x dates rows: a long backfill's do not fit in memory at once, so
        # each date is scored as it is stored
        indicators = SnapshotSlices(account_indicators)
        return SnapshotParts(
            compute=lambda date: contributions_for(indicators.rows(date), model),
            describe=lambda stored: {"missing_values": int(stored.select(pl.col("is_missing").sum()).collect().item())},
        )

    @dg.asset(**scoring)
    def account_subscores(indicator_contributions: pl.LazyFrame) -> pl.DataFrame:
        """CO (customer outcome) and CX (customer experience) sub-scores, 0-100, per active account."""
        return per_snapshot(compute_subscores, indicator_contributions)

    @dg.asset(**scoring)
    def account_health_scores(
        context: dg.AssetExecutionContext,
        health_model: HealthModelResource,
        indicator_contributions: pl.LazyFrame,
        account_subscores: pl.DataFrame,
    ) -> pl.DataFrame:
        """Composite health score (0-100) per active account, with the three indicators that pull it down most."""
        model = health_model.for_run(context)
        scores = per_snapshot(compute_composite, indicator_contributions, account_subscores)
        latest = scores.filter(pl.col(SNAPSHOT) == scores[SNAPSHOT].max()) if scores.height else scores
        values = latest["health_score"].cast(pl.Float64)
        context.add_output_metadata(
            {
                "dagster/column_lineage": SCORE_COLUMN_LINEAGE,
                "snapshots": scores[SNAPSHOT].n_unique(),
                "accounts": latest.height,
                # a Float64 column with rows: its mean and median are floats
                "mean_score": round(float(cast(float, values.mean())), 2) if latest.height else 0.0,
                "median_score": round(float(cast(float, values.median())), 2) if latest.height else 0.0,
                "score_distribution": dg.MetadataValue.md(
                    figure_markdown(
                        score_histogram(
                            values,
                            [(b.name, b.min_score) for b in model.bands],
                            f"Health scores (model {model.version})",
                        ),
                        "score distribution",
                    )
                ),
            }
        )
        return scores

    @dg.asset(**scoring)
    def account_segments(
        context: dg.AssetExecutionContext,
        health_model: HealthModelResource,
        account_health_scores: pl.DataFrame,
        account_indicators: pl.LazyFrame,
    ) -> pl.DataFrame:
        """Band (red/yellow/green), lifecycle stage, size tier and triage priority per active account."""
        model = health_model.for_run(context)
        segments = per_snapshot(lambda s, i: assign_segments(s, i, model), account_health_scores, account_indicators)
        latest = segments.filter(pl.col(SNAPSHOT) == segments[SNAPSHOT].max()) if segments.height else segments
        band_counts = latest.group_by("band").len().sort("band")
        newest = segments[SNAPSHOT].max() if segments.height else None
        latest_scores = account_health_scores.filter(pl.col(SNAPSHOT) == newest) if newest else account_health_scores
        context.add_output_metadata(
            {
                **{f"band_{b}": n for b, n in band_counts.iter_rows()},
                # which segment model scored how many accounts (health_model.yaml `segments`)
                "segment_models": _preview(
                    latest_scores.group_by(SEGMENT_MODEL).len().sort(SEGMENT_MODEL)
                    if SEGMENT_MODEL in latest_scores.columns
                    else pl.DataFrame(
                        {SEGMENT_MODEL: [], "len": []}, schema={SEGMENT_MODEL: pl.String, "len": pl.UInt32}
                    )
                ),
                "triage_counts": _preview(latest.group_by("triage_priority").len().sort("triage_priority")),
            }
        )
        return segments

    return [indicator_contributions, account_subscores, account_health_scores, account_segments]
