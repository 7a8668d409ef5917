"""Parquet staging for intermediate assets, one file per asset under `$CS_HEALTH_HOME/staging`.

Intermediate steps never open the DuckDB warehouse, so the multiprocess executor's parallel
steps cannot fight over its single-writer lock; only the publish step writes DuckDB. Files are
written to a temporary name and renamed, so a failed step leaves the previous file intact.
"""

import datetime as dt
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl

from cs_assets.partitions import PARTITION_TAG, RANGE_END_TAG, RANGE_START_TAG


def table_schema(schema: pl.Schema) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(name, str(dtype)) for name, dtype in schema.items()])


SNAPSHOT_COLUMN = "snapshot_date"


# parquet key-value metadata: the digest of the inputs a staged file was made from
PARQUET_DIGEST_KEY = "cs_health_made_from"


def _write_atomic(frame: pl.DataFrame | pl.LazyFrame, path: Path, metadata: dict[str, str] | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        if isinstance(frame, pl.LazyFrame):
            frame.sink_parquet(tmp, metadata=metadata)
        else:
            frame.write_parquet(tmp, metadata=metadata)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def made_from(path: Path) -> str | None:
    """The inputs digest a staged file was written with (None: no file, or written without one)."""
    try:
        return pl.read_parquet_metadata(path).get(PARQUET_DIGEST_KEY)
    except (OSError, pl.exceptions.ComputeError):
        return None


@dataclass(frozen=True)
class MadeFrom:
    """A frame made only when the staged file was not already made from the same inputs.

    `digest` names everything the frame depends on (for a source: the export's bytes, its
    contract and the code); it is stored in the file. When the staged file carries the same
    digest, it is kept as it is and `build` is never called, so an unchanged export is not read,
    cleaned and written again.
    """

    digest: str
    build: Callable[[], pl.DataFrame | pl.LazyFrame]


@dataclass(frozen=True)
class Refused:
    """A load its own checks refused: the staged file is left as it is (the last accepted load's),
    so no later step can read what failed its checks."""

    reason: str


@dataclass(frozen=True)
class SnapshotParts:
    """A snapshot-partitioned result made one snapshot date at a time, as it is stored.

    A backfill's long frames (accounts x indicators x dates) need not fit in memory at once: a
    step returns this instead of one frame, and the IO manager computes, writes and drops each
    date's part in turn. `compute(date)` returns that date's rows (with or without the
    `snapshot_date` column), an empty frame of the same columns when the date has none.
    `describe` gets every stored part as one LazyFrame and returns the step's output metadata.
    A part that fails fails the step with the dates before it already rewritten: staging is
    intermediate (the next run writes them again), and nothing downstream runs on a failed step.
    """

    compute: Callable[[dt.date], pl.DataFrame]
    describe: Callable[[pl.LazyFrame], Mapping[str, Any]] | None = None

    def part(self, date: dt.date, asset: str) -> pl.DataFrame:
        """`date`'s rows of `asset`, with the date as the first column."""
        frame = self.compute(date)
        if SNAPSHOT_COLUMN in frame.columns:
            stray = frame.filter(pl.col(SNAPSHOT_COLUMN) != date)[SNAPSHOT_COLUMN].unique().sort()
            if stray.len():
                raise ValueError(f"{asset}: the part of snapshot {date} holds rows of {', '.join(map(str, stray[:5]))}")
            return frame
        return frame.select(pl.lit(date, dtype=pl.Date).alias(SNAPSHOT_COLUMN), pl.all())


# Below this many rows a staged frame is read whole and split by date in memory: cutting each
# date out of a scan over many files re-reads every file's footer for every date, which costs
# more than small rows (a 150-snapshot run of 120 accounts took 39 s that way, 23 s read whole).
READ_WHOLE_ROWS = 2_000_000


def reads_whole(frame: pl.LazyFrame) -> bool:
    """Whether a staged frame is small enough to read whole (its row count is in the files' metadata)."""
    return frame.select(pl.len()).collect().item() <= READ_WHOLE_ROWS


class SnapshotSlices:
    """One snapshot date's rows of a staged frame at a time, without the date column.

    A small frame (or one already in memory) is split by date once. A large staged LazyFrame is
    cut date by date: only that date's file has rows to read (the others' column statistics
    rule them out), so a step that works date by date holds one date in memory at a time.
    """

    def __init__(self, frame: pl.DataFrame | pl.LazyFrame) -> None:
        self._lazy: pl.LazyFrame | None = None
        if isinstance(frame, pl.LazyFrame) and not reads_whole(frame):
            self._lazy = frame
            self._empty = frame.clear().drop(SNAPSHOT_COLUMN).collect()
            found = frame.select(pl.col(SNAPSHOT_COLUMN).unique()).collect()[SNAPSHOT_COLUMN].to_list()
            self.dates: list[dt.date] = sorted(found)
            return
        whole = frame.collect() if isinstance(frame, pl.LazyFrame) else frame
        self._parts = {
            key[0]: part.drop(SNAPSHOT_COLUMN)
            for key, part in whole.partition_by(SNAPSHOT_COLUMN, as_dict=True, maintain_order=True).items()
        }
        self._empty = whole.clear().drop(SNAPSHOT_COLUMN)
        self.dates = sorted(self._parts)

    def rows(self, date: dt.date) -> pl.DataFrame:
        """`date`'s rows (none: an empty frame of the same columns)."""
        if self._lazy is not None:
            return self._lazy.filter(pl.col(SNAPSHOT_COLUMN) == date).drop(SNAPSHOT_COLUMN).collect()
        return self._parts.get(date, self._empty)

    @property
    def empty(self) -> pl.DataFrame:
        return self._empty


class StagingParquetIOManager(dg.ConfigurableIOManager):
    """Stores polars DataFrames and LazyFrames as Parquet; hands back a DataFrame to an input
    typed `pl.DataFrame` and a LazyFrame otherwise.

    A snapshot-partitioned asset is stored one file per snapshot date
    (`<asset>/<YYYY-MM-DD>.parquet`). Its frames carry a `snapshot_date` column, so a step that
    computes a range of dates returns one frame and it is split here, or a `SnapshotParts` whose
    dates are computed and written one at a time; loading a range concatenates the files back,
    oldest first. An unpartitioned asset may return a `MadeFrom`: its file is rewritten only when
    it was made from other inputs; or `Refused`: its file is left as it is.
    """

    base_dir: str

    def _path(self, key: dg.AssetKey, partition: str | None = None) -> Path:
        if partition is None:
            return Path(self.base_dir, *key.path).with_suffix(".parquet")
        return Path(self.base_dir, *key.path, f"{partition}.parquet")

    def handle_output(
        self, context: dg.OutputContext, obj: pl.DataFrame | pl.LazyFrame | SnapshotParts | MadeFrom | Refused | None
    ) -> None:
        if obj is None:
            return
        if isinstance(obj, Refused):
            context.add_output_metadata({"staged_copy_kept": True, "refused_because": obj.reason})
            return
        described: Mapping[str, Any] = {}
        paths: list[Path] = []
        if isinstance(obj, SnapshotParts):
            if not context.has_asset_partitions:
                raise ValueError(
                    f"{context.asset_key.to_user_string()}: snapshot parts need a snapshot-partitioned asset"
                )
            for key in sorted(context.asset_partition_keys):
                path = self._path(context.asset_key, key)
                _write_atomic(obj.part(dt.date.fromisoformat(key), context.asset_key.to_user_string()), path)
                paths.append(path)
            stored = pl.scan_parquet(paths)
            if obj.describe is not None:
                described = obj.describe(stored)
        elif isinstance(obj, MadeFrom):
            if context.has_asset_partitions:
                raise ValueError(f"{context.asset_key.to_user_string()}: MadeFrom is for unpartitioned assets")
            path = self._path(context.asset_key)
            kept = made_from(path) == obj.digest
            if not kept:
                _write_atomic(obj.build(), path, {PARQUET_DIGEST_KEY: obj.digest})
            described = {"staged_copy_kept": kept}
            stored = pl.scan_parquet(path)
            paths = [path]
        elif not context.has_asset_partitions:
            path = self._path(context.asset_key)
            _write_atomic(obj, path)
            stored = pl.scan_parquet(path)
            paths = [path]
        else:
            frame = obj.collect() if isinstance(obj, pl.LazyFrame) else obj
            if SNAPSHOT_COLUMN not in frame.columns:
                raise ValueError(
                    f"{context.asset_key.to_user_string()}: a snapshot-partitioned frame needs a "
                    f"`{SNAPSHOT_COLUMN}` column to be stored by partition"
                )
            keys = sorted(context.asset_partition_keys)
            by_date = frame.partition_by(SNAPSHOT_COLUMN, as_dict=True, maintain_order=True)
            produced = {str(k[0]) for k in by_date}
            stray = sorted(produced - set(keys))
            if stray:
                raise ValueError(
                    f"{context.asset_key.to_user_string()}: rows for snapshot(s) {', '.join(stray[:5])} "
                    f"outside the run's partitions {keys[0]}..{keys[-1]}"
                )
            empty = frame.clear()
            paths = []
            for key in keys:
                # a snapshot with no rows is still stored (empty), so loading it later works
                part = next((v for k, v in by_date.items() if str(k[0]) == key), empty)
                path = self._path(context.asset_key, key)
                _write_atomic(part, path)
                paths.append(path)
            stored = pl.scan_parquet(paths)
        rows = stored.select(pl.len()).collect().item()
        context.add_output_metadata(
            {
                **described,
                "dagster/row_count": rows,
                "dagster/column_schema": table_schema(stored.collect_schema()),
                "staging_path": dg.MetadataValue.path(str(paths[0] if len(paths) == 1 else paths[0].parent)),
            }
        )

    @staticmethod
    def _input_partitions(context: dg.InputContext) -> list[str]:
        keys = sorted(context.asset_partition_keys)
        # An asset check is not partitioned itself, so Dagster maps its input to every partition
        # of the asset; it must check what this run produced: the run's snapshot range.
        tags = context.step_context.dagster_run.tags
        first = tags.get(RANGE_START_TAG) or tags.get(PARTITION_TAG)
        last = tags.get(RANGE_END_TAG) or tags.get(PARTITION_TAG)
        if first and last:
            keys = [k for k in keys if first <= k <= last]
        return keys

    def load_input(self, context: dg.InputContext) -> pl.DataFrame | pl.LazyFrame:
        name = context.asset_key.to_user_string()
        if context.has_asset_partitions:
            keys = self._input_partitions(context)
            paths = [self._path(context.asset_key, k) for k in keys]
            missing = [k for k, p in zip(keys, paths) if not p.is_file()]
            if missing:
                raise FileNotFoundError(
                    f"staged data for asset {name} not found for snapshot(s) {', '.join(missing[:5])}"
                    f"{' ...' if len(missing) > 5 else ''}; materialize those partitions first"
                )
        else:
            paths = [self._path(context.asset_key)]
            if not paths[0].is_file():
                raise FileNotFoundError(
                    f"staged data for asset {name} not found at {paths[0]}; materialize that asset first"
                )
        lazy = pl.scan_parquet(paths)
        if context.dagster_type.typing_type is pl.DataFrame:
            return lazy.collect()
        # a LazyFrame, or an input without a type (`**frames` of a step over every declared
        # source): lazy, so the step reads only the columns it needs
        return lazy
