"""Shared helpers: run the real graph against a home directory, read what it published."""

import dataclasses
import datetime as dt
import os
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl

from cs_assets import settings
from cs_assets.definitions import HEALTH_SCORE_JOB, VALIDATION_JOB, build_definitions
from cs_assets.demo.generator import generate_demo_data
from cs_assets.deployment import load_deployment
from cs_assets.partitions import run_tags_for
from resources import build_resources
from resources.gx_record import GxRecordResource

ACCOUNTS = 120
SEED = 11
# The validity checks' record of passes (checks/gx_incremental.py), shared by the in-process runs
# of a test session (tests/conftest.py sets it): most tests score the same generated data, whose
# days GX then validates once per session instead of once per home. A day whose rows a test
# changed has another fingerprint and is validated again, so a broken value still fails its
# check; tests of the record itself (tests/test_gx_checks.py) keep one per home.
SHARED_GX_RECORD_ENV = "CS_HEALTH_TESTS_GX_RECORD"


def definitions(
    home: Path,
    config_dir: Path | None = None,
    model_path: Path | None = None,
    actions_path: Path | None = None,
    validation_path: Path | None = None,
    indicator_engine: str | None = None,
    writeback_path: Path | None = None,
    shared_gx_record: bool = True,
) -> dg.Definitions:
    """The project's definitions for one home and deployment, wired by `resources.build_resources`."""
    deployment = load_deployment(config_dir)
    overrides = {
        "model": model_path,
        "actions": actions_path,
        "validation": validation_path,
        "writeback": writeback_path,
    }
    paths = dataclasses.replace(deployment.paths, **{k: Path(v) for k, v in overrides.items() if v is not None})
    deployment = dataclasses.replace(deployment, paths=paths)
    # no webhook URL in tests unless a test sets one: notifications go to the home's outbox
    resources = build_resources(paths, home, indicator_engine, backoff_seconds=0.01)
    if shared_gx_record and os.environ.get(SHARED_GX_RECORD_ENV):
        resources["gx_record"] = GxRecordResource(directory=os.environ[SHARED_GX_RECORD_ENV])
    return build_definitions(deployment, home, resources)


def default_definitions() -> dg.Definitions:
    """The definitions `dagster dev` loads: the default deployment and resources."""
    return build_definitions(load_deployment(), settings.home_dir())


def run_graph(
    home: Path,
    as_of: dt.date | list[dt.date],
    instance: dg.DagsterInstance | None = None,
    model_path: Path | None = None,
    actions_path: Path | None = None,
    config_dir: Path | None = None,
    indicator_engine: str | None = None,
    writeback_path: Path | None = None,
    shared_gx_record: bool = True,
    selection: list[str] | None = None,
) -> dg.ExecuteInProcessResult:
    """One real run of health_score_job for a snapshot date, or for a range of dates in one run;
    of only the `selection` of its assets (and their checks) when one is given."""
    dates = as_of if isinstance(as_of, list) else [as_of]
    defs = definitions(
        home,
        config_dir,
        model_path,
        actions_path,
        indicator_engine=indicator_engine,
        writeback_path=writeback_path,
        shared_gx_record=shared_gx_record,
    )
    job = defs.resolve_job_def(HEALTH_SCORE_JOB)
    return job.execute_in_process(
        instance=instance,
        tags=run_tags_for(dates),
        asset_selection=[dg.AssetKey.from_user_string(name) for name in selection] if selection else None,
        raise_on_error=False,
    )


def run_validation(
    home: Path,
    instance: dg.DagsterInstance | None = None,
    model_path: Path | None = None,
    validation_path: Path | None = None,
    config_dir: Path | None = None,
) -> dg.ExecuteInProcessResult:
    """A real run of validation_job over the published history (the CRM from staging)."""
    job = definitions(home, config_dir, model_path, None, validation_path).resolve_job_def(VALIDATION_JOB)
    return job.execute_in_process(instance=instance, raise_on_error=False)


def published(home: Path, table: str = "account_health") -> pl.DataFrame:
    con = duckdb.connect(str(settings.warehouse_path(home)), read_only=True)
    try:
        return con.sql(f"SELECT * FROM published.{table} ORDER BY ALL").pl()
    finally:
        con.close()


def copy_home(source: Path, target: Path) -> Path:
    """A copy of a whole home (landing data, staging, warehouse, Dagster instance) to change freely."""
    shutil.copytree(source, target)
    return target


def make_home(root: Path, name: str) -> Path:
    home = root / name
    generate_demo_data(settings.landing_dir(home), accounts=ACCOUNTS, seed=SEED)
    return home
