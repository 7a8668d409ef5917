"""Great Expectations 1.x glue: validate a polars frame against a suite of `Expect` rules and hand
back plain results.

`dagster-ge` only supports GX 0.x, so this is the small piece it would have been. GX is imported
inside the functions (it takes seconds to import, and must not load with the definitions). One
call builds an ephemeral GX context, a pandas data source with one dataframe asset per table,
validates each table's suite on whole-dataframe batches and turns every
`ExpectationValidationResult` into an `Outcome`, matched back to its rule by the rule name kept
in the expectation's `meta` (GX does not keep the suite's order). Given a record of earlier
passes (`checks.gx_incremental`), GX sees only the rows each rule has not passed on before.

Memory: only the columns the rules need are converted to pandas, and a long table is validated
in chunks of `CHUNK_ROWS` rows (uniqueness rules excepted: they need their key columns whole).
On the 2,000-account demo (844k usage events) the usage suite takes ~1.4 s and ~250 MB.
"""

import datetime as dt
import logging
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from checks.gx_incremental import (
    RulePlan,
    ValidationRecord,
    bucket_expr,
    fingerprints,
    plan_rules,
    remember,
    rows_to_validate,
)
from checks.gx_suites import BETWEEN, IN_SET, NOT_FUTURE, NOT_NULL, UNIQUE, Expect

SAMPLE_SIZE = 5
META_KEY = "cs_health_rule"
# row-by-row rules see a longer table in chunks of this many rows (memory stays bounded)
CHUNK_ROWS = 250_000


@dataclass(frozen=True)
class Outcome:
    """One rule's result on one table, without any GX object in it."""

    table: str
    name: str
    column: str
    success: bool
    rule: str  # what the rule asserts, in words
    rows: int  # rows the rule looked at this time (after `where`)
    observed_value: str | None = None
    unexpected_count: int = 0
    unexpected_percent: float = 0.0
    sample: list[str] = field(default_factory=list)  # distinct unexpected values, as text
    sample_rows: list[str] = field(default_factory=list)  # "value (row id)" of some unexpected rows
    error: str | None = None  # GX could not evaluate the rule (missing column, type mismatch, ...)
    rows_reused: int = 0  # rows not looked at again: unchanged since the rule last passed on them
    rows_key_of_their_own: int = 0  # uniqueness: new rows GX did not need, no other row has their key

    @property
    def description(self) -> str:
        """One sentence naming table, column, what failed and sample bad values."""
        where = f"{self.table}.{self.column}"
        if self.error:
            return f"{where}: could not be validated ({self.rule}): {self.error}"
        if self.success:
            parts = [f"{self.rows:,} row(s) validated now"] if self.rows_reused or self.rows_key_of_their_own else []
            if self.rows_reused:
                parts.append(f"{self.rows_reused:,} unchanged since they last passed")
            if self.rows_key_of_their_own:
                parts.append(f"{self.rows_key_of_their_own:,} with a key no other row has")
            return f"{where}: {self.rule}: ok ({', '.join(parts) if parts else f'{self.rows:,} row(s)'})"
        if self.unexpected_count:
            examples = self.sample_rows[:3] or self.sample
            sample = f", e.g. {'; '.join(examples)}" if examples else ""
            return (
                f"{where}: {self.unexpected_count:,} of {self.rows:,} row(s) ({self.unexpected_percent:.2f}%) "
                f"break the rule: {self.rule}{sample}"
            )
        observed = f" (observed {self.observed_value})" if self.observed_value is not None else ""
        return f"{where}: fails: {self.rule}{observed}"


@dataclass(frozen=True)
class TableValidation:
    table: str
    rows: int
    seconds: float
    outcomes: list[Outcome]


def _import_gx():
    """Import GX quietly: no analytics, and leave the process' warning handling as it was."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    capturing = logging._warnings_showwarning is not None
    # GX imports pyspark whenever it is installed (the Spark engine's dependency), only for Spark
    # datasources we never use: seconds of import, and pyspark.sql.connect calls sys.exit(0) in a
    # process whose __main__ has no file (pytest-xdist workers, `python -c`). Hide it from GX.
    # (all of pyspark if it is not loaded yet; else only the module that exits)
    hidden = next(([m] for m in ("pyspark", "pyspark.sql.connect") if m not in sys.modules), [])
    for name in hidden:
        sys.modules[name] = None  # an import of it raises ImportError, which GX expects
    try:
        import great_expectations as gx
    finally:
        for name in hidden:
            if sys.modules.get(name, False) is None:
                del sys.modules[name]

    if not capturing:
        logging.captureWarnings(False)  # GX turns it on at import: warnings would vanish into logging
    # GX fingerprints every pandas batch under 1 GB with pd.util.hash_pandas_object, only to label
    # the batch: on 850k usage events that costs ~220 MB and ~0.5 s for nothing we use. Off.
    from great_expectations.execution_engine import pandas_execution_engine

    if hasattr(pandas_execution_engine, "HASH_THRESHOLD"):
        pandas_execution_engine.HASH_THRESHOLD = 0
    logging.getLogger("great_expectations").setLevel(logging.WARNING)  # e.g. "Created temporary directory"
    return gx


def _rule_text(rule: Expect, latest_allowed: dt.datetime | None) -> str:
    if rule.kind == NOT_FUTURE and latest_allowed is not None:
        return f"{rule.column} is not after {latest_allowed.isoformat()}"
    return rule.description


def _to_gx(gx, rule: Expect, latest_allowed: dt.datetime | None):
    from great_expectations.expectations.row_conditions import Column

    common: dict[str, Any] = {"meta": {META_KEY: rule.name}}
    if rule.where is not None:
        common["row_condition"] = Column(rule.where[0]) == rule.where[1]
    e = gx.expectations
    if rule.kind == NOT_NULL:
        return e.ExpectColumnValuesToNotBeNull(column=rule.columns[0], **common)
    if rule.kind == UNIQUE and len(rule.columns) == 1:
        return e.ExpectColumnValuesToBeUnique(column=rule.columns[0], **common)
    if rule.kind == UNIQUE:
        return e.ExpectCompoundColumnsToBeUnique(column_list=list(rule.columns), **common)
    if rule.kind == IN_SET:
        return e.ExpectColumnValuesToBeInSet(column=rule.columns[0], value_set=list(rule.values), **common)
    if rule.kind == BETWEEN:
        return e.ExpectColumnValuesToBeBetween(
            column=rule.columns[0], min_value=rule.min_value, max_value=rule.max_value, **common
        )
    if rule.kind == NOT_FUTURE:
        if latest_allowed is None:
            raise ValueError(f"rule {rule.name}: a not_future rule needs the latest allowed time")
        return e.ExpectColumnValuesToBeBetween(column=rule.columns[0], max_value=latest_allowed, **common)
    raise ValueError(f"rule {rule.name}: unknown kind {rule.kind!r}")


def _is_null(value: Any) -> bool:
    if value is None or type(value).__name__ in ("NAType", "NaTType"):  # pd.NA, pd.NaT
        return True
    try:
        return bool(value != value)  # NaN
    except (TypeError, ValueError):
        return False


def _text(value: Any) -> str:
    """A value as a person reads it: strings quoted, dates as dates, nulls as null."""
    if isinstance(value, dict):  # a compound key's row
        return "(" + ", ".join(_text(v) for v in value.values()) + ")"
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(_text(v) for v in value) + ")"
    if _is_null(value):
        return "null"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, dt.datetime):  # pandas Timestamps too
        # a polars Date arrives as a naive midnight: the only naive values here
        if value.tzinfo is None and value.time() == dt.time():
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return str(value.item())
    return str(value)


def _row_text(row: dict, rule: Expect, ids: Sequence[str]) -> str:
    """One unexpected row: its checked value(s), then the row's id, e.g. `11 (response_id='R-1')`."""
    where = ", ".join(f"{c}={_text(row.get(c))}" for c in ids)
    values = [row.get(c) for c in rule.columns if c not in ids]
    if not values:
        return f"({where})"
    value = _text(values[0]) if len(values) == 1 else _text(tuple(values))
    return f"{value} ({where})" if where else value


def _exception(result) -> str | None:
    """GX's error for one expectation (it reports errors instead of raising them), if any."""
    info = result.exception_info or {}
    # one expectation: {"raised_exception": bool, "exception_message": ...}; some paths nest it per metric
    candidates = [info] if "raised_exception" in info else [v for v in info.values() if isinstance(v, dict)]
    for candidate in candidates:
        if candidate.get("raised_exception"):
            lines = (candidate.get("exception_message") or "unknown error").strip().splitlines()
            return lines[-1] if lines else "unknown error"
    return None


def _add_distinct(into: list[str], text: str) -> None:
    if text not in into and len(into) < SAMPLE_SIZE:
        into.append(text)


@dataclass
class _Tally:
    """One rule's GX results, summed over the chunks a large table is validated in."""

    element: int = 0
    missing: int = 0
    unexpected: int = 0
    success: bool = True
    observed: Any = None
    values: list[str] = field(default_factory=list)
    rows: list[str] = field(default_factory=list)
    error: str | None = None
    seen: bool = False

    def add(self, rule: Expect, result, ids: Sequence[str]) -> None:
        self.seen = True
        error = _exception(result)
        if error is not None:
            self.success, self.error = False, self.error or error
            return
        res = result.result or {}
        self.success = self.success and bool(result.success)
        self.element += int(res.get("element_count") or 0)
        self.missing += int(res.get("missing_count") or 0)  # not reported by not-null rules
        self.unexpected += int(res.get("unexpected_count") or 0)
        if res.get("observed_value") is not None:
            self.observed = res["observed_value"]
        if rule.kind != NOT_NULL:  # a null rule's bad value is always null: its rows say where
            for value in res.get("partial_unexpected_list") or []:
                _add_distinct(self.values, _text(value))
        for row in res.get("partial_unexpected_index_list") or []:
            if isinstance(row, dict):
                _add_distinct(self.rows, _row_text(row, rule, ids))

    def outcome(
        self, table: str, rule: Expect, latest_allowed: dt.datetime | None, rows_reused: int = 0, own_keys: int = 0
    ) -> Outcome:
        text = _rule_text(rule, latest_allowed)
        if not self.seen:
            return Outcome(table, rule.name, rule.column, False, text, 0, error="GX returned no result for this rule")
        checked = self.element - self.missing  # GX's percentages are of the non-null values
        return Outcome(
            table=table,
            name=rule.name,
            column=rule.column,
            success=self.success,
            rule=text,
            rows=checked,
            observed_value=None if self.observed is None else _text(self.observed),
            unexpected_count=self.unexpected,
            unexpected_percent=round(100.0 * self.unexpected / checked, 4) if checked else 0.0,
            sample=self.values,
            sample_rows=self.rows,
            error=self.error,
            rows_reused=rows_reused,
            rows_key_of_their_own=own_keys,
        )


def _columns(rules: Sequence[Expect], ids: Sequence[str], schema: Mapping[str, Any]) -> list[str]:
    wanted = dict.fromkeys([*ids, *(c for r in rules for c in r.needed_columns)])
    return [c for c in wanted if c in schema]  # a missing column comes back as a GX error per rule


def _pandas_chunks(frame: pl.DataFrame | pl.LazyFrame, columns: list[str], rows: int, chunk_rows: int | None):
    """The frame's `columns` as pandas frames of at most `chunk_rows` rows (None: all at once)."""
    step = chunk_rows or max(rows, 1)
    for offset in range(0, max(rows, 1), step):
        part = frame.select(columns)
        if chunk_rows is not None and rows > chunk_rows:
            part = part.slice(offset, step)
        if isinstance(part, pl.LazyFrame):
            part = part.collect()
        yield part.to_pandas()


def _gx_context(gx):
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context.data_sources.add_pandas("cs_health")


@dataclass
class _Group:
    """Rules GX validates together on the same rows."""

    rules: list[Expect]
    frame: pl.LazyFrame
    chunk_rows: int | None
    unique_plan: RulePlan | None = None  # a uniqueness group's plan (one key, its new buckets)


def _groups(
    frame: pl.LazyFrame, plans: Sequence[RulePlan], bucket: pl.Expr, buckets: int, chunk_rows: int | None
) -> list[_Group]:
    """Row rules with the same new buckets share a (chunked) pass; each uniqueness key its own, whole."""
    grouped: dict[tuple, _Group] = {}
    for plan in plans:
        if plan.reused:
            continue
        unique = plan.rule.kind == UNIQUE
        key = (unique, plan.rule.columns if unique else (), tuple(plan.new_buckets))
        if key not in grouped:
            rows = rows_to_validate(frame, plan, bucket, buckets)
            grouped[key] = _Group([], rows, None if unique else chunk_rows, plan if unique else None)
        grouped[key].rules.append(plan.rule)
    return list(grouped.values())


def _not_seen(
    plan: RulePlan, rows: int, seen: Mapping[str, int], seen_old: Mapping[str, int], buckets: Mapping[str, tuple]
) -> tuple[int, int]:
    """(rows unchanged since the rule last passed, new rows with a key no other row has) of the
    rows GX did not see for this rule."""
    not_seen = rows - seen.get(plan.rule.name, 0)
    if plan.rule.kind != UNIQUE:
        return not_seen, 0
    new_rows = sum(buckets[name][1] for name in plan.new_buckets)
    reused = (rows - new_rows) - seen_old.get(plan.rule.name, 0)
    return reused, not_seen - reused


def validate_tables(
    tables: Mapping[str, tuple[pl.DataFrame | pl.LazyFrame, Sequence[Expect]]],
    latest_allowed: dt.datetime | None = None,
    row_ids: Mapping[str, Sequence[str]] | None = None,
    chunk_rows: int | None = CHUNK_ROWS,
    record: ValidationRecord | None = None,
    day_columns: Mapping[str, str] | None = None,
) -> dict[str, TableValidation]:
    """Validate each table's frame against its rules in one ephemeral GX context.

    `latest_allowed` (tz-aware) is the bound of the `not_future` rules; `row_ids` names, per
    table, the columns that identify a row (shown beside sample bad values). Returns, per table,
    one `Outcome` per rule in the order of the rules.

    With a `record` (`checks.gx_incremental`), GX sees only the rows each rule has not passed on
    before, cut into buckets by the day of the table's `day_columns` entry; rules with nothing
    new are reported from the record, and GX is not even imported when no rule has anything new.

    Memory: only the columns the rules and row ids need are converted to pandas. Row-by-row
    rules (nulls, categories, ranges, timestamps) see a table of more than `chunk_rows` rows in
    chunks and their counts are added up; uniqueness rules see their key columns whole.
    """
    if latest_allowed is not None and latest_allowed.tzinfo is None:
        raise ValueError("latest_allowed must be timezone-aware (the sources' timestamps are UTC)")
    gx: Any = None  # imported only when some rule has rows to validate
    source: Any = None
    validated: dict[str, TableValidation] = {}
    for table, (given, rules) in tables.items():
        started = time.perf_counter()
        frame = given.lazy()
        schema = frame.collect_schema()
        rows = frame.select(pl.len()).collect().item()
        ids = [c for c in (row_ids or {}).get(table, ()) if c in schema]
        remembered = record.load(table) if record is not None and rows else None
        if remembered is not None:
            bucket = bucket_expr((day_columns or {}).get(table), schema)
            buckets = fingerprints(frame, _columns(rules, [], schema), bucket)
            plans = plan_rules(rules, schema, buckets, remembered, latest_allowed)
        else:  # nothing remembered, or an empty table: GX sees it whole, as it is
            bucket, buckets = pl.lit("all"), {"all": ("", rows)}
            plans = [RulePlan(rule, "", ["all"]) for rule in rules]

        result_format: dict[str, Any] = {"result_format": "SUMMARY", "partial_unexpected_count": 20}
        if ids:
            result_format["unexpected_index_column_names"] = ids
        by_name = {rule.name: rule for rule in rules}
        tallies = {rule.name: _Tally() for rule in rules}
        seen: dict[str, int] = {}  # rows GX saw, per rule
        seen_old: dict[str, int] = {}  # of them, rows of unchanged buckets (uniqueness rules)
        groups = _groups(frame, plans, bucket, len(buckets), chunk_rows)
        if groups and source is None:
            gx = _import_gx()
            source = _gx_context(gx)
        for number, group in enumerate(groups):
            subset_rows = group.frame.select(pl.len()).collect().item()
            name = f"{table}_{number}"
            batches = source.add_dataframe_asset(name=name).add_batch_definition_whole_dataframe(name)
            suite = gx.ExpectationSuite(name=f"{name}_validity")
            old_rows = 0
            if group.unique_plan is not None and len(group.unique_plan.new_buckets) < len(buckets):
                # of the repeated keys GX sees, how many rows are from unchanged buckets
                old = group.frame.filter(~bucket.is_in(group.unique_plan.new_buckets))
                old_rows = old.select(pl.len()).collect().item()
            for rule in group.rules:
                suite.add_expectation(_to_gx(gx, rule, latest_allowed))
                seen[rule.name], seen_old[rule.name] = subset_rows, old_rows
            for df in _pandas_chunks(group.frame, _columns(group.rules, ids, schema), subset_rows, group.chunk_rows):
                result = batches.get_batch(batch_parameters={"dataframe": df}).validate(
                    suite, result_format=result_format
                )
                for found in result.results:  # GX's order is not the suite's: match by the rule name in meta
                    rule_name = found.expectation_config.meta.get(META_KEY)
                    if rule_name in tallies:
                        tallies[rule_name].add(by_name[rule_name], found, ids)

        for plan in plans:
            if plan.reused:  # passed before on every row it reads: its result is the record's
                tallies[plan.rule.name].seen = True
        outcomes = [
            tallies[p.rule.name].outcome(table, p.rule, latest_allowed, *_not_seen(p, rows, seen, seen_old, buckets))
            for p in plans
        ]
        if record is not None and remembered is not None:
            remember(remembered, plans, {o.name: o.success for o in outcomes}, buckets, latest_allowed)
            record.save(remembered)
        validated[table] = TableValidation(table, rows, round(time.perf_counter() - started, 3), outcomes)
    return validated


def validate_frame(
    table: str,
    frame: pl.DataFrame | pl.LazyFrame,
    rules: Sequence[Expect],
    latest_allowed: dt.datetime | None = None,
    row_ids: Sequence[str] = (),
) -> list[Outcome]:
    """One table's outcomes (see `validate_tables`)."""
    return validate_tables({table: (frame, rules)}, latest_allowed, {table: row_ids})[table].outcomes
