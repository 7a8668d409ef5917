"""The schedule, the landing-file sensor and the run-failure sensor, evaluated for real."""

import datetime as dt
import json
import os
import shutil

import dagster as dg
import pytest

from cs_assets import settings
from cs_assets.automation import (
    DAILY_SCHEDULE,
    RUN_FAILURE_SENSOR,
    build_landing_sensor,
    notify_on_run_failure,
)
from cs_assets.demo.generator import DEMO_AS_OF, generate_demo_data
from cs_assets.deployment import load_deployment
from resources.landing import LandingZoneResource
from resources.notifier import NotifierResource
from tests.harness import default_definitions, run_graph
from tests.harness import definitions as harness_definitions

DEPLOYMENT = load_deployment()
SOURCES = DEPLOYMENT.contract.sources
defs = default_definitions()
landing_files_sensor = build_landing_sensor(DEPLOYMENT)

UTC = dt.UTC


@pytest.mark.parametrize(
    ("tick", "partition"),
    [
        (dt.datetime(2026, 11, 25, 2, 0, tzinfo=UTC), "2026-11-24"),
        (dt.datetime(2027, 1, 1, 2, 0, tzinfo=UTC), "2026-12-31"),
    ],
)
def test_the_daily_schedule_requests_the_day_that_just_ended(tick, partition):
    schedule = defs.get_repository_def().get_schedule_def(DAILY_SCHEDULE)
    requests = schedule.evaluate_tick(dg.build_schedule_context(scheduled_execution_time=tick)).run_requests
    assert [r.partition_key for r in requests] == [partition]
    assert requests[0].job_name == "health_score_job"


def test_snapshot_partitions_end_at_the_day_the_landing_data_serves(tmp_path, monkeypatch):
    from cs_assets.partitions import build_snapshot_partitions

    home = tmp_path / "home"
    landing = settings.landing_dir(home)
    generate_demo_data(landing, accounts=20, seed=3, as_of=dt.date(2026, 9, 30))
    # example data: its manifest's day, so the launch dialog's "Latest" is a day with data
    assert build_snapshot_partitions(landing).get_last_partition_key() == "2026-09-30"
    # the definitions built for that home offer the same days, whatever $CS_HEALTH_HOME says
    job = harness_definitions(home).resolve_job_def("health_score_job")
    assert job.partitions_def is not None and job.partitions_def.get_last_partition_key() == "2026-09-30"
    monkeypatch.setenv(settings.AS_OF_ENV, "2026-10-04")  # set by hand: that day wins
    assert build_snapshot_partitions(landing).get_last_partition_key() == "2026-10-04"
    monkeypatch.setenv(settings.AS_OF_ENV, "2024-12-30")
    with pytest.raises(ValueError, match="CS_HEALTH_AS_OF is 2024-12-30, before the history start 2025-01-01"):
        build_snapshot_partitions(landing)
    # real exports say nothing: the newest partition is the last complete day (yesterday, UTC)
    monkeypatch.delenv(settings.AS_OF_ENV)
    (landing / settings.DEMO_MANIFEST).unlink()
    last = build_snapshot_partitions(landing).get_last_partition_key()
    assert last == settings.yesterday().isoformat()


def _tick(landing: LandingZoneResource, cursor: str | None) -> dg.SensorResult:
    context = dg.build_sensor_context(cursor=cursor, resources={"landing": landing})
    return landing_files_sensor(context)


def test_the_landing_sensor_requests_runs_for_new_files_only_across_ticks(tmp_path):
    landing_dir = settings.landing_dir(tmp_path)
    generate_demo_data(landing_dir, accounts=30, seed=5)
    landing = LandingZoneResource(landing_dir=str(landing_dir))

    first = _tick(landing, None)
    assert sorted(r.asset_selection[0].to_user_string() for r in first.run_requests) == sorted(SOURCES)
    keys = {r.run_key for r in first.run_requests}
    assert all(key.startswith(tuple(f"{s}:" for s in SOURCES)) for key in keys)

    quiet = _tick(landing, first.cursor)
    assert quiet.run_requests == [] and quiet.skip_reason.skip_message == "no new landing files"

    # a new answer lands in the survey export; a new part file lands for usage
    surveys = landing_dir / SOURCES["survey_responses"].path
    os.utime(surveys, ns=(surveys.stat().st_atime_ns, surveys.stat().st_mtime_ns + 10**9))
    with surveys.open("a", encoding="utf-8") as out:
        out.write("RSP-NEW,ACC-000001,U-1,nps,9,2026-10-31T10:00:00Z,\n")
    parts = landing_dir / SOURCES["usage_events"].path
    first_part = sorted(parts.glob("*.parquet"))[0]
    (parts / "zz-new-part.parquet").write_bytes(first_part.read_bytes())
    changed = _tick(landing, quiet.cursor)
    assert sorted(r.asset_selection[0].to_user_string() for r in changed.run_requests) == [
        "survey_responses",
        "usage_events",
    ]
    assert not ({r.run_key for r in changed.run_requests} & keys)
    assert json.loads(changed.cursor).keys() == set(SOURCES)

    # a source whose export disappeared is reported, not requested
    (landing_dir / SOURCES["engagement_events"].path).unlink()
    after = _tick(landing, changed.cursor)
    assert after.run_requests == []
    assert after.skip_reason.skip_message == "no new landing files; nothing landed yet for engagement_events"


def test_a_failed_run_is_reported_through_the_notifier(tmp_path):
    home = tmp_path / "home"
    generate_demo_data(settings.landing_dir(home), accounts=30, seed=5)
    (settings.landing_dir(home) / SOURCES["crm_accounts"].path).unlink()
    instance = dg.DagsterInstance.ephemeral()
    result = run_graph(home, DEMO_AS_OF, instance=instance)
    assert not result.success
    run = instance.get_run_by_id(result.run_id)
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE)
    outbox = tmp_path / "outbox"
    context = dg.build_run_status_sensor_context(
        sensor_name=RUN_FAILURE_SENSOR,
        dagster_event=failure,
        dagster_instance=instance,
        dagster_run=run,
        resources={"notifier": NotifierResource(outbox_dir=str(outbox))},
    ).for_run_failure()
    notify_on_run_failure(context)
    [message] = [json.loads(line) for line in (outbox / "messages.jsonl").read_text().splitlines()]
    assert message["idempotency_key"] == f"run-failure:{result.run_id}"
    fields = {f["text"].split("\n")[0]: f["text"].split("\n")[1] for f in message["message"]["blocks"][1]["fields"]}
    assert fields["*Snapshot*"] == DEMO_AS_OF.isoformat()
    assert "Steps failed" in fields["*Error*"] and "crm_accounts" in fields["*Error*"]


def test_the_example_instance_config_loads_with_telemetry_off_and_one_run_at_a_time(tmp_path):
    shutil.copy(settings.REPO_ROOT / "deploy" / "dagster.yaml", tmp_path / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert instance.get_settings("telemetry") == {"enabled": False}
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 1
        assert instance.auto_materialize_use_sensors


def test_a_run_names_the_path_it_came_from():
    from cs_assets.run_origin import LAUNCHED_BY_TAG, launched_by

    assert launched_by({LAUNCHED_BY_TAG: "backfill"}) == "`cs-health backfill`"
    assert launched_by({"dagster/schedule_name": "daily_health_scores"}) == "the schedule daily_health_scores"
    automated = {"dagster/from_automation_condition": "true", "dagster/sensor_name": "health_automation"}
    assert launched_by(automated) == "declarative automation (the sensor health_automation)"
    assert launched_by({"dagster/sensor_name": "landing_files_sensor"}) == "the sensor landing_files_sensor"
    assert launched_by({"dagster/parent_run_id": "0123456789", LAUNCHED_BY_TAG: "run"}).startswith(
        "a re-execution of run 01234567"
    )
    assert launched_by({}).startswith("a run launched from the UI or the API")
