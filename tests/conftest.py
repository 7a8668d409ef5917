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
# one GX record of passes for the whole session (tests/harness.py says why): the controller sets
# it before the xdist workers start, and they inherit it
os.environ.setdefault("CS_HEALTH_TESTS_GX_RECORD", tempfile.mkdtemp(prefix="cs-health-tests-gx-record-"))


import fcntl  # noqa: E402
import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402


def _shared_home(tmp_path_factory, worker_id, name: str, build) -> Path:
    """A home built once for every xdist worker of the session by `build(root, name)`."""
    # the workers' base temp dirs share a parent unique to this session (xdist's documented way)
    root = tmp_path_factory.getbasetemp() if worker_id == "master" else tmp_path_factory.getbasetemp().parent
    home, done = root / name, root / f"{name}.complete"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one worker builds it, the others wait for it
        if not done.exists():
            shutil.rmtree(home, ignore_errors=True)
            build(root, name)
            done.touch()
    return home


@pytest.fixture(scope="session")
def published_demo_home(tmp_path_factory, worker_id) -> Path:
    """The test demo (tests/harness.py) with one published snapshot of DEMO_AS_OF, built once for
    every xdist worker of the session. Read it or copy it; never write to it."""
    from cs_assets.demo.generator import DEMO_AS_OF
    from resources.instance import home_instance
    from tests.harness import make_home, run_graph

    def build(root: Path, name: str) -> None:
        # with the home's own instance: a test may run one step of a copy, whose gate reads the
        # checks these runs recorded
        home = make_home(root, name)
        instance = home_instance(home)
        try:
            assert run_graph(home, DEMO_AS_OF, instance=instance).success
        finally:
            instance.dispose()

    return _shared_home(tmp_path_factory, worker_id, "published_demo_home", build)


@pytest.fixture(scope="session")
def long_history_home(tmp_path_factory, worker_id) -> Path:
    """The test demo with 150 daily snapshots up to DEMO_AS_OF (enough outcomes at 30 and 60
    days for a validation run), built once per session. Copy it; never write to it."""
    import datetime as dt

    from cs_assets.demo.generator import DEMO_AS_OF
    from tests.harness import make_home, run_graph

    def build(root: Path, name: str) -> None:
        dates = [DEMO_AS_OF - dt.timedelta(days=i) for i in range(149, -1, -1)]
        assert run_graph(make_home(root, name), dates).success

    return _shared_home(tmp_path_factory, worker_id, "long_history_home", build)


def pytest_collection_modifyitems(config, items) -> None:
    """Modules with end-to-end (`slow`) tests first, each module's tests in their order: xdist
    hands out whole files in collection order, and a long file handed out last keeps one worker
    busy while the other has nothing left to do."""
    slow = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow)
