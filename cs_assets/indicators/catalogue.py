"""The indicator catalogue (`indicators.yaml`): every per-account indicator, defined as data.

An indicator names a source, an optional filter on that source's columns, an aggregation and a
window, and what "no data" means for it. `compiler.py` turns all the indicators of one source
into one lazy query per snapshot. Nothing here knows any product: event names, features and
ticket categories are values in the config, checked against the vocabulary the source declares.

Aggregations (over the source's records in the window that match `where`):
- `count`, `distinct_count` (of `column`), `sum` / `mean` / `median` / `min` / `max` (of `column`),
  `quantile` (of `column`, at `q`);
- `days_since_newest` / `days_since_oldest`: whole days from the UTC date of the newest (oldest)
  matching record to the snapshot day;
- `active_days`: distinct UTC days with a matching record;
- `share`: records matching `where` and `of`, over records matching `of`;
- `coverage`: distinct `values` of `column` seen, over the number of `values`;
- `ratio`: `numerator` / `denominator`, two other indicators;
- `value`: a column of the accounts source (the CRM), as it is.
Modifiers: `per: <accounts column>` divides by the account's value of that column (e.g. per
licensed seat); `compare: previous_window` turns the value into its change against the window of
the same length just before (`change: relative` = current / previous - 1, or `difference`).

"No data": a value is null when it cannot be measured: the account has no record of the source
within the source's `lookback_days`, a mean of no values, a ratio with a zero denominator, a
`days_since` with no matching record. `no_data` says what that null means for the indicator:
`null` (unknown: the health model's missing-data policy scores it), `zero` (absence is a real
zero, e.g. no tickets), or `{value: V}` (e.g. 365 days since the last login: it stopped).
"""

import re
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from pydantic import Field, field_validator, model_validator

from cs_assets.config_file import ConfigFileError, ConfigModel, ConfigProblem
from cs_assets.sources.contract import UTC_TS, Contract, SourceSpec

T = TypeVar("T")

NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
COUNT, DISTINCT, SUM, MEAN, MEDIAN, MIN, MAX, QUANTILE = (
    "count",
    "distinct_count",
    "sum",
    "mean",
    "median",
    "min",
    "max",
    "quantile",
)
NEWEST, OLDEST, ACTIVE_DAYS, SHARE, COVERAGE, RATIO, VALUE, LATEST = (
    "days_since_newest",
    "days_since_oldest",
    "active_days",
    "share",
    "coverage",
    "ratio",
    "value",
    "latest",
)
AGGREGATES = (
    COUNT,
    DISTINCT,
    SUM,
    MEAN,
    MEDIAN,
    MIN,
    MAX,
    QUANTILE,
    NEWEST,
    OLDEST,
    ACTIVE_DAYS,
    SHARE,
    COVERAGE,
    RATIO,
    VALUE,
    LATEST,
)
NEEDS_COLUMN = (DISTINCT, SUM, MEAN, MEDIAN, MIN, MAX, QUANTILE, COVERAGE, VALUE, LATEST)
NUMERIC_COLUMN = (SUM, MEAN, MEDIAN, MIN, MAX, QUANTILE)
RECENCY = (NEWEST, OLDEST)
COUNTS = (COUNT, DISTINCT, ACTIVE_DAYS)  # whole numbers
WINDOWED = (COUNT, DISTINCT, SUM, MEAN, MEDIAN, MIN, MAX, QUANTILE, ACTIVE_DAYS, SHARE, COVERAGE, LATEST)
FILTER_OPS = ("eq", "in", "not", "in_account_list", "is_null", "gt", "gte", "lt", "lte")
# fields every account has, from the accounts source's contract columns (never configured)
CONTEXT_FIELDS = {
    "tenure_days": "days since the contract started",
    "days_to_renewal": "days until the renewal date of the term running on the snapshot day",
}


class IndicatorConfigError(ConfigFileError):
    """indicators.yaml is invalid; the message names the file, the key path and the problem."""


Scalar = str | int | float | bool


class SourceOptions(ConfigModel):
    # an account with no record of the source in this many days has no data for its indicators
    lookback_days: int | None = Field(default=None, ge=1)


class NoDataValue(ConfigModel):
    value: float | int


class IndicatorDecl(ConfigModel):
    description: str = ""
    source: str | None = None
    aggregate: Literal[
        "count",
        "distinct_count",
        "sum",
        "mean",
        "median",
        "min",
        "max",
        "quantile",
        "days_since_newest",
        "days_since_oldest",
        "active_days",
        "share",
        "coverage",
        "ratio",
        "value",
        "latest",
    ]
    column: str | None = None
    where: dict[str, Any] = {}
    of: dict[str, Any] | None = None
    values: list[str] | None = None
    q: float | None = Field(default=None, gt=0, lt=1)
    window_days: int | None = Field(default=None, ge=1)
    time_column: str | None = None
    compare: Literal["previous_window"] | None = None
    change: Literal["relative", "difference"] = "relative"
    # compare, relative: the value when both windows are empty (e.g. -1: activity stopped)
    both_empty: float | int | None = None
    per: str | None = None
    numerator: str | None = None
    denominator: str | None = None
    no_data: Literal["null", "zero"] | NoDataValue = "null"
    # latest: the value of the newest record in the window (`window_days`: when it expires);
    # `map` turns a text column's values into numbers (e.g. {red: 0, yellow: 50, green: 100})
    map: dict[str, float] | None = None
    # latest: a text column of the same record kept beside the value (a note's reason), never scored
    note_column: str | None = None
    # a person's judgement (e.g. a CSM's sentiment), not a measurement: explain shows it apart
    judgement: bool = False
    # the range of valid values, checked on the indicator table (default: from the aggregation)
    valid_range: list[float | int | None] | None = Field(default=None, min_length=2, max_length=2)

    @field_validator("no_data", mode="before")
    @classmethod
    def _null_word(cls, value: Any) -> Any:
        return "null" if value is None else value

    @model_validator(mode="after")
    def _shape(self) -> "IndicatorDecl":
        a = self.aggregate
        if a == RATIO:
            for k in ("numerator", "denominator"):
                if getattr(self, k) is None:
                    raise ConfigProblem("", "a ratio needs `numerator` and `denominator` (indicator names)")
            for k in ("source", "column", "window_days", "compare", "time_column"):
                if getattr(self, k) not in (None, {}):
                    raise ConfigProblem(k, "not used by a ratio (it combines two other indicators)")
            if self.where:
                raise ConfigProblem("where", "not used by a ratio (it combines two other indicators)")
            return self
        if self.source is None:
            raise ConfigProblem("", "missing required key(s): source")
        if a in NEEDS_COLUMN and self.column is None:
            raise ConfigProblem("", f"`{a}` needs `column`")
        if a not in NEEDS_COLUMN and self.column is not None:
            raise ConfigProblem("column", f"not used by `{a}`")
        if (a == QUANTILE) != (self.q is not None):
            raise ConfigProblem("q", "`quantile` needs `q` (0 < q < 1); other aggregations do not use it")
        if (a == COVERAGE) != (self.values is not None):
            raise ConfigProblem(
                "values", "`coverage` needs `values` (the list to cover); other aggregations do not use it"
            )
        if self.values is not None and (not self.values or len(set(self.values)) != len(self.values)):
            raise ConfigProblem("values", "must be a non-empty list of distinct values")
        if (a == SHARE) != (self.of is not None):
            raise ConfigProblem(
                "of", "`share` needs `of` (the records it is a share of, `{}` for all); others do not use it"
            )
        if a in WINDOWED and self.window_days is None:
            raise ConfigProblem("", f"`{a}` needs `window_days`")
        if a != LATEST:
            for k in ("map", "note_column"):
                if getattr(self, k) is not None:
                    raise ConfigProblem(k, f"only `latest` uses `{k}`")
        if a == LATEST and self.compare is not None:
            raise ConfigProblem("compare", "`latest` is one record's value: it cannot be compared with a window")
        if a == VALUE:
            for k in ("window_days", "compare", "time_column", "per"):
                if getattr(self, k) is not None:
                    raise ConfigProblem(k, "not used by `value` (a column of the accounts source as it is)")
            if self.where:
                raise ConfigProblem("where", "not used by `value`")
        if self.compare is not None and a not in WINDOWED:
            raise ConfigProblem("compare", f"only windowed aggregations can be compared, not `{a}`")
        if self.both_empty is not None and (self.compare is None or self.change != "relative"):
            raise ConfigProblem("both_empty", "only for `compare: previous_window` with `change: relative`")
        if self.numerator is not None or self.denominator is not None:
            raise ConfigProblem("numerator", "only a ratio has a numerator and denominator")
        return self


class CatalogueFile(ConfigModel):
    version: Literal[1]
    sources: dict[str, SourceOptions] = {}
    indicators: dict[str, IndicatorDecl] = Field(min_length=1)

    @model_validator(mode="after")
    def _names(self) -> "CatalogueFile":
        for name, decl in self.indicators.items():
            if not NAME.match(name):
                raise ConfigProblem(
                    f"indicators.{name}", "indicator names are lowercase letters, digits and _ (at most 63)"
                )
            if name in CONTEXT_FIELDS:
                raise ConfigProblem(f"indicators.{name}", f"{name} is a built-in field ({CONTEXT_FIELDS[name]})")
            if decl.aggregate == RATIO:
                for k in ("numerator", "denominator"):
                    other = getattr(decl, k)
                    if other not in self.indicators:
                        raise ConfigProblem(f"indicators.{name}.{k}", f"{other!r} is not an indicator of this file")
                    if self.indicators[other].aggregate == RATIO:
                        raise ConfigProblem(f"indicators.{name}.{k}", "a ratio of ratios is not supported")
        return self


# --------------------------------------------------------------------------- runtime objects


@dataclass(frozen=True)
class Filter:
    column: str
    op: str  # one of FILTER_OPS
    value: Any  # scalar, tuple of scalars, bool (is_null), or an accounts column (in_account_list)

    def describe(self) -> str:
        if self.op == "eq":
            return f"{self.column} = {self.value}"
        if self.op == "in":
            return f"{self.column} in {'/'.join(map(str, self.value))}"
        if self.op == "not":
            return f"{self.column} not in {'/'.join(map(str, self.value))}"
        if self.op == "in_account_list":
            return f"{self.column} in the account's {self.value}"
        if self.op == "is_null":
            return f"{self.column} is {'' if self.value else 'not '}null"
        return f"{self.column} {dict(gt='>', gte='>=', lt='<', lte='<=')[self.op]} {self.value}"


@dataclass(frozen=True)
class Indicator:
    name: str
    description: str
    aggregate: str
    source: str | None  # None for a ratio
    column: str | None
    where: tuple[Filter, ...]
    of: tuple[Filter, ...] | None
    values: tuple[str, ...] | None
    q: float | None
    window_days: int | None
    time_column: str | None  # None: the source's timestamp
    compare: bool
    change: str
    both_empty: float | None
    per: str | None
    numerator: str | None
    denominator: str | None
    no_data: str | float  # "null" | "zero" | a value
    valid_range: tuple[float | None, float | None] | None
    value_map: tuple[tuple[str, float], ...] | None = None  # latest: text value -> number
    note_column: str | None = None  # latest: the record's text kept beside the value
    judgement: bool = False  # a person's judgement, shown apart from the measured indicators

    @property
    def note_name(self) -> str | None:
        """The indicator table's text column holding the note (`<indicator>_note`), if any."""
        return f"{self.name}_note" if self.note_column is not None else None

    @property
    def is_whole_number(self) -> bool:
        if self.per or self.compare:
            return False
        return self.aggregate in COUNTS or self.aggregate in RECENCY

    def default_range(self) -> tuple[float | None, float | None] | None:
        """What the aggregation guarantees: counts >= 0, shares in 0..1, relative change >= -1."""
        if self.valid_range is not None:
            return self.valid_range
        if self.compare:
            return (-1.0, None) if self.change == "relative" else None
        if self.aggregate in (SHARE, COVERAGE):
            return (0.0, 1.0)
        if self.aggregate in (*COUNTS, *RECENCY):
            return (0.0, None)
        return None


def required(indicator: Indicator, key: str, value: T | None) -> T:
    """`value`, a key that `IndicatorDecl` requires for the indicator's aggregation: None here is a
    bug in that validation, not a mistake in the catalogue file."""
    if value is None:
        raise ValueError(f"indicator {indicator.name}: `{indicator.aggregate}` without `{key}`")
    return value


@dataclass(frozen=True)
class Catalogue:
    """The indicators a deployment can compute (its sources are declared) and the ones it cannot."""

    origin: str
    indicators: dict[str, Indicator]  # available: computed for every snapshot
    unavailable: dict[str, str]  # name -> why (its source is not declared)
    lookback_days: dict[str, int | None]  # event source -> lookback

    def for_source(self, source: str) -> list[Indicator]:
        return [i for i in self.indicators.values() if i.source == source and i.aggregate != VALUE]

    @property
    def names(self) -> list[str]:
        return list(self.indicators)

    def describe(self, name: str) -> str:
        if name in self.indicators:
            return self.indicators[name].description
        return CONTEXT_FIELDS.get(name, "")


def _filters(raw: dict[str, Any], spec: SourceSpec, accounts: SourceSpec, key: str) -> tuple[Filter, ...]:
    out = []
    for column, cond in raw.items():
        where = f"{key}.{column}"
        dtype = spec.column_type(column)
        if dtype is None:
            known = ", ".join([*spec.columns, *spec.derived])
            raise ConfigProblem(where, f"{spec.name} has no column {column!r} (columns: {known})")
        if isinstance(cond, dict):
            if len(cond) != 1:
                raise ConfigProblem(
                    where, f"a condition has one operator ({', '.join(FILTER_OPS)}), got {sorted(cond)}"
                )
            ((op, value),) = cond.items()
            if op not in FILTER_OPS or op == "eq":
                raise ConfigProblem(
                    where,
                    f"unknown operator {op!r} (allowed: {', '.join(o for o in FILTER_OPS if o != 'eq')}, or a plain value / list)",
                )
        elif isinstance(cond, list):
            op, value = "in", cond
        else:
            op, value = "eq", cond
        if op in ("in", "not"):
            value = tuple(value) if isinstance(value, list) else (value,)
            if not value:
                raise ConfigProblem(where, "needs at least one value")
        if op == "in_account_list":
            separators = accounts.list_separators
            if value not in separators:
                raise ConfigProblem(
                    where,
                    f"`in_account_list` names a list column of {accounts.name} "
                    f"(declared with list_separator): {', '.join(separators) or 'none declared'}; got {value!r}",
                )
            out.append(Filter(column, op, value))
            continue
        if op == "is_null":
            if not isinstance(value, bool):
                raise ConfigProblem(where, f"is_null takes true or false, got {value!r}")
            out.append(Filter(column, op, value))
            continue
        numeric = dtype.is_numeric()
        scalars = value if isinstance(value, tuple) else (value,)
        for v in scalars:
            if isinstance(v, bool) or not isinstance(v, (str, int, float)):
                raise ConfigProblem(where, f"must compare with a text or number, got {v!r}")
            if op in ("gt", "gte", "lt", "lte") and not numeric:
                raise ConfigProblem(where, f"{op} needs a numeric column, {column} is {dtype}")
            if numeric and not isinstance(v, (int, float)):
                raise ConfigProblem(where, f"{column} is numeric; got the text {v!r}")
            if not numeric and not isinstance(v, str):
                raise ConfigProblem(where, f"{column} is text; write the value as text, got {v!r}")
        vocabulary = spec.vocabulary.get(column)
        if vocabulary is not None and op in ("eq", "in", "not"):
            unknown = [v for v in scalars if v not in vocabulary]
            if unknown:
                # a typo here would make the indicator silently zero: refuse it
                raise ConfigProblem(
                    where,
                    f"{', '.join(map(repr, unknown))} not in the vocabulary of "
                    f"{spec.name}.{column} ({', '.join(vocabulary)})",
                )
        out.append(Filter(column, op, value))
    return tuple(out)


def _indicator(name: str, decl: IndicatorDecl, contract: Contract) -> Indicator:
    key = f"indicators.{name}"
    accounts = contract.accounts
    spec = contract[decl.source] if decl.source else None
    column_type = None
    if spec is not None:
        if decl.aggregate == VALUE and not spec.is_accounts:
            raise ConfigProblem(f"{key}.source", f"`value` reads a column of the accounts source ({accounts.name})")
        if decl.aggregate != VALUE and spec.is_accounts:
            raise ConfigProblem(
                f"{key}.source",
                f"aggregations run over an event source; the accounts source "
                f"{accounts.name} gives columns with `aggregate: value`",
            )
        if decl.column is not None:
            column_type = spec.column_type(decl.column)
            if column_type is None:
                raise ConfigProblem(f"{key}.column", f"{spec.name} has no column {decl.column!r}")
            if decl.aggregate == LATEST and not column_type.is_numeric():
                if decl.map is None:
                    raise ConfigProblem(
                        f"{key}.map",
                        f"{decl.column} is {column_type}: `latest` of a text column needs `map` to numbers",
                    )
                vocabulary = spec.vocabulary.get(decl.column)
                if vocabulary is not None:
                    unmapped = [v for v in vocabulary if v not in decl.map]
                    unknown = [v for v in decl.map if v not in vocabulary]
                    if unmapped or unknown:
                        raise ConfigProblem(
                            f"{key}.map",
                            f"must map exactly the vocabulary of {spec.name}.{decl.column} ({', '.join(vocabulary)})"
                            + (f"; missing {', '.join(unmapped)}" if unmapped else "")
                            + (f"; not in it: {', '.join(unknown)}" if unknown else ""),
                        )
            if decl.note_column is not None and spec.column_type(decl.note_column) is None:
                raise ConfigProblem(f"{key}.note_column", f"{spec.name} has no column {decl.note_column!r}")
            if (decl.aggregate in NUMERIC_COLUMN or decl.aggregate == VALUE) and not column_type.is_numeric():
                raise ConfigProblem(
                    f"{key}.column", f"`{decl.aggregate}` needs a numeric column, {decl.column} is {column_type}"
                )
        if decl.time_column is not None and spec.column_type(decl.time_column) != UTC_TS:
            raise ConfigProblem(
                f"{key}.time_column", f"must be a timestamp column of {spec.name} ({', '.join(spec.timestamp_columns)})"
            )
        if decl.values is not None and decl.column in spec.vocabulary:
            unknown = [v for v in decl.values if v not in spec.vocabulary[decl.column]]
            if unknown:
                raise ConfigProblem(
                    f"{key}.values",
                    f"{', '.join(map(repr, unknown))} not in the vocabulary of {spec.name}.{decl.column}",
                )
    if decl.per is not None:
        kind = accounts.column_type(decl.per)
        if kind is None or not kind.is_numeric():
            numeric = [c for c, t in accounts.columns.items() if t.is_numeric()]
            raise ConfigProblem(
                f"{key}.per", f"must be a numeric column of {accounts.name} ({', '.join(numeric)}), got {decl.per!r}"
            )
    where = _filters(decl.where, spec, accounts, f"{key}.where") if spec is not None else ()
    of = _filters(decl.of, spec, accounts, f"{key}.of") if spec is not None and decl.of is not None else None
    no_data = decl.no_data.value if isinstance(decl.no_data, NoDataValue) else decl.no_data
    return Indicator(
        name=name,
        description=decl.description or name.replace("_", " "),
        aggregate=decl.aggregate,
        source=decl.source,
        column=decl.column,
        where=where,
        of=of,
        values=tuple(decl.values) if decl.values is not None else None,
        q=decl.q,
        window_days=decl.window_days,
        time_column=decl.time_column,
        compare=decl.compare is not None,
        change=decl.change,
        both_empty=float(decl.both_empty) if decl.both_empty is not None else None,
        per=decl.per,
        numerator=decl.numerator,
        denominator=decl.denominator,
        no_data=float(no_data) if isinstance(no_data, (int, float)) else no_data,
        # two items: the model's min_length and max_length
        valid_range=(decl.valid_range[0], decl.valid_range[1]) if decl.valid_range is not None else None,
        value_map=tuple(decl.map.items()) if decl.map is not None else None,
        note_column=decl.note_column,
        judgement=decl.judgement,
    )


def build_catalogue(parsed: CatalogueFile, contract: Contract, origin: str) -> Catalogue:
    """The catalogue checked against the deployment's sources (raises ConfigProblem with a key)."""
    unavailable: dict[str, str] = {}
    indicators: dict[str, Indicator] = {}
    for name, decl in parsed.indicators.items():
        if decl.source is not None and decl.source not in contract:
            unavailable[name] = f"its source {decl.source} is not declared in {contract.origin}"
    for name, decl in parsed.indicators.items():
        if name in unavailable:
            continue
        if decl.aggregate == RATIO:
            missing = [n for n in (decl.numerator, decl.denominator) if n in unavailable]
            if missing:
                unavailable[name] = f"it divides {', '.join(missing)}, which cannot be computed"
                continue
        indicators[name] = _indicator(name, decl, contract)
    for name in parsed.sources:
        if name in contract and contract[name].is_accounts:
            raise ConfigProblem(f"sources.{name}", "lookback applies to event sources, not the accounts source")
    lookback = {
        name: (parsed.sources[name].lookback_days if name in parsed.sources else None)
        for name in contract.event_sources
    }
    return Catalogue(origin=origin, indicators=indicators, unavailable=unavailable, lookback_days=lookback)
