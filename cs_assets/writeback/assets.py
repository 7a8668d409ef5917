"""The CRM write-back (reverse ETL): each account's score, band, stage, trend and top drags on
its CRM record, after each publish.

Downstream of the publish like the actions, with the same condition: a publish that a blocking
check stopped writes nothing to the CRM.
"""

import datetime as dt

import dagster as dg

from cs_assets.actions.assets import ACCOUNT_STAGES, ACTIONS_CONDITION, OWNER
from cs_assets.frames import scalar
from cs_assets.gate import enforce
from cs_assets.grouped_writes import GroupedWrites
from cs_assets.metadata import table_metadata
from cs_assets.publish.assets import ACCOUNT_HEALTH
from cs_assets.writeback.changes import Batch, changed_values, crm_values, plan_batches
from cs_assets.writeback.config import HUBSPOT_BATCH, Writeback
from cs_assets.writeback.deliver import Answer, send_batches
from cs_assets.writeback.store import BATCHES_TABLE, STATE_TABLE, newest_values, record_batches, written_values
from resources.crm import CrmWritebackResource
from resources.warehouse import WAREHOUSE_POOL, WarehouseResource

CRM_WRITEBACK = dg.AssetKey("crm_writeback")
RECORD_EVERY, RECORD_SECONDS = 50, 1.0  # answers bookkept per warehouse connection, at least each second


def build_writeback_asset(writeback: Writeback) -> dg.AssetsDefinition:
    """The write-back asset for the deployment's `crm_writeback.yaml` (its kinds name the CRM)."""
    endpoint = writeback.endpoint
    crm_kind = "hubspot" if endpoint is None or endpoint.format == HUBSPOT_BATCH else "json"

    @dg.asset(
        key=CRM_WRITEBACK,
        pool=WAREHOUSE_POOL,
        deps=[ACCOUNT_HEALTH, ACCOUNT_STAGES],
        group_name="actions",
        kinds={"duckdb", crm_kind},
        owners=[OWNER],
        automation_condition=ACTIONS_CONDITION,
        metadata={"dagster/table_name": STATE_TABLE},
    )
    def crm_writeback(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource, crm: CrmWritebackResource
    ) -> dg.MaterializeResult:
        """The newest score, band, stage, trend and top drags written to each CRM account: only changed values, in batches."""
        enforce(context, None, "nothing was written to the CRM")
        config = crm.load()
        destination = config.destination
        with warehouse.connect() as con:
            latest = newest_values(con)
            written = written_values(con, destination)
        snapshot = scalar(latest["snapshot_date"].max(), dt.date) if latest.height else None
        values = crm_values(latest, config)
        changed = changed_values(values, written)
        batches = plan_batches(changed, config)
        sender = crm.sender(config)

        def write(answered: list[tuple[Batch, Answer, dt.datetime]]) -> None:
            assert snapshot is not None
            with warehouse.connect() as con:
                record_batches(
                    con,
                    destination,
                    snapshot,
                    [(b, a.status, a.attempts, a.http_status, a.detail, at) for b, a, at in answered],
                )

        # a few answered batches per transaction, each whole or not at all; a crash before a
        # group is written re-sends at most its batches, which set values the CRM already holds
        answers = GroupedWrites(write, RECORD_EVERY, RECORD_SECONDS)
        try:
            delivered = send_batches(
                batches, sender, lambda b, a: answers.add((b, a, dt.datetime.now(dt.UTC))), config.max_run_seconds
            )
        finally:
            answers.flush()
        changed_accounts = changed["account_id"].n_unique()
        context.log.info(
            f"snapshot {snapshot}: {changed.height} changed value(s) of {changed_accounts} account(s) "
            f"in {len(batches)} batch(es) to {sender.where}; {len(delivered.accepted)} accepted"
        )
        metadata: dict[str, dg.RawMetadataValue] = {
            "destination": "dry run" if config.endpoint is None else sender.where,
            "dry_run_file": str(crm.dry_run_path()) if config.endpoint is None else "none",
            "snapshot": snapshot.isoformat() if snapshot else "none",
            "accounts": latest.height,
            "accounts_changed": changed_accounts,
            "values_changed": changed.height,
            "values_unchanged": values.height - changed.height,
            "batches_planned": len(batches),
            "batches_accepted": len(delivered.accepted),
            "batches_rejected": len(delivered.rejected),
            "batches_left_for_next_run": len(delivered.left) + (delivered.undelivered is not None),
            "values_by_property": table_metadata(changed.group_by("property").len().sort("property")),
            "bookkeeping": f"{STATE_TABLE}, {BATCHES_TABLE}",
        }
        if delivered.out_of_time:
            context.log.warning(
                f"{len(delivered.left)} batch(es) left for the next run: the write-back took longer than "
                f"max_run_seconds = {config.max_run_seconds:g}"
            )
        problems = delivered.problems
        if problems:
            for problem in problems:
                context.log.error(problem)
            # what was accepted is recorded; the rest is sent again by the next run
            raise dg.Failure(
                description=f"CRM write-back: {len(problems)} batch(es) not accepted: {problems[0]}",
                metadata=metadata,
            )
        return dg.MaterializeResult(metadata=metadata)

    return crm_writeback
