"""The one place where the code location's Definitions are assembled, from one deployment.

`build_definitions` takes a deployment (its sources, indicator catalogue and data-quality
config); `defs`, which `dagster dev` / `dg` load lazily, builds it for the deployment
`$CS_HEALTH_CONFIG` names (default: the repository's `config/`, the demo product).
"""

import dagster as dg

from checks.gx_checks import build_gx_checks
from checks.integrity_checks import build_integrity_check
from checks.score_checks import score_checks
from cs_assets.actions.assets import account_actions, action_notifications
from cs_assets.automation import build_daily_schedule, build_landing_sensor, health_automation, notify_on_run_failure
from cs_assets.code_version import with_code_versions
from cs_assets.deployment import Deployment, current_deployment
from cs_assets.indicators.assets import build_indicator_asset
from cs_assets.partitions import SNAPSHOT_PARTITIONS
from cs_assets.publish.assets import build_publish_asset
from cs_assets.scoring.assets import (
    account_health_scores,
    account_segments,
    account_subscores,
    indicator_contributions,
)
from cs_assets.sources.assets import build_source_assets
from cs_assets.validation.assets import GROUP as VALIDATION_GROUP
from cs_assets.validation.assets import build_validation_assets

HEALTH_SCORE_JOB = "health_score_job"
VALIDATION_JOB = "validation_job"

# One process runs every step of a run, in dependency order: the steps are short next to what a
# step process costs to start (importing the code location, GX), DuckDB admits one writer anyway,
# and polars uses every core inside a step. The graph, its steps and their checks show as ever.
EXECUTOR = dg.in_process_executor


def build_definitions(deployment: Deployment, resources: dict | None = None) -> dg.Definitions:
    """Every asset, check, job, schedule and sensor for `deployment`; `resources` default to the
    module-level ones of `resources` (built from $CS_HEALTH_CONFIG and $CS_HEALTH_HOME)."""
    if resources is None:
        from resources import RESOURCES

        resources = RESOURCES
    health_score_job = dg.define_asset_job(
        HEALTH_SCORE_JOB,
        # validation reads the whole history and runs on demand (validation_job), not every day
        selection=dg.AssetSelection.all() - dg.AssetSelection.groups(VALIDATION_GROUP),
        partitions_def=SNAPSHOT_PARTITIONS,
        description="Reads every source, computes indicators, CO/CX and composite scores, segments, publishes them for a snapshot date (or a range, in one run), then derives and sends actions.",
    )
    validation_job = dg.define_asset_job(
        VALIDATION_JOB,
        selection=dg.AssetSelection.groups(VALIDATION_GROUP),
        description="Validates the score against churn and renewals, calibrates a candidate model and estimates the CS contribution, from the published history.",
    )
    integrity = build_integrity_check(deployment)
    assets = [
        *build_source_assets(deployment),
        build_indicator_asset(deployment),
        indicator_contributions,
        account_subscores,
        account_health_scores,
        account_segments,
        build_publish_asset(deployment),
        account_actions,
        action_notifications,
        *build_validation_assets(deployment),
    ]
    return dg.Definitions(
        # each asset's page links to the file and line that define it
        assets=dg.with_source_code_references(with_code_versions(assets, deployment.paths)),
        asset_checks=[*score_checks, *([integrity] if integrity is not None else []), *build_gx_checks(deployment)],
        jobs=[health_score_job, validation_job],
        schedules=[build_daily_schedule(health_score_job)],
        sensors=[health_automation, build_landing_sensor(deployment), notify_on_run_failure],
        resources=resources,
        executor=EXECUTOR,
    )


@dg.definitions
def defs() -> dg.Definitions:
    """What `dagster dev`, `dg` and `workspace.yaml` load: the deployment of $CS_HEALTH_CONFIG."""
    return build_definitions(current_deployment())
