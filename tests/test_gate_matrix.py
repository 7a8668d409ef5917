"""The gate matrix: every path a run can take, crossed with every kind of bad input.

Each fault test starts from a home with a good published snapshot on a real Dagster instance,
breaks one source's export, and then drives each path the way a person or the daemon would:

- the whole job (what `cs-health run`, a schedule tick and the UI's "Materialize all" launch);
- the indicator table alone (a click on it in the UI);
- the published tables alone (a click on them, `dagster asset materialize --select`, the
  publish step re-executed from a failed run);
- the stages, actions, notifications and CRM write-back alone;
- declarative automation over several ticks on the same instance.

For every cell: the published tables and the outbox are byte for byte what they were, and the
failure names the source and says nothing was published. Then the export is repaired, the
source alone is loaded (the landing sensor's run) and automation, with nobody acting, requests
the chain down to the published tables again, whose runs publish.
"""

import datetime as dt
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from cs_assets import settings
from cs_assets.automation import LANDING_SENSOR
from cs_assets.demo.generator import DEMO_AS_OF
from cs_assets.deployment import load_deployment
from cs_assets.indicators.compiler import as_of_end
from resources.instance import home_instance
from tests.harness import copy_home, definitions, make_home, published, run_graph
from tests.http_harness import failures

ACCOUNT_HEALTH = "published/account_health"
PUBLISHED = [ACCOUNT_HEALTH, "published/account_health_contributions"]
ACTING = ["published/account_health_stages", "published/account_actions", "action_notifications", "crm_writeback"]
DOWNSTREAM = {"account_indicators", "indicator_contributions", "account_health_scores", *PUBLISHED, *ACTING}
# the first automation tick after the day: the daemon's view of the newest snapshot partition
TICK = dt.datetime.combine(DEMO_AS_OF + dt.timedelta(days=1), dt.time(2, 0), tzinfo=dt.UTC)


def _landing(home: Path) -> Path:
    return settings.landing_dir(home)


def stale_usage(home: Path) -> str:
    """The usage export stops five days before the snapshot (an extract job that died)."""
    part = next((_landing(home) / "usage/events").glob("*.parquet"))
    cut = as_of_end(DEMO_AS_OF) - dt.timedelta(days=5)
    frame = pl.read_parquet(part)
    frame.filter(pl.col("occurred_at") < cut).write_parquet(part)
    return "usage_events:freshness"


def stale_usage_with_a_later_event(home: Path) -> str:
    """The usage export stopped five days ago, but one test event is stamped the day after the
    snapshot (before the run's clock, so no validity rule sees it as future): still stale."""
    stale_usage(home)
    part = next((_landing(home) / "usage/events").glob("*.parquet"))
    frame = pl.read_parquet(part)
    later = as_of_end(DEMO_AS_OF) + dt.timedelta(hours=20)
    event = frame.head(1).with_columns(
        pl.lit("EVT-TEST-1").cast(frame.schema["event_id"]).alias("event_id"),
        pl.lit(later).cast(frame.schema["occurred_at"]).alias("occurred_at"),
        pl.lit(later).cast(frame.schema["received_at"]).alias("received_at"),
    )
    pl.concat([frame, event]).write_parquet(part)
    return "usage_events:freshness"


def half_tickets(home: Path) -> str:
    """Half of the support export arrives (a partial extract looks like churn)."""
    path = _landing(home) / "support/tickets.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[::2]) + "\n")
    return "support_tickets:volume"


def invalid_nps(home: Path) -> str:
    """One NPS answer of 42 on a 0-10 scale (a validity rule of Great Expectations)."""
    path = _landing(home) / "surveys/responses.csv"
    frame = pl.read_csv(path, infer_schema=False)
    row = frame.with_row_index().filter(pl.col("survey_type") == "nps")["index"][0]
    frame = frame.with_columns(
        score=pl.when(pl.int_range(pl.len()) == row).then(pl.lit("42")).otherwise(pl.col("score"))
    )
    frame.write_csv(path)
    return "survey_responses:gx_"


def unknown_accounts(home: Path) -> str:
    """Engagement rows for accounts the CRM has never heard of (a wrong join key upstream)."""
    path = _landing(home) / "engagement/activities.jsonl"
    lines = path.read_text().splitlines()
    changed = [line.replace('"ACC-', '"XXX-') if i % 2 == 0 else line for i, line in enumerate(lines)]
    path.write_text("\n".join(changed) + "\n")
    return "engagement_events:unknown_accounts"


FAULTS: dict[str, Callable[[Path], str]] = {
    "stale_source": stale_usage,
    "stale_source_with_a_later_event": stale_usage_with_a_later_event,
    "half_export": half_tickets,
    "failed_validity_check": invalid_nps,
    "unknown_accounts": unknown_accounts,
}


def state(home: Path) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, bytes]]:
    """What people and systems read: the published tables and every file sent to the outbox."""
    outbox = home / "outbox"
    files = {p.name: p.read_bytes() for p in sorted(outbox.glob("*"))} if outbox.exists() else {}
    return published(home), published(home, "account_health_contributions"), files


def assert_unchanged(home: Path, before) -> None:
    after = state(home)
    assert after[0].equals(before[0]), "published/account_health changed"
    assert after[1].equals(before[1]), "published/account_health_contributions changed"
    assert after[2] == before[2], "something was sent"


def requested(result: dg.EvaluateAutomationConditionsResult) -> set[str]:
    return {r.key.to_user_string() for r in result.results if r.true_subset.size > 0}


@pytest.fixture()
def home(published_demo_home, tmp_path) -> Path:
    return copy_home(published_demo_home, tmp_path / "home")


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_refused_load_publishes_and_sends_nothing_on_any_path(home, fault):
    instance = dg.DagsterInstance.ephemeral()
    defs = definitions(home)
    assert run_graph(home, DEMO_AS_OF, instance=instance).success
    before = state(home)
    good_landing = home.parent / "good_landing"
    shutil.copytree(_landing(home), good_landing)
    culprit = FAULTS[fault](home)
    source = culprit.split(":")[0]

    # path 1: the whole job (cs-health run, a schedule tick, "Materialize all" in the UI)
    whole = run_graph(home, DEMO_AS_OF, instance=instance)
    assert not whole.success
    failed = [e for e in whole.get_asset_check_evaluations() if not e.passed]
    assert any(f"{e.asset_key.to_user_string()}:{e.check_name}".startswith(culprit) for e in failed), failed
    assert_unchanged(home, before)

    # paths 2-4: a subset a person can click, after the refused run; each meets the same wall
    for selection, outcome in [
        (["account_indicators"], "no indicators were computed"),
        (PUBLISHED, "nothing was published"),
        (ACTING, "nothing was sent"),
    ]:
        result = run_graph(home, DEMO_AS_OF, instance=instance, selection=selection)
        assert not result.success, selection
        messages = " ".join(failures(result).values())
        assert source in messages and "blocked" in messages, messages
        assert outcome in messages and "the last published snapshot is unchanged" in messages, messages
        assert_unchanged(home, before)

    # path 5: declarative automation, several ticks on the same instance, requests nothing downstream
    cursor = None
    for minutes in (0, 1, 2):
        tick = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, cursor=cursor, evaluation_time=TICK + dt.timedelta(minutes=minutes)
        )
        assert not requested(tick) & DOWNSTREAM, requested(tick)
        cursor = tick.cursor

    # a good export lands: its source alone is loaded (the landing sensor's run) ...
    shutil.rmtree(_landing(home))
    shutil.copytree(good_landing, _landing(home))
    assert run_graph(home, DEMO_AS_OF, instance=instance, selection=[source]).success
    # ... and automation carries it to the published tables without anyone acting: each tick's
    # requests are run, as the daemon would, until the publish has run
    ran: set[str] = set()
    for minutes in range(3, 9):
        tick = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, cursor=cursor, evaluation_time=TICK + dt.timedelta(minutes=minutes)
        )
        cursor, chain = tick.cursor, requested(tick)
        if not chain:
            break
        if chain & set(PUBLISHED):
            chain |= set(PUBLISHED)  # one step writes both (the daemon runs the whole step)
        assert run_graph(home, DEMO_AS_OF, instance=instance, selection=sorted(chain)).success, chain
        ran |= chain
    assert {"account_indicators", ACCOUNT_HEALTH, "published/account_actions"} <= ran, ran
    assert published(home).drop("computed_at").equals(before[0].drop("computed_at"))


# --------------------------------------------------------------------------- a load that fails outright


def missing_export(home: Path) -> str:
    """The support export did not arrive today (the extract job never ran)."""
    (_landing(home) / "support/tickets.jsonl").unlink()
    return "support_tickets"


def broken_schema(home: Path) -> str:
    """The survey tool renamed a column of its export."""
    path = _landing(home) / "surveys/responses.csv"
    header, rest = path.read_text().split("\n", 1)
    path.write_text(header.replace("score", "points") + "\n" + rest)
    return "survey_responses"


def conflicting_duplicates(home: Path) -> str:
    """A ticket sent twice with the same version and another priority: which one is true?"""
    path = _landing(home) / "support/tickets.jsonl"
    lines = path.read_text().splitlines()
    first = json.loads(lines[0])
    first["priority"] = "urgent" if first.get("priority") != "urgent" else "low"
    path.write_text("\n".join([*lines, json.dumps(first)]) + "\n")
    return "support_tickets"


LOAD_FAILURES: dict[str, Callable[[Path], str]] = {
    "missing_export": missing_export,
    "broken_schema": broken_schema,
    "conflicting_duplicates": conflicting_duplicates,
}


@pytest.mark.parametrize("fault", list(LOAD_FAILURES))
def test_a_load_that_fails_today_publishes_nothing_for_today_on_any_path(tmp_path, fault):
    """Yesterday published; today's load of one source fails outright (no Output at all). Its
    last load is yesterday's, checked for yesterday: nothing downstream may use it for today."""
    home = make_home(tmp_path, "home")
    yesterday = DEMO_AS_OF - dt.timedelta(days=1)
    instance = home_instance(home)
    defs = definitions(home)
    assert run_graph(home, yesterday, instance=instance).success
    before = state(home)
    source = LOAD_FAILURES[fault](home)

    whole = run_graph(home, DEMO_AS_OF, instance=instance)
    assert not whole.success
    assert source in " ".join(failures(whole)), failures(whole)
    assert_unchanged(home, before)

    # the indicators for today meet the gate: the source's last load was checked for yesterday
    result = run_graph(home, DEMO_AS_OF, instance=instance, selection=["account_indicators"])
    assert not result.success
    messages = " ".join(failures(result).values())
    assert f"{source}: was last loaded and checked for snapshot {yesterday}, not {DEMO_AS_OF}" in messages, messages
    assert "no indicators were computed" in messages, messages
    # the publish for today has nothing to read: its inputs for today were never staged
    result = run_graph(home, DEMO_AS_OF, instance=instance, selection=PUBLISHED)
    assert not result.success
    assert f"not found for snapshot(s) {DEMO_AS_OF}" in " ".join(failures(result).values())
    assert_unchanged(home, before)

    # the daemon: whatever a tick requests for today fails at the gate, and publishes nothing
    cursor = None
    for minutes in (0, 1, 2):
        tick = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, cursor=cursor, evaluation_time=TICK + dt.timedelta(minutes=minutes)
        )
        cursor, chain = tick.cursor, requested(tick) & DOWNSTREAM
        if chain & set(PUBLISHED):
            chain |= set(PUBLISHED)
        if chain:
            assert not run_graph(home, DEMO_AS_OF, instance=instance, selection=sorted(chain)).success, chain
        assert_unchanged(home, before)
    instance.dispose()


# --------------------------------------------------------------------------- the landing sensor's runs


def test_the_landing_sensor_runs_each_source_alone_then_only_what_changed(tmp_path):
    """Each request of the landing sensor builds and runs on its own (the sources' checks are
    split per source), over several ticks on one instance; a refused load then gates the rest."""
    home = make_home(tmp_path, "home")
    defs = definitions(home)
    sensor = defs.resolve_sensor_def(LANDING_SENSOR)
    job = defs.resolve_job_def(sensor.job_name)
    instance = home_instance(home)

    def tick(cursor: str | None) -> dg.SensorResult:
        return sensor(
            dg.build_sensor_context(instance=instance, cursor=cursor, resources={"landing": defs.resources["landing"]})
        )

    def run(request: dg.RunRequest) -> dg.ExecuteInProcessResult:
        return job.execute_in_process(
            instance=instance, asset_selection=request.asset_selection, tags=request.tags, raise_on_error=False
        )

    first = tick(None)
    sources = sorted(load_deployment().contract.sources)
    assert sorted(r.asset_selection[0].to_user_string() for r in first.run_requests) == sources
    for request in first.run_requests:
        result = run(request)
        assert result.success, failures(result)
        # only that source's checks ran: its own, its validity step, its integrity step
        assert {e.asset_key for e in result.get_asset_check_evaluations()} == set(request.asset_selection)
    quiet = tick(first.cursor)
    assert quiet.run_requests == []

    half_tickets(home)
    changed = tick(quiet.cursor)
    assert [r.asset_selection[0].to_user_string() for r in changed.run_requests] == ["support_tickets"]
    refused = run(changed.run_requests[0])
    assert not refused.success
    metadata = refused.asset_materializations_for_node("support_tickets")[0].metadata
    assert metadata["accepted"].value is False
    # the indicators, clicked now, refuse the half export with the volume check's words
    blocked = run_graph(home, DEMO_AS_OF, instance=instance, selection=["account_indicators"])
    assert not blocked.success
    assert "support_tickets:volume" in " ".join(failures(blocked).values())
    instance.dispose()


# --------------------------------------------------------------------------- who wrote the snapshot


def test_status_names_the_run_and_the_path_that_wrote_the_newest_snapshot(published_demo_home, tmp_path, capsys):
    """`cs-health status` after a run that was not `cs-health run` (here: the publish step alone,
    as the UI's Materialize launches it) names that run and its path."""
    from cs_assets.cli import main

    home = copy_home(published_demo_home, tmp_path / "home")
    instance = home_instance(home)
    again = run_graph(home, DEMO_AS_OF, instance=instance, selection=PUBLISHED)
    assert again.success, failures(again)
    instance.dispose()
    assert main(["--home", str(home), "status", "--as-of", DEMO_AS_OF.isoformat()]) == 0
    out = capsys.readouterr().out
    assert f"last run: {again.run_id} SUCCESS, a run launched from the UI or the API" in out, out
    assert f"  by run {again.run_id}, a run launched from the UI or the API" in out, out
