"""One software-defined asset per source export: read, type, trim ids, de-duplicate."""

import dagster as dg
import polars as pl

from cs_assets.sources.normalise import clean
from cs_assets.sources.schemas import SOURCES, SourceSpec
from resources.landing import LandingZoneResource

OWNER = "team:data-platform"

SOURCE_KINDS = {"csv": "csv", "parquet": "parquet", "jsonl": "json"}


def build_source_asset(spec: SourceSpec) -> dg.AssetsDefinition:
    @dg.asset(
        name=spec.name,
        group_name="sources",
        kinds={"polars", SOURCE_KINDS[spec.file_format]},
        owners=[OWNER],
        description=spec.description,
        metadata={"landing_path": spec.path, "source_key": ", ".join(spec.key)},
    )
    def _source(context: dg.AssetExecutionContext, landing: LandingZoneResource) -> pl.LazyFrame:
        raw = landing.read(spec)
        cleaned = clean(spec, raw)
        counts = pl.concat(
            [raw.select(rows=pl.len()), cleaned.select(rows=pl.len())], how="vertical"
        ).collect()["rows"]
        newest = cleaned.select(pl.col(spec.timestamp_column).max()).collect().item()
        context.add_output_metadata(
            {
                "rows_in_export": int(counts[0]),
                "rows_removed": int(counts[0] - counts[1]),
                "files": [str(p.name) for p in landing.files(spec)],
                "newest_timestamp": str(newest) if newest is not None else "none",
            }
        )
        return cleaned

    return _source


source_assets = [build_source_asset(spec) for spec in SOURCES.values()]
