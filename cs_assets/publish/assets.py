"""Publishing: the scores people and tools read, in the DuckDB warehouse."""

import datetime as dt

import dagster as dg
import polars as pl

from cs_assets.metadata import markdown_table
from cs_assets.publish.tables import (
    build_contribution_rows,
    build_health_rows,
    publish_snapshot,
)
from resources.landing import LandingZoneResource
from resources.model import SnapshotResource
from resources.warehouse import WarehouseResource

OWNER = "team:customer-success-analytics"
ACCOUNT_HEALTH = dg.AssetKey(["published", "account_health"])
ACCOUNT_HEALTH_CONTRIBUTIONS = dg.AssetKey(["published", "account_health_contributions"])


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            ACCOUNT_HEALTH,
            description="Published customer health: one row per active account per snapshot, with band, stage, triage and top drags.",
            group_name="published",
            kinds={"duckdb"},
            owners=[OWNER],
            deps=["account_health_scores", "account_segments", "account_indicators"],
        ),
        dg.AssetSpec(
            ACCOUNT_HEALTH_CONTRIBUTIONS,
            description="Published per-indicator contributions: raw value, indicator score, weight and points that add up to each health score.",
            group_name="published",
            kinds={"duckdb"},
            owners=[OWNER],
            deps=["indicator_contributions"],
        ),
    ],
    ins={
        "scores": dg.AssetIn("account_health_scores"),
        "segments": dg.AssetIn("account_segments"),
        "indicators": dg.AssetIn("account_indicators"),
        "contributions": dg.AssetIn("indicator_contributions"),
    },
)
def published_account_health(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    snapshot: SnapshotResource,
    landing: LandingZoneResource,
    scores: pl.DataFrame,
    segments: pl.DataFrame,
    indicators: pl.DataFrame,
    contributions: pl.DataFrame,
):
    """Writes both published tables for the snapshot in one DuckDB transaction."""
    snapshot_date = snapshot.as_of_date(landing.landing_dir)
    model_version = contributions["model_version"][0] if contributions.height else "none"
    # when the rows were written: bookkeeping, never an input to a score
    computed_at = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    health = build_health_rows(scores, segments, indicators, snapshot_date, model_version, computed_at)
    points = build_contribution_rows(contributions, snapshot_date, computed_at)
    with warehouse.connect() as con:
        publish_snapshot(con, snapshot_date, health, points)
    bands = health.group_by("band").len().sort("band")
    yield dg.MaterializeResult(
        asset_key=ACCOUNT_HEALTH,
        metadata={
            "dagster/row_count": health.height,
            "snapshot_date": snapshot_date.isoformat(),
            "model_version": model_version,
            **{f"band_{b}": n for b, n in bands.iter_rows()},
            "preview": dg.MetadataValue.md(
                markdown_table(
                    health.sort("health_score").select(
                        "account_id", "health_score", "band", "lifecycle_stage", "triage_priority", "drag_1_indicator"
                    )
                )
            ),
        },
    )
    yield dg.MaterializeResult(
        asset_key=ACCOUNT_HEALTH_CONTRIBUTIONS,
        metadata={"dagster/row_count": points.height, "snapshot_date": snapshot_date.isoformat()},
    )
