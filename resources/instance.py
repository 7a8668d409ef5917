"""A home's Dagster instance: created once, with every path inside the home.

The instance keeps what the gate reads (which load passed which check), the volume baselines and
the lineage. A copy of a home (a test copy of production) or a moved home must keep writing into
itself: if its event log were still the original's, loads tried in the copy would count as the
original's history. So `dagster.yaml` names no absolute path: Dagster derives its own storages from
the directory it loads (`DAGSTER_HOME`), and the event log's `base_dir` is relative to it
(resources/event_log_storage.py resolves it). An instance file that points outside its home (one
written by an older cs-health, then copied) is refused, naming the path.
"""

import fcntl
import os
from pathlib import Path
from typing import Any

import dagster as dg
import yaml
from dagster._core.instance.ref import InstanceRef

from cs_assets import settings

# the documented deployment's settings: telemetry off, one run at a time, bounded tick history
INSTANCE_YAML = settings.REPO_ROOT / "deploy" / "dagster.yaml"
# Dagster's own place for the SQLite event log, relative to the instance directory
EVENT_LOG_DIR = "history/runs"
EVENT_LOG_STORAGE = {"module": "resources.event_log_storage", "class": "PooledSqliteEventLogStorage"}


class HomeInstanceError(ValueError):
    """A home's instance file that would read or write outside the home."""


def instance_yaml() -> str:
    """A new home's instance: deploy/dagster.yaml, with the event log in Dagster's usual place
    (`history/runs`) kept by `PooledSqliteEventLogStorage` (resources/event_log_storage.py says why)."""
    return INSTANCE_YAML.read_text(encoding="utf-8") + (
        "\n# Written by cs-health for this home: Dagster's SQLite event log, its engines kept between events.\n"
        "# The path is relative to this directory (DAGSTER_HOME), so the home can be copied or moved.\n"
        "event_log_storage:\n"
        f"  module: {EVENT_LOG_STORAGE['module']}\n"
        f"  class: {EVENT_LOG_STORAGE['class']}\n"
        "  config:\n"
        f"    base_dir: {EVENT_LOG_DIR}\n"
    )


def _paths(value: Any, where: str = "") -> list[tuple[str, str]]:
    """(key path, value) of every absolute path in a parsed instance file."""
    if isinstance(value, dict):
        return [found for key, item in value.items() for found in _paths(item, f"{where}.{key}" if where else key)]
    if isinstance(value, list):
        return [found for i, item in enumerate(value) for found in _paths(item, f"{where}[{i}]")]
    if isinstance(value, str) and os.path.isabs(value):
        return [(where, value)]
    return []


def outside_paths(dagster_home: Path) -> list[str]:
    """Each absolute path of `dagster_home`'s instance file that is not inside the home, as
    'key: path' (none for a file of this version, which names no absolute path)."""
    config = dagster_home / "dagster.yaml"
    try:
        parsed = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise HomeInstanceError(f"{config}: not valid YAML: {error}") from None
    home = dagster_home.resolve().parent
    return [f"{key}: {path}" for key, path in _paths(parsed) if not Path(path).resolve().is_relative_to(home)]


def check_self_contained(dagster_home: Path) -> None:
    """Refuse an instance file that would read or write outside its home (a copied or moved home)."""
    outside = outside_paths(dagster_home)
    if outside:
        config = dagster_home / "dagster.yaml"
        raise HomeInstanceError(
            f"{config} points outside this home ({'; '.join(outside)}): the home was copied or moved "
            f"from there, and its runs would be recorded in the original. Use a path relative to "
            f"{dagster_home} (the event log: `base_dir: {EVENT_LOG_DIR}`), or delete {config} "
            "to start this home's run history afresh"
        )


def _event_log_here(config: Path) -> dict:
    """The instance file's event log with its relative `base_dir` made absolute for this process
    (a CLI process need not set DAGSTER_HOME); nothing to change for another storage."""
    parsed = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
    storage = parsed.get("event_log_storage") or {}
    if storage.get("class") != EVENT_LOG_STORAGE["class"]:
        return {}
    configured = dict(storage.get("config") or {})
    base_dir = configured.get("base_dir", EVENT_LOG_DIR)
    if isinstance(base_dir, str):
        configured["base_dir"] = str(config.parent / base_dir)  # an absolute base_dir stays as it is
    return {"event_log_storage": {**storage, "config": configured}}


def home_instance(home: Path) -> dg.DagsterInstance:
    """The home's Dagster instance, created (and its SQLite schema migrated) by one process at a
    time: two processes creating it at once can leave it unreadable (two alembic heads)."""
    dagster_home = settings.dagster_home(home)
    dagster_home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
    with open(dagster_home / ".create.lock", "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            config = dagster_home / "dagster.yaml"
            if not config.exists():
                config.write_text(instance_yaml(), encoding="utf-8")
            check_self_contained(dagster_home)
            ref = InstanceRef.from_dir(str(dagster_home), overrides=_event_log_here(config))
            instance = dg.DagsterInstance.from_ref(ref)
            # touch every storage now, under the lock, so none is created later by two processes
            instance.get_runs(limit=1)
            instance.get_latest_materialization_event(dg.AssetKey("_"))
            instance.all_instigator_state()
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    return instance
