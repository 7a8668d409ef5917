"""Compile the indicators of one source into one lazy polars query per snapshot.

Pure functions over frames, no Dagster. Every indicator of a source becomes one aggregation
expression (a filtered count, distinct count, sum, quantile, ...) inside a single `group_by`
over the source's records, so a source is scanned once per snapshot, however many indicators
read it. The expressions use only what SQL has too (filtered aggregates, distinct counts,
quantiles, joins), so the same specs can compile to DuckDB or Spark SQL later.

Time: a snapshot `D` sees the records whose timestamp is before the end of day `D` (UTC) and,
when the source declares `received_at`, that had arrived by then. A window of N days is the N
whole days ending with `D`: `[end - N days, end)`; the previous window is the N days before it.
"""

import datetime as dt
import functools
from typing import TYPE_CHECKING

import polars as pl

from cs_assets.indicators.catalogue import (
    ACTIVE_DAYS,
    COUNT,
    COVERAGE,
    DISTINCT,
    LATEST,
    MAX,
    MEAN,
    MEDIAN,
    MIN,
    NEWEST,
    OLDEST,
    QUANTILE,
    SHARE,
    SUM,
    Filter,
    Indicator,
    required,
)
from cs_assets.sources.contract import ACCOUNT_ID, SourceSpec

if TYPE_CHECKING:
    from polars.expr.whenthen import ChainedThen, Then


def as_of_end(as_of: dt.date) -> dt.datetime:
    """Exclusive upper bound of a snapshot: midnight UTC after the as-of day."""
    return dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)


def member_flag(column: str, list_column: str) -> str:
    return f"__{column}_in_{list_column}"


def _filters_of(indicator: Indicator) -> list[Filter]:
    return [*indicator.where, *(indicator.of or ())]


def needed_columns(spec: SourceSpec, indicators: list[Indicator]) -> list[str]:
    """The source columns the indicators read (plus account, timestamp and arrival)."""
    columns = [ACCOUNT_ID, spec.event_time]
    if spec.received_column:
        columns.append(spec.received_column)
    for ind in indicators:
        if ind.aggregate == LATEST:
            columns.extend(spec.key)  # ties on the time are broken by the key
        for name in (ind.column, ind.time_column, ind.note_column, *(f.column for f in _filters_of(ind))):
            if name is None:
                continue
            if name in spec.derived:
                derived = spec.derived[name]
                columns.extend(derived.hours_between or derived.days_between or [])
            else:
                columns.append(name)
    return list(dict.fromkeys(columns))


def prepare_source(
    frame: pl.LazyFrame,
    spec: SourceSpec,
    indicators: list[Indicator],
    accounts: pl.LazyFrame,
    separators: dict[str, str],
) -> pl.LazyFrame:
    """The columns the indicators read, derived columns added, account-list membership joined.

    Done once per run (not per snapshot): none of it depends on the snapshot date.
    """
    prepared = frame.select(needed_columns(spec, indicators))
    derived_needed = {
        n for ind in indicators for n in (ind.column, *(f.column for f in _filters_of(ind))) if n in spec.derived
    }
    for name in sorted(derived_needed):
        derived = spec.derived[name]
        between = derived.hours_between or derived.days_between
        if between is None:
            raise ValueError(
                f"derived column {name}: neither hours_between nor days_between (DerivedDecl requires one)"
            )
        start, stop = between
        per = 3600.0 if derived.hours_between else 86400.0
        prepared = prepared.with_columns(((pl.col(stop) - pl.col(start)).dt.total_seconds() / per).alias(name))
    memberships = {(f.column, f.value) for ind in indicators for f in _filters_of(ind) if f.op == "in_account_list"}
    for column, list_column in sorted(memberships):
        flag = member_flag(column, list_column)
        members = (
            accounts.select(ACCOUNT_ID, __member=pl.col(list_column).str.split(separators[list_column]))
            .explode("__member")
            .with_columns(pl.col("__member").str.strip_chars())
            .filter(pl.col("__member").is_not_null() & (pl.col("__member") != ""))
            .unique()
            .select(ACCOUNT_ID, pl.col("__member").alias(column), pl.lit(True).alias(flag))
        )
        prepared = (
            prepared.with_columns(pl.col(column).cast(pl.String))
            # the records' order kept (streamed too): a float sum adds them in that order
            .join(members, on=[ACCOUNT_ID, column], how="left", maintain_order="left")
            .with_columns(pl.col(flag).fill_null(False))
        )
    # the prepared records stay in memory for every snapshot of the run: text columns with a
    # declared vocabulary (a few values each) are held as categories, 4 bytes a row instead of a
    # string view; on 43M usage events that halves the indicator step's peak memory
    schema = prepared.collect_schema()
    categories = [c for c in spec.vocabulary if schema.get(c) == pl.String]
    return prepared.with_columns(pl.col(categories).cast(pl.Categorical)) if categories else prepared


def filter_expr(filters: tuple[Filter, ...] | list[Filter]) -> pl.Expr:
    """True where every condition holds (null compares as false, as in SQL)."""
    parts = []
    for f in filters:
        col = pl.col(f.column)
        if f.op == "eq":
            parts.append(col == f.value)
        elif f.op == "in":
            parts.append(col.is_in(list(f.value)))
        elif f.op == "not":
            parts.append(~col.is_in(list(f.value)))
        elif f.op == "in_account_list":
            parts.append(pl.col(member_flag(f.column, f.value)))
        elif f.op == "is_null":
            parts.append(col.is_null() if f.value else col.is_not_null())
        else:
            parts.append({"gt": col > f.value, "gte": col >= f.value, "lt": col < f.value, "lte": col <= f.value}[f.op])
    return pl.all_horizontal(parts).fill_null(False) if parts else pl.lit(True)


@functools.lru_cache(maxsize=8192)
def _instant(at: dt.datetime) -> pl.Expr:
    # a datetime literal costs ~90 us to build (polars makes a Series of it), a reused one ~1 us:
    # a backfill compiles the same few window bounds thousands of times
    return pl.lit(at)


def _window(time: pl.Expr, end: dt.datetime, days: int | None, shift: int = 0) -> pl.Expr:
    upper = end - dt.timedelta(days=shift * (days or 0))
    inside = time.is_not_null() & (time < _instant(upper))
    if days is not None:
        inside = inside & (time >= _instant(upper - dt.timedelta(days=days)))
    return inside


def _aggregate(ind: Indicator, spec: SourceSpec, end: dt.datetime, as_of: dt.date, shift: int) -> pl.Expr:
    time = pl.col(ind.time_column or spec.event_time)
    match = _window(time, end, ind.window_days, shift) & filter_expr(ind.where)
    a = ind.aggregate
    if a == COUNT:
        return match.sum().cast(pl.Int64)
    if a == SHARE:
        base = _window(time, end, ind.window_days, shift) & filter_expr(ind.of or ())
        num, den = (base & filter_expr(ind.where)).sum(), base.sum()
        return pl.when(den > 0).then(num / den)
    if a == ACTIVE_DAYS:
        return time.filter(match).dt.date().n_unique().cast(pl.Int64)
    if a in (NEWEST, OLDEST):
        stamp = time.filter(match)
        newest = (stamp.max() if a == NEWEST else stamp.min()).dt.date()
        return (pl.lit(as_of) - newest).dt.total_days().cast(pl.Int64)
    col = pl.col(required(ind, "column", ind.column))
    if a == LATEST:
        # the newest record in the window; ties on the time broken by the source's key
        value = col.replace_strict(dict(ind.value_map), default=None, return_dtype=pl.Float64) if ind.value_map else col
        return _newest(value.cast(pl.Float64), time, match, spec)
    if a == DISTINCT:
        return col.filter(match & col.is_not_null()).n_unique().cast(pl.Int64)
    if a == COVERAGE:
        values_to_cover = required(ind, "values", ind.values)
        seen = col.filter(match & col.is_in(list(values_to_cover))).n_unique()
        return seen / len(values_to_cover)
    values = col.filter(match).cast(pl.Float64)
    if a == SUM:
        return values.sum()
    if a == MEAN:
        return values.mean()
    if a == MEDIAN:
        return values.median()
    if a == MIN:
        return values.min()
    if a == MAX:
        return values.max()
    if a == QUANTILE:
        return values.quantile(required(ind, "q", ind.q), interpolation="linear")
    raise ValueError(f"indicator {ind.name}: aggregation {a!r} is not computed over records")


def _newest(value: pl.Expr, time: pl.Expr, match: pl.Expr, spec: SourceSpec) -> pl.Expr:
    order = [time.filter(match), *(pl.col(k).cast(pl.String).filter(match) for k in spec.key)]
    return value.filter(match).sort_by(order).last()


def note_expr(ind: Indicator, spec: SourceSpec, end: dt.datetime) -> pl.Expr:
    """The text of the record a `latest` indicator took its value from (kept, never scored)."""
    time = pl.col(ind.time_column or spec.event_time)
    match = _window(time, end, ind.window_days) & filter_expr(ind.where)
    note = pl.col(required(ind, "note_column", ind.note_column)).cast(pl.String)
    return _newest(note, time, match, spec).alias(required(ind, "note_name", ind.note_name))


def indicator_expr(ind: Indicator, spec: SourceSpec, end: dt.datetime, as_of: dt.date) -> pl.Expr:
    """One indicator as one aggregation (before `per`, ratios and the no-data fill)."""
    current = _aggregate(ind, spec, end, as_of, shift=0)
    if not ind.compare:
        return current.alias(ind.name)
    previous = _aggregate(ind, spec, end, as_of, shift=1)
    if ind.change == "difference":
        return (current - previous).alias(ind.name)
    change: Then | ChainedThen = pl.when(previous > 0).then(current / previous - 1.0)
    if ind.both_empty is not None:
        change = change.when((previous == 0) & (current == 0)).then(pl.lit(ind.both_empty))
    return change.otherwise(None).cast(pl.Float64).alias(ind.name)


def presence_column(source: str) -> str:
    return f"has_{source}_data"


def seen_expr(spec: SourceSpec, as_of: dt.date, lookback_days: int | None) -> pl.Expr:
    """True on the records a snapshot sees: happened and arrived by its end, within the lookback."""
    end = as_of_end(as_of)
    ts = pl.col(spec.event_time)
    seen = ts.is_not_null() & (ts < end)
    if spec.received_column:
        seen = seen & pl.col(spec.received_column).is_not_null() & (pl.col(spec.received_column) < end)
    if lookback_days is not None:
        seen = seen & (ts >= end - dt.timedelta(days=lookback_days))
    return seen


def _aggregations(spec: SourceSpec, indicators: list[Indicator], as_of: dt.date) -> list[pl.Expr]:
    end = as_of_end(as_of)
    return [
        *[indicator_expr(i, spec, end, as_of) for i in indicators],
        *[note_expr(i, spec, end) for i in indicators if i.note_column is not None],
    ]


def aggregate_source(
    prepared: pl.LazyFrame, spec: SourceSpec, indicators: list[Indicator], as_of: dt.date, lookback_days: int | None
) -> pl.LazyFrame:
    """One row per account with a record of `spec` within its lookback: the source's indicators."""
    return (
        prepared.filter(seen_expr(spec, as_of, lookback_days))
        .group_by(ACCOUNT_ID)
        .agg(pl.lit(True).alias(presence_column(spec.name)), *_aggregations(spec, indicators, as_of))
    )


# --------------------------------------------------------------------------- large sources
# `aggregate_source` over every record of a year of events holds them all in memory. Most
# indicators read a window of days; only "days since the newest (oldest)" record over the whole
# lookback, and whether an account has a record at all, read every record, and both are a max or
# an any per account, which polars streams. So a large source is aggregated in two parts with the
# same values: a streaming pass for those (`lookback_aggregates`), and in memory only the records
# some windowed indicator reads (`windowed_records`, `aggregate_windowed`).


def reads_whole_lookback(ind: Indicator) -> bool:
    """A days-since aggregate without a window: computed by the streaming pass."""
    return ind.aggregate in (NEWEST, OLDEST) and ind.window_days is None


def split_by_reach(indicators: list[Indicator]) -> tuple[list[Indicator], list[Indicator]]:
    """(the whole-lookback indicators, the windowed ones)."""
    whole = [i for i in indicators if reads_whole_lookback(i)]
    return whole, [i for i in indicators if not reads_whole_lookback(i)]


def _present(k: int) -> str:
    return f"__present_{k}"


def _stamp(ind: Indicator, k: int) -> str:
    return f"__{ind.name}_stamp_{k}"


def lookback_aggregates(
    prepared: pl.LazyFrame, spec: SourceSpec, indicators: list[Indicator], dates: list[dt.date], lookback: int | None
) -> pl.LazyFrame:
    """Per account and snapshot `k`: whether it has a record within the lookback (`__present_k`) and
    the newest (oldest) time of each whole-lookback indicator's records, in one pass."""
    aggs, seen_by_date = [], []
    for k, as_of in enumerate(dates):
        seen = seen_expr(spec, as_of, lookback)
        seen_by_date.append(seen)
        aggs.append(seen.any().alias(_present(k)))
        for ind in filter(reads_whole_lookback, indicators):
            time = pl.col(ind.time_column or spec.event_time)
            stamp = time.filter(seen & _window(time, as_of_end(as_of), None) & filter_expr(ind.where))
            aggs.append((stamp.max() if ind.aggregate == NEWEST else stamp.min()).alias(_stamp(ind, k)))
    return prepared.filter(pl.any_horizontal(seen_by_date)).group_by(ACCOUNT_ID).agg(aggs)


def windowed_records(spec: SourceSpec, indicators: list[Indicator], dates: list[dt.date]) -> pl.Expr:
    """True on the records a windowed indicator reads for some snapshot in `dates` (a superset:
    each snapshot filters them again exactly)."""
    first, last = as_of_end(min(dates)), as_of_end(max(dates))
    parts = []
    for ind in indicators:
        if reads_whole_lookback(ind):
            continue
        time = pl.col(ind.time_column or spec.event_time)
        inside = time.is_not_null() & (time < last)
        if ind.window_days is not None:  # the previous window too, for a trend
            inside = inside & (time >= first - dt.timedelta(days=ind.window_days * (2 if ind.compare else 1)))
        # a share's base is the window and `of`; its `where` only selects within that base
        parts.append(inside & filter_expr((ind.of or ()) if ind.aggregate == SHARE else ind.where))
    return pl.any_horizontal(parts) if parts else pl.lit(False)


def aggregate_windowed(
    records: pl.LazyFrame,
    lookback: pl.LazyFrame,
    spec: SourceSpec,
    indicators: list[Indicator],
    dates: list[dt.date],
    k: int,
    lookback_days: int | None,
) -> pl.LazyFrame:
    """What `aggregate_source` gives for snapshot `dates[k]`, from the windowed `records` and the
    streaming pass's `lookback` frame. An account with a record in the lookback but none a window
    reads gets what the aggregations give over no records (a count 0, a mean null, ...)."""
    as_of = dates[k]
    windowed = [i for i in indicators if not reads_whole_lookback(i)]
    aggs = _aggregations(spec, windowed, as_of)
    names = [e.meta.output_name() for e in aggs]
    grouped = (
        records.filter(seen_expr(spec, as_of, lookback_days))
        .group_by(ACCOUNT_ID)
        .agg(pl.lit(True).alias("__grouped"), *aggs)
    )
    over_nothing = records.clear().select(aggs).rename({n: f"{n}__none" for n in names})
    since = [
        (pl.lit(as_of) - pl.col(_stamp(i, k)).dt.date()).dt.total_days().cast(pl.Int64).alias(i.name)
        for i in indicators
        if reads_whole_lookback(i)
    ]
    # the columns and types of `aggregate_source`; a days-since count is a whole number of days
    types = aggregate_source(records.clear(), spec, windowed, as_of, lookback_days).collect_schema()
    types.update({i.name: pl.Int64() for i in indicators if reads_whole_lookback(i)})
    order = [ACCOUNT_ID, presence_column(spec.name), *(i.name for i in indicators)]
    schema = {c: types[c] for c in [*order, *(c for c in types if c not in order)]}
    frame = lookback.filter(pl.col(_present(k))).join(grouped, on=ACCOUNT_ID, how="left")
    if names:  # (a cross join with no columns has no rows)
        frame = frame.join(over_nothing, how="cross")
    return frame.with_columns(
        pl.lit(True).alias(presence_column(spec.name)),
        *since,
        *[pl.when(pl.col("__grouped")).then(pl.col(n)).otherwise(pl.col(f"{n}__none")).alias(n) for n in names],
    ).select([pl.col(c).cast(t) for c, t in schema.items()])
