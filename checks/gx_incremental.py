"""Validate only what changed: which rows of a table Great Expectations must see this time.

A table is cut into buckets by the day of one column (a source's event time, the indicator
table's snapshot date), and each bucket gets a content fingerprint: the row count and two
order-free sums of 64-bit row hashes over every column the rules read. A rule that passed on a
bucket with the same fingerprint passed on exactly these rows, so only new or changed buckets
go to GX:

- a row rule (not null, in set, between, not in the future) looks at one row at a time, so it
  sees only the rows of the buckets it has not passed on. A not-in-the-future pass holds for
  any later bound, never for an earlier one, so the bound is kept per bucket;
- a uniqueness rule sees the new buckets' rows plus the unchanged rows that share a key with
  one of them: the unchanged buckets were unique together when the rule last passed, so any
  duplicate must involve a new row. Of those, GX gets only the rows whose key repeats among them
  (a streaming group-by of the key's 64-bit hash): a row whose key no other row has cannot break
  the rule, and a hash collision only adds a row for GX to look at, never hides one. A first
  validation of 43M usage events hands GX the few repeated ids instead of 43M keys.

Failures and GX errors are never remembered: a failing rule is validated again next time.
The record (one JSON file per table) is written only after a validation, atomically; a lost or
unreadable record only means validating everything again. Hashes are stable within one polars
version, and the polars and GX versions are part of each rule's key.
"""

import datetime as dt
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import cache
from importlib import metadata
from pathlib import Path

import polars as pl

from checks.gx_suites import NOT_FUTURE, UNIQUE, Expect
from cs_assets.sources.normalise import HASH, repeated_hashes

BUCKET = "__gx_bucket"
NO_DAY = "none"  # the bucket of rows whose day column is null
FORMAT = 1


@cache
def _versions() -> str:
    return f"polars {pl.__version__}; great_expectations {metadata.version('great_expectations')}"


def rule_key(rule: Expect, schema: Mapping[str, pl.DataType]) -> str:
    """What a remembered pass depends on: the rule itself, the types of the columns it reads, the engines."""
    types = {c: str(schema.get(c)) for c in rule.needed_columns}
    text = json.dumps([FORMAT, _versions(), asdict(rule), types], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def bucket_expr(day_column: str | None, schema: Mapping[str, pl.DataType]) -> pl.Expr:
    """The bucket of each row: the UTC day of `day_column` as text ("none" when null), or one bucket."""
    if day_column is None or day_column not in schema:
        return pl.lit("all")
    column = pl.col(day_column)
    if isinstance(schema[day_column], pl.Datetime):
        column = column.dt.date()
    return column.cast(pl.String).fill_null(NO_DAY)


def fingerprints(frame: pl.LazyFrame, columns: Sequence[str], bucket: pl.Expr) -> dict[str, tuple[str, int]]:
    """Per bucket, (content fingerprint, rows) of `columns`; equal fingerprints, equal multisets of rows."""
    rows = pl.struct(list(columns)) if columns else pl.lit(0)
    summary = (
        frame.group_by(bucket.alias(BUCKET))
        .agg(
            rows.hash(seed=1).sum().alias("h1"),
            rows.hash(seed=2).sum().alias("h2"),
            pl.len().alias("rows"),
        )
        .collect()
    )
    return {
        b: (f"{h1:016x}{h2:016x}{n:x}", int(n))
        for b, h1, h2, n in summary.select(BUCKET, "h1", "h2", "rows").iter_rows()
    }


@dataclass
class RulePlan:
    """What GX must validate for one rule, and what an earlier pass already covers."""

    rule: Expect
    key: str
    new_buckets: list[str]  # bucket names GX must see (a uniqueness rule: plus the rows sharing their keys)

    @property
    def reused(self) -> bool:
        return not self.new_buckets


@dataclass
class TableRecord:
    """One table's remembered passes: per rule key, fingerprint -> bound it passed at ("" if none)."""

    table: str
    passes: dict[str, dict[str, str]] = field(default_factory=dict)

    def passed(self, key: str, fingerprint: str, bound: dt.datetime | None) -> bool:
        at = self.passes.get(key, {}).get(fingerprint)
        if at is None:
            return False
        if bound is None or at == "":
            return True
        return dt.datetime.fromisoformat(at) <= bound


class ValidationRecord:
    """The remembered passes of every table, one JSON file each under `directory`."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)

    def _path(self, table: str) -> Path:
        return self.directory / f"{table}.json"

    def load(self, table: str) -> TableRecord:
        try:
            data = json.loads(self._path(table).read_text())
        except (OSError, ValueError):
            return TableRecord(table)  # nothing remembered (or unreadable): validate everything
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            return TableRecord(table)
        return TableRecord(table, {k: dict(v) for k, v in data.get("passes", {}).items()})

    def save(self, record: TableRecord) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self._path(record.table)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        try:
            tmp.write_text(json.dumps({"format": FORMAT, "passes": record.passes}, sort_keys=True))
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


def plan_rules(
    rules: Sequence[Expect],
    schema: Mapping[str, pl.DataType],
    buckets: Mapping[str, tuple[str, int]],
    record: TableRecord,
    bound: dt.datetime | None,
) -> list[RulePlan]:
    """For each rule, the buckets it has not passed on (with these very rows, at this bound or earlier)."""
    plans = []
    for rule in rules:
        key = rule_key(rule, schema)
        at = bound if rule.kind == NOT_FUTURE else None
        fresh = sorted(b for b, (fp, _) in buckets.items() if not record.passed(key, fp, at))
        # a uniqueness pass is remembered as the whole set it held on (the last one), so the
        # unchanged buckets were unique together
        plans.append(RulePlan(rule, key, fresh))
    return plans


def rows_to_validate(frame: pl.LazyFrame, plan: RulePlan, bucket: pl.Expr, all_buckets: int) -> pl.LazyFrame:
    """The rows GX must see for one rule's plan (see the module docstring)."""
    every = len(plan.new_buckets) == all_buckets
    if plan.rule.kind != UNIQUE:
        return frame if every else frame.filter(bucket.is_in(plan.new_buckets))
    keys = list(plan.rule.columns)
    if every:
        rows = frame
    else:
        is_new = bucket.is_in(plan.new_buckets)
        new_keys = frame.filter(is_new).select(keys).unique()
        old = frame.filter(~is_new).join(new_keys, on=keys, how="semi", nulls_equal=True)
        rows = pl.concat([frame.filter(is_new), old], how="vertical")
    return repeating_keys(rows, keys)


def repeating_keys(rows: pl.LazyFrame, keys: list[str]) -> pl.LazyFrame:
    """The rows whose key another row has too (and the rare row whose key's hash collides)."""
    hashed = rows.with_columns(pl.struct(keys).hash().alias(HASH))
    return hashed.join(repeated_hashes(rows, keys), on=HASH, how="semi").drop(HASH)


def remember(
    record: TableRecord,
    plans: Sequence[RulePlan],
    passed: Mapping[str, bool],
    buckets: Mapping[str, tuple[str, int]],
    bound: dt.datetime | None,
) -> None:
    """Keep each passing rule's buckets (only the table's current ones); a failed rule keeps what still holds."""
    current = {fp for fp, _ in buckets.values()}
    stamp = bound.isoformat() if bound is not None else ""
    for plan in plans:
        before = {fp: at for fp, at in record.passes.get(plan.key, {}).items() if fp in current}
        if not passed.get(plan.rule.name, False):
            if plan.rule.kind == UNIQUE:
                before = {}  # a failed uniqueness rule says nothing about any subset
            record.passes[plan.key] = before
            continue
        at = stamp if plan.rule.kind == NOT_FUTURE else ""
        for name in plan.new_buckets:
            before[buckets[name][0]] = at
        if plan.rule.kind == UNIQUE:
            before = {fp: "" for fp in current}  # validated as one set
        record.passes[plan.key] = before
    known = {plan.key for plan in plans}
    for key in [k for k in record.passes if k not in known]:
        del record.passes[key]  # a rule that changed or went away
