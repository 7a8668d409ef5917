"""The reviewed action rules file, as a resource the actions asset loads and validates."""

from pathlib import Path

import dagster as dg

from cs_assets.actions.rules import ActionRules, load_action_rules
from cs_assets.scoring.model_config import HealthModel


class ActionRulesResource(dg.ConfigurableResource):
    """`config/actions.yaml` (or CS_HEALTH_ACTIONS); validated against the health model on load."""

    path: str

    def load(self, model: HealthModel | None = None) -> ActionRules:
        return load_action_rules(Path(self.path), model=model)
