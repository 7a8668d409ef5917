"""Read-side queries over the published tables: history, change attribution, lineage.

Used by `cs-health explain`; each function takes an open (read-only) DuckDB connection.
"""

import datetime as dt
import json

import duckdb
import polars as pl

from cs_assets.publish.tables import (
    CONTRIBUTIONS_TABLE,
    HEALTH_TABLE,
    INDICATOR_VALUES_TABLE,
    LINEAGE_TABLE,
    MODEL_TABLE,
    fetch_value,
    table_columns,
)
from cs_assets.scoring.attribution import MODEL_CHANGE, SEGMENT_CHANGE, attribute_change
from cs_assets.scoring.composite import DECIMAL
from cs_assets.scoring.model_config import DEFAULT_SEGMENT, HealthModel, parse_model


def _frame(con: duckdb.DuckDBPyConnection, sql: str, params: list, schema: dict) -> pl.DataFrame:
    return pl.DataFrame(con.execute(sql, params).fetchall(), schema=schema, orient="row")


def snapshot_on_or_before(con: duckdb.DuckDBPyConnection, account: str, day: dt.date) -> dt.date | None:
    return fetch_value(
        con,
        f"SELECT max(snapshot_date) FROM {HEALTH_TABLE} WHERE account_id = ? AND snapshot_date <= ?",
        [account, day],
    )


def snapshot_points(con: duckdb.DuckDBPyConnection, account: str, day: dt.date) -> tuple[str, str, pl.DataFrame]:
    """The model version and segment model that scored the account on `day`, and its points."""
    # `day` is a snapshot the account was scored in (see snapshot_on_or_before)
    row = con.execute(
        f"SELECT model_version, segment_model FROM {HEALTH_TABLE} WHERE account_id = ? AND snapshot_date = ?",
        [account, day],
    ).fetchone()
    if row is None:
        raise LookupError(f"account {account} has no published score on {day}")
    version, segment = row[0], row[1] or DEFAULT_SEGMENT  # rows of a release before segments: the default
    points = _frame(
        con,
        f"SELECT account_id, indicator, points FROM {CONTRIBUTIONS_TABLE} WHERE account_id = ? AND snapshot_date = ? "
        "ORDER BY indicator",
        [account, day],
        {"account_id": pl.String, "indicator": pl.String, "points": DECIMAL},
    )
    return version, segment, points


def rescore_with_model(
    con: duckdb.DuckDBPyConnection, account: str, day: dt.date, model_version: str, segment: str = DEFAULT_SEGMENT
) -> pl.DataFrame:
    """The account's indicators on `day`, scored with a published model version and one of its
    segment models."""
    from cs_assets.scoring.assets import contributions_for

    model = _published_model(con, model_version)
    if model is None:
        raise ValueError(f"model version {model_version} is not in {MODEL_TABLE}; cannot separate the model change")
    stored = set(table_columns(con, INDICATOR_VALUES_TABLE))
    names = [i.name for i in model.indicators]
    present = [n for n in names if n in stored]
    values = _frame(
        con,
        f"SELECT account_id{''.join(', ' + c for c in present)} FROM {INDICATOR_VALUES_TABLE} "
        "WHERE account_id = ? AND snapshot_date = ?",
        [account, day],
        {"account_id": pl.String, **{c: pl.Float64 for c in present}},
    ).with_columns(
        *[pl.lit(None, dtype=pl.Float64).alias(n) for n in names if n not in stored],
        is_active=pl.lit(True),
        segment_model=pl.lit(segment),
    )
    return contributions_for(values, model).select("account_id", "indicator", "points")


def _published_model(con: duckdb.DuckDBPyConnection, model_version: str) -> HealthModel | None:
    # the stored model is the effective one that scored those rows: no catalogue needed to re-apply it
    document = con.execute(f"SELECT model_json FROM {MODEL_TABLE} WHERE model_version = ?", [model_version]).fetchone()
    return None if document is None else parse_model(json.loads(document[0]), source=f"{MODEL_TABLE}[{model_version}]")


def score_change(con: duckdb.DuckDBPyConnection, account: str, since: dt.date, until: dt.date) -> dict:
    """Attribution of the account's score change from snapshot `since` to snapshot `until`."""
    version_before, segment_before, before = snapshot_points(con, account, since)
    version_after, segment_after, after = snapshot_points(con, account, until)
    # the later data scored the earlier way first; then one change of the way of scoring at a time
    steps: list[tuple[str, pl.DataFrame]] = []
    if version_before != version_after:
        steps.append((MODEL_CHANGE, rescore_with_model(con, account, until, version_before, segment_before)))
        newer = _published_model(con, version_after)
        if segment_before != segment_after and newer is not None and segment_before in newer.segment_names:
            steps.append((SEGMENT_CHANGE, rescore_with_model(con, account, until, version_after, segment_before)))
    elif segment_before != segment_after:
        steps.append((SEGMENT_CHANGE, rescore_with_model(con, account, until, version_before, segment_before)))
    parts = attribute_change(before, after, steps=steps)
    return {
        "score_before": before["points"].sum(),
        "score_after": after["points"].sum(),
        "model_before": version_before,
        "model_after": version_after,
        "segment_before": segment_before,
        "segment_after": segment_after,
        "parts": parts,
    }


def lineage(con: duckdb.DuckDBPyConnection, day: dt.date) -> pl.DataFrame:
    return _frame(
        con,
        f"SELECT asset_key, run_id, data_version, materialized_at, publish_run_id FROM {LINEAGE_TABLE} "
        "WHERE snapshot_date = ? ORDER BY materialized_at, asset_key",
        [day],
        {
            "asset_key": pl.String,
            "run_id": pl.String,
            "data_version": pl.String,
            "materialized_at": pl.Datetime("us", "UTC"),
            "publish_run_id": pl.String,
        },
    )
