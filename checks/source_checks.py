"""Freshness, volume and duplicate checks of one source load: pure functions, no Dagster runs.

The source assets evaluate them inline (same step as the load) because they need nothing but
the frame they just read; each returns a `dg.AssetCheckResult` whose description names the
source and the figures, since that sentence is what a person sees when a publish is blocked.
"""

import datetime as dt

import dagster as dg

from checks.dq_config import DUPLICATES, FRESHNESS, VOLUME, CheckPolicy, SourceLimits


def _age_text(hours: float) -> str:
    return f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.1f} hours"


def freshness_result(
    source: str, newest: dt.datetime | None, as_of_end: dt.datetime, limits: SourceLimits, policy: CheckPolicy
) -> dg.AssetCheckResult:
    """Fails when the newest record is older than the limit at the end of the as-of day.

    Records newer than the as-of day (an earlier snapshot scored from today's export) count as
    fresh: the data reaches the snapshot, and the scoring windows cut it at the as-of day.
    """
    limit = _age_text(limits.max_age_hours)
    if newest is None:
        return dg.AssetCheckResult(
            check_name=FRESHNESS,
            passed=False,
            severity=policy.severity,
            description=f"{source} is stale: the export has no timestamped record (limit {limit})",
            metadata={"newest_timestamp": "none", "limit_hours": limits.max_age_hours},
        )
    age_hours = (as_of_end - newest).total_seconds() / 3600
    passed = age_hours <= limits.max_age_hours
    verdict = "fresh" if passed else "stale"
    as_of_day = (as_of_end - dt.timedelta(days=1)).date()
    age = (
        f"{_age_text(age_hours)} old at the end of the as-of day {as_of_day}"
        if age_hours >= 0
        else f"newer than the as-of day {as_of_day}"
    )
    return dg.AssetCheckResult(
        check_name=FRESHNESS,
        passed=passed,
        severity=policy.severity,
        description=f"{source} is {verdict}: newest record {newest.isoformat()} is {age} (limit {limit})",
        metadata={
            "newest_timestamp": newest.isoformat(),
            "age_hours": round(age_hours, 2),
            "limit_hours": limits.max_age_hours,
            "as_of_end": as_of_end.isoformat(),
        },
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
