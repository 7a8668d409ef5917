"""Resources of the health-score project, built once here and shared by the definitions."""

from cs_assets import settings
from cs_assets.actions.rules import actions_path
from cs_assets.validation.config import validation_path
from resources.action_rules import ActionRulesResource
from resources.landing import LandingZoneResource
from resources.model import HealthModelResource, SnapshotResource
from resources.notifier import NotifierResource
from resources.staging import StagingParquetIOManager
from resources.validation import ValidationConfigResource
from resources.warehouse import WarehouseResource

landing_zone = LandingZoneResource(landing_dir=str(settings.landing_dir()))
staging_io_manager = StagingParquetIOManager(base_dir=str(settings.staging_dir()))
warehouse = WarehouseResource(database=str(settings.warehouse_path()))
health_model = HealthModelResource(path=str(settings.model_path()))
snapshot = SnapshotResource()
action_rules = ActionRulesResource(path=str(actions_path()))
notifier = NotifierResource(outbox_dir=str(settings.outbox_dir()))
validation = ValidationConfigResource(path=str(validation_path()))

RESOURCES = {
    "landing": landing_zone,
    "io_manager": staging_io_manager,
    "warehouse": warehouse,
    "health_model": health_model,
    "snapshot": snapshot,
    "action_rules": action_rules,
    "notifier": notifier,
    "validation": validation,
}
