"""The one place where the code location's Definitions are assembled."""

import dagster as dg

from checks.integrity_checks import build_integrity_check
from checks.score_checks import score_checks
from cs_assets.actions.assets import account_actions, action_notifications
from cs_assets.automation import build_daily_schedule, health_automation, landing_files_sensor, notify_on_run_failure
from cs_assets.indicators.assets import account_indicators, usage_daily_rollup
from cs_assets.publish.assets import published_account_health
from cs_assets.scoring.assets import (
    account_health_scores,
    account_segments,
    account_subscores,
    indicator_contributions,
)
from cs_assets.partitions import SNAPSHOT_PARTITIONS
from cs_assets.sources.assets import DQ_CONFIG, source_assets
from resources import RESOURCES

HEALTH_SCORE_JOB = "health_score_job"

health_score_job = dg.define_asset_job(
    HEALTH_SCORE_JOB,
    selection=dg.AssetSelection.all(),
    partitions_def=SNAPSHOT_PARTITIONS,
    description="Reads every source, computes indicators, CO/CX and composite scores, segments, publishes them for a snapshot date (or a range, in one run), then derives and sends actions.",
)

defs = dg.Definitions(
    assets=[
        *source_assets,
        usage_daily_rollup,
        account_indicators,
        indicator_contributions,
        account_subscores,
        account_health_scores,
        account_segments,
        published_account_health,
        account_actions,
        action_notifications,
    ],
    asset_checks=[*score_checks, build_integrity_check(DQ_CONFIG)],
    jobs=[health_score_job],
    schedules=[build_daily_schedule(health_score_job)],
    sensors=[health_automation, landing_files_sensor, notify_on_run_failure],
    resources=RESOURCES,
)
