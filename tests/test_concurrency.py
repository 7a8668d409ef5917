"""Processes at once and processes killed: the home lock, readers and writers of the warehouse,
and a crash in the middle of delivery."""

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from cs_assets import settings
from cs_assets.demo.generator import DEMO_AS_OF
from resources.home_lock import HomeBusyError, open_duckdb
from tests.harness import copy_home, make_home, published, run_graph
from tests.http_harness import Webhook

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture()
def home(published_demo_home, tmp_path) -> Path:
    return copy_home(published_demo_home, tmp_path / "home")


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


@pytest.fixture(scope="module")
def history_home(tmp_path_factory) -> Path:
    home = make_home(tmp_path_factory.mktemp("crash"), "home")
    dates = [DEMO_AS_OF - dt.timedelta(days=i) for i in range(14, -1, -1)]
    assert run_graph(home, dates).success  # the file channel got its messages; the webhook none yet
    return home


@pytest.mark.slow
def test_kill_9_during_delivery_then_a_rerun_posts_nothing_twice_without_its_key(
    history_home, tmp_path, monkeypatch, capsys
):
    from cs_assets.cli import main

    home = tmp_path / "home"
    shutil.copytree(history_home, home)
    hook = Webhook(delay=0.4)
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
        # only the killed run needs a process of its own: the reruns find what it left behind
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        capsys.readouterr()
        assert main(["--home", str(home), "run"]) == 0
        rerun = capsys.readouterr()
        out, err = rerun.out, rerun.err
        assert main(["--home", str(home), "run"]) == 0
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


def test_only_a_real_lock_conflict_is_waited_for_not_an_error_that_mentions_lock(tmp_path):

    def never(_seconds: float) -> None:
        raise AssertionError("waited for an error that is not a lock conflict")

    # a home under a folder named "locks" whose warehouse folder is missing: fails at once
    missing = tmp_path / "locks" / "gone" / "warehouse.duckdb"
    with pytest.raises(duckdb.IOException, match="No such file or directory"):
        open_duckdb(str(missing), read_only=False, wait_seconds=600, sleep=never)
    # another process holding the file: that is waited for, and named
    held = tmp_path / "locks" / "warehouse.duckdb"
    held.parent.mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(held)!r}); print(1, flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline()
        with pytest.raises(HomeBusyError, match=rf"process {holder.pid} holds it"):
            open_duckdb(str(held), read_only=False, wait_seconds=0)
    finally:
        holder.kill()
        holder.wait()
