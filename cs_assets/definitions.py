"""The one place where the code location's Definitions are assembled."""

import dagster as dg

from checks.integrity_checks import build_integrity_check
from checks.score_checks import score_checks
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
    description="Reads every source, computes indicators, CO/CX and composite scores, segments, and publishes them for a snapshot date (or a range, in one run).",
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
    ],
    asset_checks=[*score_checks, build_integrity_check(DQ_CONFIG)],
    jobs=[health_score_job],
    resources=RESOURCES,
)
