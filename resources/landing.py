"""Reads source exports from the landing directory.

The source assets only ask this resource for a frame. A source configured as `kind: http` in
`config/sources.yaml` is first pulled into its landing export by `sync` (see
`resources.connectors`), so the assets and their checks do not change with the transport.
"""

import hashlib
from pathlib import Path

import dagster as dg
import polars as pl

from cs_assets.sources.normalise import SourceDataError, normalise_text_source, normalise_typed_source, rename_exported
from cs_assets.sources.contract import SourceSpec


class LandingZoneResource(dg.ConfigurableResource):
    """Source exports as files under one directory, in the layout the deployment's sources.yaml declares."""

    landing_dir: str
    # HTTP sources: the sources config ("" = $CS_HEALTH_SOURCES_CONFIG, else config/sources.yaml)
    # and where cursors are kept ("" = <landing_dir>/../state). No secret is ever configured here.
    sources_config: str = ""
    state_dir: str = ""

    def sync(self, spec: SourceSpec):
        """Pull an HTTP source into its landing export, all or nothing; None for a file source."""
        from resources.connectors import sync_source

        return sync_source(self, spec)

    def location(self, spec: SourceSpec) -> Path:
        return Path(self.landing_dir) / spec.path

    def files(self, spec: SourceSpec) -> list[Path]:
        path = self.location(spec)
        if path.is_dir():
            return sorted(p for p in path.glob(f"*.{spec.file_format}") if p.is_file())
        return [path] if path.is_file() else []

    def fingerprint(self, spec: SourceSpec) -> str:
        """Content hash of the export's files: the source's data version (same bytes, same version)."""
        digest = hashlib.sha256()
        for path in self.files(spec):
            digest.update(f"{path.name}\0{path.stat().st_size}\0".encode())
            with path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
        return digest.hexdigest()[:16]

    def signature(self, spec: SourceSpec) -> str | None:
        """Cheap change detector for sensors (names, sizes, modification times); None: no export."""
        files = self.files(spec)
        if not files:
            return None
        digest = hashlib.sha256()
        for path in files:
            stat = path.stat()
            digest.update(f"{path.name}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
        return digest.hexdigest()[:16]

    def read(self, spec: SourceSpec) -> pl.LazyFrame:
        """The export as a typed lazy frame, before de-duplication."""
        files = self.files(spec)
        where = self.location(spec)
        if not files:
            raise SourceDataError(f"source {spec.name}: no export found at {where}")
        empty = [p for p in files if p.stat().st_size == 0]
        if empty:
            raise SourceDataError(f"source {spec.name}: export file {empty[0]} is empty")
        if spec.file_format == "parquet":
            return normalise_typed_source(spec, rename_exported(spec, pl.scan_parquet(files)), str(where))
        if spec.file_format == "csv":
            try:
                raw = pl.concat([pl.read_csv(p, infer_schema=False) for p in files], how="diagonal_relaxed")
            except pl.exceptions.PolarsError as exc:
                raise SourceDataError(f"source {spec.name} ({where}): cannot parse CSV: {exc}") from None
            return normalise_text_source(spec, rename_exported(spec, raw.lazy()), str(where))
        if spec.file_format == "jsonl":
            try:
                raw = pl.concat(
                    [pl.read_ndjson(p, infer_schema_length=None) for p in files], how="diagonal_relaxed"
                )
            except pl.exceptions.PolarsError as exc:
                raise SourceDataError(f"source {spec.name} ({where}): cannot parse JSON lines: {exc}") from None
            return normalise_text_source(spec, rename_exported(spec, raw.lazy()), str(where))
        raise SourceDataError(f"source {spec.name}: unsupported file format {spec.file_format!r}")
