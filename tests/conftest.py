"""Test-session setup that must happen before the project is imported."""

import os
import tempfile

from cs_assets import settings

# The snapshot partitions are read from $CS_HEALTH_HOME's landing data when the definitions are
# imported: point it at an empty home, so a developer's own home or shell cannot decide which
# days the tests may score (every test passes its own home to what it runs).
os.environ[settings.HOME_ENV] = tempfile.mkdtemp(prefix="cs-health-tests-home-")
os.environ.pop(settings.AS_OF_ENV, None)
os.environ.pop(settings.ENGINE_ENV, None)  # tests choose their indicator engine themselves


import fcntl  # noqa: E402
import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

SHARED_HOME = "published_demo_home"


@pytest.fixture(scope="session")
def published_demo_home(tmp_path_factory, worker_id) -> Path:
    """The test demo (tests/harness.py) with one published snapshot of DEMO_AS_OF, built once for
    every xdist worker of the session. Read it or copy it; never write to it."""
    from cs_assets.demo.generator import DEMO_AS_OF
    from tests.harness import make_home, run_graph

    # the workers' base temp dirs share a parent unique to this session (xdist's documented way)
    root = tmp_path_factory.getbasetemp() if worker_id == "master" else tmp_path_factory.getbasetemp().parent
    home, done = root / SHARED_HOME, root / f"{SHARED_HOME}.complete"
    with open(root / f"{SHARED_HOME}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one worker builds it, the others wait for it
        if not done.exists():
            shutil.rmtree(home, ignore_errors=True)
            make_home(root, SHARED_HOME)
            assert run_graph(home, DEMO_AS_OF).success
            done.touch()
    return home
