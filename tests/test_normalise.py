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
