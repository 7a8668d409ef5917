"""Resources of the health-score project: built in one place, from a deployment's config paths
and a state directory ($CS_HEALTH_HOME). The definitions, the CLI and the tests all use it."""

import os
from pathlib import Path

from cs_assets import settings
from cs_assets.deployment import ConfigPaths, config_paths
from resources.action_rules import ActionRulesResource
from resources.crm import CrmWritebackResource
from resources.gx_record import GxRecordResource
from resources.indicator_engine import IndicatorEngineResource
from resources.landing import LandingZoneResource
from resources.model import HealthModelResource, SnapshotResource
from resources.notifier import NotifierResource
from resources.report import HealthReportResource
from resources.staging import StagingParquetIOManager
from resources.validation import ValidationConfigResource
from resources.warehouse import WarehouseResource


def build_resources(paths: ConfigPaths, home: Path, indicator_engine: str | None = None, **notifier_options) -> dict:
    """Every resource the definitions need, for one deployment and one state directory; the
    indicator engine is `indicator_engine`, else $CS_HEALTH_INDICATOR_ENGINE, else polars."""
    config_dir = str(paths.config_dir)
    engine = indicator_engine or os.environ.get(settings.ENGINE_ENV) or "polars"
    return {
        "landing": LandingZoneResource(landing_dir=str(settings.landing_dir(home)), sources_config=str(paths.sources)),
        "io_manager": StagingParquetIOManager(base_dir=str(settings.staging_dir(home))),
        "warehouse": WarehouseResource(database=str(settings.warehouse_path(home))),
        "health_model": HealthModelResource(
            path=str(paths.model), config_dir=config_dir, pin_dir=str(settings.staging_dir(home) / "run_models")
        ),
        "snapshot": SnapshotResource(),
        "action_rules": ActionRulesResource(path=str(paths.actions), config_dir=config_dir),
        "notifier": NotifierResource(outbox_dir=str(settings.outbox_dir(home)), **notifier_options),
        "report": HealthReportResource(directory=str(settings.reports_dir(home)), deployment=config_dir),
        "crm": CrmWritebackResource(path=str(paths.writeback), outbox_dir=str(settings.outbox_dir(home))),
        "indicator_engine": IndicatorEngineResource(engine=engine),
        "gx_record": GxRecordResource(directory=str(settings.gx_record_dir(home))),
        "validation": ValidationConfigResource(
            path=str(paths.validation), config_dir=config_dir, models_dir=str(settings.models_dir(home))
        ),
    }


RESOURCES = build_resources(config_paths(), settings.home_dir())
