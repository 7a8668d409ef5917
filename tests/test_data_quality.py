"""The gate: stale, missing or broken inputs never publish, say why, and keep the last good scores."""

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
import yaml

from checks.dq_config import DEFAULT_DQ_PATH, DataQualityConfigError, parse_dq_config
from checks.score_checks import POINTS_SUM_TO_SCORE
from cs_assets import settings
from cs_assets.actions.assets import ACCOUNT_ACTIONS, ACTION_NOTIFICATIONS
from cs_assets.demo.generator import DEMO_AS_OF
from cs_assets.publish.assets import ACCOUNT_HEALTH, ACCOUNT_HEALTH_CONTRIBUTIONS
from cs_assets.writeback.assets import CRM_WRITEBACK
from resources.instance import instance_yaml
from tests.harness import copy_home, default_definitions, make_home, published, run_graph

defs = default_definitions()

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def good_home(published_demo_home, tmp_path_factory) -> Path:
    return copy_home(published_demo_home, tmp_path_factory.mktemp("dq") / "good")


@pytest.fixture()
def home(good_home, tmp_path) -> Path:
    """A copy of a home with one good published snapshot, to break on purpose."""
    copy = tmp_path / "home"
    shutil.copytree(good_home, copy)
    return copy


def failure_lines(result: dg.ExecuteInProcessResult) -> list[str]:
    from cs_assets.cli import failure_reasons

    return failure_reasons(result.all_events)


def assert_blocked_and_unchanged(home: Path, as_of: dt.date = DEMO_AS_OF) -> list[str]:
    before = (published(home), published(home, "account_health_contributions"))
    result = run_graph(home, as_of)
    assert not result.success
    mats = {e.asset_key for e in result.get_asset_materialization_events()}
    assert ACCOUNT_HEALTH not in mats and ACCOUNT_HEALTH_CONTRIBUTIONS not in mats
    # the previous snapshot is still there, to the byte (computed_at included)
    assert published(home).equals(before[0])
    assert published(home, "account_health_contributions").equals(before[1])
    return failure_lines(result)


def test_stale_sources_block_publication_and_are_named_with_their_age(home):
    lines = assert_blocked_and_unchanged(home, DEMO_AS_OF + dt.timedelta(days=5))
    stale = {line.split(":")[0].removeprefix("check "): line for line in lines if ":freshness" in line}
    assert set(stale) == {"crm_accounts", "usage_events", "support_tickets"}
    assert "is 5.0 days old at the end of the as-of day 2026-11-05 (limit 2.0 days)" in stale["usage_events"]
    assert "(limit 36.0 hours)" in stale["crm_accounts"]
    # surveys (45 days) and engagement (7 days) are still within their limits
    assert not any("survey_responses:freshness" in line or "engagement_events:freshness" in line for line in lines)


def _landing(home: Path) -> Path:
    return settings.landing_dir(home)


def break_deleted_file(home):
    (_landing(home) / "surveys/responses.csv").unlink()
    return ["step survey_responses failed", "source survey_responses: no export found at", "surveys/responses.csv"]


def break_empty_file(home):
    (_landing(home) / "support/tickets.jsonl").write_text("")
    return ["step support_tickets failed", "source support_tickets: export file", "tickets.jsonl is empty"]


def break_removed_column(home):
    path = _landing(home) / "crm/accounts.csv"
    pl.read_csv(path, infer_schema=False).drop("renewal_date").write_csv(path)
    return ["source crm_accounts", "missing column(s) renewal_date (Date)"]


def break_retyped_column(home):
    part = sorted((_landing(home) / "usage/events").glob("*.parquet"))[0]
    frame = pl.read_parquet(part)
    frame.with_columns(pl.col("load_ms").cast(pl.String)).write_parquet(part)
    return ["source usage_events", "column 'load_ms' has type String, expected Int64"]


def break_retyped_value(home):
    path = _landing(home) / "engagement/activities.jsonl"
    lines = path.read_text().splitlines()
    record = json.loads(lines[3])
    record["occurred_at"] = "last tuesday"
    lines[3] = json.dumps(record)
    path.write_text("\n".join(lines) + "\n")
    return [
        "source engagement_events",
        "column 'occurred_at' row 4: cannot read 'last tuesday' as an ISO-8601 timestamp",
    ]


def break_corrupt_csv_line(home):
    path = _landing(home) / "surveys/responses.csv"
    with path.open("a") as f:
        f.write('R-9999999,ACC-000001,"unterminated quote,nps,9\n')
    return ["source survey_responses", "cannot parse CSV"]


def break_unknown_account(home):
    path = _landing(home) / "support/tickets.jsonl"
    record = json.loads(path.read_text().splitlines()[0])
    record.update(ticket_id=99999999, account_id="ACC-999999")
    with path.open("a") as f:
        f.write(json.dumps(record) + "\n")
    return ["check support_tickets:unknown_accounts [ERROR]", "1 of", "unknown to the CRM, e.g. ACC-999999"]


@pytest.mark.parametrize(
    "breaker",
    [
        break_deleted_file,
        break_empty_file,
        break_removed_column,
        break_retyped_column,
        break_retyped_value,
        break_corrupt_csv_line,
        break_unknown_account,
    ],
)
def test_broken_input_is_named_and_publishes_nothing(home, breaker):
    expected = breaker(home)
    lines = assert_blocked_and_unchanged(home)
    text = "\n".join(lines)
    for fragment in expected:
        assert fragment in text, text


def test_a_volume_drop_against_the_previous_load_blocks_the_publish(tmp_path):
    home = make_home(tmp_path, "volume")
    instance = dg.DagsterInstance.ephemeral()
    assert run_graph(home, DEMO_AS_OF, instance=instance).success
    before = published(home)
    path = _landing(home) / "support/tickets.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[::2]) + "\n")  # half the rows, the newest kept
    result = run_graph(home, DEMO_AS_OF, instance=instance)
    # a partial export looks like churn: blocking by default
    assert not result.success
    volume = next(
        e
        for e in result.get_asset_check_evaluations()
        if e.asset_key == dg.AssetKey("support_tickets") and e.check_name == "volume"
    )
    assert not volume.passed and volume.severity == dg.AssetCheckSeverity.ERROR
    assert "rows against" in volume.description and "allowed drop 20%" in volume.description
    assert published(home).equals(before)


def test_band_shift_is_measured_against_the_last_published_snapshot(good_home, tmp_path):
    home = tmp_path / "shift"
    shutil.copytree(good_home, home)
    result = run_graph(home, DEMO_AS_OF - dt.timedelta(days=1))
    assert result.success
    shift = next(e for e in result.get_asset_check_evaluations() if e.check_name == "band_shift")
    # the earlier snapshot has no predecessor
    assert shift.passed and shift.description == "no earlier published snapshot to compare with"
    result = run_graph(home, DEMO_AS_OF)
    shift = next(e for e in result.get_asset_check_evaluations() if e.check_name == "band_shift")
    assert shift.metadata["previous_snapshot"].value == str(DEMO_AS_OF - dt.timedelta(days=1))
    assert shift.metadata["compared_accounts"].value > 0
    assert "changed band since the snapshot of 2026-10-30" in shift.description


def test_automation_does_not_publish_after_a_failed_blocking_check():
    instance = dg.DagsterInstance.ephemeral()
    graph = defs.resolve_asset_graph()
    # automation looks at the newest snapshot partition: the day before "now"
    now = dt.datetime(2026, 11, 1, 2, 0, tzinfo=dt.UTC)
    day = "2026-10-31"

    def materialize(key: dg.AssetKey) -> None:
        partitioned = graph.get(key).partitions_def is not None
        instance.report_runless_asset_event(dg.AssetMaterialization(key, partition=day if partitioned else None))

    for key in graph.get_all_asset_keys():
        materialize(key)
    # the other assets' checks ran with them and passed (e.g. the validity suites of account_indicators)
    for key in graph.asset_check_keys:
        if key.asset_key != dg.AssetKey("account_health_scores"):
            instance.report_runless_asset_event(
                dg.AssetCheckEvaluation(
                    asset_key=key.asset_key, check_name=key.name, passed=True, severity=dg.AssetCheckSeverity.ERROR
                )
            )
    cursor = dg.evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=now).cursor
    blocking = [k for k in graph.asset_check_keys if k.asset_key == dg.AssetKey("account_health_scores")]
    assert len(blocking) == 3

    def tick(failing: str | None, cursor):
        """account_health_scores is re-materialized; its blocking checks pass except `failing`."""
        materialize(dg.AssetKey("account_health_scores"))
        for key in blocking:
            instance.report_runless_asset_event(
                dg.AssetCheckEvaluation(
                    asset_key=key.asset_key,
                    check_name=key.name,
                    passed=key.name != failing,
                    severity=dg.AssetCheckSeverity.ERROR,
                )
            )
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor, evaluation_time=now)
        return result, {r.key for r in result.results if r.true_subset.size > 0}

    blocked, requested = tick(POINTS_SUM_TO_SCORE, cursor)
    # the gate holds transitively: nothing below the refused scores moves, not only their children
    assert dg.AssetKey("account_segments") not in requested
    assert ACCOUNT_HEALTH not in requested and ACCOUNT_HEALTH_CONTRIBUTIONS not in requested
    assert ACCOUNT_ACTIONS not in requested and ACTION_NOTIFICATIONS not in requested  # nothing is sent
    assert CRM_WRITEBACK not in requested  # nor written to the CRM

    allowed, requested = tick(None, blocked.cursor)
    # one step writes both tables; its health spec is what account_health_scores feeds
    assert ACCOUNT_HEALTH in requested
    # actions read the whole published history (unpartitioned): they follow on the next tick,
    # once the publish has happened, and never while it is blocked
    assert ACCOUNT_ACTIONS not in requested
    materialize(ACCOUNT_HEALTH)
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=allowed.cursor, evaluation_time=now)
    requested = {r.key for r in result.results if r.true_subset.size > 0}
    assert {ACCOUNT_ACTIONS, ACTION_NOTIFICATIONS, CRM_WRITEBACK} <= requested


def test_dq_config_errors_name_the_key():
    raw = yaml.safe_load(DEFAULT_DQ_PATH.read_text())
    raw["sources"]["usage_events"]["max_age_hours"] = 0
    with pytest.raises(DataQualityConfigError, match=r"`sources.usage_events.max_age_hours`: must be > 0, got 0"):
        parse_dq_config(raw, "dq.yaml")
    raw = yaml.safe_load(DEFAULT_DQ_PATH.read_text())
    raw["checks"]["freshness"]["severity"] = "FATAL"
    with pytest.raises(
        DataQualityConfigError, match=r"`checks.freshness.severity`: must be one of ERROR, WARN, got 'FATAL'"
    ):
        parse_dq_config(raw, "dq.yaml")
    # a declared source needs limits: its own, or source_defaults
    raw = yaml.safe_load(DEFAULT_DQ_PATH.read_text())
    del raw["sources"]["crm_accounts"]
    with pytest.raises(
        DataQualityConfigError, match=r"`sources.crm_accounts`: no limits for the declared source crm_accounts"
    ):
        parse_dq_config(raw, "dq.yaml")
    raw["source_defaults"] = {"max_age_hours": 24, "max_volume_drop_share": 0.1, "max_duplicate_share": 0.01}
    assert parse_dq_config(raw, "dq.yaml").sources["crm_accounts"].max_age_hours == 24
    raw = yaml.safe_load(DEFAULT_DQ_PATH.read_text())
    raw["integrity"]["coverage_source"] = "usage_event"
    with pytest.raises(DataQualityConfigError, match=r"`integrity.coverage_source`: must name a declared event source"):
        parse_dq_config(raw, "dq.yaml")


@pytest.mark.slow
def test_materialize_all_from_the_command_line_runs_the_graph_in_one_process(tmp_path):
    """`dg launch` of every asset for one partition, the path of the UI's 'Materialize all': the
    code location's executor runs it (in process: no process start per step, one DuckDB writer)."""
    home = tmp_path / "ui"
    from cs_assets.demo.generator import generate_demo_data

    generate_demo_data(settings.landing_dir(home), accounts=40, seed=3)
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    # the instance a home gets (deploy/dagster.yaml and the pooled event log), loaded by dg itself
    (dagster_home / "dagster.yaml").write_text(instance_yaml())
    env = {
        **os.environ,
        "CS_HEALTH_HOME": str(home),
        "DAGSTER_HOME": str(dagster_home),
        "CS_HEALTH_AS_OF": DEMO_AS_OF.isoformat(),
        "DAGSTER_DISABLE_TELEMETRY": "1",
    }
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("dg")), "launch", "--assets", "*", "--partition", DEMO_AS_OF.isoformat()],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    assert "RUN_SUCCESS" in output and "Executing steps in process" in output
    assert "Could not set lock" not in output and "Conflicting lock" not in output
    assert published(home).height > 0
    assert "BetaWarning" not in output  # developer notices stay out of a user's log
