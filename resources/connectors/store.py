"""The raw store of an HTTP source (its landing export) and its cursor state, replaced atomically.

The landing export of an HTTP source is written in the format the landing contract names, so
the source asset reads it exactly as it reads a file export: CSV and JSON lines with ISO-8601
UTC timestamps, Parquet with typed columns. Each write goes to a temporary file (or directory)
beside the target and is moved into place with `os.replace`; the data goes first, the cursor
second, so a crash between the two only makes the next run fetch again what it already has
(merged by key: no duplicates).

The cursor state lives in `<state dir>/<source>.cursor.json`; a lock file beside it keeps two
runs from syncing the same source at once.
"""

import contextlib
import fcntl
import json
import os
import shutil
from pathlib import Path

import polars as pl

from cs_assets.sources.contract import SourceSpec

STATE_VERSION = 1
TS_FORMAT = "%Y-%m-%dT%H:%M:%S%.6f+00:00"


class RawStore:
    def __init__(self, landing, spec: SourceSpec, state_dir: Path):
        self.landing = landing
        self.spec = spec
        self.state_dir = Path(state_dir)
        self.target = Path(landing.location(spec))
        self.is_dir = spec.file_format == "parquet" and self.target.suffix != ".parquet"

    # ------------------------------------------------------------------ state

    @property
    def state_path(self) -> Path:
        return self.state_dir / f"{self.spec.name}.cursor.json"

    def load_state(self) -> dict | None:
        if not self.state_path.is_file():
            return None
        try:
            state = json.loads(self.state_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None  # unreadable: a full fetch rebuilds it
        return state if isinstance(state, dict) and state.get("version") == STATE_VERSION else None

    def save_state(self, state: dict) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"version": STATE_VERSION, **state}, indent=2, sort_keys=True) + "\n"
        _atomic_write(self.state_path, text.encode("utf-8"))

    @contextlib.contextmanager
    def lock(self, fail):
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self.state_dir / f"{self.spec.name}.lock", "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise fail("another run is syncing this source right now; try again when it has finished") from None
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # ------------------------------------------------------------------ data

    def has_data(self) -> bool:
        return bool(self.landing.files(self.spec))

    def read(self) -> pl.DataFrame:
        return self.landing.read(self.spec).collect()

    def recover(self) -> None:
        """Finish a directory swap that a crash interrupted (the old copy is still complete)."""
        old = self._sibling("old")
        if self.is_dir and old.exists():
            if self.target.exists():
                shutil.rmtree(old)
            else:
                os.replace(old, self.target)
        tmp = self._sibling("tmp")
        if tmp.exists():
            shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink()

    def write(self, frame: pl.DataFrame) -> None:
        self.target.parent.mkdir(parents=True, exist_ok=True)
        if self.is_dir:
            tmp = self._sibling("tmp")
            tmp.mkdir()
            frame.write_parquet(tmp / "part-00000.parquet", statistics=True)
            _fsync(tmp / "part-00000.parquet")
            old = self._sibling("old")
            if self.target.exists():
                os.replace(self.target, old)
            os.replace(tmp, self.target)
            if old.exists():
                shutil.rmtree(old)
            return
        tmp = self._sibling("tmp")
        fmt = self.spec.file_format
        if fmt == "parquet":
            frame.write_parquet(tmp)
        elif fmt == "csv":
            as_text(frame).write_csv(tmp)
        elif fmt == "jsonl":
            with_text_times(frame).write_ndjson(tmp)
        else:
            raise ValueError(f"unsupported landing format {fmt!r}")
        _fsync(tmp)
        os.replace(tmp, self.target)

    def _sibling(self, what: str) -> Path:
        return self.target.with_name(f".{self.target.name}.{what}")


def with_text_times(frame: pl.DataFrame) -> pl.DataFrame:
    """Timestamps as ISO-8601 UTC text and dates as YYYY-MM-DD (the contract's text form)."""
    return frame.with_columns(
        [
            pl.col(c).dt.convert_time_zone("UTC").dt.to_string(TS_FORMAT)
            if isinstance(t, pl.Datetime)
            else pl.col(c).dt.to_string("%Y-%m-%d")
            for c, t in frame.schema.items()
            if isinstance(t, pl.Datetime) or t == pl.Date
        ]
    )


def as_text(frame: pl.DataFrame) -> pl.DataFrame:
    return with_text_times(frame).with_columns(pl.all().cast(pl.String))


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
