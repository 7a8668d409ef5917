"""What fed each published snapshot: the materializations (run ids, data versions) of its inputs.

Stored with the scores (`published.snapshot_lineage`), so `cs-health explain --trace` can
answer "which loads produced this score" from the warehouse alone, after the run is long gone.
"""

import datetime as dt

import dagster as dg
import polars as pl

from cs_assets.publish.tables import LINEAGE_COLUMNS

PARTITIONED_INPUTS = [
    "account_indicators",
    "indicator_contributions",
    "account_subscores",
    "account_health_scores",
    "account_segments",
]
DATA_VERSION_TAG = "dagster/data_version"


def _row(record, asset: str) -> dict:
    materialization = record.asset_materialization if record is not None else None
    return {
        "asset_key": asset,
        "run_id": record.run_id if record is not None else None,
        "data_version": materialization.tags.get(DATA_VERSION_TAG) if materialization is not None else None,
        "materialized_at": dt.datetime.fromtimestamp(record.timestamp, dt.UTC) if record is not None else None,
    }


INPUT_POINTER_TAG = "dagster/input_event_pointer/"
INPUT_VERSION_TAG = "dagster/input_data_version/"


def _source_rows(instance: dg.DagsterInstance, indicators_record, sources: list[str], cache: dict) -> list[dict]:
    """The source loads the snapshot's indicator step read: the materializations its own
    input tags point at (not whichever load is newest when the publish runs)."""
    tags = indicators_record.asset_materialization.tags if indicators_record is not None else {}
    rows = []
    for asset in sources:
        pointer = tags.get(f"{INPUT_POINTER_TAG}{asset}")
        record = None
        if pointer is not None:
            if (asset, pointer) not in cache:  # the snapshots of one run share their loads
                found = instance.fetch_materializations(
                    dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), storage_ids=[int(pointer)]), limit=1
                ).records
                cache[asset, pointer] = found[0] if found else None
            record = cache[asset, pointer]
        row = _row(record, asset)
        # the version the step read, as Dagster recorded it when the step ran
        row["data_version"] = tags.get(f"{INPUT_VERSION_TAG}{asset}", row["data_version"])
        rows.append(row)
    return rows


def lineage_rows(
    context: dg.AssetExecutionContext, dates: list[dt.date], computed_at: dt.datetime, sources: list[str]
) -> pl.DataFrame:
    """Per snapshot, each input's materialization: the snapshot's own steps (the materialization
    of its partition that the publish step's inputs were read from), and the source loads that
    its indicator step read."""
    instance = context.instance
    rows = []
    keys = [d.isoformat() for d in dates]
    per_partition: dict[str, dict[str, object]] = {}
    for asset in PARTITIONED_INPUTS:
        found: dict[str, object] = {}
        result = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=keys), limit=len(keys) * 2 + 10
        )
        for record in result.records:  # newest first
            found.setdefault(record.partition_key, record)
        per_partition[asset] = found
    cache: dict = {}
    for date in dates:
        indicators = per_partition["account_indicators"].get(date.isoformat())
        for row in _source_rows(instance, indicators, sources, cache):
            rows.append({"snapshot_date": date, **row})
        for asset in PARTITIONED_INPUTS:
            rows.append({"snapshot_date": date, **_row(per_partition[asset].get(date.isoformat()), asset)})
    frame = pl.DataFrame(
        rows,
        schema={
            "snapshot_date": pl.Date,
            "asset_key": pl.String,
            "run_id": pl.String,
            "data_version": pl.String,
            "materialized_at": pl.Datetime("us", "UTC"),
        },
        orient="row",
    ).with_columns(
        publish_run_id=pl.lit(context.run_id),
        computed_at=pl.lit(computed_at, dtype=pl.Datetime("us", "UTC")),
    )
    return frame.select(list(LINEAGE_COLUMNS))


def _deps(*pairs: tuple[str, str]) -> list[dg.TableColumnDep]:
    return [dg.TableColumnDep(asset_key=dg.AssetKey(asset), column_name=column) for asset, column in pairs]


HEALTH_COLUMN_LINEAGE = dg.TableColumnLineage(
    deps_by_column={
        "health_score": _deps(("account_health_scores", "health_score")),
        "co_score": _deps(("account_health_scores", "co_score")),
        "cx_score": _deps(("account_health_scores", "cx_score")),
        "band": _deps(("account_segments", "band")),
        "lifecycle_stage": _deps(("account_segments", "lifecycle_stage")),
        "triage_priority": _deps(("account_segments", "triage_priority")),
        "drag_1_indicator": _deps(("account_health_scores", "drag_1_indicator")),
        "csm_owner": _deps(("account_indicators", "csm_owner")),
        "renewal_date": _deps(("account_indicators", "renewal_date")),
        "days_to_renewal": _deps(("account_indicators", "days_to_renewal")),
        "arr_usd": _deps(("account_indicators", "arr_usd")),
    }
)

SCORE_COLUMN_LINEAGE = dg.TableColumnLineage(
    deps_by_column={
        "health_score": _deps(("indicator_contributions", "points")),
        "co_score": _deps(("account_subscores", "co_score")),
        "cx_score": _deps(("account_subscores", "cx_score")),
        "drag_1_indicator": _deps(("indicator_contributions", "indicator"), ("indicator_contributions", "points")),
    }
)
