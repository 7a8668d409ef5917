"""What refreshes the scores without a person: a schedule, sensors, declarative automation.

Default statuses (what runs as soon as a daemon runs for this code location):
- `health_automation` (declarative automation) RUNNING: it only reacts to materializations that
  something else made, and keeps everything downstream of them current, gated on blocking checks.
- `notify_on_run_failure` RUNNING: it only reacts to failed runs; without a webhook URL it writes
  to the dry-run outbox file.
- `daily_health_scores` (schedule) and `landing_files_sensor` STOPPED: they start work on their
  own. Turn them on once the landing area receives real exports; on the demo data, whose last day
  is in the past, a daily run for yesterday would (rightly) be blocked as stale.
"""

import datetime as dt
import json
from typing import TYPE_CHECKING

import dagster as dg

from cs_assets.deployment import Deployment
from cs_assets.partitions import WEEKLY, cadence
from resources.landing import LandingZoneResource
from resources.notifier import NotifierResource, slack_message

if TYPE_CHECKING:
    # what the schedule of an asset job is until Definitions resolves it; dagster does not export the name
    from dagster._core.definitions.partitions.partitioned_schedule import UnresolvedPartitionedAssetScheduleDefinition

DAILY_SCHEDULE = "daily_health_scores"
WEEKLY_SCHEDULE = "weekly_health_scores"
LANDING_SENSOR = "landing_files_sensor"
RUN_FAILURE_SENSOR = "notify_on_run_failure"
AUTOMATION_SENSOR = "health_automation"
SOURCE_TAG = "cs_health/source"

health_automation = dg.AutomationConditionSensorDefinition(
    AUTOMATION_SENSOR,
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Declarative automation: refreshes downstream assets after upstream updates, never past a failed blocking check.",
)


def build_daily_schedule(job) -> "dg.ScheduleDefinition | UnresolvedPartitionedAssetScheduleDefinition":
    if cadence() == WEEKLY:
        return _weekly_schedule(job)
    # a daily-partitioned job's schedule requests the partition of the day that just ended
    return dg.build_schedule_from_partitioned_job(
        job,
        name=DAILY_SCHEDULE,
        hour_of_day=2,
        minute_of_hour=0,
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description="At 02:00 UTC, scores yesterday's snapshot (the newest complete day) and publishes it.",
    )


def _weekly_schedule(job) -> dg.ScheduleDefinition:
    # a weekly snapshot is the end of Sunday: score it on Monday at 02:00 UTC, as a daily
    # snapshot is scored the morning after its day
    @dg.schedule(
        name=WEEKLY_SCHEDULE,
        cron_schedule="0 2 * * 1",
        job=job,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description="Mondays at 02:00 UTC, scores the snapshot of the week that just ended (Sunday) and publishes it.",
    )
    def weekly_health_scores(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        sunday = context.scheduled_execution_time.date() - dt.timedelta(days=1)
        return dg.RunRequest(run_key=sunday.isoformat(), partition_key=sunday.isoformat())

    return weekly_health_scores


def build_landing_sensor(deployment: Deployment) -> dg.SensorDefinition:
    sources = deployment.contract.sources

    @dg.sensor(
        name=LANDING_SENSOR,
        target=dg.AssetSelection.assets(*sources),
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description="Requests a source's extract run when new or changed files land for it; one run per change.",
    )
    def landing_files_sensor(context: dg.SensorEvaluationContext, landing: LandingZoneResource) -> dg.SensorResult:
        """Cursor: each source's last seen file signature (names, sizes, mtimes), as JSON."""
        seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
        requests, waiting = [], []
        for name, spec in sources.items():
            signature = landing.signature(spec)
            if signature is None:
                waiting.append(name)
                continue
            if seen.get(name) != signature:
                requests.append(
                    dg.RunRequest(
                        # the run key makes a repeat of the same files a no-op even if the cursor is lost
                        run_key=f"{name}:{signature}",
                        asset_selection=[dg.AssetKey(name)],
                        tags={SOURCE_TAG: name},
                    )
                )
                seen[name] = signature
        skip = None
        if not requests:
            skip = "no new landing files" + (f"; nothing landed yet for {', '.join(waiting)}" if waiting else "")
        return dg.SensorResult(run_requests=requests, cursor=json.dumps(seen, sort_keys=True), skip_reason=skip)

    return landing_files_sensor


@dg.run_failure_sensor(
    name=RUN_FAILURE_SENSOR,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Posts a message through the notifier when a run of this code location fails.",
)
def notify_on_run_failure(context: dg.RunFailureSensorContext, notifier: NotifierResource) -> None:
    run = context.dagster_run
    error = (context.failure_event.message or "no message").strip().splitlines()[0][:500]
    snapshot = run.tags.get("dagster/partition") or "..".join(
        filter(
            None,
            [run.tags.get("dagster/asset_partition_range_start"), run.tags.get("dagster/asset_partition_range_end")],
        )
    )
    message = slack_message(
        f"*Run failed*: {run.job_name} ({run.run_id[:8]})",
        {"Error": error, "Snapshot": snapshot or "unpartitioned", "Run id": run.run_id},
    )
    notifier.send(f"run-failure:{run.run_id}", message)
