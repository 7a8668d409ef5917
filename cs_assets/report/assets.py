"""The health report asset: after each publish, the newest snapshot's HTML page."""

from pathlib import Path

import dagster as dg

from cs_assets.actions.assets import ACCOUNT_ACTIONS, ACCOUNT_STAGES, ACTIONS_CONDITION, OWNER
from cs_assets.publish.assets import ACCOUNT_HEALTH
from cs_assets.report.data import ReportData, read_report_data
from cs_assets.report.html import render_report
from resources.model import HealthModelResource
from resources.report import HealthReportResource
from resources.warehouse import WAREHOUSE_POOL, WarehouseResource

HEALTH_REPORT = dg.AssetKey("health_report")


def report_path(directory: Path, data: ReportData) -> Path:
    return directory / f"health_report_{data.snapshot.isoformat()}.html"


def write_report(data: ReportData, directory: Path, deployment: str) -> Path:
    """The page, written next to the earlier snapshots' (atomically: a reader never sees half)."""
    path = report_path(directory, data)
    directory.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".html.partial")
    partial.write_text(render_report(data, deployment), encoding="utf-8")
    partial.replace(path)
    return path


@dg.asset(
    key=HEALTH_REPORT,
    pool=WAREHOUSE_POOL,
    deps=[ACCOUNT_HEALTH, ACCOUNT_STAGES, ACCOUNT_ACTIONS],
    group_name="actions",
    kinds={"duckdb", "html"},
    owners=[OWNER],
    automation_condition=ACTIONS_CONDITION,
)
def health_report(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    health_model: HealthModelResource,
    report: HealthReportResource,
) -> dg.MaterializeResult:
    """The CS manager's weekly page for the newest snapshot: distribution, band moves, actions by owner, drags, validation."""
    model = health_model.for_run(context)
    with warehouse.reader() as con:
        data = read_report_data(con, [(b.name, b.min_score) for b in model.bands])
    path = write_report(data, report.path(), report.deployment)
    context.log.info(f"health report for {data.snapshot}: {path}")
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(path)),
            "snapshot": data.snapshot.isoformat(),
            "compared_with": data.previous.isoformat() if data.previous else "none",
            "accounts": data.accounts.height,
            "actions": data.actions.height,
            "validation_included": data.validation is not None,
        }
    )
