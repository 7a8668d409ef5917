"""Benchmark of the paths a data engineer waits on; prints figures, asserts nothing.

    uv run python bench/ui_path.py [--repo PATH] [--accounts N] [--repeat N]

1. importing the code location (`cs_assets.definitions`, then building `defs()`), in a fresh
   interpreter, the median of --repeat runs;
2. `cs-health run` on the default demo data (a fresh home, demo data generated beforehand), wall
   clock of the whole command;
3. a one-partition "Materialize all" of `health_score_job` through the UI's server: `dagster dev`
   on another fresh home with the same data, the run launched through the webserver's GraphQL API
   (what the launch dialog sends), timed from launch to success, and its ratio to (2).

--repo measures another checkout (for example an older commit in a `git worktree`) with this
script, so before and after come from the same procedure on the same machine.
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent.parent
IMPORT_SNIPPET = (
    "import time; t = time.perf_counter(); from cs_assets.definitions import defs; "
    "d = defs() if callable(defs) else defs; "
    "d.resolve_asset_graph(); print(time.perf_counter() - t)"
)
LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}"""
STATUS = "query Status($id: ID!) { runOrError(runId: $id) { ... on Run { status startTime endTime } } }"


def _env(repo: Path, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CS_HEALTH_") and k != "DAGSTER_HOME"}
    env.update(
        CS_HEALTH_HOME=str(home),
        DAGSTER_HOME=str(home / "dagster"),
        DAGSTER_DISABLE_TELEMETRY="1",
        PYTHONPATH=str(repo),
    )
    return env


def _python(repo: Path) -> str:
    venv = repo / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def _instance(repo: Path, home: Path) -> None:
    # the instance settings the README gives for the UI (one run at a time)
    (home / "dagster").mkdir(parents=True, exist_ok=True)
    shutil.copy(repo / "deploy" / "dagster.yaml", home / "dagster" / "dagster.yaml")


def measure_import(repo: Path, home: Path, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        out = subprocess.run(
            [_python(repo), "-c", IMPORT_SNIPPET],
            cwd=repo,
            env=_env(repo, home),
            capture_output=True,
            text=True,
            check=True,
        )
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


def measure_cli_run(repo: Path, home: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        [_python(repo), "-m", "cs_assets.cli", "run"],
        cwd=repo,
        env=_env(repo, home),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _graphql(base: str, query: str, variables: dict | None = None) -> dict:
    response = requests.post(f"{base}/graphql", json={"query": query, "variables": variables or {}}, timeout=60)
    response.raise_for_status()
    return response.json()["data"]


def measure_ui_run(repo: Path, home: Path, partition: str) -> float:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(home / "dagster-dev.log", "w")
    server = subprocess.Popen(
        [_python(repo), "-m", "dagster", "dev", "-w", str(repo / "workspace.yaml"), "-p", str(port)],
        cwd=repo,
        env=_env(repo, home),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        location = None
        while location is None:
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError(f"dagster dev did not load; see {home / 'dagster-dev.log'}")
            try:
                data = _graphql(
                    base, "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"
                )
                entries = data["workspaceOrError"]["locationEntries"]
                if entries and entries[0]["loadStatus"] == "LOADED":
                    location = entries[0]["name"]
            except requests.RequestException:
                pass
            time.sleep(1)
        params = {
            "selector": {
                "repositoryLocationName": location,
                "repositoryName": "__repository__",
                "jobName": "health_score_job",
            },
            "runConfigData": {},
            "executionMetadata": {"tags": [{"key": "dagster/partition", "value": partition}]},
        }
        started = time.perf_counter()
        launched = _graphql(base, LAUNCH, {"params": params})["launchRun"]
        if launched["__typename"] != "LaunchRunSuccess":
            raise RuntimeError(f"launch failed: {json.dumps(launched)}")
        run_id = launched["run"]["runId"]
        while True:
            status = _graphql(base, STATUS, {"id": run_id})["runOrError"]["status"]
            if status in ("SUCCESS", "FAILURE", "CANCELED"):
                break
            time.sleep(0.5)
        elapsed = time.perf_counter() - started
        if status != "SUCCESS":
            raise RuntimeError(f"run {run_id} ended {status}; see {home / 'dagster-dev.log'}")
        return elapsed
    finally:
        os.killpg(server.pid, 15)  # dagster dev, its daemon, webserver and code server
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, 9)
            server.wait()
        log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", type=Path, default=HERE, help="checkout to measure (default: this one)")
    parser.add_argument("--accounts", type=int, default=2000, help="demo accounts (default 2000, as `cs-health run`)")
    parser.add_argument("--repeat", type=int, default=3, help="fresh-interpreter imports to take the median of")
    args = parser.parse_args()
    repo = args.repo.resolve()
    with tempfile.TemporaryDirectory(prefix="cs-health-bench-") as tmp:
        cli_home, ui_home = Path(tmp) / "cli", Path(tmp) / "ui"
        subprocess.run(
            [_python(repo), "-m", "cs_assets.cli", "demo-data", "--accounts", str(args.accounts)],
            cwd=repo,
            env=_env(repo, cli_home),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        shutil.copytree(cli_home / "landing", ui_home / "landing")
        partition = json.loads((cli_home / "landing" / "_demo_manifest.json").read_text())["as_of"]
        _instance(repo, ui_home)
        print(
            f"checkout: {repo}  accounts: {args.accounts:,}  snapshot: {partition}  cores: {os.cpu_count()}", flush=True
        )
        imported = measure_import(repo, cli_home, args.repeat)
        print(f"definitions import + defs()        {imported:7.1f} s  (median of {args.repeat})", flush=True)
        cli = measure_cli_run(repo, cli_home)
        print(f"cs-health run (whole command)      {cli:7.1f} s", flush=True)
        ui = measure_ui_run(repo, ui_home, partition)
        print(f"UI one-partition Materialize all   {ui:7.1f} s  ({ui / cli:.2f}x cs-health run)", flush=True)


if __name__ == "__main__":
    main()
