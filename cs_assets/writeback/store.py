"""The write-back's warehouse side: the newest published values, and what the CRM has accepted.

`crm_writeback_state` holds, per destination, account and property, the value the last
accepted batch wrote: a value is sent again only when it differs. A batch's values are recorded
in the same transaction as its log row, only when the CRM accepted the whole batch.
"""

import datetime as dt

import duckdb
import polars as pl

from cs_assets.actions.store import STAGES_TABLE
from cs_assets.publish.tables import HEALTH_TABLE, SCHEMA, TREND_VIEW, create_table, table_exists
from cs_assets.writeback.changes import VALUES_SCHEMA, Batch

STATE_TABLE = f"{SCHEMA}.crm_writeback_state"
STATE_COLUMNS: dict[str, str] = {
    "destination": "VARCHAR NOT NULL",  # `file` (dry run) or the endpoint's format and URL
    "account_id": "VARCHAR NOT NULL",
    "property": "VARCHAR NOT NULL",
    "value": "VARCHAR NOT NULL",  # as sent ("" clears the property)
    "snapshot_date": "DATE NOT NULL",
    "batch_id": "VARCHAR NOT NULL",
    "written_at": "TIMESTAMPTZ NOT NULL",
}
BATCHES_TABLE = f"{SCHEMA}.crm_writeback_batches"
BATCH_COLUMNS: dict[str, str] = {
    "batch_id": "VARCHAR NOT NULL",
    "destination": "VARCHAR NOT NULL",
    "snapshot_date": "DATE NOT NULL",
    "accounts": "INTEGER NOT NULL",
    "values_sent": "INTEGER NOT NULL",
    "status": "VARCHAR NOT NULL",  # accepted | rejected | undelivered
    "attempts": "INTEGER NOT NULL",
    "http_status": "INTEGER",
    "detail": "VARCHAR",  # why it was not accepted (never a secret)
    "finished_at": "TIMESTAMPTZ NOT NULL",
}
ACCEPTED, REJECTED, UNDELIVERED = "accepted", "rejected", "undelivered"


def newest_values(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Every account of the newest published snapshot, with its trend and its health stage."""
    if not table_exists(con, HEALTH_TABLE):
        raise LookupError(f"{HEALTH_TABLE} has not been published yet: publish a snapshot first (cs-health run)")
    if table_exists(con, STAGES_TABLE):
        stages, stage_join = (
            "s.health_stage, s.stage_since",
            f"LEFT JOIN {STAGES_TABLE} s USING (account_id, snapshot_date)",
        )
    else:
        stages, stage_join = "CAST(NULL AS VARCHAR) AS health_stage, CAST(NULL AS DATE) AS stage_since", ""
    return con.sql(f"""
        SELECT h.*, t.change_7d, t.change_30d, t.change_4w, t.change_since_previous, t.band_transition, {stages}
        FROM {HEALTH_TABLE} h
        JOIN {TREND_VIEW} t USING (account_id, snapshot_date)
        {stage_join}
        WHERE h.snapshot_date = (SELECT max(snapshot_date) FROM {HEALTH_TABLE})
        ORDER BY h.account_id
    """).pl()


def written_values(con: duckdb.DuckDBPyConnection, destination: str) -> pl.DataFrame:
    """What accepted batches wrote to `destination`: account_id, property, value."""
    create_table(con, STATE_TABLE, STATE_COLUMNS, ", PRIMARY KEY (destination, account_id, property)")
    frame = con.sql(
        f"SELECT account_id, property, value FROM {STATE_TABLE} WHERE destination = $destination "
        "ORDER BY account_id, property",
        params={"destination": destination},
    ).pl()
    return frame.cast(VALUES_SCHEMA) if frame.height else pl.DataFrame(schema=VALUES_SCHEMA)


def record_batches(
    con: duckdb.DuckDBPyConnection,
    destination: str,
    snapshot: dt.date,
    answered: list[tuple[Batch, str, int, int | None, str | None, dt.datetime]],
) -> None:
    """Each answered batch's log row and, for each one the CRM accepted whole, its values: one
    transaction, so that a batch is never recorded in part. `answered` holds (batch, status,
    attempts, HTTP status, detail, when)."""
    if not answered:
        return
    accepted = [
        batch.values.with_columns(
            destination=pl.lit(destination),
            snapshot_date=pl.lit(snapshot, dtype=pl.Date),
            batch_id=pl.lit(batch.batch_id),
            written_at=pl.lit(at, dtype=pl.Datetime("us", "UTC")),
        ).select(list(STATE_COLUMNS))
        for batch, status, _, _, _, at in answered
        if status == ACCEPTED
    ]
    con.execute("BEGIN TRANSACTION")
    try:
        create_table(con, STATE_TABLE, STATE_COLUMNS, ", PRIMARY KEY (destination, account_id, property)")
        create_table(con, BATCHES_TABLE, BATCH_COLUMNS)
        if accepted:
            con.register("accepted_values", pl.concat(accepted).to_arrow())
            try:
                con.execute(f"INSERT OR REPLACE INTO {STATE_TABLE} BY NAME SELECT * FROM accepted_values")
            finally:
                con.unregister("accepted_values")
        con.executemany(
            f"INSERT INTO {BATCHES_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                [
                    batch.batch_id,
                    destination,
                    snapshot,
                    batch.accounts,
                    batch.values.height,
                    status,
                    attempts,
                    code,
                    detail,
                    at,
                ]
                for batch, status, attempts, code, detail, at in answered
            ],
        )
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
