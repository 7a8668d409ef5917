"""The usage rollup and the cleaned indicator table (one row per account and snapshot date)."""

import dagster as dg
import polars as pl

from cs_assets.indicators.compute import build_usage_rollup, compute_account_indicators
from cs_assets.metadata import markdown_table
from cs_assets.partitions import SINGLE_RUN_BACKFILL, SNAPSHOT_PARTITIONS, snapshot_dates

OWNER = "team:customer-success-analytics"
GROUP = "indicators"


@dg.asset(
    group_name=GROUP,
    kinds={"polars"},
    owners=[OWNER],
    ins={"usage": dg.AssetIn("usage_events")},
    automation_condition=dg.AutomationCondition.eager(),
)
def usage_daily_rollup(usage: pl.LazyFrame) -> pl.LazyFrame:
    """Usage per account, activity day and arrival day: the table every snapshot's usage windows are cut from."""
    return build_usage_rollup(usage)


@dg.asset(
    group_name=GROUP,
    kinds={"polars"},
    owners=[OWNER],
    partitions_def=SNAPSHOT_PARTITIONS,
    backfill_policy=SINGLE_RUN_BACKFILL,
    automation_condition=dg.AutomationCondition.eager(),
    ins={
        "crm": dg.AssetIn("crm_accounts"),
        "usage_rollup": dg.AssetIn("usage_daily_rollup"),
        "tickets": dg.AssetIn("support_tickets"),
        "surveys": dg.AssetIn("survey_responses"),
        "engagement": dg.AssetIn("engagement_events"),
    },
)
def account_indicators(
    context: dg.AssetExecutionContext,
    crm: pl.LazyFrame,
    usage_rollup: pl.LazyFrame,
    tickets: pl.LazyFrame,
    surveys: pl.LazyFrame,
    engagement: pl.LazyFrame,
) -> pl.DataFrame:
    """Cleaned indicator table: one row per account with usage, support, survey and engagement indicators as of the snapshot."""
    dates = snapshot_dates(context)
    frame = compute_account_indicators(crm, usage_rollup, tickets, surveys, engagement, dates)
    latest = frame.filter(pl.col("snapshot_date") == dates[-1])
    active = latest.filter(pl.col("is_active"))
    context.add_output_metadata(
        {
            "snapshots": len(dates),
            "latest_snapshot": dates[-1].isoformat(),
            "accounts": latest.height,
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
