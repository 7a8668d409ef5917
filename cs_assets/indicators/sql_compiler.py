"""Compile the indicators of one source into one SQL query per snapshot: the same specs as
`compiler.py`, for an engine that runs SQL where the events are (DuckDB, Spark, a warehouse).

Pure functions, no engine here: `source_sql` returns the text of one `SELECT` over a relation of
prepared records (`compiler.prepare_source`), in DuckDB's dialect; `transpile` turns it into
another dialect with sqlglot (Spark, BigQuery, Snowflake, ...). Each aggregation mirrors its
polars twin, including what an empty window gives (a count 0, a sum 0.0, a mean or a recency
null), so that the engines agree to the last digit on counts and to rounding on floats. The
tests run polars, DuckDB and Spark on the same data against each other.

Timestamps are compared with UTC literals and a record's day is its UTC date, so a session that
runs this SQL must use UTC as its time zone (the engine runners set it).
"""

import datetime as dt
from typing import Any

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
from cs_assets.indicators.compiler import as_of_end, member_flag, presence_column
from cs_assets.sources.contract import ACCOUNT_ID, SourceSpec

DIALECT = "duckdb"  # the dialect `source_sql` writes


def ident(name: str) -> str:
    """A quoted identifier (column names come from config)."""
    return '"' + name.replace('"', '""') + '"'


def literal(value: Any) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        return repr(float(value)) if isinstance(value, float) else str(value)
    if isinstance(value, dt.datetime):
        return f"CAST('{value.astimezone(dt.UTC).strftime('%Y-%m-%d %H:%M:%S')}' AS TIMESTAMP)"
    if isinstance(value, dt.date):
        return f"CAST('{value.isoformat()}' AS DATE)"
    return "'" + str(value).replace("'", "''") + "'"


def _values(values) -> str:
    return "(" + ", ".join(literal(v) for v in values) + ")"


def filter_sql(filters: tuple[Filter, ...] | list[Filter]) -> str:
    """True where every condition holds; a null comparison is not true (as `compiler.filter_expr`)."""
    parts = []
    for f in filters:
        col = ident(f.column)
        if f.op == "eq":
            parts.append(f"{col} = {literal(f.value)}")
        elif f.op == "in":
            parts.append(f"{col} IN {_values(f.value)}")
        elif f.op == "not":
            parts.append(f"NOT ({col} IN {_values(f.value)})")
        elif f.op == "in_account_list":
            parts.append(ident(member_flag(f.column, f.value)))
        elif f.op == "is_null":
            parts.append(f"{col} IS NULL" if f.value else f"{col} IS NOT NULL")
        else:
            parts.append(f"{col} {dict(gt='>', gte='>=', lt='<', lte='<=')[f.op]} {literal(f.value)}")
    return " AND ".join(f"({p})" for p in parts) if parts else "TRUE"


def _window(time: str, end: dt.datetime, days: int | None, shift: int = 0) -> str:
    upper = end - dt.timedelta(days=shift * (days or 0))
    inside = f"{time} IS NOT NULL AND {time} < {literal(upper)}"
    if days is not None:
        inside += f" AND {time} >= {literal(upper - dt.timedelta(days=days))}"
    return inside


def _when(condition: str, value: str) -> str:
    return f"CASE WHEN ({condition}) THEN {value} END"


def _aggregate(ind: Indicator, spec: SourceSpec, end: dt.datetime, as_of: dt.date, shift: int) -> str:
    time = ident(ind.time_column or spec.event_time)
    window = _window(time, end, ind.window_days, shift)
    match = f"({window}) AND ({filter_sql(ind.where)})"
    a = ind.aggregate
    if a == COUNT:
        return f"CAST(SUM(CASE WHEN {match} THEN 1 ELSE 0 END) AS BIGINT)"
    if a == SHARE:
        base = f"({window}) AND ({filter_sql(ind.of or ())})"
        num = f"SUM(CASE WHEN ({base}) AND ({filter_sql(ind.where)}) THEN 1 ELSE 0 END)"
        den = f"SUM(CASE WHEN {base} THEN 1 ELSE 0 END)"
        return f"CASE WHEN {den} > 0 THEN CAST({num} AS DOUBLE) / {den} END"
    if a == ACTIVE_DAYS:
        return f"CAST(COUNT(DISTINCT {_when(match, f'CAST({time} AS DATE)')}) AS BIGINT)"
    if a in (NEWEST, OLDEST):
        stamp = f"{'MAX' if a == NEWEST else 'MIN'}({_when(match, time)})"
        return f"CAST(DATE_DIFF('day', CAST({stamp} AS DATE), {literal(as_of)}) AS BIGINT)"
    col = ident(required(ind, "column", ind.column))
    if a == DISTINCT:
        return f"CAST(COUNT(DISTINCT {_when(f'{match} AND {col} IS NOT NULL', col)}) AS BIGINT)"
    if a == COVERAGE:
        values_to_cover = required(ind, "values", ind.values)
        seen = f"COUNT(DISTINCT {_when(f'{match} AND {col} IN {_values(values_to_cover)}', col)})"
        return f"CAST({seen} AS DOUBLE) / {len(values_to_cover)}"
    value = _when(match, f"CAST({col} AS DOUBLE)")
    if a == SUM:
        return f"COALESCE(SUM({value}), 0.0)"  # polars sums an empty window to 0
    if a == MEAN:
        return f"AVG({value})"
    if a == MEDIAN:
        return f"QUANTILE_CONT({value}, 0.5)"
    if a == MIN:
        return f"MIN({value})"
    if a == MAX:
        return f"MAX({value})"
    if a == QUANTILE:
        return f"QUANTILE_CONT({value}, {float(required(ind, 'q', ind.q))!r})"
    raise ValueError(f"indicator {ind.name}: aggregation {a!r} is not computed over records")


def _indicator(ind: Indicator, spec: SourceSpec, end: dt.datetime, as_of: dt.date) -> str:
    current = _aggregate(ind, spec, end, as_of, shift=0)
    if not ind.compare:
        return current
    previous = _aggregate(ind, spec, end, as_of, shift=1)
    if ind.change == "difference":
        return f"({current}) - ({previous})"
    both = (
        f" WHEN ({previous}) = 0 AND ({current}) = 0 THEN {float(ind.both_empty)!r}"
        if ind.both_empty is not None
        else ""
    )
    return f"CAST(CASE WHEN ({previous}) > 0 THEN CAST({current} AS DOUBLE) / ({previous}) - 1.0{both} END AS DOUBLE)"


def _seen(spec: SourceSpec, end: dt.datetime, lookback_days: int | None) -> str:
    ts = ident(spec.event_time)
    seen = f"{ts} IS NOT NULL AND {ts} < {literal(end)}"
    if spec.received_column:
        received = ident(spec.received_column)
        seen += f" AND {received} IS NOT NULL AND {received} < {literal(end)}"
    if lookback_days is not None:
        seen += f" AND {ts} >= {literal(end - dt.timedelta(days=lookback_days))}"
    return seen


def _latest(ind: Indicator, spec: SourceSpec, end: dt.datetime, relation: str, seen: str) -> str:
    """The newest record of the window per account (ties on the time broken by the key, as text)."""
    time = ident(ind.time_column or spec.event_time)
    match = f"({_window(time, end, ind.window_days)}) AND ({filter_sql(ind.where)})"
    col = ident(required(ind, "column", ind.column))
    if ind.value_map:
        cases = " ".join(f"WHEN {col} = {literal(k)} THEN {float(v)!r}" for k, v in ind.value_map)
        value = f"CASE {cases} END"
    else:
        value = f"CAST({col} AS DOUBLE)"
    note = f", CAST({ident(ind.note_column)} AS VARCHAR) AS {ident(ind.note_name or '')}" if ind.note_column else ""
    order = ", ".join([f"{time} DESC", *(f"CAST({ident(k)} AS VARCHAR) DESC" for k in spec.key)])
    ranked = (
        f"SELECT {ident(ACCOUNT_ID)}, CAST({value} AS DOUBLE) AS {ident(ind.name)}{note}, "
        f"ROW_NUMBER() OVER (PARTITION BY {ident(ACCOUNT_ID)} ORDER BY {order}) AS __rank "
        f"FROM {relation} WHERE ({seen}) AND ({match})"
    )
    keep = [ident(ACCOUNT_ID), ident(ind.name), *([ident(ind.note_name or "")] if ind.note_column else [])]
    return f"SELECT {', '.join(keep)} FROM ({ranked}) AS ranked WHERE __rank = 1"


def source_sql(
    spec: SourceSpec, indicators: list[Indicator], as_of: dt.date, lookback_days: int | None, relation: str = "events"
) -> str:
    """One row per account with a record of `spec` within its lookback, as `compiler.aggregate_source`."""
    end = as_of_end(as_of)
    seen = _seen(spec, end, lookback_days)
    plain = [i for i in indicators if i.aggregate != LATEST]
    latest = [i for i in indicators if i.aggregate == LATEST]
    columns = [
        ident(ACCOUNT_ID),
        f"TRUE AS {ident(presence_column(spec.name))}",
        *(f"{_indicator(i, spec, end, as_of)} AS {ident(i.name)}" for i in plain),
    ]
    query = f"SELECT {', '.join(columns)} FROM {relation} WHERE {seen} GROUP BY {ident(ACCOUNT_ID)}"
    if not latest:
        return query
    picked = [
        f"l{n}.{ident(name)}"
        for n, ind in enumerate(latest)
        for name in (ind.name, *([ind.note_name or ""] if ind.note_column else []))
    ]
    joined = f"SELECT base.*, {', '.join(picked)} FROM ({query}) AS base"
    for n, ind in enumerate(latest):
        joined += f" LEFT JOIN ({_latest(ind, spec, end, relation, seen)}) AS l{n} USING ({ident(ACCOUNT_ID)})"
    return joined


def transpile(sql: str, dialect: str) -> str:
    """The same query in another engine's dialect (sqlglot); DuckDB's own text is returned as it is.

    sqlglot writes DuckDB's exact quantile as `PERCENTILE_CONT(x, q)`, which Spark does not accept
    as an aggregate: for Spark it becomes `PERCENTILE(x, q)` (exact, linearly interpolated, like
    polars and DuckDB). BigQuery has no exact aggregate quantile at all (see docs/scale.md).
    """
    if dialect == DIALECT:
        return sql
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(sql, read=DIALECT)
    if dialect == "spark":

        def exact_percentile(node: exp.Expression) -> exp.Expression:
            if isinstance(node, exp.PercentileCont):
                return exp.Anonymous(this="PERCENTILE", expressions=[node.this, node.expression])
            return node

        tree = tree.transform(exact_percentile)
    return tree.sql(dialect=dialect)
