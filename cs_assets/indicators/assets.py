"""The cleaned indicator table: one row per account as of the snapshot date."""

import dagster as dg
import polars as pl

from cs_assets.indicators.compute import compute_account_indicators
from cs_assets.metadata import markdown_table
from resources.landing import LandingZoneResource
from resources.model import SnapshotResource

OWNER = "team:customer-success-analytics"


@dg.asset(
    group_name="indicators",
    kinds={"polars"},
    owners=[OWNER],
    ins={
        "crm": dg.AssetIn("crm_accounts"),
        "usage": dg.AssetIn("usage_events"),
        "tickets": dg.AssetIn("support_tickets"),
        "surveys": dg.AssetIn("survey_responses"),
        "engagement": dg.AssetIn("engagement_events"),
    },
)
def account_indicators(
    context: dg.AssetExecutionContext,
    snapshot: SnapshotResource,
    landing: LandingZoneResource,
    crm: pl.LazyFrame,
    usage: pl.LazyFrame,
    tickets: pl.LazyFrame,
    surveys: pl.LazyFrame,
    engagement: pl.LazyFrame,
) -> pl.DataFrame:
    """Cleaned indicator table: one row per account with usage, support, survey and engagement indicators as of the snapshot."""
    as_of = snapshot.as_of_date(landing.landing_dir)
    frame = compute_account_indicators(crm, usage, tickets, surveys, engagement, as_of)
    active = frame.filter(pl.col("is_active"))
    context.add_output_metadata(
        {
            "snapshot_date": as_of.isoformat(),
            "accounts": frame.height,
            "active_accounts": active.height,
            "active_without_usage_data": active.filter(~pl.col("has_usage_data")).height,
            "preview": dg.MetadataValue.md(
                markdown_table(
                    active.select(
                        "account_id", "size_tier", "seat_penetration", "champion_days_inactive",
                        "jobs_run_30d", "job_error_rate_30d", "usage_trend_30d", "page_load_p75_ms",
                    )
                )
            ),
        }
    )
    return frame
