"""The published warehouse tables: explicit DDL, and one transaction per snapshot.

Columns are declared here and rows are inserted BY NAME, so a change of column order in a
frame can never swap values; a frame whose columns differ from the table is refused loudly.
"""

import datetime as dt

import duckdb
import polars as pl

SCHEMA = "published"
HEALTH_TABLE = f"{SCHEMA}.account_health"
CONTRIBUTIONS_TABLE = f"{SCHEMA}.account_health_contributions"

HEALTH_COLUMNS: dict[str, str] = {
    "account_id": "VARCHAR NOT NULL",
    "snapshot_date": "DATE NOT NULL",
    "health_score": "DECIMAL(9,4) NOT NULL",
    "co_score": "DOUBLE",
    "cx_score": "DOUBLE",
    "band": "VARCHAR NOT NULL",
    "lifecycle_stage": "VARCHAR NOT NULL",
    "size_tier": "VARCHAR",
    "triage_priority": "VARCHAR",
    "drag_1_indicator": "VARCHAR",
    "drag_1_value": "DOUBLE",
    "drag_1_points_lost": "DOUBLE",
    "drag_2_indicator": "VARCHAR",
    "drag_2_value": "DOUBLE",
    "drag_2_points_lost": "DOUBLE",
    "drag_3_indicator": "VARCHAR",
    "drag_3_value": "DOUBLE",
    "drag_3_points_lost": "DOUBLE",
    "csm_owner": "VARCHAR",
    "model_version": "VARCHAR NOT NULL",
    "computed_at": "TIMESTAMPTZ NOT NULL",
}

CONTRIBUTION_COLUMNS: dict[str, str] = {
    "account_id": "VARCHAR NOT NULL",
    "snapshot_date": "DATE NOT NULL",
    "indicator": "VARCHAR NOT NULL",
    "subscore": "VARCHAR NOT NULL",
    "raw_value": "DOUBLE",
    "is_missing": "BOOLEAN NOT NULL",
    "indicator_score": "DOUBLE",
    "weight": "DOUBLE NOT NULL",
    "effective_weight": "DOUBLE NOT NULL",
    "points": "DECIMAL(9,4) NOT NULL",
    "max_points": "DOUBLE NOT NULL",
    "model_version": "VARCHAR NOT NULL",
    "computed_at": "TIMESTAMPTZ NOT NULL",
}


class PublishError(RuntimeError):
    pass


def build_health_rows(
    scores: pl.DataFrame,
    segments: pl.DataFrame,
    indicators: pl.DataFrame,
    snapshot_date: dt.date,
    model_version: str,
    computed_at: dt.datetime,
) -> pl.DataFrame:
    frame = (
        scores.join(segments, on="account_id", how="left")
        .join(indicators.select("account_id", "csm_owner"), on="account_id", how="left")
        .with_columns(
            snapshot_date=pl.lit(snapshot_date),
            model_version=pl.lit(model_version),
            computed_at=pl.lit(computed_at, dtype=pl.Datetime("us", "UTC")),
        )
    )
    return frame.select(list(HEALTH_COLUMNS)).sort("account_id")


def build_contribution_rows(
    contributions: pl.DataFrame, snapshot_date: dt.date, computed_at: dt.datetime
) -> pl.DataFrame:
    frame = contributions.rename({"composite_share": "effective_weight"}).with_columns(
        snapshot_date=pl.lit(snapshot_date),
        computed_at=pl.lit(computed_at, dtype=pl.Datetime("us", "UTC")),
    )
    return frame.select(list(CONTRIBUTION_COLUMNS)).sort("account_id", "indicator")


def _ensure_table(con: duckdb.DuckDBPyConnection, table: str, columns: dict[str, str]) -> None:
    ddl = ", ".join(f"{name} {decl}" for name, decl in columns.items())
    con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({ddl})")
    schema, name = table.split(".")
    existing = [
        r[0]
        for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
            "ORDER BY ordinal_position",
            [schema, name],
        ).fetchall()
    ]
    if existing != list(columns):
        raise PublishError(
            f"{table} has columns {existing}, this release writes {list(columns)}; "
            "migrate or rename the old table before publishing"
        )


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    _ensure_table(con, HEALTH_TABLE, HEALTH_COLUMNS)
    _ensure_table(con, CONTRIBUTIONS_TABLE, CONTRIBUTION_COLUMNS)


def previous_snapshot(con: duckdb.DuckDBPyConnection, snapshot_date: dt.date) -> tuple[dt.date | None, pl.DataFrame]:
    """The latest published snapshot before `snapshot_date` (account_id, band), if any."""
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = 'account_health'",
        [SCHEMA],
    ).fetchone()[0]
    empty = pl.DataFrame(schema={"account_id": pl.String, "band": pl.String})
    if not exists:
        return None, empty
    previous = con.execute(
        f"SELECT max(snapshot_date) FROM {HEALTH_TABLE} WHERE snapshot_date < ?", [snapshot_date]
    ).fetchone()[0]
    if previous is None:
        return None, empty
    rows = con.execute(
        f"SELECT account_id, band FROM {HEALTH_TABLE} WHERE snapshot_date = ? ORDER BY account_id", [previous]
    ).fetchall()
    return previous, pl.DataFrame(rows, schema=empty.schema, orient="row")


def publish_snapshot(
    con: duckdb.DuckDBPyConnection, snapshot_date: dt.date, health: pl.DataFrame, contributions: pl.DataFrame
) -> None:
    """Replace one snapshot in both tables atomically: readers see the old or the new, never a mix."""
    con.execute("BEGIN TRANSACTION")
    try:
        ensure_tables(con)
        for table, frame in ((HEALTH_TABLE, health), (CONTRIBUTIONS_TABLE, contributions)):
            con.execute(f"DELETE FROM {table} WHERE snapshot_date = ?", [snapshot_date])
            con.register("incoming", frame.to_arrow())
            try:
                con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM incoming")
            finally:
                con.unregister("incoming")
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
