"""The staging IO manager: snapshot parts made and stored one date at a time, read back by date."""

import datetime as dt

import dagster as dg
import polars as pl
import pytest

from cs_assets.partitions import RANGE_END_TAG, RANGE_START_TAG
from cs_assets.scoring.assets import per_snapshot
from resources import staging
from resources.staging import SnapshotParts, SnapshotSlices, StagingParquetIOManager

DAYS = dg.DailyPartitionsDefinition(start_date="2026-10-01", end_date="2026-10-05")
KEYS = DAYS.get_partition_keys()
RANGE = {RANGE_START_TAG: KEYS[0], RANGE_END_TAG: KEYS[-1]}  # one run over every day


def _rows(date: dt.date) -> pl.DataFrame:
    # a date's rows: three accounts, values that say which date they belong to
    return pl.DataFrame({"account_id": ["a", "b", "c"], "value": [date.day * 10 + i for i in range(3)]})


def test_each_snapshot_part_is_stored_before_the_next_is_made(tmp_path):
    made: list[tuple[dt.date, list[str]]] = []

    @dg.asset(partitions_def=DAYS, backfill_policy=dg.BackfillPolicy.single_run())
    def long_rows() -> SnapshotParts:
        def compute(date: dt.date) -> pl.DataFrame:
            # what is on disk when this date's part is made: only the earlier dates
            made.append((date, sorted(p.stem for p in (tmp_path / "long_rows").glob("*.parquet"))))
            return _rows(date)

        return SnapshotParts(
            compute=compute,
            describe=lambda stored: {"value_total": stored.select(pl.col("value").sum()).collect().item()},
        )

    result = dg.materialize(
        [long_rows], resources={"io_manager": StagingParquetIOManager(base_dir=str(tmp_path))}, tags=RANGE
    )
    assert result.success
    assert [(d.isoformat(), on_disk) for d, on_disk in made] == [(k, KEYS[:i]) for i, k in enumerate(KEYS)]
    stored = pl.read_parquet(tmp_path / "long_rows" / "2026-10-03.parquet")
    assert stored.columns == ["snapshot_date", "account_id", "value"]
    assert stored["snapshot_date"].unique().to_list() == [dt.date(2026, 10, 3)]
    assert stored["value"].to_list() == [30, 31, 32]
    metadata = result.asset_materializations_for_node("long_rows")[0].metadata
    assert metadata["value_total"].value == sum(d * 30 + 3 for d in range(1, 5))
    assert metadata["dagster/row_count"].value == 12


def test_a_part_with_rows_of_another_snapshot_is_refused(tmp_path):
    @dg.asset(partitions_def=DAYS, backfill_policy=dg.BackfillPolicy.single_run())
    def long_rows() -> SnapshotParts:
        # every part claims the first day: a bug that would file rows under the wrong snapshot
        return SnapshotParts(compute=lambda date: _rows(date).with_columns(snapshot_date=pl.lit(dt.date(2026, 10, 1))))

    with pytest.raises(ValueError, match="long_rows: the part of snapshot 2026-10-02 holds rows of 2026-10-01"):
        dg.materialize(
            [long_rows],
            resources={"io_manager": StagingParquetIOManager(base_dir=str(tmp_path))},
            tags=RANGE,
        )
    # the part that was right is stored; the wrong one never replaced a file
    assert sorted(p.stem for p in (tmp_path / "long_rows").glob("*.parquet")) == ["2026-10-01"]


@pytest.mark.parametrize("whole_below", [0, 1_000], ids=["cut-date-by-date", "read-whole"])
def test_per_snapshot_gives_the_same_whether_a_staged_frame_is_cut_by_date_or_read_whole(
    tmp_path, monkeypatch, whole_below
):
    monkeypatch.setattr(staging, "READ_WHOLE_ROWS", whole_below)
    frames = [_rows(dt.date(2026, 10, d)).with_columns(snapshot_date=pl.lit(dt.date(2026, 10, d))) for d in (1, 2, 4)]
    paths = []
    for frame in frames:
        paths.append(tmp_path / f"{frame['snapshot_date'][0]}.parquet")
        frame.write_parquet(paths[-1])
    slices = SnapshotSlices(pl.scan_parquet(paths))
    assert slices.dates == [dt.date(2026, 10, d) for d in (1, 2, 4)]
    assert slices.rows(dt.date(2026, 10, 2)).equals(frames[1].drop("snapshot_date"))
    # a date without rows: no rows, the same columns
    assert slices.rows(dt.date(2026, 10, 3)).columns == ["account_id", "value"]
    assert slices.rows(dt.date(2026, 10, 3)).height == 0
    seen: list[int] = []

    def total(rows: pl.DataFrame) -> pl.DataFrame:
        seen.append(rows.height)
        return rows.select(pl.col("value").sum(), accounts=pl.len())

    staged = per_snapshot(total, pl.scan_parquet(paths))
    assert seen == [3, 3, 3]  # one date's rows at a time, dates without rows skipped
    assert staged.to_dicts() == [
        {"snapshot_date": dt.date(2026, 10, d), "value": d * 30 + 3, "accounts": 3} for d in (1, 2, 4)
    ]
