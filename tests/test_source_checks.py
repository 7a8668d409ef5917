"""The freshness check counts what was known by the as-of day (pure functions, no Dagster run)."""

import datetime as dt

import dagster as dg
import polars as pl

from checks.dq_config import CheckPolicy, SourceLimits
from checks.source_checks import Timestamps, freshness_result, newest_timestamps

UTC = dt.UTC
AS_OF_END = dt.datetime(2026, 10, 31, tzinfo=UTC)  # the end of 2026-10-30
LIMITS = SourceLimits(max_age_hours=48, max_volume_drop_share=0.3, max_duplicate_share=0.01)
POLICY = CheckPolicy(severity=dg.AssetCheckSeverity.ERROR, blocking=True)


def _events(*stamps: dt.datetime) -> pl.LazyFrame:
    return pl.LazyFrame({"occurred_at": list(stamps)}, schema={"occurred_at": pl.Datetime("us", "UTC")})


def _check(frame: pl.LazyFrame, data_end: dt.datetime = AS_OF_END):
    rows, newest, seen = newest_timestamps(frame, "occurred_at", AS_OF_END, data_end)
    return rows, newest, freshness_result("usage_events", seen, AS_OF_END, LIMITS, POLICY)


def test_a_record_dated_after_the_as_of_day_does_not_make_a_stale_source_fresh():
    # the extract died five days ago; one test event (or clock skew) is stamped next year
    stale = AS_OF_END - dt.timedelta(days=5)
    rows, newest, result = _check(_events(stale - dt.timedelta(hours=1), stale, dt.datetime(2027, 1, 1, tzinfo=UTC)))
    assert rows == 3 and newest == dt.datetime(2027, 1, 1, tzinfo=UTC)
    assert not result.passed
    assert result.description == (
        "usage_events is stale: newest record 2026-10-26T00:00:00+00:00 is 5.0 days old at the end of the as-of "
        "day 2026-10-30 (limit 2.0 days); records dated after the as-of day (up to 2027-01-01T00:00:00+00:00) "
        "do not count"
    )
    assert result.metadata["newest_timestamp"].value == stale.isoformat()


def test_records_of_the_as_of_day_make_it_fresh_and_later_ones_are_not_needed():
    _, _, result = _check(_events(AS_OF_END - dt.timedelta(hours=3), AS_OF_END + dt.timedelta(hours=5)))
    assert result.passed
    assert "is 3.0 hours old at the end of the as-of day 2026-10-30" in (result.description or "")


def test_a_past_snapshot_is_fresh_when_the_export_goes_on_past_its_day():
    # a versioned source scored for a past day from today's export: its older versions were
    # replaced, so little is left before that day, but the export reaches the data's newest day
    data_end = AS_OF_END + dt.timedelta(days=20)
    _, _, result = _check(_events(AS_OF_END - dt.timedelta(days=12), data_end - dt.timedelta(hours=2)), data_end)
    assert result.passed
    assert result.description == (
        "usage_events is fresh for the past snapshot 2026-10-30: the export goes on past that day to "
        "2026-11-19T22:00:00+00:00 (12.0 days since the newest before it; limit 2.0 days)"
    )
    # ... but not on records after the newest day the data serves (those are skew, not history)
    _, _, skewed = _check(_events(AS_OF_END - dt.timedelta(days=12), data_end + dt.timedelta(days=30)), data_end)
    assert not skewed.passed and "do not count" in (skewed.description or "")


def test_an_export_with_nothing_by_the_as_of_day_is_stale():
    result = freshness_result("usage_events", Timestamps(None), AS_OF_END, LIMITS, POLICY)
    assert not result.passed
    assert "no timestamped record at or before the end of the as-of day 2026-10-30" in (result.description or "")
