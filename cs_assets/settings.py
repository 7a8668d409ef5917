"""Where state lives and which date a run scores.

All state is under one directory, `$CS_HEALTH_HOME` (default `./.cs_health`). The as-of date is
an input: the explicit value, else `CS_HEALTH_AS_OF`, else the demo data's own "today" when the
landing area holds demo data, else yesterday (UTC): the last complete day, which is the newest
snapshot partition. `yesterday` is the only place that picks a date by the wall clock, and only
in that last case.
"""

import datetime as dt
import json
import os
from pathlib import Path

HOME_ENV = "CS_HEALTH_HOME"
AS_OF_ENV = "CS_HEALTH_AS_OF"
ENGINE_ENV = "CS_HEALTH_INDICATOR_ENGINE"  # polars (default) | duckdb | spark
DEFAULT_HOME = ".cs_health"
DEMO_MANIFEST = "_demo_manifest.json"
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_PATH = REPO_ROOT / "config" / "health_model.yaml"


def home_dir() -> Path:
    return Path(os.environ.get(HOME_ENV) or DEFAULT_HOME).resolve()


def landing_dir(home: Path | None = None) -> Path:
    return (home or home_dir()) / "landing"


def staging_dir(home: Path | None = None) -> Path:
    return (home or home_dir()) / "staging"


def gx_record_dir(home: Path | None = None) -> Path:
    """Which rows passed which validity rule (so unchanged rows are not validated again)."""
    return staging_dir(home) / "gx_passes"


def warehouse_path(home: Path | None = None) -> Path:
    return (home or home_dir()) / "warehouse.duckdb"


def outbox_dir(home: Path | None = None) -> Path:
    """Where notifications go when no webhook URL is set (dry run)."""
    return (home or home_dir()) / "outbox"


def reports_dir(home: Path | None = None) -> Path:
    """Where the HTML health reports are written, one file per snapshot."""
    return (home or home_dir()) / "reports"


def models_dir(home: Path | None = None) -> Path:
    """Where calibration writes candidate models and their reports (never the repository)."""
    return (home or home_dir()) / "models"


def dagster_home(home: Path | None = None) -> Path:
    return (home or home_dir()) / "dagster"


def parse_date(value: str, what: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"{what}: expected a date as YYYY-MM-DD, got {value!r}") from None


def demo_manifest(landing: Path) -> dict | None:
    path = landing / DEMO_MANIFEST
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def data_as_of(landing: Path) -> tuple[dt.date, str] | None:
    """The newest day the landing data serves and where that was read, when something says so:
    `CS_HEALTH_AS_OF`, else the example data's manifest. None for real exports (they are current)."""
    env = os.environ.get(AS_OF_ENV)
    if env:
        return parse_date(env, AS_OF_ENV), AS_OF_ENV
    manifest = demo_manifest(landing)
    if manifest is not None:
        where = f"{landing / DEMO_MANIFEST}: as_of"
        return parse_date(manifest["as_of"], where), where
    return None


def yesterday() -> dt.date:
    return dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)


def resolve_as_of(explicit: str | None, landing: Path) -> dt.date:
    if explicit:
        return parse_date(explicit, "as-of date")
    known = data_as_of(landing)
    return known[0] if known is not None else yesterday()
