"""Reads source exports from the landing directory.

The source assets only ask this resource for a frame. A source configured as `kind: http` in
`sources.yaml` is first pulled into its landing export by `sync` (see `resources.connectors`), so
the assets and their checks do not change with the transport.

Every way an export can be broken ends in a `SourceDataError` that names the source, the file,
and where in it: the line of bad UTF-8 or of a half-written JSON record, the part file whose
column has another type, a truncated Parquet file, and a file that changed while it was read.
"""

import hashlib
import json
from pathlib import Path

import dagster as dg
import polars as pl

from cs_assets.sources.contract import SourceSpec
from cs_assets.sources.normalise import SourceDataError, normalise_text_source, normalise_typed_source, rename_exported


def _stat(files: list[Path]) -> list[tuple]:
    out: list[tuple] = []
    for path in files:
        try:
            stat = path.stat()
            out.append((path.name, stat.st_size, stat.st_mtime_ns, stat.st_ino))
        except FileNotFoundError:
            out.append((path.name, None))
    return out


def _bad_utf8(path: Path) -> str | None:
    """'line 17, column 'comment': invalid UTF-8 bytes b'\\xe9'' for the first bad byte, if any."""
    data = path.read_bytes()
    try:
        data.decode("utf-8")
        return None
    except UnicodeDecodeError as exc:
        start = data.rfind(b"\n", 0, exc.start) + 1
        line = data.count(b"\n", 0, exc.start) + 1
        header = data.split(b"\n", 1)[0].decode("utf-8", errors="replace").split(",")
        index = data[start : exc.start].count(b",")  # a comma in a quoted value can shift it: a hint
        column = f", column {header[index].strip()!r}" if index < len(header) else ""
        return f"line {line:,}{column}: invalid UTF-8 bytes {data[exc.start : exc.end]!r} (the export must be UTF-8)"


def _bad_json_line(path: Path) -> str | None:
    """Where the first line that is not one JSON record is, and whether the file was cut off."""
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = text.split("\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            cut = number == len(lines) and not text.endswith("\n")
            why = (
                "; it is the last line and the file does not end with a newline: the export was cut off while it was written"
                if cut
                else ""
            )
            return f"line {number:,} is not a JSON record ({exc.msg} at character {exc.pos + 1}){why}"
        if not isinstance(record, dict):
            return f"line {number:,} is a JSON {type(record).__name__}, not a record"
    return None


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
        """The export as a typed frame, before de-duplication: text formats are parsed into memory
        (a bad value is reported with its row); Parquet parts are checked against the contract's
        types here and scanned lazily, so that they can be streamed."""
        files = self.files(spec)
        where = self.location(spec)
        if not files:
            raise SourceDataError(f"source {spec.name}: no export found at {where}")
        empty = [p for p in files if p.stat().st_size == 0]
        if empty:
            raise SourceDataError(f"source {spec.name}: export file {empty[0]} is empty")
        before = _stat(files)
        try:
            frame = self._read(spec, files, str(where))
        except (SourceDataError, pl.exceptions.PolarsError, pl.exceptions.PanicException, OSError) as exc:
            if self.state(spec) != before:
                raise self._changed_error(spec) from None
            if isinstance(exc, SourceDataError):
                raise
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise SourceDataError(f"source {spec.name} ({where}): cannot read the export: {first}") from None
        self.check_unchanged(spec, before)
        return frame.lazy()

    def state(self, spec: SourceSpec) -> list[tuple]:
        """The export files' names, sizes, modification times and inodes, to tell a change while reading."""
        return _stat(self.files(spec))

    def check_unchanged(self, spec: SourceSpec, state: list[tuple]) -> None:
        """Fail, saying so, if the export is no longer in the `state` it was in (a new one is being written)."""
        if self.state(spec) != state:
            raise self._changed_error(spec)

    def _changed_error(self, spec: SourceSpec) -> SourceDataError:
        return SourceDataError(
            f"source {spec.name} ({self.location(spec)}): the export changed while it was read (a new "
            "export was being written); run again once it is complete"
        )

    def _read(self, spec: SourceSpec, files: list[Path], where: str) -> pl.DataFrame | pl.LazyFrame:
        if spec.file_format == "parquet":
            parts = []
            for path in files:
                try:
                    pl.read_parquet_schema(path)
                except (pl.exceptions.PolarsError, OSError) as exc:
                    raise SourceDataError(
                        f"source {spec.name} ({path}): not a complete Parquet file ({str(exc).strip().splitlines()[0]}); "
                        "it may have been cut off while it was written"
                    ) from None
                # lazy: the source asset streams the parts into staging instead of holding them
                parts.append(normalise_typed_source(spec, rename_exported(spec, pl.scan_parquet(path)), str(path)))
            return pl.concat(parts, how="vertical")
        if spec.file_format == "csv":
            frames = []
            for path in files:
                try:
                    frames.append(pl.read_csv(path, infer_schema=False))
                except pl.exceptions.PolarsError as exc:
                    detail = _bad_utf8(path) or f"cannot parse CSV: {str(exc).strip().splitlines()[0]}"
                    raise SourceDataError(f"source {spec.name} ({path}): {detail}") from None
            raw = pl.concat(frames, how="diagonal_relaxed")
            return normalise_text_source(spec, rename_exported(spec, raw.lazy()), where).collect()
        if spec.file_format == "jsonl":
            frames = []
            for path in files:
                try:
                    frames.append(pl.read_ndjson(path, infer_schema_length=None))
                except pl.exceptions.PolarsError as exc:
                    detail = (
                        _bad_utf8(path)
                        or _bad_json_line(path)
                        or f"cannot parse JSON lines: {str(exc).strip().splitlines()[0]}"
                    )
                    raise SourceDataError(f"source {spec.name} ({path}): {detail}") from None
            raw = pl.concat(frames, how="diagonal_relaxed")
            return normalise_text_source(spec, rename_exported(spec, raw.lazy()), where).collect()
        raise SourceDataError(f"source {spec.name}: unsupported file format {spec.file_format!r}")
