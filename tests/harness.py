"""Shared helpers: run the real graph against a home directory, read what it published."""

import datetime as dt
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl

from cs_assets import settings
from cs_assets.actions.rules import DEFAULT_ACTIONS_PATH
from cs_assets.demo.generator import generate_demo_data
from cs_assets.definitions import defs
from cs_assets.partitions import run_tags_for
from resources.action_rules import ActionRulesResource
from resources.landing import LandingZoneResource
from resources.model import HealthModelResource, SnapshotResource
from resources.notifier import NotifierResource
from resources.staging import StagingParquetIOManager
from resources.warehouse import WarehouseResource

ACCOUNTS = 120
SEED = 11
# what health_score_job runs (the validation group reads the whole history and runs on its own)
ASSETS = [a for a in defs.assets if "validation" not in {a.group_names_by_key[k] for k in a.keys}]
CHECKS = list(defs.asset_checks)


def run_graph(
    home: Path,
    as_of: dt.date | list[dt.date],
    instance: dg.DagsterInstance | None = None,
    model_path: Path = settings.DEFAULT_MODEL_PATH,
    actions_path: Path = DEFAULT_ACTIONS_PATH,
) -> dg.ExecuteInProcessResult:
    """One real run of the whole graph for a snapshot date, or for a range of dates in one run."""
    dates = as_of if isinstance(as_of, list) else [as_of]
    resources = {
        "landing": LandingZoneResource(landing_dir=str(settings.landing_dir(home))),
        "io_manager": StagingParquetIOManager(base_dir=str(settings.staging_dir(home))),
        "warehouse": WarehouseResource(database=str(settings.warehouse_path(home))),
        "health_model": HealthModelResource(path=str(model_path)),
        "snapshot": SnapshotResource(),
        "action_rules": ActionRulesResource(path=str(actions_path)),
        # no webhook URL in tests unless a test sets one: notifications go to the home's outbox
        "notifier": NotifierResource(outbox_dir=str(settings.outbox_dir(home)), backoff_seconds=0.01),
    }
    return dg.materialize(
        [*ASSETS, *CHECKS], resources=resources, raise_on_error=False, instance=instance, tags=run_tags_for(dates)
    )


def run_validation(
    home: Path,
    instance: dg.DagsterInstance | None = None,
    model_path: Path = settings.DEFAULT_MODEL_PATH,
    validation_path: Path | None = None,
) -> dg.ExecuteInProcessResult:
    """A real run of the validation group over the published history (the CRM from staging)."""
    from cs_assets.validation.config import DEFAULT_VALIDATION_PATH
    from resources.validation import ValidationConfigResource

    resources = {
        "landing": LandingZoneResource(landing_dir=str(settings.landing_dir(home))),
        "io_manager": StagingParquetIOManager(base_dir=str(settings.staging_dir(home))),
        "warehouse": WarehouseResource(database=str(settings.warehouse_path(home))),
        "health_model": HealthModelResource(path=str(model_path)),
        "validation": ValidationConfigResource(path=str(validation_path or DEFAULT_VALIDATION_PATH)),
        # required by the unselected assets the CRM input comes from
        "snapshot": SnapshotResource(),
        "action_rules": ActionRulesResource(path=str(DEFAULT_ACTIONS_PATH)),
        "notifier": NotifierResource(outbox_dir=str(settings.outbox_dir(home))),
    }
    return dg.materialize(
        list(defs.assets), selection=dg.AssetSelection.groups("validation"), resources=resources,
        raise_on_error=False, instance=instance,
    )


def published(home: Path, table: str = "account_health") -> pl.DataFrame:
    con = duckdb.connect(str(settings.warehouse_path(home)), read_only=True)
    try:
        return con.sql(f"SELECT * FROM published.{table} ORDER BY ALL").pl()
    finally:
        con.close()


def make_home(root: Path, name: str) -> Path:
    home = root / name
    generate_demo_data(settings.landing_dir(home), accounts=ACCOUNTS, seed=SEED)
    return home


