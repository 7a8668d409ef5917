"""The actions' warehouse side: the history rules read, the actions table, delivered keys."""

import datetime as dt
import json
from collections.abc import Iterable, Iterator

import duckdb
import polars as pl

from cs_assets.actions.evaluate import ACTION_SCHEMA
from cs_assets.actions.rules import SCORE_FIELDS, STAGE_FIELD, TREND_FIELDS
from cs_assets.actions.stages import STAGE_SCHEMA
from cs_assets.publish.tables import (
    HEALTH_TABLE,
    INDICATOR_VALUES_TABLE,
    PARENT_TABLE,
    SCHEMA,
    TREND_VIEW,
    arrow_stream,
    create_table,
    fetch_value,
    registered,
    table_columns,
    table_exists,
)

ACTIONS_TABLE = f"{SCHEMA}.account_actions"
ACTION_COLUMNS: dict[str, str] = {
    "action_id": "VARCHAR NOT NULL",  # unique by construction (rule:account:first_snapshot)
    "account_id": "VARCHAR NOT NULL",
    "rule": "VARCHAR NOT NULL",
    "action": "VARCHAR NOT NULL",
    "priority": "VARCHAR NOT NULL",
    "owner": "VARCHAR",
    "reason": "VARCHAR NOT NULL",
    "first_snapshot": "DATE NOT NULL",
    "last_snapshot": "DATE NOT NULL",
    "snapshots_held": "BIGINT NOT NULL",
    "status": "VARCHAR NOT NULL",
    "score_at_trigger": "DOUBLE",
    "band_at_trigger": "VARCHAR",
    "latest_score": "DOUBLE",
    "latest_band": "VARCHAR",
    "rules_version": "VARCHAR NOT NULL",
}
assert list(ACTION_COLUMNS)[: len(ACTION_SCHEMA)] == list(ACTION_SCHEMA)

# the outbox: a message is queued here (with its text) before it is sent, and moves to the
# deliveries when the channel accepted it; what a crash left here is sent again, with its key
OUTBOX_TABLE = f"{SCHEMA}.action_outbox"
OUTBOX_COLUMNS: dict[str, str] = {
    "action_id": "VARCHAR NOT NULL",  # also the message's idempotency key
    "channel": "VARCHAR NOT NULL",
    "queued_at": "TIMESTAMPTZ NOT NULL",
    "message": "VARCHAR NOT NULL",  # the JSON body, as it will be sent
}

# account health stages: derived from the whole history, replaced as a whole like the actions
STAGES_TABLE = f"{SCHEMA}.account_health_stages"
STAGE_COLUMNS: dict[str, str] = {
    "account_id": "VARCHAR NOT NULL",
    "snapshot_date": "DATE NOT NULL",
    "health_stage": "VARCHAR NOT NULL",
    "stage_since": "DATE NOT NULL",
    "heading_for": "VARCHAR NOT NULL",  # the stage this snapshot's fields point to (hysteresis pending)
    "rules_version": "VARCHAR NOT NULL",
}
assert list(STAGE_COLUMNS)[: len(STAGE_SCHEMA)] == list(STAGE_SCHEMA)

DELIVERIES_TABLE = f"{SCHEMA}.action_deliveries"
DELIVERY_COLUMNS: dict[str, str] = {
    "action_id": "VARCHAR NOT NULL",
    "channel": "VARCHAR NOT NULL",  # webhook | file
    "delivered_at": "TIMESTAMPTZ NOT NULL",
    "attempts": "INTEGER NOT NULL",
    "http_status": "INTEGER",
}


def _trend(column: str, kind: str, present: list[str] | None) -> str:
    # a trend the view of an older publish does not have yet reads as null until the next publish
    if present is not None and column not in present:
        return f"CAST(NULL AS {'DOUBLE' if kind == 'number' else 'VARCHAR'}) AS {column}"
    return f"CAST(t.{column} AS DOUBLE) AS {column}" if kind == "number" else f"t.{column}"


def history_sql(
    indicator_columns: list[str],
    with_stages: bool = False,
    with_parents: bool = False,
    trend_columns: list[str] | None = None,
    accounts: tuple[int, int] | None = None,
) -> str:
    """Health, trend and indicator values per account and snapshot; indicators the warehouse
    does not hold (a catalogue newer than the data) read as null. With the stages table, each
    snapshot's health stage too; with the parent roll-ups, a parent account's roll-up.
    `accounts` (i, n): only the i-th of n disjoint groups of accounts, every snapshot of each."""
    values = ", ".join(f"CAST(v.{c} AS DOUBLE) AS {c}" for c in indicator_columns)
    stage = f"s.{STAGE_FIELD}" if with_stages else f"CAST(NULL AS VARCHAR) AS {STAGE_FIELD}"
    rollup = (
        "CAST(p.rollup_score AS DOUBLE) AS rollup_score, p.rollup_band"
        if with_parents
        else "CAST(NULL AS DOUBLE) AS rollup_score, CAST(NULL AS VARCHAR) AS rollup_band"
    )
    # the group is by a hash of the account id: stable within the query, disjoint, covering
    group = "" if accounts is None else f"hash(account_id) % {accounts[1]} = {accounts[0]}"
    return f"""
SELECT h.account_id, h.snapshot_date, h.csm_owner,
       {", ".join(f"CAST(h.{c} AS DOUBLE) AS {c}" if k == "number" else f"h.{c}" for c, k in SCORE_FIELDS.items())},
       {", ".join(_trend(c, k, trend_columns) for c, k in TREND_FIELDS.items())},
       {stage}, {rollup}
       {", " + values if values else ""}
FROM {HEALTH_TABLE} h
JOIN {f"(SELECT * FROM {TREND_VIEW} WHERE {group})" if group else TREND_VIEW} t USING (account_id, snapshot_date)
LEFT JOIN {INDICATOR_VALUES_TABLE} v USING (account_id, snapshot_date)
{f"LEFT JOIN {STAGES_TABLE} s USING (account_id, snapshot_date)" if with_stages else ""}
{f"LEFT JOIN {PARENT_TABLE} p ON p.parent_account_id = h.account_id AND p.snapshot_date = h.snapshot_date" if with_parents else ""}
{f"WHERE {group.replace('account_id', 'h.account_id')}" if group else ""}
ORDER BY h.account_id, h.snapshot_date
"""


def read_history(
    con: duckdb.DuckDBPyConnection, indicators: list[str] | None = None, accounts: tuple[int, int] | None = None
) -> pl.DataFrame:
    """Every published snapshot of every account, with trend and indicator values: the rules' input.

    `indicators`: the indicator columns to read (default: every one the warehouse holds); one the
    warehouse does not hold is null. `accounts` (i, n): only the i-th of n groups of accounts
    (`history_groups`), each with its whole history.
    """
    present = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name IN (?, ?, ?)",
        [SCHEMA, *(t.split(".")[1] for t in (HEALTH_TABLE, TREND_VIEW, INDICATOR_VALUES_TABLE))],
    ).fetchall()[0][0]
    if present < 3:
        raise LookupError(f"{HEALTH_TABLE} has not been published yet: publish a snapshot first (cs-health run)")
    # days_to_renewal is stored with the values too (a model may score it) but read from the health table
    stored = [
        c for c in table_columns(con, INDICATOR_VALUES_TABLE) if c not in ("account_id", "snapshot_date", *SCORE_FIELDS)
    ]
    wanted = stored if indicators is None else list(indicators)
    sql = history_sql(
        [c for c in wanted if c in stored],
        with_stages=table_exists(con, STAGES_TABLE),
        with_parents=table_exists(con, PARENT_TABLE),
        trend_columns=table_columns(con, TREND_VIEW),
        accounts=accounts,
    )
    frame = con.sql(sql).pl()
    absent = [c for c in wanted if c not in stored]
    return frame.with_columns(pl.lit(None, dtype=pl.Float64).alias(c) for c in absent) if absent else frame


def history_groups(con: duckdb.DuckDBPyConnection, rows_per_group: int) -> int:
    """In how many groups of accounts to read the published history so that each holds about
    `rows_per_group` rows (1 while the history is smaller)."""
    rows = fetch_value(con, f"SELECT count(*) FROM {HEALTH_TABLE}", []) if table_exists(con, HEALTH_TABLE) else 0
    return max(1, -(-int(rows) // rows_per_group))


def history_in_groups(
    con: duckdb.DuckDBPyConnection, indicators: list[str] | None, rows_per_group: int
) -> Iterator[pl.DataFrame]:
    """The published history (`read_history`) one group of accounts at a time, each account's
    every snapshot in one group: the stage and action rules need an account's whole history (streaks,
    hysteresis), never two accounts' at once. One group while the history is small."""
    groups = history_groups(con, rows_per_group)
    for i in range(groups):
        yield read_history(con, indicators, None if groups == 1 else (i, groups))


def history_span(con: duckdb.DuckDBPyConnection) -> tuple[dt.date | None, int]:
    """The newest published snapshot date and how many snapshots are published (None, 0: none yet)."""
    if not table_exists(con, HEALTH_TABLE):
        return None, 0
    row = con.execute(f"SELECT max(snapshot_date), count(DISTINCT snapshot_date) FROM {HEALTH_TABLE}").fetchall()[0]
    return row[0], int(row[1])


def _replace(
    con: duckdb.DuckDBPyConnection, table: str, columns: dict[str, str], frame: pl.DataFrame | Iterable[pl.DataFrame]
) -> None:
    """Replace a table derived from the whole history as a whole, atomically; `frame` may be
    parts made one after the other (each group of accounts), streamed into the table."""
    if isinstance(frame, pl.DataFrame):
        rows = frame.select(list(columns)).to_arrow()
    else:
        rows = arrow_stream(f.select(list(columns)) for f in frame)
    con.execute("BEGIN TRANSACTION")
    try:
        create_table(con, table, columns)
        con.execute(f"DELETE FROM {table}")
        with registered(con, "incoming_rows", rows):
            con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM incoming_rows")
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


def replace_actions(con: duckdb.DuckDBPyConnection, actions: pl.DataFrame, rules_version: str) -> None:
    _replace(con, ACTIONS_TABLE, ACTION_COLUMNS, actions.with_columns(rules_version=pl.lit(rules_version)))


def replace_stages(
    con: duckdb.DuckDBPyConnection, stages: pl.DataFrame | Iterable[pl.DataFrame], rules_version: str
) -> None:
    """Replace the stages table with `stages`: one frame, or parts (at least one)."""
    parts = [stages] if isinstance(stages, pl.DataFrame) else stages
    _replace(con, STAGES_TABLE, STAGE_COLUMNS, (p.with_columns(rules_version=pl.lit(rules_version)) for p in parts))


def stage_summary(con: duckdb.DuckDBPyConnection) -> tuple[int, dt.date | None, pl.DataFrame, int]:
    """Of the stages table: its rows, the newest snapshot, the accounts per stage on it (`len`)
    and how many of them moved to their stage on it."""
    rows, newest = con.execute(f"SELECT count(*), max(snapshot_date) FROM {STAGES_TABLE}").fetchall()[0]
    counts = con.sql(
        f"SELECT {STAGE_FIELD}, count(*) AS len FROM {STAGES_TABLE} WHERE snapshot_date = ? "
        f"GROUP BY ALL ORDER BY {STAGE_FIELD}",
        params=[newest],
    ).pl()
    moved = fetch_value(
        con, f"SELECT count(*) FROM {STAGES_TABLE} WHERE snapshot_date = ? AND stage_since = ?", [newest, newest]
    )
    return int(rows), newest, counts, int(moved)


def read_actions(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    create_table(con, ACTIONS_TABLE, ACTION_COLUMNS)
    return con.sql(f"SELECT * FROM {ACTIONS_TABLE} ORDER BY action_id").pl()


def delivered_ids(con: duckdb.DuckDBPyConnection, channel: str) -> set[str]:
    create_table(con, DELIVERIES_TABLE, DELIVERY_COLUMNS, ", PRIMARY KEY (action_id, channel)")
    rows = con.execute(f"SELECT action_id FROM {DELIVERIES_TABLE} WHERE channel = ?", [channel]).fetchall()
    return {r[0] for r in rows}


def queued_messages(con: duckdb.DuckDBPyConnection, channel: str) -> list[tuple[str, dict]]:
    """(action_id, message) queued for `channel` and never confirmed, oldest first."""
    create_table(con, OUTBOX_TABLE, OUTBOX_COLUMNS, ", PRIMARY KEY (action_id, channel)")
    rows = con.execute(
        f"SELECT action_id, message FROM {OUTBOX_TABLE} WHERE channel = ? ORDER BY queued_at, action_id", [channel]
    ).fetchall()
    return [(action_id, json.loads(message)) for action_id, message in rows]


def queue_messages(
    con: duckdb.DuckDBPyConnection, channel: str, messages: list[tuple[str, dict]], at: dt.datetime
) -> None:
    """Queue every message of a run in one transaction, before any is sent."""
    if not messages:
        return
    frame = pl.DataFrame(
        {
            "action_id": [m[0] for m in messages],
            "channel": channel,
            "queued_at": at,
            "message": [json.dumps(m[1], sort_keys=True) for m in messages],
        },
        schema={
            "action_id": pl.String,
            "channel": pl.String,
            "queued_at": pl.Datetime("us", "UTC"),
            "message": pl.String,
        },
    )
    con.execute("BEGIN TRANSACTION")
    try:
        create_table(con, OUTBOX_TABLE, OUTBOX_COLUMNS, ", PRIMARY KEY (action_id, channel)")
        with registered(con, "queued", frame.to_arrow()):
            con.execute(f"INSERT INTO {OUTBOX_TABLE} BY NAME SELECT * FROM queued ON CONFLICT DO NOTHING")
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


def confirm_deliveries(con: duckdb.DuckDBPyConnection, deliveries: list[tuple]) -> None:
    """(action_id, channel, delivered_at, attempts, http_status) accepted by the channel: recorded
    as delivered and taken out of the outbox, in one transaction."""
    if not deliveries:
        return
    con.execute("BEGIN TRANSACTION")
    try:
        create_table(con, DELIVERIES_TABLE, DELIVERY_COLUMNS, ", PRIMARY KEY (action_id, channel)")
        con.executemany(f"INSERT INTO {DELIVERIES_TABLE} VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", deliveries)
        con.executemany(f"DELETE FROM {OUTBOX_TABLE} WHERE action_id = ? AND channel = ?", [d[:2] for d in deliveries])
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
