"""Resources of the health-score project, built once here and shared by the definitions."""

from cs_assets import settings
from resources.landing import LandingZoneResource
from resources.model import HealthModelResource, SnapshotResource
from resources.staging import StagingParquetIOManager
from resources.warehouse import WarehouseResource

landing_zone = LandingZoneResource(landing_dir=str(settings.landing_dir()))
staging_io_manager = StagingParquetIOManager(base_dir=str(settings.staging_dir()))
warehouse = WarehouseResource(database=str(settings.warehouse_path()))
health_model = HealthModelResource(path=str(settings.model_path()))
snapshot = SnapshotResource()

RESOURCES = {
    "landing": landing_zone,
    "io_manager": staging_io_manager,
    "warehouse": warehouse,
    "health_model": health_model,
    "snapshot": snapshot,
}
