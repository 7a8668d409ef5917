"""Freshness, volume and duplicate checks of one source load: pure functions, no Dagster runs.

The source assets evaluate them inline (same step as the load) because they need nothing but
the frame they just read; each returns a `dg.AssetCheckResult` whose description names the
source and the figures, since that sentence is what a person sees when a publish is blocked.
"""

import datetime as dt
from dataclasses import dataclass

import dagster as dg
import polars as pl

from checks.dq_config import DUPLICATES, FRESHNESS, VOLUME, CheckPolicy, SourceLimits


def _age_text(hours: float) -> str:
    return f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.1f} hours"


@dataclass(frozen=True)
class Timestamps:
    """A load's newest record timestamps as seen from one snapshot day.

    `known`: the newest at or before the end of the as-of day, what a run on that day could have
    seen. `later`: the newest after it, up to the end of the newest day the data serves (for a past
    snapshot: the export went on). `after`: the newest after the as-of day at all (a test event,
    clock skew, a back-dated correction, or simply later days); it never makes the source fresh.
    """

    known: dt.datetime | None
    later: dt.datetime | None = None
    after: dt.datetime | None = None


def newest_timestamps(
    frame: pl.LazyFrame, column: str, as_of_end: dt.datetime, data_end: dt.datetime
) -> tuple[int, dt.datetime | None, Timestamps]:
    """(rows, newest timestamp of all, `Timestamps` seen from the as-of day) of a cleaned load,
    in one pass; `data_end` is the end of the newest day the data serves."""
    ts = pl.col(column)
    row = (
        frame.select(
            pl.len().alias("rows"),
            ts.max().alias("newest"),
            ts.filter(ts <= as_of_end).max().alias("known"),
            ts.filter((ts > as_of_end) & (ts <= data_end)).max().alias("later"),
            ts.filter(ts > as_of_end).max().alias("after"),
        )
        .collect()
        .row(0, named=True)
    )
    return row["rows"], row["newest"], Timestamps(row["known"], row["later"], row["after"])


def freshness_result(
    source: str, seen: Timestamps, as_of_end: dt.datetime, limits: SourceLimits, policy: CheckPolicy
) -> dg.AssetCheckResult:
    """Fails when the newest record known by the end of the as-of day is older than the limit.

    Records dated after the as-of day never make a stale source look fresh. One exception: a past
    snapshot (scored again, or backfilled, from today's export) whose export goes on past its day
    within the days the data serves; a versioned source (a CRM, tickets) has by then replaced the
    older versions of its records, so what is left before that day says nothing of its freshness.
    """
    limit = _age_text(limits.max_age_hours)
    as_of_day = (as_of_end - dt.timedelta(days=1)).date()
    ignored = (
        f"; records dated after the as-of day (up to {seen.after.isoformat()}) do not count"
        if seen.after is not None and seen.later is None
        else ""
    )
    metadata: dict[str, str | float] = {
        "newest_timestamp": seen.known.isoformat() if seen.known is not None else "none",
        "limit_hours": limits.max_age_hours,
        "as_of_end": as_of_end.isoformat(),
    }
    if seen.known is None and seen.later is None:
        return dg.AssetCheckResult(
            check_name=FRESHNESS,
            passed=False,
            severity=policy.severity,
            description=(
                f"{source} is stale: the export has no timestamped record at or before the end of the as-of "
                f"day {as_of_day} (limit {limit}){ignored}"
            ),
            metadata=metadata,
        )
    age_hours = None if seen.known is None else (as_of_end - seen.known).total_seconds() / 3600
    if age_hours is not None:
        metadata["age_hours"] = round(age_hours, 2)
    if seen.known is not None and age_hours is not None and age_hours <= limits.max_age_hours:
        passed = True
        description = (
            f"{source} is fresh: newest record {seen.known.isoformat()} is {_age_text(age_hours)} old at the end "
            f"of the as-of day {as_of_day} (limit {limit})"
        )
    elif seen.later is not None:
        passed = True
        metadata["newest_later_timestamp"] = seen.later.isoformat()
        before = "no record before it" if age_hours is None else f"{_age_text(age_hours)} since the newest before it"
        description = (
            f"{source} is fresh for the past snapshot {as_of_day}: the export goes on past that day to "
            f"{seen.later.isoformat()} ({before}; limit {limit})"
        )
    else:
        assert seen.known is not None and age_hours is not None
        passed = False
        description = (
            f"{source} is stale: newest record {seen.known.isoformat()} is {_age_text(age_hours)} old at the end "
            f"of the as-of day {as_of_day} (limit {limit}){ignored}"
        )
    return dg.AssetCheckResult(
        check_name=FRESHNESS, passed=passed, severity=policy.severity, description=description, metadata=metadata
    )


def volume_result(
    source: str, rows: int, previous_rows: int | None, limits: SourceLimits, policy: CheckPolicy
) -> dg.AssetCheckResult:
    """Fails when the load has fewer rows than the previous one by more than the allowed share."""
    if previous_rows is None or previous_rows == 0:
        return dg.AssetCheckResult(
            check_name=VOLUME,
            passed=rows > 0,
            severity=policy.severity,
            description=f"{source}: {rows:,} rows, no previous load to compare with",
            metadata={"rows": rows, "previous_rows": "none"},
        )
    drop = (previous_rows - rows) / previous_rows
    passed = drop <= limits.max_volume_drop_share
    return dg.AssetCheckResult(
        check_name=VOLUME,
        passed=passed,
        severity=policy.severity,
        description=f"{source}: {rows:,} rows against {previous_rows:,} in the previous load "
        f"({-drop:+.1%}; allowed drop {limits.max_volume_drop_share:.0%})",
        metadata={"rows": rows, "previous_rows": previous_rows, "drop_share": round(drop, 4)},
    )


def duplicates_result(
    source: str, rows_in_export: int, rows_loaded: int, limits: SourceLimits, policy: CheckPolicy
) -> dg.AssetCheckResult:
    """Counts the rows the load removed (duplicates on the key, rows without a key)."""
    removed = rows_in_export - rows_loaded
    share = removed / rows_in_export if rows_in_export else 0.0
    return dg.AssetCheckResult(
        check_name=DUPLICATES,
        passed=share <= limits.max_duplicate_share,
        severity=policy.severity,
        description=f"{source}: removed {removed:,} duplicate or keyless row(s) of {rows_in_export:,} "
        f"({share:.2%}; allowed {limits.max_duplicate_share:.0%})",
        metadata={"rows_in_export": rows_in_export, "rows_removed": removed, "removed_share": round(share, 6)},
    )
