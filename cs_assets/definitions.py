"""The one place where the code location's Definitions are assembled."""

import dagster as dg

from checks.gx_checks import gx_checks
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
from cs_assets.validation.assets import GROUP as VALIDATION_GROUP
from cs_assets.validation.assets import validation_assets
from resources import RESOURCES

HEALTH_SCORE_JOB = "health_score_job"

health_score_job = dg.define_asset_job(
    HEALTH_SCORE_JOB,
    # validation reads the whole history and runs on demand (validation_job), not every day
    selection=dg.AssetSelection.all() - dg.AssetSelection.groups(VALIDATION_GROUP),
    partitions_def=SNAPSHOT_PARTITIONS,
    description="Reads every source, computes indicators, CO/CX and composite scores, segments, publishes them for a snapshot date (or a range, in one run), then derives and sends actions.",
)

validation_job = dg.define_asset_job(
    "validation_job",
    selection=dg.AssetSelection.groups(VALIDATION_GROUP),
    description="Validates the score against churn and renewals, fits a challenger model and estimates the CS contribution, from the published history.",
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
        *validation_assets,
    ],
    asset_checks=[*score_checks, build_integrity_check(DQ_CONFIG), *gx_checks],
    jobs=[health_score_job, validation_job],
    schedules=[build_daily_schedule(health_score_job)],
    sensors=[health_automation, landing_files_sensor, notify_on_run_failure],
    resources=RESOURCES,
)
