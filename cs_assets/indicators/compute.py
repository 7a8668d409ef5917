"""Per-account indicators as of a snapshot date: the accounts source plus every event source's
indicators, compiled from the catalogue (`compiler.py`).

Pure functions over frames (no Dagster here). Every source is cut at the end of the as-of day,
and by arrival when it declares `received_at`, so a snapshot only sees what had arrived.
"""

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

import polars as pl

from cs_assets.indicators.catalogue import RATIO, VALUE, Catalogue, required
from cs_assets.indicators.compiler import (
    aggregate_source,
    aggregate_windowed,
    as_of_end,
    lookback_aggregates,
    prepare_source,
    presence_column,
    split_by_reach,
    windowed_records,
)
from cs_assets.indicators.engines import SqlEngine
from cs_assets.indicators.sql_compiler import source_sql, transpile
from cs_assets.sources.contract import ACCOUNT_CONTEXT, ACCOUNT_ID, TYPES, Contract, DType
from cs_assets.sources.normalise import accounts_as_of, latest_accounts

__all__ = ["as_of_end", "active_accounts", "compute_account_indicators", "account_indicator_frame"]

DATES_PER_BATCH = 8


def active_accounts(crm: pl.LazyFrame, as_of: dt.date) -> pl.LazyFrame:
    """Accounts under contract on the as-of date: started, and not churned by then."""
    return crm.filter(
        (pl.col("contract_start_date") <= as_of) & (pl.col("churn_date").is_null() | (pl.col("churn_date") > as_of))
    )


def renewal_date_as_of(as_of: dt.date) -> pl.Expr:
    """The renewal date that applied on `as_of`.

    A CRM export holds only the current term's renewal date. For a past snapshot, the term that
    applied then ended whole years earlier (annual terms): step the current date back by whole
    years while it stays after `as_of`. A renewal date already in the past is left as it is.
    """
    current = pl.col("renewal_date")
    years = (current.dt.year() - as_of.year).clip(lower_bound=0)
    stepped = current.dt.offset_by(pl.format("-{}y", years))
    stepped = pl.when(stepped <= as_of).then(stepped.dt.offset_by("1y")).otherwise(stepped)
    return pl.when(current > as_of).then(stepped).otherwise(current)


def account_columns(contract: Contract) -> list[str]:
    """The accounts source's columns carried into the indicator table (lists and its timestamp aside)."""
    accounts = contract.accounts
    # churn_date is carried as of the snapshot (see _account_frame), lists and the timestamp not at all
    skip = {*accounts.list_separators, accounts.timestamp_column, "churn_date"}
    carried = [c for c in accounts.columns if c not in skip]
    return list(dict.fromkeys([ACCOUNT_ID, *ACCOUNT_CONTEXT, *carried]))


def _account_frame(crm: pl.LazyFrame, contract: Contract, as_of: dt.date) -> pl.LazyFrame:
    declared = contract.accounts.columns
    columns = []
    for name in account_columns(contract):
        if name in declared:
            columns.append(pl.col(name))
        else:  # a well-known column this CRM does not have: null, so every deployment has the same shape
            columns.append(pl.lit(None, dtype=TYPES[ACCOUNT_CONTEXT[name]]).alias(name))
    # the CRM as it was that day: each account's version valid then (see accounts_as_of)
    crm = accounts_as_of(crm, contract.accounts, as_of_end(as_of))
    return (
        crm.filter(pl.col("contract_start_date") <= as_of)
        .with_columns(renewal_date=renewal_date_as_of(as_of))
        .select(
            *columns,
            # a churn that had not happened yet on the as-of date is not known then
            churn_date=pl.when(pl.col("churn_date") <= as_of).then(pl.col("churn_date")),
            is_active=pl.col("churn_date").is_null() | (pl.col("churn_date") > as_of),
            tenure_days=(pl.lit(as_of) - pl.col("contract_start_date")).dt.total_days(),
            days_to_renewal=(pl.col("renewal_date") - pl.lit(as_of)).dt.total_days(),
        )
    )


def _finish(frame: pl.LazyFrame, catalogue: Catalogue) -> pl.LazyFrame:
    """`per` normalisation, account-column values, ratios, then what no data means."""
    steps = []
    for ind in catalogue.indicators.values():
        if ind.aggregate == VALUE:
            steps.append(pl.col(required(ind, "column", ind.column)).cast(pl.Float64).alias(ind.name))
        elif ind.per is not None:
            unit = pl.col(ind.per).cast(pl.Float64)
            # per zero or unknown units there is nothing to normalise by: no data, never infinity
            steps.append(pl.when(unit > 0).then(pl.col(ind.name) / unit).otherwise(None).alias(ind.name))
    if steps:
        frame = frame.with_columns(steps)
    ratios = [
        (i.name, required(i, "numerator", i.numerator), required(i, "denominator", i.denominator))
        for i in catalogue.indicators.values()
        if i.aggregate == RATIO
    ]
    if ratios:
        frame = frame.with_columns(
            pl.when(pl.col(denominator).cast(pl.Float64) != 0)
            .then(pl.col(numerator).cast(pl.Float64) / pl.col(denominator).cast(pl.Float64))
            .alias(name)
            for name, numerator, denominator in ratios
        )
    fills = []
    for ind in catalogue.indicators.values():
        value = pl.col(ind.name)
        if ind.no_data == "zero":
            value = value.fill_null(0)
        elif isinstance(ind.no_data, float):
            value = value.fill_null(ind.no_data)
        fills.append(value.cast(pl.Int64 if ind.is_whole_number and ind.no_data in ("zero", "null") else pl.Float64))
    return frame.with_columns(fills)


def relation_name(source: str) -> str:
    """The name a SQL engine knows a source's prepared records by."""
    return f"events_{source}"


def _engine_aggregate(
    engine: SqlEngine, prepared: pl.LazyFrame, spec, indicators, as_of: dt.date, lookback: int | None
) -> pl.LazyFrame:
    """The source's per-account aggregates computed by a SQL engine, in the types polars gives."""
    schema = aggregate_source(prepared.clear(), spec, indicators, as_of, lookback).collect_schema()
    sql = transpile(source_sql(spec, indicators, as_of, lookback, relation_name(spec.name)), engine.dialect)
    result = engine.query(sql)
    return result.select([pl.col(c).cast(t) for c, t in schema.items()]).lazy()


@dataclass(frozen=True)
class PreparedSource:
    """A source ready for the polars aggregation of some snapshots (`compiler.lookback_aggregates`):
    in memory only the records a windowed indicator reads, and the per-account lookback pass."""

    records: pl.LazyFrame
    lookback: pl.LazyFrame
    dates: list[dt.date]


def account_indicator_frame(
    prepared: Mapping[str, pl.LazyFrame | PreparedSource],
    crm: pl.LazyFrame,
    contract: Contract,
    catalogue: Catalogue,
    as_of: dt.date,
    engine: SqlEngine | None = None,
) -> pl.LazyFrame:
    """One row per account that had started its contract by `as_of`, sorted by account_id.

    Churned accounts are kept (flagged `is_active = false`) so that validation can look at
    them; only active accounts are scored. Contract state is the CRM's as of that date: started
    by then, not churned by then, and the renewal date of the term that applied then.
    """
    frame = _account_frame(crm, contract, as_of)
    flags = []
    for name, spec in contract.event_sources.items():
        indicators = catalogue.for_source(name)
        lookback = catalogue.lookback_days.get(name)
        source = prepared[name]
        if isinstance(source, PreparedSource):
            k = source.dates.index(as_of)
            per_account = aggregate_windowed(
                source.records, source.lookback, spec, indicators, source.dates, k, lookback
            )
        elif engine is None:
            per_account = aggregate_source(source, spec, indicators, as_of, lookback)
        else:
            per_account = _engine_aggregate(engine, source, spec, indicators, as_of, lookback)
        frame = frame.join(per_account, on=ACCOUNT_ID, how="left")
        flags.append(pl.col(presence_column(name)).fill_null(False))
    frame = frame.with_columns(flags) if flags else frame
    return (
        _finish(frame, catalogue)
        .with_columns(snapshot_date=pl.lit(as_of))
        .select(
            "snapshot_date",
            *account_columns(contract),
            "churn_date",
            "is_active",
            "tenure_days",
            "days_to_renewal",
            *[presence_column(n) for n in contract.event_sources],
            *catalogue.names,
            *note_columns(catalogue),
        )
        .sort(ACCOUNT_ID)
    )


def compute_account_indicators(
    sources: Mapping[str, pl.LazyFrame | pl.DataFrame],
    contract: Contract,
    catalogue: Catalogue,
    as_of: dt.date | list[dt.date],
    engine: SqlEngine | None = None,
) -> pl.DataFrame:
    """Indicator rows for one snapshot date or several (stacked, oldest date first).

    Each source is read and prepared once; each snapshot's windows are cut from it in memory,
    so a backfill costs one scan of the inputs plus one small query per source and date. With
    a SQL `engine` (`engines.py`), the per-source aggregation runs there instead of in polars;
    the CRM, the account columns and the finishing steps stay in polars (one row per account).
    """
    dates = sorted(as_of) if isinstance(as_of, list) else [as_of]
    lazy = {name: frame.lazy() for name, frame in sources.items()}  # frames or lazy frames
    crm = lazy[contract.accounts.name].collect().lazy()
    separators = contract.accounts.list_separators
    # account lists (champions) as the CRM holds them now
    current = latest_accounts(crm, contract.accounts)
    prepared: dict[str, pl.LazyFrame | PreparedSource] = {}
    for name, spec in contract.event_sources.items():
        indicators = catalogue.for_source(name)
        if engine is not None:
            loaded = prepare_source(lazy[name], spec, indicators, current, separators).collect()
            engine.load(relation_name(name), loaded)
            prepared[name] = loaded.lazy()
            continue
        # two streaming passes over the source, each preparing only what its indicators read (an
        # account-list join costs a pass); in memory only the records a window reads
        lookback = catalogue.lookback_days.get(name)
        whole, windowed = split_by_reach(indicators)
        records = prepare_source(lazy[name], spec, windowed, current, separators)
        everything = prepare_source(lazy[name], spec, whole, current, separators)
        prepared[name] = PreparedSource(
            records=records.filter(windowed_records(spec, windowed, dates)).collect(engine="streaming").lazy(),
            lookback=lookback_aggregates(everything, spec, whole, dates, lookback).collect(engine="streaming").lazy(),
            dates=dates,
        )
    frames: list[pl.DataFrame] = []
    # a few dates at a time: polars runs each batch in parallel, and memory stays bounded
    for i in range(0, len(dates), DATES_PER_BATCH):
        batch = dates[i : i + DATES_PER_BATCH]
        frames.extend(
            pl.collect_all([account_indicator_frame(prepared, crm, contract, catalogue, d, engine) for d in batch])
        )
    return pl.concat(frames, how="vertical")


def note_columns(catalogue: Catalogue) -> list[str]:
    """The text columns beside `latest` indicators that keep their record's note (never scored)."""
    return [i.note_name for i in catalogue.indicators.values() if i.note_name is not None]


def empty_indicator_schema(contract: Contract, catalogue: Catalogue) -> dict[str, DType]:
    """The indicator table's columns and types (what `account_indicator_frame` produces)."""
    schema: dict[str, DType] = {"snapshot_date": pl.Date}
    for name in account_columns(contract):
        schema[name] = contract.accounts.columns.get(name) or TYPES[ACCOUNT_CONTEXT[name]]
    schema.update(churn_date=pl.Date, is_active=pl.Boolean, tenure_days=pl.Int64, days_to_renewal=pl.Int64)
    schema.update({presence_column(n): pl.Boolean for n in contract.event_sources})
    for ind in catalogue.indicators.values():
        schema[ind.name] = pl.Int64 if ind.is_whole_number and ind.no_data in ("zero", "null") else pl.Float64
    schema.update({name: pl.String for name in note_columns(catalogue)})
    return schema
