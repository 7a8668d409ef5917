"""De-duplication of a source on load: exact repeats go, conflicts are refused, the newest version
of a record stays, and the order of the export is kept."""

import datetime as dt

import polars as pl
import pytest

from cs_assets.deployment import load_deployment
from cs_assets.sources.normalise import SourceDataError, clean

CONTRACT = load_deployment().contract
UTC = dt.UTC


def tickets(rows: list[tuple[int, str, int, str]]) -> pl.LazyFrame:
    """(ticket_id, account_id, hour updated, status) rows in the tickets source's shape."""
    spec = CONTRACT.sources["support_tickets"]
    base = {c: pl.Series(c, [None] * len(rows), dtype=t) for c, t in spec.columns.items()}
    base.update(
        ticket_id=pl.Series([r[0] for r in rows]),
        account_id=pl.Series([r[1] for r in rows]),
        updated_at=pl.Series([dt.datetime(2026, 10, 1, r[2], tzinfo=UTC) for r in rows]),
        status=pl.Series([r[3] for r in rows]),
    )
    return pl.DataFrame(base).lazy()


def test_exact_repeats_go_and_the_export_order_stays():
    spec = CONTRACT.sources["support_tickets"]
    rows = [(3, "A", 1, "open"), (1, " B", 2, "open"), (3, "A", 1, "open"), (2, "C", 3, "solved")]
    cleaned = clean(spec, tickets(rows))
    assert cleaned["ticket_id"].to_list() == [3, 1, 2]  # the second 3 is a repeat
    assert cleaned["account_id"].to_list() == ["A", "B", "C"]  # ids trimmed


def test_rows_sharing_key_and_time_but_not_values_are_refused_by_name():
    spec = CONTRACT.sources["support_tickets"]
    rows = [(1, "A", 1, "open"), (2, "B", 1, "open"), (1, "A", 1, "solved")]
    with pytest.raises(
        SourceDataError, match=r"2 rows with ticket_id = 1, .*differ in status \(status: 'open' vs 'solved'\)"
    ):
        clean(spec, tickets(rows), "support/tickets.jsonl")


def test_the_newest_version_of_a_record_is_the_record():
    spec = CONTRACT.sources["support_tickets"]
    rows = [(1, "A", 5, "solved"), (2, "B", 1, "open"), (1, "A", 2, "open")]
    cleaned = clean(spec, tickets(rows)).sort("ticket_id")
    assert cleaned.select("ticket_id", "status").rows() == [(1, "solved"), (2, "open")]


def usage(rows: list[tuple[str, str, int, str]]) -> pl.LazyFrame:
    """(event_id, account_id, hour occurred, event_type) rows in the usage source's shape."""
    spec = CONTRACT.sources["usage_events"]
    base = {c: pl.Series(c, [None] * len(rows), dtype=t) for c, t in spec.columns.items()}
    base.update(
        event_id=pl.Series([r[0] for r in rows]),
        account_id=pl.Series([r[1] for r in rows]),
        occurred_at=pl.Series([dt.datetime(2026, 10, 1, r[2], tzinfo=UTC) for r in rows]),
        event_type=pl.Series([r[3] for r in rows]),
    )
    return pl.DataFrame(base).lazy()


def test_an_immutable_event_sent_again_with_other_content_is_refused_naming_id_and_columns():
    spec = CONTRACT.sources["usage_events"]
    assert spec.records == "immutable"  # config/sources.yaml
    event_type = spec.vocabulary["event_type"]
    # an identical copy is a plain duplicate: dropped
    same = [("E1", "A", 1, event_type[0]), ("E1", "A", 1, event_type[0]), ("E2", "B", 2, event_type[0])]
    assert clean(spec, usage(same))["event_id"].to_list() == ["E1", "E2"]
    # the same id later and of another type is not a newer version of an event: an error
    resent = [("E1", "A", 1, event_type[0]), ("E2", "B", 2, event_type[0]), ("E1", "A", 5, event_type[1])]
    with pytest.raises(SourceDataError) as refused:
        clean(spec, usage(resent), "usage/events")
    message = str(refused.value)
    assert message.startswith("source usage_events (usage/events): 2 rows with event_id = 'E1' differ in ")
    assert "occurred_at" in message and f"event_type: {event_type[0]!r} vs {event_type[1]!r}" in message
    assert "records: immutable" in message
    # a versioned source (tickets) keeps the newest version, as before
    assert CONTRACT.sources["support_tickets"].records == "versioned"
