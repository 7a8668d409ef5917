"""The reviewed action rules file, as a resource the actions assets load and validate."""

from pathlib import Path

import dagster as dg

from cs_assets.actions.rules import ActionRules, load_action_rules
from cs_assets.deployment import current_deployment
from cs_assets.scoring.model_config import HealthModel


class ActionRulesResource(dg.ConfigurableResource):
    """`actions.yaml` of the deployment (or CS_HEALTH_ACTIONS); validated against the health
    model and the indicator catalogue on load."""

    path: str
    config_dir: str = ""

    def load(self, model: HealthModel | None = None) -> ActionRules:
        catalogue = current_deployment(self.config_dir or None).catalogue
        return load_action_rules(Path(self.path), model=model, catalogue=catalogue)
