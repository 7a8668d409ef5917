"""The health model file and the snapshot date, as resources every scoring step shares."""

import datetime as dt
import json
import os
from collections.abc import Mapping
from pathlib import Path

import dagster as dg

from cs_assets import settings
from cs_assets.deployment import Deployment, current_deployment
from cs_assets.partitions import run_as_of
from cs_assets.scoring.model_config import HealthModel, load_model, parse_model


class HealthModelResource(dg.ConfigurableResource):
    """The reviewed model config (YAML), validated against the deployment's indicator catalogue
    each time a step loads it; indicators of sources the deployment lacks are left out."""

    path: str
    # the deployment's config directory ("" = $CS_HEALTH_CONFIG, else the repository's config/)
    config_dir: str = ""
    # where each run's model is pinned ("" = not pinned: every load reads the file)
    pin_dir: str = ""

    def deployment(self) -> Deployment:
        return current_deployment(self.config_dir or None)

    def load(self) -> HealthModel:
        """The model file as it is now, validated against the deployment's catalogue."""
        return load_model(Path(self.path), self.deployment().catalogue)

    def for_run(self, context) -> HealthModel:
        """The model of this run: read from the file by the run's first step that asks, pinned,
        and the same for every later step and for a re-execution of the run, even if the file
        changes meanwhile (steps may be separate processes)."""
        if not self.pin_dir:
            return self.load()
        run = context.run
        pinned = Path(self.pin_dir) / f"{run.root_run_id or run.run_id}.json"
        if not pinned.exists():
            model = self.load()
            pinned.parent.mkdir(parents=True, exist_ok=True)
            tmp = pinned.with_name(f".{pinned.name}.{os.getpid()}")
            tmp.write_text(json.dumps({"version": model.version, "model": model.document}), encoding="utf-8")
            try:
                # the first step to pin wins; a step that raced it reads what it pinned
                os.link(tmp, pinned)
            except FileExistsError:
                pass
            finally:
                tmp.unlink(missing_ok=True)
        stored = json.loads(pinned.read_text(encoding="utf-8"))
        model = parse_model(stored["model"], source=f"the model pinned to run {run.run_id} ({pinned})")
        if model.version != stored["version"]:
            raise ValueError(f"{pinned}: the pinned model does not give its version {stored['version']}")
        return model


class SnapshotResource(dg.ConfigurableResource):
    """The as-of date of a run that has no snapshot partition.

    A partitioned run's latest snapshot date (from its tags) always wins; otherwise `as_of`, then
    CS_HEALTH_AS_OF, then the demo data's date, then today.
    """

    as_of: str = ""

    def as_of_date(self, landing_dir: str, run_tags: Mapping[str, str] | None = None) -> dt.date:
        from_run = run_as_of(dict(run_tags or {}))
        return from_run or settings.resolve_as_of(self.as_of or None, Path(landing_dir))
