"""Never wrong on partial or broken exports: real runs that must fail with a message that names
the place, and leave the published tables as they were; a run's model, lineage and CRM version
pinned to what it started with.

The file faults (`FAULTS`) each start from a copy of one published home. Processes at once and
crashes are in `test_concurrency.py`."""

import datetime as dt
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from cs_assets import settings
from cs_assets.actions.evaluate import actions_to_send, evaluate_actions, split_by_cap
from cs_assets.actions.rules import parse_action_rules
from cs_assets.cli import failure_reasons
from cs_assets.demo.generator import DEMO_AS_OF
from cs_assets.deployment import load_deployment
from cs_assets.publish.assets import ACCOUNT_HEALTH
from cs_assets.scoring.model_config import load_model
from tests.harness import copy_home, published, run_graph


@pytest.fixture(scope="module")
def published_home(published_demo_home, tmp_path_factory) -> Path:
    return copy_home(published_demo_home, tmp_path_factory.mktemp("reliability") / "home")


@pytest.fixture()
def home(published_home, tmp_path) -> Path:
    copy = tmp_path / "home"
    shutil.copytree(published_home, copy)
    return copy


def landing(home: Path) -> Path:
    return settings.landing_dir(home)


def lines_of(result) -> str:
    return "\n".join(failure_reasons(result.all_events))


# --------------------------------------------------------------------------- file faults


@dataclass(frozen=True)
class Fault:
    id: str
    setup: Callable[[Path], None]
    expected: tuple[str, ...]  # every fragment must be in the run's failure lines
    # a load recorded before the fault (only the volume check compares with the previous load)
    previous_load: bool = False


def _crm(home: Path) -> Path:
    return landing(home) / "crm/accounts.csv"


def half_missing_usage(home: Path) -> None:
    for part in sorted((landing(home) / "usage/events").glob("*.parquet")):
        pl.read_parquet(part)[::2].write_parquet(part)  # every other row: recent data kept


def conflicting_crm_rows(home: Path) -> None:
    crm = pl.read_csv(_crm(home), infer_schema=False)
    twin = crm.slice(4, 1).with_columns(licensed_seats=pl.lit("210"))
    pl.concat(
        [
            crm.with_columns(
                licensed_seats=pl.when(pl.int_range(pl.len()) == 4).then(pl.lit("21")).otherwise("licensed_seats")
            ),
            twin,
        ]
    ).write_csv(_crm(home))


def conflicting_usage_event(home: Path) -> None:
    part = sorted((landing(home) / "usage/events").glob("*.parquet"))[0]
    frame = pl.read_parquet(part)
    twin = frame.filter(pl.col("event_type") == "login").head(1).with_columns(event_type=pl.lit("page_view"))
    pl.concat([frame, twin]).write_parquet(part)


def zero_seats(home: Path) -> None:
    crm = pl.read_csv(_crm(home), infer_schema=False)
    crm.with_columns(
        licensed_seats=pl.when(pl.int_range(pl.len()) == 7).then(pl.lit("0")).otherwise("licensed_seats")
    ).write_csv(_crm(home))


def invalid_utf8(home: Path) -> None:
    path = landing(home) / "surveys/responses.csv"
    lines = path.read_bytes().split(b"\n")
    lines[6] = lines[6] + b"caf\xe9"  # latin-1 in the last column (comment)
    path.write_bytes(b"\n".join(lines))


def half_written_json(home: Path) -> None:
    path = landing(home) / "engagement/activities.jsonl"
    text = path.read_text()
    path.write_text(text[: len(text) - 40])  # the writer stopped in the middle of the last record


def wrong_type_in_second_part(home: Path) -> None:
    parts = landing(home) / "usage/events"
    first = pl.read_parquet(sorted(parts.glob("*.parquet"))[0])
    second = first.head(10).with_columns(
        event_id=pl.lit("X-") + pl.col("event_id"), load_ms=pl.col("load_ms").cast(pl.String)
    )
    second.write_parquet(parts / "part-99999.parquet")


def truncated_parquet(home: Path) -> None:
    parts = landing(home) / "usage/events"
    data = sorted(parts.glob("*.parquet"))[0].read_bytes()
    (parts / "part-99999.parquet").write_bytes(data[: len(data) // 2])


def corrupt_first_csv_line(home: Path) -> None:
    path = _crm(home)
    text = path.read_text()
    path.write_text(text.replace("\n", '\n"unterminated,', 1))


def header_only_declared_source(home: Path) -> None:
    path = landing(home) / "surveys/responses.csv"
    path.write_text(path.read_text().splitlines()[0] + "\n")


FAULTS = [
    Fault(
        "half_missing_usage_export",
        half_missing_usage,
        ("check usage_events:volume [ERROR]", "rows against"),
        previous_load=True,
    ),
    Fault(
        "conflicting_crm_rows",
        conflicting_crm_rows,
        (
            "step crm_accounts failed: source crm_accounts",
            "2 rows with account_id = 'ACC-000005'",
            "differ in licensed_seats (licensed_seats: 21 vs 210)",
        ),
    ),
    Fault(
        "conflicting_usage_event",
        conflicting_usage_event,
        (
            "step usage_events failed: source usage_events",
            "differ in event_type (event_type: 'login' vs 'page_view')",
        ),
    ),
    Fault(
        "licensed_seats_zero",
        zero_seats,
        ("check crm_accounts:gx_licensed_seats_in_range [ERROR]", "licensed_seats is >= 1"),
    ),
    Fault(
        "invalid_utf8_in_csv",
        invalid_utf8,
        (
            "step survey_responses failed: source survey_responses",
            "responses.csv): line 7, column 'comment': invalid UTF-8 bytes b'\\xe9'",
        ),
    ),
    Fault(
        "half_written_last_json_line",
        half_written_json,
        (
            "step engagement_events failed",
            "activities.jsonl): line",
            "is not a JSON record",
            "it is the last line and the file does not end with a newline: the export was cut off while it was written",
        ),
    ),
    Fault(
        "wrong_type_in_second_parquet_part",
        wrong_type_in_second_part,
        (
            "step usage_events failed: source usage_events",
            "part-99999.parquet): column 'load_ms' has type String, expected Int64",
        ),
    ),
    Fault(
        "truncated_parquet_part",
        truncated_parquet,
        (
            "step usage_events failed: source usage_events",
            "part-99999.parquet): not a complete Parquet file",
        ),
    ),
    Fault(
        "corrupt_csv_line",
        corrupt_first_csv_line,
        ("step crm_accounts failed: source crm_accounts", "accounts.csv): cannot parse CSV"),
    ),
    Fault(
        "header_only_export_of_a_declared_source",
        header_only_declared_source,
        ("check survey_responses:freshness [ERROR]: survey_responses is stale: the export has no timestamped record",),
    ),
]


@pytest.mark.parametrize("fault", FAULTS, ids=[f.id for f in FAULTS])
def test_a_broken_export_fails_naming_the_place_and_publishes_nothing(home, fault):
    instance = dg.DagsterInstance.ephemeral()
    if fault.previous_load:
        assert run_graph(home, DEMO_AS_OF, instance=instance).success
    before = (published(home), published(home, "account_health_contributions"), published(home, "snapshot_lineage"))
    fault.setup(home)
    result = run_graph(home, DEMO_AS_OF, instance=instance)
    assert not result.success
    text = lines_of(result)
    for fragment in fault.expected:
        assert fragment in text, text
    assert ACCOUNT_HEALTH not in {e.asset_key for e in result.get_asset_materialization_events()}
    assert published(home).equals(before[0])
    assert published(home, "account_health_contributions").equals(before[1])
    assert published(home, "snapshot_lineage").equals(before[2])


def test_exact_duplicates_are_dropped_and_counted(home):
    crm = pl.read_csv(_crm(home), infer_schema=False)
    pl.concat([crm, crm.slice(3, 2)]).write_csv(_crm(home))
    result = run_graph(home, DEMO_AS_OF)
    assert result.success
    meta = next(m for m in result.asset_materializations_for_node("crm_accounts")).metadata
    assert meta["rows_removed"].value >= 2


def test_an_export_replaced_while_it_is_read_is_said_so(home, monkeypatch):
    import resources.landing as module

    real = module.normalise_text_source
    path = landing(home) / "surveys/responses.csv"

    def replaced_meanwhile(spec, raw, origin):
        if spec.name == "survey_responses":
            with path.open("a") as out:  # a new export is being written over the one being read
                out.write("R-NEW,ACC-000001,U-1,nps,9,2026-10-31T10:00:00Z,\n")
        return real(spec, raw, origin)

    monkeypatch.setattr(module, "normalise_text_source", replaced_meanwhile)
    before = published(home)
    result = run_graph(home, DEMO_AS_OF)
    assert not result.success
    assert "source survey_responses" in lines_of(result)
    assert (
        "the export changed while it was read (a new export was being written); run again once it is complete"
        in lines_of(result)
    )
    assert published(home).equals(before)


def test_a_rerun_of_a_published_date_is_compared_with_what_is_published_for_it(home):
    crm = pl.read_csv(_crm(home), infer_schema=False)
    crm.with_columns(champion_user_ids=pl.lit("")).write_csv(_crm(home))  # every champion gone
    result = run_graph(home, DEMO_AS_OF)
    assert result.success  # band shift is WARN by default: published, and said
    shift = next(e for e in result.get_asset_check_evaluations() if e.check_name == "band_shift")
    assert not shift.passed and shift.severity == dg.AssetCheckSeverity.WARN
    assert f"against the published snapshot of {DEMO_AS_OF} that this run scores again" in shift.description
    assert shift.metadata["compared_with"].value == "the same date, as published"


# --------------------------------------------------------------------------- the model of a run


def test_every_step_of_a_run_uses_the_model_it_started_with(home, monkeypatch):
    import cs_assets.scoring.assets as scoring

    model_path = home / "health_model.yaml"
    shutil.copy(settings.DEFAULT_MODEL_PATH, model_path)
    original = load_model(model_path, load_deployment().catalogue)
    real = scoring.compute_composite

    def edited_meanwhile(*frames):
        # someone edits the model while the run is between its scoring steps
        model_path.write_text(model_path.read_text().replace("weight: 0.7", "weight: 0.5"))
        return real(*frames)

    monkeypatch.setattr(scoring, "compute_composite", edited_meanwhile)
    assert run_graph(home, DEMO_AS_OF, model_path=model_path).success
    assert load_model(model_path, load_deployment().catalogue).version != original.version
    rows = published(home)
    assert set(rows["model_version"]) == {original.version}
    stored = published(home, "model_versions").filter(pl.col("model_version") == original.version)
    from cs_assets.scoring.model_config import parse_model

    assert parse_model(json.loads(stored["model_json"][0])).version == original.version


# --------------------------------------------------------------------------- true lineage


def test_lineage_names_the_loads_that_fed_the_snapshot_not_the_newest(home):
    from cs_assets.definitions import HEALTH_SCORE_JOB
    from cs_assets.partitions import run_tags_for
    from tests.harness import definitions

    instance = dg.DagsterInstance.ephemeral()
    job = definitions(home).resolve_job_def(HEALTH_SCORE_JOB)  # one job: its runs share the staged files
    first = job.execute_in_process(instance=instance, tags=run_tags_for([DEMO_AS_OF]), raise_on_error=False)
    assert first.success
    fed = published(home, "snapshot_lineage").filter(pl.col("asset_key") == "crm_accounts").row(0, named=True)
    # a later load of the CRM (new data), without scoring
    crm = pl.read_csv(_crm(home), infer_schema=False)
    crm.with_columns(account_name=pl.lit("renamed")).write_csv(_crm(home))
    # (with its checks, as the UI's "Materialize" of one source runs it: the gate needs them)
    crm_load = job.execute_in_process(
        instance=instance,
        tags=run_tags_for([DEMO_AS_OF]),
        raise_on_error=False,
        asset_selection=[dg.AssetKey("crm_accounts")],
    )
    assert crm_load.success
    # publishing the snapshot again from its staged scores: the lineage is what fed them
    again = job.execute_in_process(
        instance=instance,
        tags=run_tags_for([DEMO_AS_OF]),
        raise_on_error=False,
        asset_selection=[ACCOUNT_HEALTH, dg.AssetKey(["published", "account_health_contributions"])],
    )
    assert again.success
    now = published(home, "snapshot_lineage").filter(pl.col("asset_key") == "crm_accounts").row(0, named=True)
    assert now["publish_run_id"] == again.run_id
    assert (now["run_id"], now["data_version"]) == (fed["run_id"], fed["data_version"])
    newest = instance.get_latest_materialization_event(dg.AssetKey("crm_accounts"))
    assert newest.run_id != now["run_id"]


# --------------------------------------------------------------------------- the CRM as of each day


def test_each_snapshot_uses_the_crm_version_of_its_day(home):
    crm = pl.read_csv(_crm(home), infer_schema=False)
    account = published(home)["account_id"][10]  # scored on every day below
    row = crm.filter(pl.col("account_id").str.strip_chars() == account).head(1)
    changed_on = DEMO_AS_OF - dt.timedelta(days=2)
    older = row.with_columns(
        licensed_seats=pl.lit("999"), updated_at=pl.lit(f"{changed_on - dt.timedelta(days=30)}T09:00:00Z")
    )
    newer = row.with_columns(updated_at=pl.lit(f"{changed_on}T09:00:00Z"))
    rest = crm.filter(pl.col("account_id").str.strip_chars() != account)
    pl.concat([rest, older, newer]).write_csv(_crm(home))
    dates = [DEMO_AS_OF - dt.timedelta(days=i) for i in range(4, -1, -1)]
    assert run_graph(home, dates).success
    assert published(home).filter(pl.col("account_id") == account).height == 5
    seen = {
        d: pl.read_parquet(settings.staging_dir(home) / "account_indicators" / f"{d}.parquet").filter(
            pl.col("account_id") == account
        )["licensed_seats"][0]
        for d in dates
    }
    assert seen[dates[0]] == 999 and seen[changed_on - dt.timedelta(days=1)] == 999  # before the change
    assert seen[changed_on] == int(row["licensed_seats"][0]) == seen[DEMO_AS_OF]  # from the day it changed


# --------------------------------------------------------------------------- actions over gaps


def test_an_episode_bridges_a_gap_and_a_backfilled_start_does_not_send_it_again():
    rules = parse_action_rules(
        {
            "version": 1,
            "rules": [
                {
                    "name": "red",
                    "action": "call",
                    "priority": "P1",
                    "when": [{"field": "band", "op": "eq", "value": "red"}],
                }
            ],
        },
        "t.yaml",
    )
    day = dt.date(2026, 3, 1)

    def history(days: list[int], bands: list[str]) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "account_id": "A",
                "snapshot_date": [day + dt.timedelta(days=d) for d in days],
                "csm_owner": "o",
                "health_score": 30.0,
                "band": bands,
            }
        )

    # red on days 1-2 and 5-6 with days 3-4 not scored: the gap is unknown, one episode, still open
    gapped = evaluate_actions(history([0, 1, 2, 5, 6], ["green", "red", "red", "red", "red"]), rules)
    assert gapped.select("first_snapshot", "status").rows() == [(day + dt.timedelta(days=1), "open")]
    # green, days 2-4 not scored, red from day 5: the state changed across the gap, told as red:A:day5;
    # a backfill of days 2-4 (green, red, red) moves the episode's start to day 3: a new id, the
    # same episode, not sent again
    changed = evaluate_actions(history([0, 1, 5, 6], ["green", "green", "red", "red"]), rules)
    assert changed["action_id"].to_list() == [f"red:A:{day + dt.timedelta(days=5)}"]
    filled = evaluate_actions(
        history([0, 1, 2, 3, 4, 5, 6], ["green", "green", "green", "red", "red", "red", "red"]), rules
    )
    newest = filled.filter(pl.col("status") == "open")
    assert newest["action_id"].to_list() == [f"red:A:{day + dt.timedelta(days=3)}"]
    due = actions_to_send(filled, day + dt.timedelta(days=6), 10, {f"red:A:{day + dt.timedelta(days=5)}"})
    assert due.filter(pl.col("status") == "open").is_empty()
    sent, _ = split_by_cap(due, 10)
    assert sent.filter(pl.col("action_id") == newest["action_id"][0]).is_empty()
