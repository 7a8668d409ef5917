"""Incremental validity checks: GX sees only rows that have not passed a rule before, never less."""

import datetime as dt

import polars as pl
import pytest

import checks.gx_validation as gx_validation
from checks.gx_incremental import ValidationRecord, bucket_expr, fingerprints
from checks.gx_suites import in_set, not_future, not_null, unique
from checks.gx_validation import validate_tables

UTC = dt.UTC
BOUND = dt.datetime(2026, 11, 1, tzinfo=UTC)
RULES = (
    not_null("account_id"),
    unique("event_id"),
    in_set("kind", ("login", "export")),
    not_future("at"),
)


def events(days: int, per_day: int = 3, start: int = 0) -> pl.DataFrame:
    """`per_day` clean events on each of `days` October days, ids from `start`."""
    n = days * per_day
    return pl.DataFrame(
        {
            "event_id": [f"E-{start + i}" for i in range(n)],
            "account_id": [f"A-{i % 5}" for i in range(n)],
            "kind": ["login", "export", "login"] * days if per_day == 3 else ["login"] * n,
            "at": [dt.datetime(2026, 10, 1 + i // per_day, 9, tzinfo=UTC) for i in range(n)],
        }
    )


def validate(frame: pl.DataFrame, record: ValidationRecord, bound: dt.datetime = BOUND, rules=RULES):
    table = validate_tables(
        {"events": (frame.lazy(), rules)}, bound, {"events": ("event_id",)}, record=record, day_columns={"events": "at"}
    )["events"]
    return {o.name: o for o in table.outcomes}


@pytest.fixture()
def record(tmp_path) -> ValidationRecord:
    return ValidationRecord(tmp_path / "gx_passes")


def test_unchanged_rows_are_not_validated_again_and_gx_is_not_even_imported(record, monkeypatch):
    frame = events(days=4)
    first = validate(frame, record)
    assert all(o.success and o.rows == 12 and o.rows_reused == 0 for k, o in first.items() if k != "event_id_unique")
    # no id repeats: no row can break uniqueness, so GX is handed none of them
    unique = first["event_id_unique"]
    assert unique.success and (unique.rows, unique.rows_reused, unique.rows_key_of_their_own) == (0, 0, 12)
    assert (
        unique.description
        == "events.event_id: event_id is unique: ok (0 row(s) validated now, 12 with a key no other row has)"
    )

    def no_gx():
        raise AssertionError("GX was used although no row is new")

    monkeypatch.setattr(gx_validation, "_import_gx", no_gx)
    again = validate(frame.reverse(), record)  # same rows in another order: the same content
    assert all(o.success and o.rows == 0 and o.rows_reused == 12 for o in again.values())
    assert "0 row(s) validated now, 12 unchanged since they last passed" in again["account_id_not_null"].description


def test_a_new_day_is_validated_alone_and_its_bad_value_fails_every_time(record):
    validate(events(days=4), record)
    bad_day = events(days=1, start=100).with_columns(
        at=pl.lit(dt.datetime(2026, 10, 9, 9, tzinfo=UTC)), kind=pl.Series(["login", "logout", "login"])
    )
    grown = pl.concat([events(days=4), bad_day])
    for attempt in range(2):  # a failure is never remembered; the other rules' passes on the new day are
        outcomes = validate(grown, record)
        kind = outcomes["kind_allowed"]
        assert not kind.success and kind.rows == 3 and kind.rows_reused == 12
        assert kind.sample == ["'logout'"] and kind.sample_rows == ["'logout' (event_id='E-101')"]
        unique = outcomes["event_id_unique"]  # the new day's ids are new: nothing for GX to compare
        assert unique.success
        assert (unique.rows, unique.rows_reused, unique.rows_key_of_their_own) == (
            (0, 12, 3) if attempt == 0 else (0, 15, 0)  # then it passed on all five days
        )
        nulls = outcomes["account_id_not_null"]
        assert nulls.success and (nulls.rows, nulls.rows_reused) == ((3, 12) if attempt == 0 else (0, 15))


def test_a_changed_old_row_is_validated_again(record):
    frame = events(days=4)
    validate(frame, record)
    edited = frame.with_columns(account_id=pl.when(pl.col("event_id") == "E-4").then(None).otherwise("account_id"))
    outcome = validate(edited, record)["account_id_not_null"]
    # the edited row's day (2 October, 3 rows) only
    assert not outcome.success and outcome.rows == 3 and outcome.sample_rows == ["null (event_id='E-4')"]


def test_a_new_row_repeating_an_old_key_fails_uniqueness(record):
    validate(events(days=4), record)
    repeat = events(days=1, start=0).with_columns(at=pl.lit(dt.datetime(2026, 10, 9, 9, tzinfo=UTC)))
    outcome = validate(pl.concat([events(days=4), repeat]), record)["event_id_unique"]
    # GX sees the new day and the three old rows sharing its keys, not the other nine
    assert not outcome.success and outcome.rows == 6 and outcome.rows_reused == 9
    assert outcome.rows_key_of_their_own == 0  # every new id repeats an old one
    assert outcome.unexpected_count == 6 and set(outcome.sample) == {"'E-0'", "'E-1'", "'E-2'"}


def test_a_not_future_pass_holds_for_a_later_bound_only(record):
    frame = events(days=4)
    validate(frame, record)
    later = validate(frame, record, bound=BOUND + dt.timedelta(days=1))["at_not_future"]
    assert later.success and later.rows == 0
    earlier = validate(frame, record, bound=dt.datetime(2026, 10, 3, tzinfo=UTC))["at_not_future"]
    assert not earlier.success and earlier.rows == 12 and earlier.unexpected_count == 6


def test_a_changed_rule_and_an_unreadable_record_validate_everything(record):
    frame = events(days=4)
    validate(frame, record)
    stricter = (*RULES[:2], in_set("kind", ("login",)), RULES[3])
    kind = validate(frame, record, rules=stricter)["kind_allowed"]
    assert not kind.success and kind.rows == 12 and kind.unexpected_count == 4

    validate(frame, record)
    (record.directory / "events.json").write_text("{ not json")
    outcomes = validate(frame, record)
    assert all(o.success and o.rows == 12 for k, o in outcomes.items() if k != "event_id_unique")
    assert outcomes["event_id_unique"].rows_reused == 0 and outcomes["event_id_unique"].rows_key_of_their_own == 12


def test_uniqueness_hands_gx_only_the_rows_whose_key_repeats(record):
    frame = events(days=4)
    twice = pl.concat([frame, frame.filter(pl.col("event_id") == "E-7")])
    outcome = validate(twice, record)["event_id_unique"]
    # 13 rows, one id twice: GX sees that pair and fails on both of its rows
    assert not outcome.success and outcome.rows == 2 and outcome.unexpected_count == 2
    assert outcome.sample == ["'E-7'"] and outcome.rows_key_of_their_own == 11


def test_fingerprints_see_every_column_and_ignore_row_order():
    frame = events(days=2).lazy()
    bucket = bucket_expr("at", frame.collect_schema())
    base = fingerprints(frame, ["event_id", "kind"], bucket)
    assert set(base) == {"2026-10-01", "2026-10-02"} and all(n == 3 for _, n in base.values())
    assert fingerprints(frame.reverse(), ["event_id", "kind"], bucket) == base
    changed = fingerprints(frame.with_columns(kind=pl.lit("login")), ["event_id", "kind"], bucket)
    assert changed["2026-10-01"] != base["2026-10-01"]
