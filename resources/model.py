"""The health model file and the snapshot date, as resources every scoring step shares."""

import datetime as dt
from collections.abc import Mapping
from pathlib import Path

import dagster as dg

from cs_assets import settings
from cs_assets.deployment import Deployment, current_deployment
from cs_assets.partitions import run_as_of
from cs_assets.scoring.model_config import HealthModel, load_model


class HealthModelResource(dg.ConfigurableResource):
    """The reviewed model config (YAML), validated against the deployment's indicator catalogue
    each time a step loads it; indicators of sources the deployment lacks are left out."""

    path: str
    # the deployment's config directory ("" = $CS_HEALTH_CONFIG, else the repository's config/)
    config_dir: str = ""

    def deployment(self) -> Deployment:
        return current_deployment(self.config_dir or None)

    def load(self) -> HealthModel:
        return load_model(Path(self.path), self.deployment().catalogue)

    def as_json(self) -> str:
        return self.load().to_json()


class SnapshotResource(dg.ConfigurableResource):
    """The as-of date of a run that has no snapshot partition.

    A partitioned run's latest snapshot date (from its tags) always wins; otherwise `as_of`, then
    CS_HEALTH_AS_OF, then the demo data's date, then today.
    """

    as_of: str = ""

    def as_of_date(self, landing_dir: str, run_tags: Mapping[str, str] | None = None) -> dt.date:
        from_run = run_as_of(dict(run_tags or {}))
        return from_run or settings.resolve_as_of(self.as_of or None, Path(landing_dir))
