"""The scoring job on Dagster's Postgres storage (deploy/postgres_storage.yaml), against a
throwaway Postgres server started from the system's binaries (apt: postgresql)."""

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from checks.score_checks import POINTS_SUM_TO_SCORE
from cs_assets.demo.generator import DEMO_AS_OF
from cs_assets.publish.assets import ACCOUNT_HEALTH
from tests.harness import copy_home, published, run_graph

REPO = Path(__file__).resolve().parent.parent
PASSWORD = "not-a-real-secret-42"


def _postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


def _as_postgres_user(cmd: list[str]) -> list[str]:
    # the server refuses to run as root; the package's `postgres` user runs it
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@pytest.fixture(scope="module")
def postgres() -> Iterator[dict[str, str]]:
    bin_dir = _postgres_bin()
    if bin_dir is None:
        if os.environ.get("CS_HEALTH_REQUIRE_POSTGRES"):
            pytest.fail("Postgres is required here: no /usr/lib/postgresql/*/bin (apt: postgresql)")
        pytest.skip("no Postgres server binaries (apt: postgresql)")
    root = Path(tempfile.mkdtemp(prefix="cs-health-pg-"))
    data, sockets = root / "data", root / "sockets"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    pwfile = root / "pw"
    pwfile.write_text(PASSWORD)
    if os.geteuid() == 0:
        shutil.chown(pwfile, "postgres")

    def run(program: str, *args: str) -> None:
        subprocess.run(_as_postgres_user([str(bin_dir / program), *args]), check=True, capture_output=True)

    # TCP (what Dagster uses) needs the password; md5, not SCRAM: Dagster's Postgres storage opens
    # a connection per event (NullPool), and SCRAM's key derivation costs more than the event (~3 ms
    # each, ~1,600 connections a run). The socket (trust) is only for setting the md5 password.
    run(
        "initdb",
        "-D",
        str(data),
        "-U",
        "dagster",
        "--pwfile",
        str(pwfile),
        "--auth-local=trust",
        "--auth-host=md5",
        "--no-sync",
    )
    options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off -c password_encryption=md5"
    run("pg_ctl", "-D", str(data), "-o", options, "-l", str(root / "server.log"), "-w", "start")
    run(
        "psql",
        "-h",
        str(sockets),
        "-p",
        str(port),
        "-U",
        "dagster",
        "-d",
        "postgres",
        "-v",
        "ON_ERROR_STOP=1",
        "-c",
        f"ALTER USER dagster PASSWORD '{PASSWORD}'",
    )
    try:
        yield {
            "DAGSTER_PG_HOST": "127.0.0.1",
            "DAGSTER_PG_PORT": str(port),
            "DAGSTER_PG_USER": "dagster",
            "DAGSTER_PG_PASSWORD": PASSWORD,
            "DAGSTER_PG_DB": "postgres",
        }
    finally:
        run("pg_ctl", "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
def test_the_scoring_job_runs_on_postgres_storage(postgres, published_demo_home, tmp_path, monkeypatch):
    for name, value in postgres.items():
        monkeypatch.setenv(name, value)
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    config = (REPO / "deploy/dagster.yaml").read_text() + "\n" + (REPO / "deploy/postgres_storage.yaml").read_text()
    (dagster_home / "dagster.yaml").write_text(config)
    instance = dg.DagsterInstance.from_config(str(dagster_home))
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"

    home = copy_home(published_demo_home, tmp_path / "home")
    expected = published(home)
    result = run_graph(home, DEMO_AS_OF, instance=instance)
    assert result.success
    assert published(home).drop("computed_at").equals(expected.drop("computed_at"))  # the same scores

    # what the UI and the sensors read from the instance is in Postgres, not in files
    assert [r.run_id for r in instance.get_runs()] == [result.run_id]
    event = instance.get_latest_materialization_event(ACCOUNT_HEALTH)
    assert event is not None and event.run_id == result.run_id
    assert not list(dagster_home.rglob("*.db"))
    checks = instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(dg.AssetKey("account_health_scores"), POINTS_SUM_TO_SCORE), limit=1
    )
    assert checks and checks[0].run_id == result.run_id
    # the password came from the environment and is nowhere in what Dagster stored
    text = "\n".join(str(e) for e in instance.all_logs(result.run_id))
    assert PASSWORD not in text
    instance.dispose()
