"""Indicators defined in config: every aggregation, its window edges, null vs zero, trends,
recency, per-unit normalisation, and the catalogue's errors. Pure functions, no Dagster."""

import datetime as dt

import polars as pl
import pytest

from cs_assets.config_file import validate_config
from cs_assets.deployment import parse_catalogue
from cs_assets.indicators.catalogue import IndicatorConfigError
from cs_assets.indicators.compute import compute_account_indicators
from cs_assets.sources.contract import SourcesContractError, SourcesFile, contract_from_file

AS_OF = dt.date(2026, 10, 31)
END = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)  # the end of the as-of day
UTC = dt.UTC

SOURCES = {
    "version": 2,
    "sources": {
        "crm": {
            "role": "accounts",
            "export": "crm.csv",
            "format": "csv",
            "key": ["account_id"],
            "timestamp": "updated_at",
            "columns": {
                "account_id": "string",
                "contract_start_date": "date",
                "renewal_date": "date",
                "churn_date": "date",
                "updated_at": "timestamp",
                "seats": "integer",
                "vips": {"type": "string", "list_separator": ";"},
            },
        },
        "events": {
            "export": "events",
            "format": "parquet",
            "key": ["id"],
            "timestamp": "at",
            "received_at": "received",
            "columns": {
                "id": "string",
                "account_id": "string",
                "user": "string",
                "kind": {"type": "string", "values": ["login", "export", "error"]},
                "at": "timestamp",
                "received": "timestamp",
                "ms": "float",
            },
        },
        "tickets": {
            "export": "tickets.jsonl",
            "format": "jsonl",
            "key": ["ticket_id"],
            "timestamp": "updated",
            "event_time": "opened",
            "columns": {
                "ticket_id": "string",
                "account_id": "string",
                "opened": "timestamp",
                "closed": "timestamp",
                "updated": "timestamp",
            },
            "derived": {"hours": {"hours_between": ["opened", "closed"]}},
        },
    },
}


def contract(sources: dict | None = None):
    return contract_from_file(
        validate_config(SourcesFile, sources or SOURCES, "s.yaml", SourcesContractError), "s.yaml"
    )


def catalogue(indicators: dict, sources: dict | None = None, options: dict | None = None):
    raw = {"version": 1, "sources": options or {}, "indicators": indicators}
    return parse_catalogue(raw, contract(sources), "i.yaml")


def at(days_before_end: float, hours: float = 0) -> dt.datetime:
    return END - dt.timedelta(days=days_before_end, hours=hours)


CRM = pl.DataFrame(
    {
        "account_id": ["A", "B", "C"],
        "contract_start_date": [dt.date(2025, 1, 1)] * 3,
        "renewal_date": [dt.date(2027, 1, 1)] * 3,
        "churn_date": [None, None, None],
        "updated_at": [END - dt.timedelta(hours=1)] * 3,
        "seats": [10, 0, None],
        "vips": ["u1; u2", "", None],
    },
    schema_overrides={"churn_date": pl.Date, "seats": pl.Int64},
)


def events(rows: list[tuple]) -> pl.DataFrame:
    """(account, user, kind, occurred, received, ms) rows."""
    frame = pl.DataFrame(
        rows,
        schema=["account_id", "user", "kind", "at", "received", "ms"],
        orient="row",
        schema_overrides={"at": pl.Datetime("us", "UTC"), "received": pl.Datetime("us", "UTC"), "ms": pl.Float64},
    )
    return frame.with_columns(id=pl.int_range(pl.len()).cast(pl.String))


NO_TICKETS = pl.DataFrame(
    schema={
        "ticket_id": pl.String,
        "account_id": pl.String,
        "opened": pl.Datetime("us", "UTC"),
        "closed": pl.Datetime("us", "UTC"),
        "updated": pl.Datetime("us", "UTC"),
    }
)


def compute(indicators: dict, rows: list[tuple], tickets: pl.DataFrame = NO_TICKETS, as_of=AS_OF, options=None) -> dict:
    cat = catalogue(indicators, options=options)
    frames = {"crm": CRM.lazy(), "events": events(rows).lazy(), "tickets": tickets.lazy()}
    out = compute_account_indicators(frames, contract(), cat, as_of)
    return {row["account_id"]: row for row in out.iter_rows(named=True)}


def values(indicators: dict, rows: list[tuple], name: str, **kwargs) -> dict:
    return {a: r[name] for a, r in compute(indicators, rows, **kwargs).items()}


def ind(**spec) -> dict:
    return {"source": "events", **spec}


# --------------------------------------------------------------------------- windows


def test_a_window_is_whole_days_ending_with_the_snapshot_day():
    rows = [
        ("A", "u1", "login", at(30), at(30), None),  # the first instant of the 30-day window: in
        ("A", "u1", "login", at(30, hours=0.001), at(30), None),  # just before it: out
        ("A", "u1", "login", at(0, hours=0.001), at(0, hours=0.001), None),  # the last instant: in
        ("A", "u1", "login", END, END, None),  # the next day: out (and not yet happened)
    ]
    got = values({"n": ind(aggregate="count", window_days=30)}, rows, "n")
    assert got == {"A": 2, "B": None, "C": None}


def test_a_record_counts_only_once_it_has_arrived():
    rows = [
        ("A", "u1", "login", at(3), at(2), None),
        ("A", "u1", "login", at(1), END + dt.timedelta(hours=5), None),  # arrives after the snapshot
        ("A", "u1", "login", at(1), None, None),  # never arrived
    ]
    assert values({"n": ind(aggregate="count", window_days=30)}, rows, "n")["A"] == 1
    # a backfilled snapshot three days earlier sees nothing of these
    assert (
        values({"n": ind(aggregate="count", window_days=30)}, rows, "n", as_of=AS_OF - dt.timedelta(days=3))["A"]
        is None
    )


def test_no_data_is_null_unless_the_indicator_says_what_it_means():
    rows = [("A", "u1", "login", at(40), at(40), None)]  # active, but not in the last 30 days
    spec = {
        "null": ind(aggregate="count", window_days=30),
        "zero": ind(aggregate="count", window_days=30, no_data="zero"),
        "fixed": ind(aggregate="days_since_newest", no_data={"value": 365}),
    }
    got = compute(spec, rows)
    # A has records (a real zero in the window); B and C have none at all (no data)
    assert (got["A"]["null"], got["B"]["null"]) == (0, None)
    assert (got["A"]["zero"], got["B"]["zero"]) == (0, 0)
    # at(40) is the first instant of the day 39 days before the snapshot day
    assert (got["A"]["fixed"], got["B"]["fixed"]) == (39, 365.0)
    assert got["A"]["has_events_data"] and not got["B"]["has_events_data"]


def test_lookback_decides_which_accounts_have_data_for_a_source():
    rows = [("A", "u1", "login", at(400), at(400), None), ("B", "u1", "login", at(10), at(10), None)]
    got = values({"n": ind(aggregate="count", window_days=30)}, rows, "n", options={"events": {"lookback_days": 365}})
    assert got == {"A": None, "B": 1, "C": None}  # A's only event is older than the lookback


# --------------------------------------------------------------------------- aggregations


ROWS = [
    ("A", "u1", "login", at(1), at(1), None),
    ("A", "u2", "login", at(2), at(2), None),
    ("A", "u2", "login", at(2, hours=-3), at(2), None),  # same user, same UTC day
    ("A", None, "export", at(5), at(5), 100.0),
    ("A", "u3", "export", at(5), at(5), 300.0),
    ("A", "u3", "error", at(40), at(40), 900.0),  # outside the 30-day window
    ("B", "u9", "error", at(3), at(3), None),
]


@pytest.mark.parametrize(
    ("spec", "a", "b"),
    [
        (ind(aggregate="count", window_days=30), 5, 1),
        (ind(aggregate="count", window_days=30, where={"kind": "login"}), 3, 0),
        (ind(aggregate="count", window_days=30, where={"kind": ["login", "export"]}), 5, 0),
        (ind(aggregate="count", window_days=30, where={"kind": {"not": "login"}}), 2, 1),
        (ind(aggregate="count", window_days=30, where={"ms": {"gte": 300}}), 1, 0),
        (ind(aggregate="count", window_days=30, where={"user": {"is_null": True}}), 1, 0),
        (ind(aggregate="distinct_count", column="user", window_days=30), 3, 1),  # a null user is not a user
        (ind(aggregate="distinct_count", column="user", window_days=60), 3, 1),
        (ind(aggregate="sum", column="ms", window_days=30), 400.0, 0.0),
        (ind(aggregate="mean", column="ms", window_days=30), 200.0, None),  # a mean of nothing is no data
        (ind(aggregate="median", column="ms", window_days=60), 300.0, None),
        (ind(aggregate="min", column="ms", window_days=60), 100.0, None),
        (ind(aggregate="max", column="ms", window_days=60), 900.0, None),
        (ind(aggregate="quantile", column="ms", q=0.75, window_days=60), 600.0, None),
        # whole days from the UTC date of the record to the snapshot day: at(1) is on the snapshot day
        (ind(aggregate="days_since_newest"), 0, 2),
        (ind(aggregate="days_since_oldest"), 39, 2),
        (ind(aggregate="days_since_newest", where={"kind": "export"}), 4, None),
        (ind(aggregate="active_days", window_days=30), 3, 1),  # 10-31, 10-30 (twice) and 10-27
        (ind(aggregate="share", where={"kind": "login"}, of={}, window_days=30), 0.6, 0.0),
        (ind(aggregate="share", where={"kind": "error"}, of={"kind": ["error", "export"]}, window_days=30), 0.0, 1.0),
        (ind(aggregate="coverage", column="kind", values=["login", "export", "error"], window_days=30), 2 / 3, 1 / 3),
        (ind(aggregate="count", window_days=30, where={"user": {"in_account_list": "vips"}}), 3, 0),
    ],
)
def test_every_aggregation(spec, a, b):
    got = values({"x": spec}, ROWS, "x")
    assert got["A"] == pytest.approx(a) if a is not None else got["A"] is None
    assert got["B"] == pytest.approx(b) if b is not None else got["B"] is None
    assert got["C"] is None  # no events at all


def test_per_unit_normalisation_is_no_data_without_units():
    got = values({"x": ind(aggregate="distinct_count", column="user", window_days=30, per="seats")}, ROWS, "x")
    assert got["A"] == pytest.approx(0.3)  # 3 users / 10 seats
    assert got["B"] is None and got["C"] is None  # 0 seats, unknown seats: nothing to divide by


def test_value_and_ratio():
    spec = {
        "seats_value": {"source": "crm", "aggregate": "value", "column": "seats"},
        "logins": ind(aggregate="count", where={"kind": "login"}, window_days=30),
        "users": ind(aggregate="distinct_count", column="user", window_days=30),
        "logins_per_user": {"aggregate": "ratio", "numerator": "logins", "denominator": "users"},
    }
    got = compute(spec, ROWS)
    assert got["A"]["seats_value"] == 10.0 and got["C"]["seats_value"] is None
    assert got["A"]["logins_per_user"] == pytest.approx(1.0) and got["B"]["logins_per_user"] == 0.0
    assert got["C"]["logins_per_user"] is None


def test_trend_against_the_previous_window():
    rows = [
        ("A", "u", "login", at(5), at(5), None),
        ("A", "u", "login", at(40), at(40), None),
        ("A", "u", "login", at(45), at(45), None),  # A: 1 now, 2 before: -50%
        ("B", "u", "login", at(5), at(5), None),  # B: 1 now, none before: not measurable
        ("C", "u", "login", at(200), at(200), None),  # C: nothing in either window: stopped
    ]
    spec = {
        "relative": ind(aggregate="count", window_days=30, compare="previous_window"),
        "stopped": ind(aggregate="count", window_days=30, compare="previous_window", both_empty=-1),
        "difference": ind(aggregate="count", window_days=30, compare="previous_window", change="difference"),
    }
    got = compute(spec, rows)
    assert [got[a]["relative"] for a in "ABC"] == [pytest.approx(-0.5), None, None]
    assert [got[a]["stopped"] for a in "ABC"] == [pytest.approx(-0.5), None, -1.0]
    assert [got[a]["difference"] for a in "ABC"] == [-1.0, 1.0, 0.0]


def test_event_time_places_records_and_a_time_column_moves_the_window():
    tickets = pl.DataFrame(
        {
            "ticket_id": ["t1", "t2", "t3"],
            "account_id": ["A", "A", "B"],
            "opened": [at(100), at(20), at(10)],
            "closed": [at(10), at(18), None],
            "updated": [END + dt.timedelta(days=3)] * 3,  # updated later than the snapshot: still known then
        }
    )
    spec = {
        "opened_90d": {"source": "tickets", "aggregate": "count", "window_days": 90, "no_data": "zero"},
        "closed_30d_hours": {
            "source": "tickets",
            "aggregate": "median",
            "column": "hours",
            "time_column": "closed",
            "window_days": 30,
        },
    }
    got = compute(spec, ROWS, tickets=tickets)
    assert [got[a]["opened_90d"] for a in "ABC"] == [1, 1, 0]
    assert got["A"]["closed_30d_hours"] == pytest.approx((90 * 24 + 2 * 24) / 2)  # t1 90 days, t2 2 days
    assert got["B"]["closed_30d_hours"] is None


def test_snapshots_of_a_backfill_are_each_computed_as_of_their_own_day():
    cat = catalogue({"n": ind(aggregate="count", window_days=1, no_data="zero")})
    frames = {"crm": CRM.lazy(), "events": events(ROWS).lazy(), "tickets": NO_TICKETS.lazy()}
    days = [AS_OF - dt.timedelta(days=d) for d in range(6)]
    out = compute_account_indicators(frames, contract(), cat, days).filter(pl.col("account_id") == "A")
    assert out.sort("snapshot_date")["n"].to_list() == [0, 2, 0, 0, 2, 1]  # days 5, 4, .., 0 before


# --------------------------------------------------------------------------- the catalogue's errors


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            ind(aggregate="count", window_days=30, where={"kind": "logon"}),
            "`indicators.x.where.kind`: 'logon' not in the vocabulary of events.kind (login, export, error)",
        ),
        (
            ind(aggregate="count", window_days=30, where={"kinds": "login"}),
            "`indicators.x.where.kinds`: events has no column 'kinds'",
        ),
        (ind(aggregate="count"), "`indicators.x`: `count` needs `window_days`"),
        (ind(aggregate="mean", window_days=3), "`indicators.x`: `mean` needs `column`"),
        (
            ind(aggregate="mean", column="kind", window_days=3),
            "`indicators.x.column`: `mean` needs a numeric column, kind is String",
        ),
        (ind(aggregate="quantile", column="ms", window_days=3), "`indicators.x.q`: `quantile` needs `q`"),
        (ind(aggregate="share", window_days=3), "`indicators.x.of`: `share` needs `of`"),
        (
            ind(aggregate="count", window_days=3, per="plan"),
            "`indicators.x.per`: must be a numeric column of crm (seats), got 'plan'",
        ),
        (
            ind(aggregate="count", window_days=3, where={"user": {"in_account_list": "seats"}}),
            "`in_account_list` names a list column of crm (declared with list_separator): vips; got 'seats'",
        ),
        (
            ind(aggregate="days_since_newest", compare="previous_window"),
            "`indicators.x.compare`: only windowed aggregations can be compared",
        ),
        (
            ind(aggregate="count", window_days=3, time_column="kind"),
            "`indicators.x.time_column`: must be a timestamp column of events",
        ),
        (
            {"source": "crm", "aggregate": "count", "window_days": 3},
            "`indicators.x.source`: aggregations run over an event source",
        ),
        (ind(aggregate="count", window_days=0), "`indicators.x.window_days`: must be >= 1, got 0"),
        (ind(aggregate="counts", window_days=3), "`indicators.x.aggregate`: must be one of count, distinct_count"),
    ],
)
def test_catalogue_errors_name_the_key_and_the_problem(spec, message):
    with pytest.raises(IndicatorConfigError) as error:
        catalogue({"x": spec})
    assert str(error.value).startswith("i.yaml: ") and message in str(error.value)


def test_indicators_of_an_undeclared_source_are_unavailable_not_an_error():
    sources = {**SOURCES, "sources": {k: v for k, v in SOURCES["sources"].items() if k != "tickets"}}
    cat = catalogue(
        {
            "t": {"source": "tickets", "aggregate": "count", "window_days": 3},
            "n": ind(aggregate="count", window_days=3),
            "r": {"aggregate": "ratio", "numerator": "t", "denominator": "n"},
        },
        sources=sources,
    )
    assert list(cat.indicators) == ["n"]
    assert cat.unavailable == {
        "t": "its source tickets is not declared in s.yaml",
        "r": "it divides t, which cannot be computed",
    }


def test_the_contract_refuses_what_cannot_work():
    def error(change) -> str:
        raw = {**SOURCES, "sources": {k: dict(v) for k, v in SOURCES["sources"].items()}}
        change(raw["sources"])
        with pytest.raises(SourcesContractError) as info:
            contract(raw)
        return str(info.value)

    assert "exactly one source must have `role: accounts`" in error(lambda s: s["crm"].update(role="events"))
    assert "`sources.events.timestamp`: must name a timestamp column, got 'kind'" in error(
        lambda s: s["events"].update(timestamp="kind")
    )
    assert "`sources.events.export`: must be a path inside the landing directory" in error(
        lambda s: s["events"].update(export="../x")
    )
    assert "the accounts source needs `renewal_date` of type date" in error(
        lambda s: s["crm"].update(columns={k: v for k, v in s["crm"]["columns"].items() if k != "renewal_date"})
    )
    assert "`sources.events.key[0]`: 'event_id' is not a declared column" in error(
        lambda s: s["events"].update(key=["event_id"])
    )
    assert "unknown key(s): preset" in error(lambda s: s["events"].update(preset="generic_json"))


# --------------------------------------------------------------------------- large sources


def test_only_the_records_a_window_reads_stay_in_memory_and_the_values_do_not_change():
    from cs_assets.indicators.compiler import windowed_records

    cat = catalogue(
        {
            "logins_30d": ind(aggregate="count", window_days=30, where={"kind": "login"}),
            "trend": ind(aggregate="count", window_days=10, compare="previous_window", change="difference"),
            "idle_days": ind(aggregate="days_since_newest"),
            "first_seen": ind(aggregate="days_since_oldest", where={"kind": "export"}),
        }
    )
    rows = [
        ("A", "u1", "login", at(1), at(1), None),
        ("A", "u1", "export", at(15), at(15), None),  # in the trend's previous window only
        ("A", "u1", "export", at(35), at(35), None),  # in no window: days since only
        ("B", "u2", "error", at(200), at(200), None),  # in no window; B has data all the same
    ]
    spec, indicators = contract().event_sources["events"], cat.for_source("events")
    kept = events(rows).filter(windowed_records(spec, indicators, [AS_OF]))
    assert kept["at"].to_list() == [at(1), at(15)]
    got = compute_account_indicators(
        {"crm": CRM.lazy(), "events": events(rows).lazy(), "tickets": NO_TICKETS.lazy()}, contract(), cat, AS_OF
    )
    a, b, c = got.iter_rows(named=True)
    assert (a["logins_30d"], a["trend"], a["idle_days"], a["first_seen"]) == (1, 0, 0, 34)
    # B: a record in the lookback, none in a window: counts over no records, not no data
    assert (b["has_events_data"], b["logins_30d"], b["trend"], b["idle_days"], b["first_seen"]) == (
        True,
        0,
        0,
        199,
        None,
    )
    assert (c["has_events_data"], c["logins_30d"], c["idle_days"]) == (False, None, None)
