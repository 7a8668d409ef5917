"""Reactive actions: rules over the published history, and their delivery to the CS team.

Both assets sit downstream of the publish step, so a publish that a blocking check stopped (or
that failed) runs neither: a blocked publish sends nothing.
"""

import datetime as dt

import dagster as dg
import polars as pl

from cs_assets.actions.evaluate import (
    OPEN,
    actions_to_send,
    evaluate_actions,
    held_back_summary,
    order_actions,
    split_by_cap,
)
from cs_assets.actions.stages import STAGE_SCHEMA, assign_stages
from cs_assets.actions.store import (
    STAGES_TABLE,
    confirm_deliveries,
    delivered_ids,
    history_in_groups,
    history_span,
    queue_messages,
    queued_messages,
    read_actions,
    replace_actions,
    replace_stages,
    stage_summary,
)
from cs_assets.frames import scalar
from cs_assets.gate import enforce
from cs_assets.grouped_writes import GroupedWrites
from cs_assets.metadata import table_metadata
from cs_assets.partitions import step_days
from cs_assets.publish.assets import ACCOUNT_HEALTH
from resources.action_rules import ActionRulesResource
from resources.model import HealthModelResource
from resources.notifier import NotifierResource, slack_message
from resources.warehouse import WAREHOUSE_POOL, WarehouseResource

OWNER = "team:customer-success-analytics"
ACCOUNT_ACTIONS = dg.AssetKey(["published", "account_actions"])
ACTION_NOTIFICATIONS = dg.AssetKey("action_notifications")
ACCOUNT_STAGES = dg.AssetKey(["published", "account_health_stages"])
CONFIRM_EVERY, CONFIRM_SECONDS = 10, 1.0

# Like the publish step, never act on what a blocking check refused. "Any dep missing" is
# dropped from eager(): these unpartitioned assets read the whole published history, and for
# them every snapshot partition never backfilled (back to CS_HEALTH_HISTORY_START) counts as a
# missing dependency, which would keep them from ever updating.
# The definitions add a gate on every blocking check upstream (cs_assets.gate.with_upstream_gate).
ACTIONS_CONDITION = (dg.AutomationCondition.eager().without(~dg.AutomationCondition.any_deps_missing())).with_label(
    "after each publish"
)


@dg.asset(
    key=ACCOUNT_STAGES,
    pool=WAREHOUSE_POOL,
    deps=[ACCOUNT_HEALTH],
    group_name="actions",
    kinds={"duckdb", "polars"},
    owners=[OWNER],
    automation_condition=ACTIONS_CONDITION,
    metadata={"dagster/table_name": STAGES_TABLE},
)
def account_health_stages(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    action_rules: ActionRulesResource,
    health_model: HealthModelResource,
) -> dg.MaterializeResult:
    """Each account's health stage per snapshot (e.g. Success, Growth, Rescue, Sunk), by the stage rules with hysteresis."""
    enforce(context, None, "no stages were written, nothing was sent")
    rules = action_rules.load(health_model.for_run(context))
    stage_rules = rules.stages
    with warehouse.connect() as con:
        if stage_rules is None:
            replace_stages(con, pl.DataFrame(schema=STAGE_SCHEMA), rules.version)
        else:
            # read on a second connection: the history is read while the table is replaced
            with con.cursor() as reader:
                replace_stages(
                    con,
                    (
                        assign_stages(history, stage_rules, step_days())
                        for history in history_in_groups(
                            reader, rules.indicators_read, warehouse.history_rows_per_group
                        )
                    ),
                    rules.version,
                )
        rows, newest, counts, moved = stage_summary(con)
    if stage_rules is None:
        context.log.info("no stages in the action rules file (`stages`): the stages table is empty")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "newest_snapshot": newest.isoformat() if newest else "none",
            "moved_on_newest_snapshot": moved,
            # one number per stage, so that each is plotted over time
            **{f"stage_{stage}": n for stage, n in counts.iter_rows()},
            "stages": table_metadata(counts.rename({"len": "accounts"})),
        }
    )


@dg.asset(
    key=ACCOUNT_ACTIONS,
    pool=WAREHOUSE_POOL,
    deps=[ACCOUNT_HEALTH, ACCOUNT_STAGES],
    group_name="actions",
    kinds={"duckdb", "polars"},
    owners=[OWNER],
    automation_condition=ACTIONS_CONDITION,
)
def account_actions(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    action_rules: ActionRulesResource,
    health_model: HealthModelResource,
) -> dg.MaterializeResult:
    """Which account needs which action now, and why: action rules evaluated over the published history."""
    enforce(context, None, "no actions were written, nothing was sent")
    rules = action_rules.load(health_model.for_run(context))
    with warehouse.connect() as con:
        newest, snapshots = history_span(con)
        # a long history is evaluated a group of accounts at a time: each account's actions
        # depend on its own snapshots and on the newest date alone
        parts = [
            evaluate_actions(history, rules, step_days(), newest)
            for history in history_in_groups(con, rules.indicators_read, warehouse.history_rows_per_group)
        ]
        # each group's actions are in order already; several groups are ordered together
        actions = (
            parts[0]
            if len(parts) == 1
            else order_actions(pl.concat([p for p in parts if p.height] or parts[:1], how="vertical"))
        )
        replace_actions(con, actions, rules.version)
    open_actions = actions.filter(pl.col("status") == OPEN)
    by_rule = open_actions.group_by("rule").len().sort("rule")
    context.log.info(f"{open_actions.height} open action(s) of {actions.height} over {snapshots} snapshot(s)")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": actions.height,
            "open_actions": open_actions.height,
            "new_on_newest_snapshot": actions.filter(pl.col("first_snapshot") == newest).height if newest else 0,
            "newest_snapshot": newest.isoformat() if newest else "none",
            "rules_version": rules.version,
            **{f"open_{rule}": n for rule, n in by_rule.iter_rows()},
            "preview": table_metadata(
                open_actions.select("priority", "account_id", "rule", "owner", "first_snapshot", "reason")
            ),
        }
    )


def action_message(row: dict) -> dict:
    return slack_message(
        f"*[{row['priority']}] {row['account_id']}*: {row['reason']}",
        {
            "Action": row["action"],
            "Owner": row["owner"] or "unassigned",
            "Score": f"{row['score_at_trigger']:.1f} ({row['band_at_trigger']})",
            "Since": row["first_snapshot"].isoformat(),
        },
    )


@dg.asset(
    key=ACTION_NOTIFICATIONS,
    pool=WAREHOUSE_POOL,
    deps=[ACCOUNT_ACTIONS],
    group_name="actions",
    # a Slack-compatible webhook, or the dry-run file; the bookkeeping is in DuckDB
    kinds={"duckdb", "webhook"},
    owners=[OWNER],
    automation_condition=ACTIONS_CONDITION,
)
def action_notifications(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    notifier: NotifierResource,
    action_rules: ActionRulesResource,
) -> dg.MaterializeResult:
    """New open actions sent to the CS team's channel through an outbox, at most a capped number per run."""
    enforce(context, None, "nothing was sent")
    rules = action_rules.load()
    channel = notifier.channel
    with warehouse.connect() as con:
        actions = read_actions(con)
        delivered = delivered_ids(con, channel)
        left_over = queued_messages(con, channel)
    newest = scalar(actions["last_snapshot"].max(), dt.date) if actions.height else None
    waiting = {action_id for action_id, _ in left_over}
    due = actions_to_send(actions, newest, rules.max_age_days, delivered | waiting) if newest else actions.clear()
    # what a crash left in the outbox goes first, with the key it was queued with
    fresh, held = split_by_cap(due, max(rules.max_per_run - len(left_over), 0))
    queued = [(row["action_id"], action_message(row)) for row in fresh.iter_rows(named=True)]
    with warehouse.connect() as con:
        queue_messages(con, channel, queued, dt.datetime.now(dt.UTC))
    sent = 0

    def confirm(deliveries: list[tuple]) -> None:
        with warehouse.connect() as con:
            confirm_deliveries(con, deliveries)

    # a crash between a post and its confirmation re-sends at most the last few, with the same key
    confirmed = GroupedWrites(confirm, CONFIRM_EVERY, CONFIRM_SECONDS)
    try:
        for action_id, message in [*left_over, *queued]:
            delivery = notifier.send(action_id, message)
            confirmed.add(
                (action_id, delivery.channel, dt.datetime.now(dt.UTC), delivery.attempts, delivery.http_status)
            )
            sent += 1
    finally:
        confirmed.flush()
    where = str(notifier.outbox_path()) if channel == "file" else f"webhook (${notifier.webhook_url_env})"
    summary = held_back_summary(held)
    context.log.info(
        f"sent {sent} action(s) to {where} ({len(left_over)} left queued by an earlier run); {summary}"
        + (f" by delivery.max_per_run = {rules.max_per_run}: they go out with the next runs" if held.height else "")
    )
    return dg.MaterializeResult(
        metadata={
            "sent": sent,
            "resent_from_outbox": len(left_over),
            "held_back": held.height,
            "held_back_summary": summary,
            "max_per_run": rules.max_per_run,
            "channel": channel,
            "destination": where,
            "already_delivered": len(delivered),
            "max_age_days": rules.max_age_days,
        }
    )
