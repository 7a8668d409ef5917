"""The validation config file as a resource the validation assets load."""

from pathlib import Path

import dagster as dg

from cs_assets.deployment import current_deployment
from cs_assets.validation.config import ValidationConfig, load_validation_config


class ValidationConfigResource(dg.ConfigurableResource):
    """`validation.yaml` of the deployment (or CS_HEALTH_VALIDATION), validated each time a step loads it."""

    path: str
    config_dir: str = ""
    # where `cs-health calibrate` writes its candidate model and report ($CS_HEALTH_HOME/models)
    models_dir: str = ""

    def load(self) -> ValidationConfig:
        catalogue = current_deployment(self.config_dir or None).catalogue
        return load_validation_config(Path(self.path), catalogue=catalogue)
