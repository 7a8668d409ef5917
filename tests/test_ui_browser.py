"""The Dagster UI as a data engineer uses it, in a real browser (Playwright driving the system's
headless Chromium): `cs-health ui` on a generated demo home, the asset graph, a one-partition
"Materialize all" launched from the UI, and the published asset's page.

Chromium comes from the system's package manager (`.ci/run` installs Debian's `chromium`, which
sets CS_HEALTH_REQUIRE_BROWSER=1 so that a missing browser fails there instead of skipping).
"""

import os
import re
import socket
import subprocess
import sys
import time

import pytest
import requests

from cs_assets import settings
from cs_assets.demo.generator import DEMO_AS_OF, generate_demo_data
from tests.browser_harness import browser_page, require_browser

pytestmark = pytest.mark.slow  # a real dagster dev and a real browser
require_browser()  # before dagster dev starts: without Chromium the module is skipped (or fails in CI)

STARTUP_SECONDS = 180
RUN_SECONDS = 300


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _graphql(base: str, query: str) -> dict:
    response = requests.post(f"{base}/graphql", json={"query": query}, timeout=30)
    response.raise_for_status()
    return response.json()["data"]


def _location_loaded(base: str) -> bool:
    data = _graphql(
        base,
        "{ workspaceOrError { ... on Workspace { locationEntries { loadStatus "
        "locationOrLoadError { __typename } } } } }",
    )
    entries = data["workspaceOrError"]["locationEntries"]
    return bool(entries) and all(
        e["loadStatus"] == "LOADED" and e["locationOrLoadError"]["__typename"] == "RepositoryLocation" for e in entries
    )


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    """`cs-health ui` on a demo home: the base URL, the home, and the server's log file."""
    home = tmp_path_factory.mktemp("ui") / "home"
    generate_demo_data(settings.landing_dir(home), accounts=120, seed=11)
    port = _free_port()
    log = home / "ui.log"
    env = {k: v for k, v in os.environ.items() if k not in (settings.HOME_ENV, settings.AS_OF_ENV, "DAGSTER_HOME")}
    with log.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "cs_assets.cli", "--home", str(home), "ui", "--port", str(port)],
            cwd=settings.REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_SECONDS
    try:
        while True:
            if server.poll() is not None:
                pytest.fail(f"cs-health ui exited with {server.returncode}:\n{log.read_text()[-4000:]}")
            try:
                if _location_loaded(base):
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the UI did not load the code location in {STARTUP_SECONDS} s:\n{log.read_text()[-4000:]}")
            time.sleep(1)
        yield base, home, log
    finally:
        os.killpg(server.pid, 15)  # dagster dev and the daemon and code server it started
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, 9)


@pytest.fixture(scope="module")
def page(ui):
    with browser_page() as page:
        yield page


def _open(page, url: str) -> None:
    page.goto(url)
    page.wait_for_load_state("networkidle")
    skip = page.get_by_role("button", name="Skip")  # the one-time "join the community" dialog
    if skip.count():
        skip.click()


def _runs(base: str) -> list[dict]:
    data = _graphql(
        base, "{ runsOrError(limit: 20) { ... on Runs { results { runId jobName status tags { key value } } } } }"
    )
    return data["runsOrError"]["results"]


def test_the_ui_runs_one_partition_and_shows_the_published_table(ui, page):
    base, home, log = ui

    # the asset graph: every group of the code location
    _open(page, f"{base}/asset-groups")
    # the page renders the groups after its queries settle; on a loaded machine that is after
    # "networkidle", so each group is waited for (the page's 60 s timeout) instead of sampled once
    for group in ("sources", "indicators", "scoring", "published", "actions", "validation"):
        page.get_by_text(group, exact=True).first.wait_for(state="visible")

    # "Materialize all" of the scoring job for the latest partition: the data's last day, not the clock's
    _open(page, f"{base}/locations/cs_assets.definitions/jobs/health_score_job")
    page.get_by_role("button", name="Materialize all").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("button", name="Latest", exact=True).click()
    assert re.search(rf"\b{DEMO_AS_OF.isoformat()}\b", dialog.inner_text())
    assert not [r for r in _runs(base) if r["jobName"] == "health_score_job"]
    dialog.get_by_role("button", name="Launch 1 run").click()

    deadline = time.monotonic() + RUN_SECONDS
    while True:
        runs = [r for r in _runs(base) if r["jobName"] == "health_score_job"]
        if runs and runs[0]["status"] in ("SUCCESS", "FAILURE", "CANCELED"):
            break
        assert time.monotonic() < deadline, f"the run did not finish in {RUN_SECONDS} s: {runs}"
        time.sleep(0.5)
    assert len(runs) == 1
    run = runs[0]
    assert run["status"] == "SUCCESS", log.read_text()[-4000:]
    assert {t["key"]: t["value"] for t in run["tags"]}["dagster/partition"] == DEMO_AS_OF.isoformat()
    # it ran on the home the UI was started for, into its warehouse
    assert settings.warehouse_path(home).is_file()

    # the published table's page: columns with descriptions, where it lives, its automation gate
    _open(page, f"{base}/assets/published/account_health")
    page.get_by_text("Columns", exact=True).first.wait_for()
    text = page.inner_text("body")
    assert "composite health score, 0-100: the sum of the indicators' points" in text
    assert "the indicator that costs the account the second most points" in text
    assert "published.account_health" in text  # dagster/table_name, shown as its storage
    assert "eager, once every upstream blocking check passed" in text
    assert DEMO_AS_OF.isoformat() in text  # the latest materialization's partition

    # the materialization's metadata: the numbers Dagster plots, the warehouse path, the preview
    _open(page, f"{base}/assets/published/account_health?view=events")
    page.get_by_text("mean_score", exact=True).first.wait_for()
    events = page.inner_text("body")
    for key in ("mean_score", "share_red", "latest_snapshot_accounts", "dagster/row_count", "preview"):
        assert key in events, key
    assert str(settings.warehouse_path(home)) in events

    # its check, passed, with its capitalised description
    _open(page, f"{base}/assets/published/account_health?view=checks")
    page.get_by_text("band_shift").first.wait_for()
    checks = page.inner_text("body")
    assert "The share of accounts changing band since the last published snapshot" in checks
    assert "Evaluation result" in checks and "Passed" in checks
    assert f"snapshots\n{DEMO_AS_OF.isoformat()}" in checks  # which snapshot the evaluation covered
