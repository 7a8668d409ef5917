"""The health model file and the snapshot date, as resources every scoring step shares."""

import datetime as dt
from pathlib import Path

import dagster as dg

from cs_assets import settings
from cs_assets.scoring.model_config import HealthModel, load_model


class HealthModelResource(dg.ConfigurableResource):
    """The reviewed model config (YAML); validated each time a step loads it."""

    path: str

    def load(self) -> HealthModel:
        return load_model(Path(self.path))


class SnapshotResource(dg.ConfigurableResource):
    """The as-of date a run scores. Empty means: CS_HEALTH_AS_OF, else the demo data's date, else today."""

    as_of: str = ""

    def as_of_date(self, landing_dir: str) -> dt.date:
        return settings.resolve_as_of(self.as_of or None, Path(landing_dir))
