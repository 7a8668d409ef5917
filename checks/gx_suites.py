"""The validity rules (Great Expectations suites) as plain data: one suite per source and one for
the indicator table.

Nothing here imports Great Expectations: `checks/gx_validation.py` turns each `Expect` into a
GX expectation when a check step runs, and `checks/gx_checks.py` makes each one its own Dagster
asset check, named `gx_<name>`. Names are stable (they are the check names people see in the UI
and in failure messages): add rules, but do not rename them.

Kinds of rule:

- `not_null`        the column has no null value
- `unique`          no two rows share the value(s) of `columns` (one column, or a compound key)
- `in_set`          every non-null value is one of `values`
- `between`         every non-null value is within [min_value, max_value] (None: open end);
                    `where` restricts the rule to rows whose column equals a value
- `not_future`      every non-null timestamp is at most the latest allowed time of the run: the
                    later of the end of the run's as-of day and the time of the check (so a past
                    snapshot re-scored from today's export still passes; a typo like 2062 does not)

Every rule comes from the deployment's config, nothing from code: keys, timestamps, required
columns, vocabularies (`values`), ranges and natural keys from `sources.yaml`; the indicator
table's rules from the catalogue (`indicators.yaml`: counts are never negative, shares within
0..1, relative changes at least -1, or an indicator's `valid_range`).
"""

from dataclasses import dataclass

from cs_assets.deployment import Deployment
from cs_assets.indicators.catalogue import MAX, MEAN, MEDIAN, MIN, QUANTILE, VALUE, required
from cs_assets.indicators.compute import account_columns
from cs_assets.sources.contract import UTC_TS, SourceSpec

NOT_NULL = "not_null"
UNIQUE = "unique"
IN_SET = "in_set"
BETWEEN = "between"
NOT_FUTURE = "not_future"
KINDS = (NOT_NULL, UNIQUE, IN_SET, BETWEEN, NOT_FUTURE)

INDICATORS = "account_indicators"


@dataclass(frozen=True)
class Expect:
    """One validity rule on one table; `name` is unique within its table."""

    name: str
    kind: str
    columns: tuple[str, ...]
    description: str
    values: tuple[str, ...] = ()
    min_value: float | None = None
    max_value: float | None = None
    where: tuple[str, str] | None = None  # (column, value): only rows where column == value

    @property
    def column(self) -> str:
        """The column the rule is about (the compound key joined with '+')."""
        return "+".join(self.columns)

    @property
    def needed_columns(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys([*self.columns, *([self.where[0]] if self.where else [])]))


def not_null(column: str) -> Expect:
    return Expect(f"{column}_not_null", NOT_NULL, (column,), f"{column} is never null")


def unique(*columns: str, name: str | None = None, why: str = "") -> Expect:
    joined = ", ".join(columns)
    text = f"{joined} is unique" if len(columns) == 1 else f"no two rows share ({joined})"
    return Expect(name or f"{'_'.join(columns)}_unique", UNIQUE, tuple(columns), text + (f" ({why})" if why else ""))


def in_set(column: str, values: tuple[str, ...]) -> Expect:
    return Expect(f"{column}_allowed", IN_SET, (column,), f"{column} is one of {', '.join(values)}", values=values)


def _bounds_text(low: float | None, high: float | None) -> str:
    fmt = lambda v: f"{v:g}"  # noqa: E731
    if low is not None and high is not None:
        return f"between {fmt(low)} and {fmt(high)}"
    return f">= {fmt(low)}" if low is not None else f"<= {fmt(high)}"


def between(
    column: str, low: float | None, high: float | None, name: str | None = None, where: tuple[str, str] | None = None
) -> Expect:
    scope = f" where {where[0]} = {where[1]!r}" if where else ""
    return Expect(
        name or f"{column}_in_range",
        BETWEEN,
        (column,),
        f"{column} is {_bounds_text(low, high)}{scope}",
        min_value=low,
        max_value=high,
        where=where,
    )


def non_negative(column: str) -> Expect:
    return between(column, 0, None, name=f"{column}_non_negative")


def share(column: str) -> Expect:
    return between(column, 0, 1, name=f"{column}_share")


def not_future(column: str) -> Expect:
    return Expect(
        f"{column}_not_future",
        NOT_FUTURE,
        (column,),
        f"{column} is not after the end of the as-of day (or now, whichever is later)",
    )


# --- sources ---------------------------------------------------------------------------------


def _range(column: str, low: float | None, high: float | None) -> Expect:
    if low == 0 and high is None:
        return non_negative(column)
    return between(column, low, high)


def source_suite(spec: SourceSpec) -> tuple[Expect, ...]:
    """Not-null keys and required columns, unique key (and natural key), vocabularies, ranges,
    no future timestamps: all read from the source's declaration."""
    required = dict.fromkeys([*spec.key, "account_id", spec.timestamp_column, *spec.required])
    rules = [not_null(c) for c in required]
    if spec.is_accounts:
        # the accounts source keeps every version of an account: one row per account and update
        rules.append(
            unique(
                *spec.key, spec.timestamp_column, name="account_version_unique", why="one row per account and version"
            )
        )
    else:
        rules.append(unique(*spec.key, name="key_unique" if len(spec.key) > 1 else None, why="the source key"))
    if spec.natural_key:
        rules.append(unique(*spec.natural_key, name="natural_key_unique", why="the same record under two ids"))
    rules += [in_set(column, values) for column, values in spec.vocabulary.items()]
    rules += [_range(column, low, high) for column, (low, high) in spec.bounds.items()]
    for rule in spec.range_rules:
        ((column, value),) = rule.where.items()
        rules.append(between(rule.column, rule.min, rule.max, name=rule.name, where=(column, value)))
    rules += [not_future(c) for c, dtype in spec.columns.items() if dtype == UTC_TS]
    return tuple(rules)


# --- the indicator table ----------------------------------------------------------------------


def indicator_suite(deployment: Deployment) -> tuple[Expect, ...]:
    accounts = deployment.contract.accounts
    rules: list[Expect] = [
        not_null("snapshot_date"),
        not_null("account_id"),
        not_null("is_active"),
        unique("snapshot_date", "account_id", name="snapshot_account_unique", why="one row per account and snapshot"),
    ]
    carried = account_columns(deployment.contract)
    rules += [in_set(c, v) for c, v in accounts.vocabulary.items() if c in carried]
    rules += [_range(c, low, high) for c, (low, high) in accounts.bounds.items() if c in carried]
    rules.append(non_negative("tenure_days"))
    for ind in deployment.catalogue.indicators.values():
        bounds = ind.default_range()
        if (
            bounds is None
            and ind.aggregate in (MEAN, MEDIAN, MIN, MAX, QUANTILE, VALUE)
            and ind.per is None
            and not ind.compare
        ):
            # a mean, median or quantile of a column stays within the column's declared range
            source, column = required(ind, "source", ind.source), required(ind, "column", ind.column)
            bounds = deployment.contract[source].bounds.get(column)
        if bounds is None or bounds == (None, None):
            continue
        low, high = bounds
        if (low, high) == (0.0, 1.0):
            rules.append(share(ind.name))
        else:
            rules.append(_range(ind.name, low, high))
    return tuple(rules)


def build_suites(deployment: Deployment) -> dict[str, tuple[Expect, ...]]:
    suites = {name: source_suite(spec) for name, spec in deployment.contract.sources.items()}
    suites[INDICATORS] = indicator_suite(deployment)
    _check_suites(deployment, suites)
    return suites


def row_ids(deployment: Deployment) -> dict[str, tuple[str, ...]]:
    """The columns that say which row a bad value is in (shown beside it in the check's description)."""
    return {
        **{name: spec.key for name, spec in deployment.contract.sources.items()},
        INDICATORS: ("snapshot_date", "account_id"),
    }


def _check_suites(deployment: Deployment, suites: dict[str, tuple[Expect, ...]]) -> None:
    """Fail when a rule names a column its table does not have, or a name repeats."""
    from cs_assets.indicators.compute import empty_indicator_schema

    indicator_columns = set(empty_indicator_schema(deployment.contract, deployment.catalogue))
    for table, rules in suites.items():
        spec = deployment.contract.sources.get(table)
        known = set(spec.columns) if spec is not None else indicator_columns
        names = [r.name for r in rules]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"gx suite {table}: rule name(s) used twice: {', '.join(repeated)}")
        for rule in rules:
            if rule.kind not in KINDS:
                raise ValueError(f"gx suite {table}: rule {rule.name}: unknown kind {rule.kind!r}")
            unknown = [c for c in rule.needed_columns if c not in known]
            if unknown:
                raise ValueError(f"gx suite {table}: rule {rule.name}: unknown column(s) {', '.join(unknown)}")
