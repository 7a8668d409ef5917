"""Publishing: the scores people and tools read, in the DuckDB warehouse."""

import datetime as dt

import dagster as dg
import polars as pl

from cs_assets.metadata import markdown_table
from checks.dq_config import BAND_SHIFT, active_dq_config
from checks.score_checks import band_shift_result
from cs_assets.publish.tables import (
    PublishError,
    build_contribution_rows,
    build_health_rows,
    previous_snapshot,
    publish_snapshot,
)
from resources.landing import LandingZoneResource
from resources.model import SnapshotResource
from resources.warehouse import WarehouseResource

OWNER = "team:customer-success-analytics"
ACCOUNT_HEALTH = dg.AssetKey(["published", "account_health"])
ACCOUNT_HEALTH_CONTRIBUTIONS = dg.AssetKey(["published", "account_health_contributions"])

DQ_CONFIG = active_dq_config()
BAND_SHIFT_POLICY = DQ_CONFIG.checks[BAND_SHIFT]

# A later automatic tick must not publish what a run's blocking checks refused: "eager" alone
# would request the publish again as soon as its inputs were updated.
PUBLISH_CONDITION = dg.AutomationCondition.eager() & dg.AutomationCondition.all_deps_blocking_checks_passed()


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            ACCOUNT_HEALTH,
            description="Published customer health: one row per active account per snapshot, with band, stage, triage and top drags.",
            group_name="published",
            kinds={"duckdb"},
            owners=[OWNER],
            deps=["account_health_scores", "account_segments", "account_indicators"],
            automation_condition=PUBLISH_CONDITION,
        ),
        dg.AssetSpec(
            ACCOUNT_HEALTH_CONTRIBUTIONS,
            description="Published per-indicator contributions: raw value, indicator score, weight and points that add up to each health score.",
            group_name="published",
            kinds={"duckdb"},
            owners=[OWNER],
            deps=["indicator_contributions"],
            automation_condition=PUBLISH_CONDITION,
        ),
    ],
    check_specs=[
        dg.AssetCheckSpec(
            BAND_SHIFT,
            asset=ACCOUNT_HEALTH,
            description="the share of accounts changing band since the last published snapshot is within the limit",
        )
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
        previous_date, previous = previous_snapshot(con, snapshot_date)
        shift = band_shift_result(
            previous, health, previous_date, DQ_CONFIG.max_band_change_share, BAND_SHIFT_POLICY.severity
        )
        blocks = BAND_SHIFT_POLICY.blocking and BAND_SHIFT_POLICY.severity == dg.AssetCheckSeverity.ERROR
        if blocks and not shift.passed:
            # evaluated before writing: a blocking shift must leave the published tables untouched
            raise PublishError(f"not published: {shift.description}")
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
    yield shift
