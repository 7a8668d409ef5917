"""The actions' warehouse side: the history rules read, the actions table, delivered keys."""

import datetime as dt

import duckdb
import polars as pl

from cs_assets.actions.evaluate import ACTION_SCHEMA
from cs_assets.actions.rules import SCORE_FIELDS, TREND_FIELDS
from cs_assets.publish.tables import HEALTH_TABLE, INDICATOR_VALUES_TABLE, SCHEMA, TREND_VIEW, table_columns

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

DELIVERIES_TABLE = f"{SCHEMA}.action_deliveries"
DELIVERY_COLUMNS: dict[str, str] = {
    "action_id": "VARCHAR NOT NULL",
    "channel": "VARCHAR NOT NULL",  # webhook | file
    "delivered_at": "TIMESTAMPTZ NOT NULL",
    "attempts": "INTEGER NOT NULL",
    "http_status": "INTEGER",
}


def history_sql(indicator_columns: list[str]) -> str:
    """Health, trend and indicator values per account and snapshot; indicators the warehouse
    does not hold (a catalogue newer than the data) read as null."""
    values = ", ".join(f"CAST(v.{c} AS DOUBLE) AS {c}" for c in indicator_columns)
    return f"""
SELECT h.account_id, h.snapshot_date, h.csm_owner,
       {", ".join(f"CAST(h.{c} AS DOUBLE) AS {c}" if k == "number" else f"h.{c}" for c, k in SCORE_FIELDS.items())},
       {", ".join(f"CAST(t.{c} AS DOUBLE) AS {c}" if k == "number" else f"t.{c}" for c, k in TREND_FIELDS.items())}
       {", " + values if values else ""}
FROM {HEALTH_TABLE} h
JOIN {TREND_VIEW} t USING (account_id, snapshot_date)
LEFT JOIN {INDICATOR_VALUES_TABLE} v USING (account_id, snapshot_date)
ORDER BY h.account_id, h.snapshot_date
"""


def _create(con: duckdb.DuckDBPyConnection, table: str, columns: dict[str, str], extra: str = "") -> None:
    ddl = ", ".join(f"{name} {decl}" for name, decl in columns.items())
    con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({ddl}{extra})")


def read_history(con: duckdb.DuckDBPyConnection, indicators: list[str] | None = None) -> pl.DataFrame:
    """Every published snapshot of every account, with trend and indicator values: the rules' input.

    `indicators`: the indicator columns to read (default: every one the warehouse holds); one the
    warehouse does not hold is null.
    """
    present = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name IN (?, ?, ?)",
        [SCHEMA, *(t.split(".")[1] for t in (HEALTH_TABLE, TREND_VIEW, INDICATOR_VALUES_TABLE))],
    ).fetchall()[0][0]
    if present < 3:
        raise LookupError(f"{HEALTH_TABLE} has not been published yet: publish a snapshot first (cs-health run)")
    # days_to_renewal is stored with the values too (a model may score it) but read from the health table
    stored = [c for c in table_columns(con, INDICATOR_VALUES_TABLE) if c not in ("account_id", "snapshot_date", *SCORE_FIELDS)]
    wanted = stored if indicators is None else list(indicators)
    frame = con.sql(history_sql([c for c in wanted if c in stored])).pl()
    absent = [c for c in wanted if c not in stored]
    return frame.with_columns(pl.lit(None, dtype=pl.Float64).alias(c) for c in absent) if absent else frame


def replace_actions(con: duckdb.DuckDBPyConnection, actions: pl.DataFrame, rules_version: str) -> None:
    """The actions table is derived from the whole history, so it is replaced as a whole, atomically."""
    frame = actions.with_columns(rules_version=pl.lit(rules_version)).select(list(ACTION_COLUMNS))
    con.execute("BEGIN TRANSACTION")
    try:
        _create(con, ACTIONS_TABLE, ACTION_COLUMNS)
        con.execute(f"DELETE FROM {ACTIONS_TABLE}")
        con.register("incoming_actions", frame.to_arrow())
        try:
            con.execute(f"INSERT INTO {ACTIONS_TABLE} BY NAME SELECT * FROM incoming_actions")
        finally:
            con.unregister("incoming_actions")
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


def read_actions(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    _create(con, ACTIONS_TABLE, ACTION_COLUMNS)
    return con.sql(f"SELECT * FROM {ACTIONS_TABLE} ORDER BY action_id").pl()


def delivered_ids(con: duckdb.DuckDBPyConnection, channel: str) -> set[str]:
    _create(con, DELIVERIES_TABLE, DELIVERY_COLUMNS, ", PRIMARY KEY (action_id, channel)")
    rows = con.execute(f"SELECT action_id FROM {DELIVERIES_TABLE} WHERE channel = ?", [channel]).fetchall()
    return {r[0] for r in rows}


def record_delivery(
    con: duckdb.DuckDBPyConnection, action_id: str, channel: str, at: dt.datetime, attempts: int, http_status: int | None
) -> None:
    con.execute(
        f"INSERT INTO {DELIVERIES_TABLE} VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        [action_id, channel, at, attempts, http_status],
    )
