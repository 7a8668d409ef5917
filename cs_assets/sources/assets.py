"""One software-defined asset per declared source export: read, type, trim ids, de-duplicate.

Each source asset also evaluates its freshness, volume and duplicate checks in the same step
(they need only the frame just read). Whether those checks block is set in `data_quality.yaml`
and read when the definitions load. An export whose bytes, contract and cleaning code are those
the last load was made from is not read again: its staged copy is kept, and the checks use the
counts that load recorded (the same inputs give the same counts). The sources are the deployment's
(`sources.yaml`): a source it does not declare has no asset at all.
"""

import datetime as dt
import hashlib
import json
from collections.abc import Iterator, Mapping
from typing import Any

import dagster as dg
import polars as pl

from checks.dq_config import DUPLICATES, FRESHNESS, VOLUME, DataQualityConfig
from checks.source_checks import duplicates_result, freshness_result, volume_result
from cs_assets.code_version import code_digest
from cs_assets.deployment import Deployment
from cs_assets.frames import scalar
from cs_assets.indicators.compiler import as_of_end
from cs_assets.sources.contract import SourceSpec
from cs_assets.sources.normalise import clean_lazy
from resources.landing import LandingZoneResource
from resources.model import SnapshotResource
from resources.staging import MadeFrom

OWNER = "team:data-platform"

SOURCE_KINDS = {"csv": "csv", "parquet": "parquet", "jsonl": "json"}

CHECK_DESCRIPTIONS = {
    FRESHNESS: "The newest record is within the source's age limit at the end of the as-of day.",
    VOLUME: "The row count did not drop against the previous load by more than the allowed share.",
    DUPLICATES: "The share of duplicate or keyless rows removed is within the limit.",
}


# output metadata: the digest of what the load was made from (resources.staging.MadeFrom)
MADE_FROM = "made_from"


def previous_load(context: dg.AssetExecutionContext) -> Mapping[str, Any]:
    """The metadata values of this source's last materialization ({} if none)."""
    event = context.instance.get_latest_materialization_event(context.asset_key)
    if event is None or event.asset_materialization is None:
        return {}
    return {name: entry.value for name, entry in event.asset_materialization.metadata.items()}


def load_digest(spec: SourceSpec, export_fingerprint: str) -> str:
    """Everything a load's cleaned frame depends on: the export's bytes, the source's contract, the code."""
    made_of = [export_fingerprint, repr(spec), code_digest(), pl.__version__]
    return hashlib.sha256(json.dumps(made_of).encode()).hexdigest()[:20]


def _recorded_counts(before: Mapping[str, Any]) -> tuple[int, int, dt.datetime | None] | None:
    """(rows in the export, rows loaded, newest timestamp) as the last load recorded them, if it did."""
    try:
        rows_in_export, removed = int(before["rows_in_export"]), int(before["rows_removed"])
        newest = before["newest_timestamp"]
    except (KeyError, TypeError, ValueError):
        return None
    return rows_in_export, rows_in_export - removed, None if newest == "none" else dt.datetime.fromisoformat(newest)


def build_source_asset(spec: SourceSpec, dq: DataQualityConfig) -> dg.AssetsDefinition:
    check_specs = [
        dg.AssetCheckSpec(kind, asset=spec.name, blocking=dq.checks[kind].blocking, description=text)
        for kind, text in CHECK_DESCRIPTIONS.items()
    ]

    @dg.asset(
        name=spec.name,
        group_name="sources",
        kinds={"polars", SOURCE_KINDS[spec.file_format]},
        owners=[OWNER],
        description=spec.description,
        metadata={"landing_path": spec.path, "source_key": ", ".join(spec.key), "role": spec.role},
        check_specs=check_specs,
    )
    def _source(
        context: dg.AssetExecutionContext, landing: LandingZoneResource, snapshot: SnapshotResource
    ) -> Iterator:
        # read before this load's own materialization is recorded
        before = previous_load(context)
        previous_rows = before.get("dagster/row_count")
        # an HTTP source (sources.yaml, kind: http) is pulled into its landing export first, all or nothing
        synced = landing.sync(spec)
        if synced is not None:
            context.log.info(synced.summary())
        state = landing.state(spec)
        fingerprint = landing.fingerprint(spec)
        digest = load_digest(spec, fingerprint)
        origin = str(landing.location(spec))
        recorded = _recorded_counts(before) if before.get(MADE_FROM) == digest else None
        if recorded is not None:
            # unchanged since the last load: the staged copy is kept (rebuilt only if it is gone)
            rows_in_export, rows_loaded, newest = recorded
            context.log.info(
                f"{spec.name}: the export is unchanged since the last load; not read again (its staged copy "
                "is kept, or made again if it is gone)"
            )

            def rebuild() -> pl.LazyFrame:
                frame = clean_lazy(spec, landing.read(spec), origin)
                landing.check_unchanged(spec, state)  # made from the bytes the digest names
                return frame

            load = MadeFrom(digest, rebuild)
        else:
            raw = landing.read(spec)
            # lazy: a large export streams into staging (the IO manager sinks it) instead of being copied
            cleaned = clean_lazy(spec, raw, origin)
            rows_in_export = raw.select(pl.len()).collect().item()
            loaded = cleaned.select(
                pl.len().alias("rows"), pl.col(spec.timestamp_column).max().alias("newest")
            ).collect()
            rows_loaded = loaded["rows"].item()
            # the contract makes the timestamp column a UTC timestamp
            newest = scalar(loaded["newest"].item(), dt.datetime)
            # the digest and the counts must describe the same bytes
            landing.check_unchanged(spec, state)
            load = MadeFrom(digest, lambda: cleaned)
        end = as_of_end(snapshot.as_of_date(landing.landing_dir, context.run.tags))
        limits = dq.sources[spec.name]
        yield dg.Output(
            load,
            data_version=dg.DataVersion(fingerprint),
            metadata={
                MADE_FROM: digest,
                "rows_in_export": rows_in_export,
                "rows_removed": rows_in_export - rows_loaded,
                "files": [p.name for p in landing.files(spec)],
                "newest_timestamp": newest.isoformat() if newest is not None else "none",
                **(synced.metadata() if synced is not None else {}),
            },
        )
        yield freshness_result(spec.name, newest, end, limits, dq.checks[FRESHNESS])
        yield volume_result(spec.name, rows_loaded, previous_rows, limits, dq.checks[VOLUME])
        yield duplicates_result(spec.name, rows_in_export, rows_loaded, limits, dq.checks[DUPLICATES])

    return _source


def build_source_assets(deployment: Deployment) -> list[dg.AssetsDefinition]:
    return [build_source_asset(spec, deployment.dq) for spec in deployment.contract.sources.values()]
