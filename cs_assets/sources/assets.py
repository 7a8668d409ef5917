"""One software-defined asset per declared source export: read, type, trim ids, de-duplicate.

Each source asset also evaluates its freshness, volume and duplicate checks in the same step
(they need only the frame just read). Whether those checks block is set in `data_quality.yaml`
and read when the definitions load. An export whose bytes, contract and cleaning code are those
the last load was made from is not read again: its staged copy is kept, and the checks use the
counts that load recorded (the same inputs give the same counts). The sources are the deployment's
(`sources.yaml`): a source it does not declare has no asset at all.
"""

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl

from checks.dq_config import DUPLICATES, FRESHNESS, VOLUME, DataQualityConfig
from checks.source_checks import Timestamps, duplicates_result, freshness_result, newest_timestamps, volume_result
from cs_assets import settings
from cs_assets.code_version import code_digest
from cs_assets.deployment import Deployment
from cs_assets.gate import CHECKED_AS_OF, load_refusals, plan_of
from cs_assets.indicators.compiler import as_of_end
from cs_assets.sources.contract import SourceSpec
from cs_assets.sources.normalise import clean_lazy
from resources.landing import LandingZoneResource
from resources.model import SnapshotResource
from resources.staging import MadeFrom, Refused

OWNER = "team:data-platform"

SOURCE_KINDS = {"csv": "csv", "parquet": "parquet", "jsonl": "json"}

CHECK_DESCRIPTIONS = {
    FRESHNESS: (
        "The newest record dated at or before the end of the as-of day is within the source's age limit "
        "(records dated later never make a stale source look fresh)."
    ),
    VOLUME: "The row count did not drop against the previous load by more than the allowed share.",
    DUPLICATES: "The share of duplicate or keyless rows removed is within the limit.",
}


# output metadata: the digest of what the load was made from (resources.staging.MadeFrom)
MADE_FROM = "made_from"
# output metadata: whether the load passed the checks evaluated in its own step
ACCEPTED = "accepted"
# output metadata: the newest timestamps the freshness check saw from the as-of day (JSON)
NEWEST_SEEN = "newest_seen"
DATA_VERSION_TAG = "dagster/data_version"
# loads searched, newest first, for the last one that passed its checks
ACCEPTED_SEARCH = 50


def previous_load(context: dg.AssetExecutionContext) -> tuple[Mapping[str, Any], dg.DataVersion | None]:
    """The metadata values and data version of this source's last accepted load ({}, None if none).

    A load its blocking checks refused is not what the staged copy holds, and not what the next
    load is compared with: a half export refused today must not become the baseline against which
    tomorrow's half export looks normal. A load whose separate check steps were not run with it
    (a materialization of the source alone, through the API) still says what the export held.
    """
    checks = plan_of(context, context.asset_key)["checks"]
    records = context.instance.fetch_materializations(context.asset_key, limit=ACCEPTED_SEARCH).records
    for record in records:
        event = record.asset_materialization
        if event is None or event.metadata.get(ACCEPTED, dg.MetadataValue.bool(True)).value is False:
            continue
        if load_refusals(
            context.instance, context.asset_key, checks, record.run_id, "that load", missing_refuses=False
        ):
            continue
        version = event.tags.get(DATA_VERSION_TAG) if event.tags else None
        return {name: entry.value for name, entry in event.metadata.items()}, (
            dg.DataVersion(version) if version else None
        )
    return {}, None


def load_digest(spec: SourceSpec, export_fingerprint: str) -> str:
    """Everything a load's cleaned frame depends on: the export's bytes, the source's contract, the code."""
    made_of = [export_fingerprint, repr(spec), code_digest(), pl.__version__]
    return hashlib.sha256(json.dumps(made_of).encode()).hexdigest()[:20]


def _recorded_counts(
    before: Mapping[str, Any], as_of: dt.date, end: dt.datetime
) -> tuple[int, int, dt.datetime | None, Timestamps] | None:
    """(rows in the export, rows loaded, newest timestamp, timestamps seen from `as_of`) as the
    last load recorded them; None when it did not record them, or recorded them for another day
    that they cannot answer for (records after `end`: the export must be read for this day)."""
    try:
        rows_in_export, removed = int(before["rows_in_export"]), int(before["rows_removed"])
        text = before["newest_timestamp"]
        newest = None if text == "none" else dt.datetime.fromisoformat(text)
        seen = {k: dt.datetime.fromisoformat(v) if v else None for k, v in json.loads(before[NEWEST_SEEN]).items()}
    except (KeyError, TypeError, ValueError):
        return None
    if before.get(CHECKED_AS_OF) == as_of.isoformat():
        timestamps = Timestamps(**seen)
    elif newest is None or newest <= end:
        timestamps = Timestamps(newest)  # nothing after this day: all of it was known by then
    else:
        return None
    return rows_in_export, rows_in_export - removed, newest, timestamps


def blocks(result: dg.AssetCheckResult, dq: DataQualityConfig) -> bool:
    """Whether a failed inline check refuses the load (blocking, severity ERROR)."""
    policy = dq.checks[str(result.check_name)]
    return not result.passed and policy.blocking and policy.severity == dg.AssetCheckSeverity.ERROR


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
        before, accepted_version = previous_load(context)
        previous_rows = before.get("dagster/row_count")
        # an HTTP source (sources.yaml, kind: http) is pulled into its landing export first, all or nothing
        synced = landing.sync(spec)
        if synced is not None:
            context.log.info(synced.summary())
        state = landing.state(spec)
        fingerprint = landing.fingerprint(spec)
        digest = load_digest(spec, fingerprint)
        origin = str(landing.location(spec))
        as_of = snapshot.as_of_date(landing.landing_dir, context.run.tags)
        end = as_of_end(as_of)
        data_end = as_of_end(settings.resolve_as_of(None, Path(landing.landing_dir)))
        recorded = _recorded_counts(before, as_of, end) if before.get(MADE_FROM) == digest else None
        if recorded is not None:
            # unchanged since the last load: the staged copy is kept (rebuilt only if it is gone)
            rows_in_export, rows_loaded, newest, seen = recorded
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
            # the contract makes the timestamp column a UTC timestamp
            rows_loaded, newest, seen = newest_timestamps(cleaned, spec.timestamp_column, end, max(end, data_end))
            # the digest and the counts must describe the same bytes
            landing.check_unchanged(spec, state)
            load = MadeFrom(digest, lambda: cleaned)
        limits = dq.sources[spec.name]
        results = [
            freshness_result(spec.name, seen, end, limits, dq.checks[FRESHNESS]),
            volume_result(spec.name, rows_loaded, previous_rows, limits, dq.checks[VOLUME]),
            duplicates_result(spec.name, rows_in_export, rows_loaded, limits, dq.checks[DUPLICATES]),
        ]
        refused = [str(r.description or r.check_name) for r in results if blocks(r, dq)]
        metadata = {
            MADE_FROM: digest,
            ACCEPTED: not refused,
            CHECKED_AS_OF: as_of.isoformat(),
            "rows_in_export": rows_in_export,
            "rows_removed": rows_in_export - rows_loaded,
            "files": [p.name for p in landing.files(spec)],
            "newest_timestamp": newest.isoformat() if newest is not None else "none",
            # what the freshness check saw from the as-of day (an unchanged export re-checked for it)
            NEWEST_SEEN: json.dumps(
                {k: v.isoformat() if v is not None else None for k, v in dataclasses.asdict(seen).items()}
            ),
            **(synced.metadata() if synced is not None else {}),
        }
        if refused:
            # a refused load is not an input: the staged copy (and its data version) stay those of
            # the last accepted load, and nothing downstream reads this one
            context.log.warning(f"{spec.name}: load refused ({'; '.join(refused)}); the staged copy is unchanged")
            yield dg.Output(
                Refused("; ".join(refused)),
                data_version=accepted_version or dg.DataVersion(f"refused-{fingerprint}"),
                metadata=metadata,
            )
        else:
            yield dg.Output(load, data_version=dg.DataVersion(fingerprint), metadata=metadata)
        yield from results

    return _source


def build_source_assets(deployment: Deployment) -> list[dg.AssetsDefinition]:
    return [build_source_asset(spec, deployment.dq) for spec in deployment.contract.sources.values()]
