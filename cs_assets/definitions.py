"""The one place where the code location's Definitions are assembled, from one deployment.

`build_definitions` takes a deployment (its sources, indicator catalogue and data-quality
config); `defs`, which `dagster dev` / `dg` load lazily, builds it for the deployment
`$CS_HEALTH_CONFIG` names (default: the repository's `config/`, the demo product).
"""

import os
from pathlib import Path

import dagster as dg

from checks.gx_checks import build_gx_checks
from checks.integrity_checks import build_integrity_checks
from checks.score_checks import score_checks
from cs_assets import settings
from cs_assets.actions.assets import account_actions, account_health_stages, action_notifications
from cs_assets.automation import build_daily_schedule, build_landing_sensor, health_automation, notify_on_run_failure
from cs_assets.code_version import with_code_versions
from cs_assets.deployment import FILE_ENVS, Deployment, current_deployment
from cs_assets.gate import with_upstream_gate
from cs_assets.indicators.assets import build_indicator_asset
from cs_assets.partitions import build_snapshot_partitions
from cs_assets.publish.assets import build_publish_asset
from cs_assets.report.assets import health_report
from cs_assets.scoring.assets import build_scoring_assets
from cs_assets.sources.assets import build_source_assets
from cs_assets.validation.assets import GROUP as VALIDATION_GROUP
from cs_assets.validation.assets import build_validation_assets
from cs_assets.writeback.assets import build_writeback_asset
from cs_assets.writeback.config import deployment_writeback

HEALTH_SCORE_JOB = "health_score_job"
VALIDATION_JOB = "validation_job"

# One process runs every step of a run, in dependency order: the steps are short next to what a
# step process costs to start (importing the code location, GX), DuckDB admits one writer anyway,
# and polars uses every core inside a step. The graph, its steps and their checks show as ever.
EXECUTOR = dg.in_process_executor


def build_definitions(deployment: Deployment, home: Path, resources: dict | None = None) -> dg.Definitions:
    """Every asset, check, job, schedule and sensor for `deployment` on the state directory `home`:
    its snapshot partitions end at the day its landing data serves; `resources` default to
    `resources.build_resources` for the two."""
    if resources is None:
        from resources import build_resources

        resources = build_resources(deployment.paths, home)
    partitions = build_snapshot_partitions(settings.landing_dir(home))
    health_score_job = dg.define_asset_job(
        HEALTH_SCORE_JOB,
        # validation reads the whole history and runs on demand (validation_job), not every day
        selection=dg.AssetSelection.all() - dg.AssetSelection.groups(VALIDATION_GROUP),
        partitions_def=partitions,
        description="Reads every source, computes indicators, CO/CX and composite scores, segments, publishes them for a snapshot date (or a range, in one run), then derives and sends actions.",
    )
    validation_job = dg.define_asset_job(
        VALIDATION_JOB,
        selection=dg.AssetSelection.groups(VALIDATION_GROUP),
        description="Validates the score against churn and renewals, calibrates a candidate model and estimates the CS contribution, from the published history.",
    )
    writeback = deployment_writeback(deployment.paths.writeback, bool(os.environ.get(FILE_ENVS["writeback"])))
    assets = [
        *build_source_assets(deployment),
        build_indicator_asset(deployment, partitions),
        *build_scoring_assets(partitions),
        build_publish_asset(deployment, partitions),
        account_health_stages,
        account_actions,
        action_notifications,
        health_report,
        *([build_writeback_asset(writeback)] if writeback is not None else []),
        *build_validation_assets(deployment),
    ]
    checks = [*score_checks, *build_integrity_checks(deployment), *build_gx_checks(deployment)]
    # automation never walks past a failed blocking check anywhere upstream (not only the parents)
    assets = with_upstream_gate(assets, checks)
    return dg.Definitions(
        # each asset's page links to the file and line that define it
        assets=dg.with_source_code_references(with_code_versions(assets, deployment.paths)),
        asset_checks=checks,
        jobs=[health_score_job, validation_job],
        schedules=[build_daily_schedule(health_score_job)],
        sensors=[health_automation, build_landing_sensor(deployment), notify_on_run_failure],
        resources=resources,
        executor=EXECUTOR,
    )


@dg.definitions
def defs() -> dg.Definitions:
    """What `dagster dev`, `dg` and `workspace.yaml` load: the deployment of $CS_HEALTH_CONFIG on
    the home $CS_HEALTH_HOME, with the module-level resources built for the two."""
    from resources import RESOURCES

    return build_definitions(current_deployment(), settings.home_dir(), RESOURCES)
