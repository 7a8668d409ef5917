"""The published warehouse tables: explicit DDL, and one transaction per snapshot.

Columns are declared here and rows are inserted BY NAME, so a change of column order in a
frame can never swap values; a frame whose columns differ from the table is refused loudly.
"""

import datetime as dt
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from itertools import chain
from typing import TYPE_CHECKING, Any

import duckdb
import polars as pl
import pyarrow as pa

if TYPE_CHECKING:
    from cs_assets.scoring.model_config import HealthModel

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
    "arr_usd": "DOUBLE",
    "renewal_date": "DATE",
    "days_to_renewal": "INTEGER",
    "model_version": "VARCHAR NOT NULL",
    "computed_at": "TIMESTAMPTZ NOT NULL",
    # added after the first release: new columns go last, so an older table gains them in place
    "segment_model": "VARCHAR",
}

# what a reader of the catalog (or a BI tool) needs to know of each published column
HEALTH_DESCRIPTIONS: dict[str, str] = {
    "account_id": "the account (CRM account_id)",
    "snapshot_date": "the day the score is as of (end of day, UTC)",
    "health_score": "composite health score, 0-100: the sum of the indicators' points",
    "co_score": "customer outcome sub-score, 0-100 (null: nothing to measure)",
    "cx_score": "customer experience sub-score, 0-100 (null: nothing to measure)",
    "band": "traffic-light band from the model's cut points (red / yellow / green by default)",
    "lifecycle_stage": "onboarding, adoption or renewal_window on the snapshot day",
    "size_tier": "size tier from the CRM",
    "triage_priority": "P1 (act now) .. P4, from lifecycle stage x band",
    **{
        column: text
        for n, rank in ((1, "most"), (2, "second most"), (3, "third most"))
        for column, text in (
            (f"drag_{n}_indicator", f"the indicator that costs the account the {rank} points"),
            (f"drag_{n}_value", f"drag_{n}_indicator's raw value"),
            (f"drag_{n}_points_lost", f"the points drag_{n}_indicator costs (max points - points)"),
        )
    },
    "csm_owner": "the account's CSM from the CRM",
    "arr_usd": "annual recurring revenue from the CRM",
    "renewal_date": "renewal date of the term running on the snapshot day",
    "days_to_renewal": "days from the snapshot day to the renewal date",
    "model_version": "hash of the health model that scored the row (JSON in published.model_versions)",
    "computed_at": "when the row was written (bookkeeping, never an input)",
    "segment_model": "the segment model that scored the row (health_model.yaml `segments`; default: none matched)",
}
CONTRIBUTION_DESCRIPTIONS: dict[str, str] = {
    "indicator": "the indicator (indicators.yaml)",
    "subscore": "co or cx",
    "raw_value": "the indicator's value on the snapshot day",
    "is_missing": "no data for it (its missing-data policy scored it)",
    "indicator_score": "0-100 score of the value under the model's scoring function (null: excluded)",
    "weight": "its weight inside its sub-score, from the model file",
    "effective_weight": "its share of the composite score for this account",
    "points": "effective_weight x indicator_score: the points it adds (they sum to health_score)",
    "max_points": "the points it would add at a score of 100",
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


# parent accounts (health_model.yaml `parents`): the roll-up per parent and its members' parts,
# written with the snapshot they belong to
PARENT_TABLE = f"{SCHEMA}.parent_account_health"
PARENT_COLUMNS: dict[str, str] = {
    "parent_account_id": "VARCHAR NOT NULL",
    "snapshot_date": "DATE NOT NULL",
    "rollup_score": "DECIMAL(9,4) NOT NULL",  # the sum of the members' points, exactly
    "rollup_band": "VARCHAR NOT NULL",
    "members": "BIGINT NOT NULL",
    "weight_basis": "VARCHAR NOT NULL",
    "weight_total": "DOUBLE NOT NULL",
    "model_version": "VARCHAR NOT NULL",
    "computed_at": "TIMESTAMPTZ NOT NULL",
}
PARENT_MEMBERS_TABLE = f"{SCHEMA}.parent_account_members"
PARENT_MEMBER_COLUMNS: dict[str, str] = {
    "parent_account_id": "VARCHAR NOT NULL",
    "snapshot_date": "DATE NOT NULL",
    "account_id": "VARCHAR NOT NULL",
    "health_score": "DOUBLE NOT NULL",
    "weight": "DOUBLE NOT NULL",
    "weight_share": "DOUBLE NOT NULL",
    "points": "DECIMAL(9,4) NOT NULL",  # weight_share x health_score, apportioned
    "computed_at": "TIMESTAMPTZ NOT NULL",
}


# the notes kept beside `latest` indicators (e.g. a CSM's reason for a sentiment): free text,
# shown by explain, never scored
NOTES_TABLE = f"{SCHEMA}.account_notes"
NOTE_COLUMNS: dict[str, str] = {
    "account_id": "VARCHAR NOT NULL",
    "snapshot_date": "DATE NOT NULL",
    "indicator": "VARCHAR NOT NULL",
    "value": "DOUBLE",
    "note": "VARCHAR",
    "computed_at": "TIMESTAMPTZ NOT NULL",
}


class PublishError(RuntimeError):
    pass


INDICATOR_VALUES_TABLE = f"{SCHEMA}.account_indicator_values"
# every catalogued indicator, scored by the current model or not: a past or future model can be
# re-applied to a published snapshot (change attribution), and action rules can read any of them.
# Its columns follow the deployment's catalogue: a new indicator adds a column (null in older
# snapshots); an indicator dropped from the catalogue keeps its column (null from then on).
INDICATOR_VALUE_KEY: dict[str, str] = {"account_id": "VARCHAR NOT NULL", "snapshot_date": "DATE NOT NULL"}


def indicator_value_columns(indicators: list[str]) -> dict[str, str]:
    return {**INDICATOR_VALUE_KEY, **{name: "DOUBLE" for name in indicators}}


LINEAGE_TABLE = f"{SCHEMA}.snapshot_lineage"
LINEAGE_COLUMNS: dict[str, str] = {
    "snapshot_date": "DATE NOT NULL",
    "asset_key": "VARCHAR NOT NULL",
    "run_id": "VARCHAR",
    "data_version": "VARCHAR",
    "materialized_at": "TIMESTAMPTZ",
    "publish_run_id": "VARCHAR NOT NULL",
    "computed_at": "TIMESTAMPTZ NOT NULL",
}

MODEL_TABLE = f"{SCHEMA}.model_versions"
MODEL_COLUMNS: dict[str, str] = {
    "model_version": "VARCHAR NOT NULL",
    "model_json": "VARCHAR NOT NULL",
    "first_published_at": "TIMESTAMPTZ NOT NULL",
}

TREND_VIEW = f"{SCHEMA}.account_health_trend"
# Always consistent with the snapshots, whichever order they were (re)computed in.
TREND_VIEW_SQL = f"""
CREATE OR REPLACE VIEW {TREND_VIEW} AS
WITH ordered AS (
    SELECT account_id, snapshot_date, health_score, band, model_version,
           lag(snapshot_date) OVER w AS previous_snapshot_date,
           lag(band) OVER w AS previous_band,
           lag(health_score) OVER w AS previous_score
    FROM {SCHEMA}.account_health
    WINDOW w AS (PARTITION BY account_id ORDER BY snapshot_date)
)
SELECT o.account_id, o.snapshot_date, o.health_score, o.band, o.model_version,
       o.health_score - d7.health_score AS change_7d,
       o.health_score - d30.health_score AS change_30d,
       o.health_score - d28.health_score AS change_4w,
       o.previous_snapshot_date, o.previous_band,
       o.health_score - o.previous_score AS change_since_previous,
       CASE WHEN o.previous_band IS NOT NULL AND o.previous_band <> o.band
            THEN o.previous_band || '->' || o.band END AS band_transition
FROM ordered o
LEFT JOIN {SCHEMA}.account_health d7 ON d7.account_id = o.account_id AND d7.snapshot_date = o.snapshot_date - 7
LEFT JOIN {SCHEMA}.account_health d30 ON d30.account_id = o.account_id AND d30.snapshot_date = o.snapshot_date - 30
LEFT JOIN {SCHEMA}.account_health d28 ON d28.account_id = o.account_id AND d28.snapshot_date = o.snapshot_date - 28
"""

KEY = ["snapshot_date", "account_id"]


def build_health_rows(
    scores: pl.DataFrame | pl.LazyFrame,
    segments: pl.DataFrame | pl.LazyFrame,
    indicators: pl.DataFrame | pl.LazyFrame,
    model_version: str,
    computed_at: dt.datetime,
) -> pl.LazyFrame:
    """Health rows for every snapshot in the frames (they carry `snapshot_date`), lazily: the
    publish reads them one snapshot date at a time."""
    frame = (
        scores.lazy()
        .join(segments.lazy(), on=KEY, how="left")
        .join(
            indicators.lazy().select(*KEY, "csm_owner", "arr_usd", "renewal_date", "days_to_renewal"),
            on=KEY,
            how="left",
        )
        .with_columns(
            model_version=pl.lit(model_version),
            computed_at=pl.lit(computed_at, dtype=pl.Datetime("us", "UTC")),
        )
    )
    return frame.select(list(HEALTH_COLUMNS)).sort(KEY)


def empty_frame(columns: dict[str, str]) -> pl.DataFrame:
    return pl.DataFrame(schema={name: pl.String for name in columns}).clear()


def build_parent_rows(
    scores: pl.DataFrame, indicators: pl.DataFrame | pl.LazyFrame, model: "HealthModel", computed_at: dt.datetime
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Each snapshot's parent roll-ups and members (health_model.yaml `parents`)."""
    from cs_assets.scoring.parents import rollup_parents

    assert model.parent_column is not None
    wanted = ["account_id", "snapshot_date", model.parent_column]
    if model.parent_weight != "equal":
        wanted.append(model.parent_weight)
    missing = [c for c in wanted if c not in indicators.lazy().collect_schema()]
    if missing:
        raise PublishError(
            f"parent roll-up: the CRM has no column {', '.join(missing)} (health_model.yaml `parents`; "
            "declare it in sources.yaml, or remove `parents`)"
        )
    accounts = indicators.lazy().filter(pl.col("is_active")).select(wanted).collect()
    stamp = pl.lit(computed_at, dtype=pl.Datetime("us", "UTC"))
    rollups, members = [], []
    for (day,), part in scores.partition_by("snapshot_date", as_dict=True, maintain_order=True).items():
        these = accounts.filter(pl.col("snapshot_date") == day)
        rollup, member = rollup_parents(part, these, model, model.parent_column, model.parent_weight)
        rollups.append(rollup.with_columns(snapshot_date=pl.lit(day, dtype=pl.Date)))
        members.append(member.with_columns(snapshot_date=pl.lit(day, dtype=pl.Date)))
    if not rollups:
        return empty_frame(PARENT_COLUMNS), empty_frame(PARENT_MEMBER_COLUMNS)
    parents = pl.concat(rollups).with_columns(model_version=pl.lit(model.version), computed_at=stamp)
    return (
        parents.select(list(PARENT_COLUMNS)).sort(KEY[0], "parent_account_id"),
        pl.concat(members).with_columns(computed_at=stamp).select(list(PARENT_MEMBER_COLUMNS)),
    )


def build_note_rows(
    indicators: pl.DataFrame | pl.LazyFrame, noted: dict[str, str], computed_at: dt.datetime
) -> pl.DataFrame | pl.LazyFrame:
    """Per active account and `latest` indicator with a note (`noted`: indicator -> note column):
    the value and the note of the record it came from, where there is one."""
    active = indicators.lazy().filter(pl.col("is_active"))
    frames = [
        active.select(
            "account_id",
            "snapshot_date",
            indicator=pl.lit(name),
            value=pl.col(name).cast(pl.Float64),
            note=pl.col(note).cast(pl.String),
        ).filter(pl.col("value").is_not_null() | pl.col("note").is_not_null())
        for name, note in noted.items()
    ]
    if not frames:
        return empty_frame(NOTE_COLUMNS)
    stamp = pl.lit(computed_at, dtype=pl.Datetime("us", "UTC"))
    return pl.concat(frames).with_columns(computed_at=stamp).select(list(NOTE_COLUMNS)).sort(KEY[0], "account_id")


def build_indicator_value_rows(indicators: pl.DataFrame | pl.LazyFrame, names: list[str]) -> pl.LazyFrame:
    active = indicators.lazy().filter(pl.col("is_active"))
    return active.select("account_id", "snapshot_date", *[pl.col(c).cast(pl.Float64) for c in names]).sort(KEY)


def build_contribution_rows(contributions: pl.DataFrame | pl.LazyFrame, computed_at: dt.datetime) -> pl.LazyFrame:
    """Contribution rows, lazily: a backfill's are read and written one snapshot at a time."""
    frame = (
        contributions.lazy()
        .rename({"composite_share": "effective_weight"})
        .with_columns(
            computed_at=pl.lit(computed_at, dtype=pl.Datetime("us", "UTC")),
        )
    )
    return frame.select(list(CONTRIBUTION_COLUMNS)).sort("snapshot_date", "account_id", "indicator")


def column_schema(columns: dict[str, str], descriptions: dict[str, str]):
    """The published table's columns as a Dagster table schema (types and descriptions)."""
    import dagster as dg

    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name,
                decl.split(" ")[0].lower(),
                description=descriptions.get(name, ""),
                constraints=dg.TableColumnConstraints(nullable="NOT NULL" not in decl),
            )
            for name, decl in columns.items()
        ]
    )


def fetch_value(con: duckdb.DuckDBPyConnection, sql: str, params: list) -> Any:
    """The first value of the one row `sql` returns: an aggregate's, or a row the caller knows exists."""
    row = con.execute(sql, params).fetchone()
    if row is None:
        raise LookupError(f"no row for {sql} with {params}")
    return row[0]


def create_table(con: duckdb.DuckDBPyConnection, table: str, columns: dict[str, str], extra: str = "") -> None:
    ddl = ", ".join(f"{name} {decl}" for name, decl in columns.items())
    con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({ddl}{extra})")


def table_exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    schema, name = table.split(".")
    rows = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?", [schema, name]
    ).fetchall()
    return bool(rows[0][0])


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    schema, name = table.split(".")
    return [
        r[0]
        for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
            "ORDER BY ordinal_position",
            [schema, name],
        ).fetchall()
    ]


def _ensure_table(con: duckdb.DuckDBPyConnection, table: str, columns: dict[str, str], additive: bool = False) -> None:
    ddl = ", ".join(f"{name} {decl}" for name, decl in columns.items())
    con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({ddl})")
    existing = table_columns(con, table)
    if additive:
        # rows are inserted by name: a new column is added (null in older rows), an old one stays
        for name, decl in columns.items():
            if name not in existing:
                con.execute(f'ALTER TABLE {table} ADD COLUMN "{name}" {decl}')
        return
    wanted = list(columns)
    if (
        existing != wanted
        and existing == wanted[: len(existing)]
        and all("NOT NULL" not in columns[name] for name in wanted[len(existing) :])
    ):
        # a table of an earlier release: the columns added since are nullable, older rows get null
        for name in wanted[len(existing) :]:
            con.execute(f'ALTER TABLE {table} ADD COLUMN "{name}" {columns[name]}')
        return
    if existing != wanted:
        raise PublishError(
            f"{table} has columns {existing}, this release writes {list(columns)}; "
            "migrate or rename the old table before publishing"
        )


def ensure_tables(con: duckdb.DuckDBPyConnection, indicators: list[str]) -> None:
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    _ensure_table(con, HEALTH_TABLE, HEALTH_COLUMNS)
    _ensure_table(con, CONTRIBUTIONS_TABLE, CONTRIBUTION_COLUMNS)
    _ensure_table(con, INDICATOR_VALUES_TABLE, indicator_value_columns(indicators), additive=True)
    _ensure_table(con, LINEAGE_TABLE, LINEAGE_COLUMNS)
    _ensure_table(con, MODEL_TABLE, MODEL_COLUMNS)
    _ensure_table(con, PARENT_TABLE, PARENT_COLUMNS)
    _ensure_table(con, PARENT_MEMBERS_TABLE, PARENT_MEMBER_COLUMNS)
    _ensure_table(con, NOTES_TABLE, NOTE_COLUMNS)
    con.execute(TREND_VIEW_SQL)


def previous_snapshot(con: duckdb.DuckDBPyConnection, snapshot_date: dt.date) -> tuple[dt.date | None, pl.DataFrame]:
    """The latest published snapshot before `snapshot_date` (account_id, band), if any."""
    exists = fetch_value(
        con,
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = 'account_health'",
        [SCHEMA],
    )
    empty = pl.DataFrame(schema={"account_id": pl.String, "band": pl.String})
    if not exists:
        return None, empty
    previous = fetch_value(
        con, f"SELECT max(snapshot_date) FROM {HEALTH_TABLE} WHERE snapshot_date < ?", [snapshot_date]
    )
    if previous is None:
        return None, empty
    rows = con.execute(
        f"SELECT account_id, band FROM {HEALTH_TABLE} WHERE snapshot_date = ? ORDER BY account_id", [previous]
    ).fetchall()
    return previous, pl.DataFrame(rows, schema=empty.schema, orient="row")


@contextmanager
def registered(con: duckdb.DuckDBPyConnection, name: str, data: Any) -> Iterator[None]:
    """`data` (Arrow) visible to SQL as `name` for the body.

    After a failed statement DuckDB refuses everything but ROLLBACK in the transaction, the
    unregister too: the body's own error is the one that propagates, never that refusal.
    """
    con.register(name, data)
    try:
        yield
    except BaseException:
        with suppress(duckdb.Error):
            con.unregister(name)
        raise
    con.unregister(name)


def arrow_stream(frames: Iterable[pl.DataFrame], schema: pa.Schema | None = None) -> pa.RecordBatchReader:
    """The frames as one Arrow stream, each made only when DuckDB reads up to it (the schema is
    the first frame's unless given; there must then be one).

    One INSERT of a stream lets DuckDB write the rows to the file as they come; inserting each
    frame on its own inside a transaction kept every one of them in memory to the commit (10 GB
    for the 56M contribution rows of a 30-day backfill of 100,000 accounts, 2.5 GB as one stream).
    """
    tables: Iterator[pa.Table] = (frame.to_arrow() for frame in frames)
    if schema is None:
        first = next(tables)
        schema = first.schema
        tables = chain([first], tables)
    return pa.RecordBatchReader.from_batches(
        schema, (batch for table in tables for batch in table.cast(schema).to_batches())
    )


def _by_date(frame: pl.LazyFrame, dates: list[dt.date]) -> pa.RecordBatchReader:
    """`frame`'s rows as one Arrow stream, read one snapshot date at a time."""
    schema = frame.clear().collect().to_arrow().schema
    return arrow_stream((frame.filter(pl.col("snapshot_date") == day).collect() for day in dates), schema)


def publish_snapshots(
    con: duckdb.DuckDBPyConnection,
    snapshot_dates: list[dt.date],
    health: pl.DataFrame | pl.LazyFrame,
    contributions: pl.DataFrame | pl.LazyFrame,
    indicator_values: pl.DataFrame | pl.LazyFrame,
    lineage: pl.DataFrame,
    model_version: str,
    model_json: str,
    computed_at: dt.datetime,
    parents: pl.DataFrame | None = None,
    parent_members: pl.DataFrame | None = None,
    notes: pl.DataFrame | pl.LazyFrame | None = None,
) -> None:
    """Replace the given snapshots in every published table atomically.

    Re-running a snapshot replaces it, never duplicates it; readers see the old rows or the new
    ones, never a mix, and a failure leaves every table as it was. A LazyFrame is inserted one
    snapshot date at a time (inside the same transaction), so it need not fit in memory.
    """
    con.execute("BEGIN TRANSACTION")
    try:
        ensure_tables(con, [c for c in indicator_values.collect_schema() if c not in INDICATOR_VALUE_KEY])
        run_dates = pl.DataFrame({"snapshot_date": snapshot_dates}, schema={"snapshot_date": pl.Date})
        with registered(con, "run_dates", run_dates.to_arrow()):
            tables = (
                (HEALTH_TABLE, health),
                (CONTRIBUTIONS_TABLE, contributions),
                (INDICATOR_VALUES_TABLE, indicator_values),
                (LINEAGE_TABLE, lineage),
                # no roll-up configured: the snapshot's old parent rows go all the same
                (PARENT_TABLE, empty_frame(PARENT_COLUMNS) if parents is None else parents),
                (
                    PARENT_MEMBERS_TABLE,
                    empty_frame(PARENT_MEMBER_COLUMNS) if parent_members is None else parent_members,
                ),
                (NOTES_TABLE, empty_frame(NOTE_COLUMNS) if notes is None else notes),
            )
            for table, frame in tables:
                con.execute(f"DELETE FROM {table} WHERE snapshot_date IN (SELECT snapshot_date FROM run_dates)")
                rows = _by_date(frame, snapshot_dates) if isinstance(frame, pl.LazyFrame) else frame.to_arrow()
                with registered(con, "incoming", rows):
                    con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM incoming")
        con.execute(
            f"INSERT INTO {MODEL_TABLE} SELECT ?, ?, ? WHERE NOT EXISTS "
            f"(SELECT 1 FROM {MODEL_TABLE} WHERE model_version = ?)",
            [model_version, model_json, computed_at, model_version],
        )
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


def published_bands_of(con: duckdb.DuckDBPyConnection, dates: list[dt.date]) -> dict[dt.date, pl.DataFrame]:
    """The published bands (account_id, band) of those of `dates` that are published already."""
    # fetchall, not fetchone: duckdb refuses `register` while a result is not fully read
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = 'account_health'",
        [SCHEMA],
    ).fetchall()[0][0]
    if not exists:
        return {}
    run_dates = pl.DataFrame({"snapshot_date": dates}, schema={"snapshot_date": pl.Date})
    with registered(con, "run_dates", run_dates.to_arrow()):
        frame = con.sql(
            f"SELECT snapshot_date, account_id, band FROM {HEALTH_TABLE} "
            "WHERE snapshot_date IN (SELECT snapshot_date FROM run_dates) ORDER BY snapshot_date, account_id"
        ).pl()
    return {
        key[0]: part.drop("snapshot_date") for key, part in frame.partition_by("snapshot_date", as_dict=True).items()
    }
