"""Never wrong under concurrency, crashes and partial exports: real runs that must fail (or wait)
with a message that names the place, and leave the published tables as they were.

The file faults (`FAULTS`) each start from a copy of one published home; the concurrency and
crash tests run the CLI in real subprocesses on one home."""

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import duckdb
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
from tests.harness import make_home, published, run_graph

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def published_home(tmp_path_factory) -> Path:
    home = make_home(tmp_path_factory.mktemp("reliability"), "home")
    assert run_graph(home, DEMO_AS_OF).success
    return home


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
    Fault("half_missing_usage_export", half_missing_usage, ("check usage_events:volume [ERROR]", "rows against")),
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
    assert run_graph(home, DEMO_AS_OF, instance=instance).success  # the previous load, for the volume check
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
    defs = definitions(home)
    assert dg.materialize([defs.get_assets_def("crm_accounts")], resources=defs.resources, instance=instance).success
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


def test_an_episode_is_consecutive_days_and_a_backfilled_start_does_not_send_it_again():
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

    # red on days 1-2 and 5-6 with days 3-4 not scored: two episodes, not one
    gapped = evaluate_actions(history([0, 1, 2, 5, 6], ["green", "red", "red", "red", "red"]), rules)
    assert sorted(gapped["first_snapshot"].to_list()) == [day + dt.timedelta(days=1), day + dt.timedelta(days=5)]
    # the action of days 5-6 was delivered as red:A:day5; a backfill of days 3-4 (red) moves the
    # episode's start to day 3: a new id, the same episode, not sent again
    filled = evaluate_actions(
        history([0, 1, 2, 3, 4, 5, 6], ["green", "red", "green", "red", "red", "red", "red"]), rules
    )
    newest = filled.filter(pl.col("status") == "open")
    assert newest["action_id"].to_list() == [f"red:A:{day + dt.timedelta(days=3)}"]
    due = actions_to_send(filled, day + dt.timedelta(days=6), 10, {f"red:A:{day + dt.timedelta(days=5)}"})
    assert due.filter(pl.col("status") == "open").is_empty()
    sent, _ = split_by_cap(due, 10)
    assert sent.filter(pl.col("action_id") == newest["action_id"][0]).is_empty()


# --------------------------------------------------------------------------- processes at once


def cli(home: Path, *args: str, env: dict | None = None, **popen) -> subprocess.Popen:
    environment = {**os.environ, "DAGSTER_DISABLE_TELEMETRY": "1", "GX_ANALYTICS_ENABLED": "false", **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "cs_assets.cli", "--home", str(home), *args],
        cwd=REPO,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


@pytest.mark.slow
def test_two_runs_started_together_on_a_fresh_home_exclude_each_other(tmp_path):
    from resources.home_lock import lock_path

    home = tmp_path / "fresh"
    first = cli(home, "run", "--accounts", "40", "--seed", "3")
    lock = lock_path(settings.warehouse_path(home))
    deadline = time.monotonic() + 120
    while not (lock.exists() and "pid" in lock.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)  # the first one holds the home
    second = cli(home, "run", "--accounts", "40", "--seed", "3")
    waiting = cli(home, "--wait", "600", "run", "--accounts", "40", "--seed", "3")
    out1, err1 = first.communicate(timeout=600)
    out2, err2 = second.communicate(timeout=600)
    out3, err3 = waiting.communicate(timeout=900)
    assert (first.returncode, second.returncode) == (0, 3), (out1, err1, out2, err2)
    assert f"another run is in progress on {home} (pid {first.pid}, since" in err2 and "cs-health run" in err2
    assert waiting.returncode == 0, err3  # --wait: it ran after the first one
    status = [cli(home, "status"), cli(home, "status")]
    for process in status:
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err
        assert "published: snapshot 2026-10-31" in out
    outbox = settings.outbox_dir(home) / "messages.jsonl"
    keys = [json.loads(line)["idempotency_key"] for line in outbox.read_text().splitlines()] if outbox.exists() else []
    assert len(keys) == len(set(keys))


def test_readers_wait_for_a_writer_and_a_writer_for_readers(home, capsys):
    from cs_assets.cli import main

    warehouse = str(settings.warehouse_path(home))
    account = published_ids(home)[0]
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({warehouse!r}); print('held', flush=True); time.sleep(3)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    started = time.monotonic()
    assert main(["--home", str(home), "explain", account]) == 0
    assert time.monotonic() - started >= 1.0
    captured = capsys.readouterr()
    assert "waiting for the warehouse" in captured.err and "health " in captured.out
    holder.wait(timeout=30)

    # a BI tool reading the file: the publish waits for it, then writes
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({warehouse!r}, read_only=True); print('reading', flush=True); time.sleep(3)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert reader.stdout.readline().strip() == "reading"
    result = run_graph(home, DEMO_AS_OF)
    assert result.success
    reader.wait(timeout=30)


def published_ids(home: Path) -> list[str]:
    return published(home)["account_id"].to_list()


def test_a_reader_that_waits_too_long_names_the_writer(home, monkeypatch, capsys):
    from cs_assets.cli import main

    warehouse = str(settings.warehouse_path(home))
    account = published_ids(home)[0]
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({warehouse!r}); print('held', flush=True); time.sleep(20)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        monkeypatch.setenv("CS_HEALTH_READ_WAIT", "1")
        assert main(["--home", str(home), "explain", account]) == 3
        err = capsys.readouterr().err
        assert f"cannot read the warehouse {warehouse}: process {holder.pid} holds it (waited 1 s)" in err
    finally:
        holder.kill()
        holder.wait()


# --------------------------------------------------------------------------- a crash during delivery


class SlowWebhook:
    """A webhook on 127.0.0.1 that takes its time to answer, and logs every post."""

    def __init__(self, delay: float):
        self.posts: list[tuple[str, dict]] = []
        self.delay = delay
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                hook.posts.append((self.headers.get("Idempotency-Key"), body))
                time.sleep(hook.delay)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/services/T0/B0/SECRET"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def history_home(tmp_path_factory) -> Path:
    home = make_home(tmp_path_factory.mktemp("crash"), "home")
    dates = [DEMO_AS_OF - dt.timedelta(days=i) for i in range(14, -1, -1)]
    assert run_graph(home, dates).success  # the file channel got its messages; the webhook none yet
    return home


@pytest.mark.slow
def test_kill_9_during_delivery_then_a_rerun_posts_nothing_twice_without_its_key(history_home, tmp_path):
    home = tmp_path / "home"
    shutil.copytree(history_home, home)
    hook = SlowWebhook(delay=0.4)
    try:
        config = tmp_path / "config"
        shutil.copytree(settings.REPO_ROOT / "config", config, ignore=shutil.ignore_patterns("schema"))
        # every open action of the fortnight is due: enough messages to die in the middle of
        actions = (config / "actions.yaml").read_text().replace("max_age_days: 3", "max_age_days: 30")
        (config / "actions.yaml").write_text(actions)
        env = {"CS_HEALTH_WEBHOOK_URL": hook.url, "CS_HEALTH_CONFIG": str(config)}
        run = cli(home, "run", env=env)
        deadline = time.monotonic() + 300
        while len(hook.posts) < 2 and time.monotonic() < deadline and run.poll() is None:
            time.sleep(0.05)
        assert len(hook.posts) >= 2, run.communicate()
        run.send_signal(signal.SIGKILL)  # mid-delivery: posted, not yet confirmed
        run.wait(timeout=60)
        before_rerun = list(hook.posts)
        hook.delay = 0.0  # slow only to die mid-delivery; the reruns need not wait
        rerun = cli(home, "run", env=env)
        out, err = rerun.communicate(timeout=600)
        assert rerun.returncode == 0, err
        again = cli(home, "run", env=env)
        again.communicate(timeout=600)
        assert again.returncode == 0
    finally:
        hook.close()
    keys = [k for k, _ in hook.posts]
    bodies: dict[str, dict] = {}
    for key, body in hook.posts:
        assert bodies.setdefault(key, body) == body  # a re-send is the same message under the same key
    twice = {k for k in keys if keys.count(k) > 1}
    # only what was in flight when the process died went out again, and with its own key
    assert twice <= {k for k, _ in before_rerun}
    con = duckdb.connect(str(settings.warehouse_path(home)), read_only=True)
    try:
        delivered = {
            r[0]
            for r in con.execute(
                "SELECT action_id FROM published.action_deliveries WHERE channel = 'webhook'"
            ).fetchall()
        }
        left = con.execute("SELECT count(*) FROM published.action_outbox").fetchall()[0][0]
    finally:
        con.close()
    assert delivered == set(keys) and left == 0  # everything due confirmed once; the third run sent nothing new
    assert "SECRET" not in out + err
