"""Snapshot dates: the daily partitions every scoring asset is split by.

A partition `D` is the health of every account as of the end of day `D` (UTC), computed only
from what had happened and arrived by then. A run covers one partition or, for a backfill, a
contiguous range of them in a single run (`BackfillPolicy.single_run()`), which is what keeps
a 180-day backfill to minutes: one step run per asset, which reads its staged inputs date by
date (one file per snapshot), so a long range never has to fit in memory at once.

Unpartitioned steps of the same run (the source extracts and their checks) take the run's
latest snapshot date as their "as of" time, from the run's partition tags.
"""

import datetime as dt
import os
from pathlib import Path

import dagster as dg

from cs_assets import settings

HISTORY_START_ENV = "CS_HEALTH_HISTORY_START"
DEFAULT_HISTORY_START = "2025-01-01"
# daily snapshots (every day) or weekly ones (every Sunday, the end of the week)
CADENCE_ENV = "CS_HEALTH_CADENCE"
DAILY, WEEKLY = "daily", "weekly"
SUNDAY = 6

PARTITION_TAG = "dagster/partition"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def history_start() -> str:
    value = os.environ.get(HISTORY_START_ENV) or DEFAULT_HISTORY_START
    return settings.parse_date(value, HISTORY_START_ENV).isoformat()


def cadence() -> str:
    value = (os.environ.get(CADENCE_ENV) or DAILY).strip().lower()
    if value not in (DAILY, WEEKLY):
        raise ValueError(f"{CADENCE_ENV} must be {DAILY} or {WEEKLY}, got {value!r}")
    return value


def step_days() -> int:
    """Days between two snapshots: 1 daily, 7 weekly (a missing snapshot is a gap of more)."""
    return 7 if cadence() == WEEKLY else 1


def snapshot_on_or_before(day: dt.date) -> dt.date:
    """The newest snapshot date on or before `day` (itself daily; the Sunday before, weekly)."""
    if cadence() == DAILY:
        return day
    return day - dt.timedelta(days=(day.weekday() - SUNDAY) % 7)


def is_snapshot_date(day: dt.date) -> bool:
    return snapshot_on_or_before(day) == day


def partitions_end(landing_dir: Path) -> dt.date | None:
    """The newest snapshot partition, when the landing data says which day it serves (example data,
    or `CS_HEALTH_AS_OF`); None otherwise: then it is yesterday (UTC), the last complete day."""
    known = settings.data_as_of(landing_dir)
    if known is None:
        return None
    day, where = known
    if day.isoformat() < history_start():
        raise ValueError(
            f"{where} is {day}, before the history start {history_start()}: set {HISTORY_START_ENV} "
            f"to a day on or before {day}"
        )
    return day


def build_snapshot_partitions(landing_dir: Path) -> dg.TimeWindowPartitionsDefinition:
    """The snapshot dates of a home whose landing zone is `landing_dir`, read when the definitions
    are built: after new example data, reload the code location (UI: Reload)."""
    # Offer only the days the data can serve: a launch dialog's "Latest" past the data's last day
    # would pick a snapshot that can only be refused as stale. A snapshot scores whole days only,
    # so the newest partition is never later than yesterday (UTC) in any case.
    end = partitions_end(landing_dir)
    if cadence() == WEEKLY:
        # one snapshot per week, on Sunday (keys are those dates); the newest is the last Sunday the
        # data serves, or, for real exports, the newest Sunday (on a Sunday: that day, which the
        # sources' freshness checks refuse until it is over)
        start = dt.date.fromisoformat(history_start())
        first = start + dt.timedelta(days=(SUNDAY - start.weekday()) % 7)
        last = snapshot_on_or_before(end) if end is not None else None
        return dg.TimeWindowPartitionsDefinition(
            cron_schedule="0 0 * * 0",
            start=first.isoformat(),
            end=(last + dt.timedelta(days=7)).isoformat() if last is not None else None,
            # a key's window is its week, which ends a week after the Sunday it scores: offer the
            # week under way too, so that its Sunday can be scored on Monday
            end_offset=1,
            fmt="%Y-%m-%d",
        )
    return dg.DailyPartitionsDefinition(
        start_date=history_start(),
        end_date=(end + dt.timedelta(days=1)).isoformat() if end is not None else None,
    )


SINGLE_RUN_BACKFILL = dg.BackfillPolicy.single_run()


def partition_dates(keys: list[str] | tuple[str, ...]) -> list[dt.date]:
    return sorted(dt.date.fromisoformat(k) for k in keys)


def snapshot_dates(context: dg.AssetExecutionContext) -> list[dt.date]:
    """The snapshot dates a partitioned step computes, oldest first."""
    return partition_dates(context.partition_keys)


def date_range_keys(first: dt.date, last: dt.date) -> list[str]:
    if last < first:
        raise ValueError(f"snapshot range ends ({last}) before it starts ({first})")
    return [(first + dt.timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def run_tags_for(dates: list[dt.date]) -> dict[str, str]:
    """Run tags selecting one snapshot or a contiguous range of snapshots."""
    if not dates:
        raise ValueError("no snapshot dates given")
    first, last = min(dates), max(dates)
    if first == last:
        return {PARTITION_TAG: first.isoformat()}
    return {RANGE_START_TAG: first.isoformat(), RANGE_END_TAG: last.isoformat()}


def run_as_of(tags: dict[str, str]) -> dt.date | None:
    """The latest snapshot date a run scores, from its tags; None for an unpartitioned run."""
    value = tags.get(RANGE_END_TAG) or tags.get(PARTITION_TAG)
    return dt.date.fromisoformat(value) if value else None
