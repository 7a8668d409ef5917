"""The validation config file as a resource the validation assets load."""

from pathlib import Path

import dagster as dg

from cs_assets.validation.config import ValidationConfig, load_validation_config


class ValidationConfigResource(dg.ConfigurableResource):
    """`config/validation.yaml` (or CS_HEALTH_VALIDATION), validated each time a step loads it."""

    path: str

    def load(self) -> ValidationConfig:
        return load_validation_config(Path(self.path))
