"""The landing contract of a deployment: which sources a company has, and what each one holds.

`sources.yaml` (in the deployment's config directory) declares every source: where its export
lives, its format, key, timestamp, and typed columns, with the vocabulary of its categorical
columns (event types, feature names, ticket categories, ...) and the value ranges its
validity checks enforce. A source the company does not have is simply not declared: it is not
read, not checked and not scored. Nothing about any product is fixed in code.

Two roles:
- `accounts` (exactly one, the CRM): one row per account and version (`updated_at`); it must have
  `account_id`, `contract_start_date`, `renewal_date` and `churn_date`. The well-known columns
  `account_name`, `industry`, `size_tier`, `plan`, `csm_owner` and `arr_usd` are carried into the
  published tables when declared (null otherwise).
- `events` (any number): records with an `account_id`, a key and a timestamp, such as product
  usage, tickets, survey answers, engagement, invoices or meetings.

Text formats (CSV, JSON lines) carry every value as text; timestamps are ISO-8601 with a UTC
offset and dates `YYYY-MM-DD`. Parquet columns must already have the declared types.
"""

import re
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import polars as pl
from pydantic import Field, field_validator, model_validator

from cs_assets.config_file import ConfigFileError, ConfigModel, ConfigProblem

# a column's polars type as the contract holds it: a class (pl.String) or an instance (UTC_TS)
DType = type[pl.DataType] | pl.DataType

UTC_TS = pl.Datetime("us", "UTC")
TYPES: dict[str, DType] = {
    "string": pl.String,
    "integer": pl.Int64,
    "float": pl.Float64,
    "boolean": pl.Boolean,
    "date": pl.Date,
    "timestamp": UTC_TS,
}
# Final: the literal types that `role` takes
ACCOUNTS: Final = "accounts"
EVENTS: Final = "events"
# what a repeated key means: a new version of the record (tickets, CRM rows: the newest is the
# record), or, for an immutable source (product events, answers, notes), an error unless the rows
# are identical: an event does not change after it happened
VERSIONED: Final = "versioned"
IMMUTABLE: Final = "immutable"
NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
ACCOUNT_ID = "account_id"
# what every accounts source (the CRM) must have: the contract state scoring and lifecycle read
ACCOUNT_REQUIRED = {
    ACCOUNT_ID: "string",
    "contract_start_date": "date",
    "renewal_date": "date",
    "churn_date": "date",
}
# carried into the indicator table and the published tables when declared, typed as here
ACCOUNT_CONTEXT = {
    "account_name": "string",
    "industry": "string",
    "size_tier": "string",
    "plan": "string",
    "csm_owner": "string",
    "arr_usd": "float",
}
FORMATS = ("csv", "parquet", "jsonl")


class SourcesContractError(ConfigFileError):
    """sources.yaml is invalid; the message names the file, the key path and the problem."""


class ColumnDecl(ConfigModel):
    type: Literal["string", "integer", "float", "boolean", "date", "timestamp"]
    # the column's name in the export, when it differs (e.g. `signup_date` for contract_start_date)
    from_: str | None = Field(default=None, alias="from", min_length=1)
    description: str = ""
    required: bool = False  # a validity check refuses nulls in it
    values: list[str] | None = None  # the vocabulary: a validity check refuses other values
    min: float | int | None = None
    max: float | int | None = None
    # a text column holding a list (e.g. "u1;u2"), usable in `in_account_list` indicator filters
    list_separator: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> "ColumnDecl":
        if self.values is not None:
            if self.type != "string":
                raise ConfigProblem("values", f"a vocabulary needs a string column, this one is {self.type}")
            if not self.values or len(set(self.values)) != len(self.values):
                raise ConfigProblem("values", f"must be a non-empty list of distinct values, got {self.values}")
        if (self.min is not None or self.max is not None) and self.type not in ("integer", "float"):
            raise ConfigProblem("", f"min/max need a numeric column, this one is {self.type}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ConfigProblem("max", f"must be >= min ({self.min}), got {self.max}")
        if self.list_separator is not None and self.type != "string":
            raise ConfigProblem("list_separator", "a list column must be a string column")
        return self


class RangeRuleDecl(ConfigModel):
    """A value range that holds only on some rows, e.g. NPS 0-10 where survey_type = nps."""

    name: str
    column: str
    min: float | int | None = None
    max: float | int | None = None
    where: dict[str, str] = Field(min_length=1, max_length=1)


class DerivedDecl(ConfigModel):
    """A column computed from two timestamp columns of the same record (e.g. resolution time)."""

    hours_between: list[str] | None = Field(default=None, min_length=2, max_length=2)
    days_between: list[str] | None = Field(default=None, min_length=2, max_length=2)

    @model_validator(mode="after")
    def _one(self) -> "DerivedDecl":
        if (self.hours_between is None) == (self.days_between is None):
            raise ConfigProblem("", "needs exactly one of hours_between or days_between: [from_column, to_column]")
        return self


CONTRACT_KEYS = (
    "role",
    "description",
    "export",
    "format",
    "key",
    "timestamp",
    "event_time",
    "received_at",
    "columns",
    "natural_key",
    "records",
    "range_rules",
    "derived",
    "kind",
)


class SourceDecl(ConfigModel):
    # transport keys of `kind: http` (preset, base_url, ...) are validated by the HTTP config
    model_config = {**ConfigModel.model_config, "extra": "allow"}

    role: Literal["accounts", "events"] = EVENTS
    description: str = ""
    # where the export lands: a file, or a directory of part files, in the landing directory
    export: str = Field(min_length=1)
    format: Literal["csv", "parquet", "jsonl"]
    key: list[str] = Field(min_length=1)
    timestamp: str
    # when a record happened (default: `timestamp`); windows place records by it, and a snapshot
    # sees the records that happened by its end (tickets: created_at, while updated_at is freshness)
    event_time: str | None = None
    # events only: when a record arrived; a snapshot counts it only once it had arrived
    received_at: str | None = None
    columns: dict[str, ColumnDecl]
    natural_key: list[str] | None = None
    # `versioned`: a key sent again is a newer version (the newest wins); `immutable`: a key sent
    # again with other content is an error naming the key and the columns that differ
    records: Literal["versioned", "immutable"] = "versioned"
    range_rules: list[RangeRuleDecl] = []
    derived: dict[str, DerivedDecl] = {}
    kind: Literal["file", "http"] = "file"

    @field_validator("columns", mode="before")
    @classmethod
    def _short_form(cls, value: Any) -> Any:
        # `name: string` is short for `name: {type: string}`
        if isinstance(value, dict):
            return {k: {"type": v} if isinstance(v, str) else v for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "SourceDecl":
        if self.export.startswith("/") or ".." in self.export.split("/"):
            raise ConfigProblem("export", f"must be a path inside the landing directory, got {self.export!r}")
        for name in self.columns:
            if not COLUMN.match(name):
                raise ConfigProblem(f"columns.{name}", "column names are letters, digits and _ (at most 63)")
        exported = [d.from_ or c for c, d in self.columns.items()]
        twice = sorted({e for e in exported if exported.count(e) > 1})
        if twice:
            raise ConfigProblem("columns", f"export column(s) {', '.join(twice)} mapped to more than one column")
        types = {c: d.type for c, d in self.columns.items()}
        for i, k in enumerate(self.key):
            if k not in types:
                raise ConfigProblem(f"key[{i}]", f"{k!r} is not a declared column")
        if types.get(self.timestamp) != "timestamp":
            raise ConfigProblem("timestamp", f"must name a timestamp column, got {self.timestamp!r}")
        if self.event_time is not None and types.get(self.event_time) != "timestamp":
            raise ConfigProblem("event_time", f"must name a timestamp column, got {self.event_time!r}")
        if self.received_at is not None and types.get(self.received_at) != "timestamp":
            raise ConfigProblem("received_at", f"must name a timestamp column, got {self.received_at!r}")
        if types.get(ACCOUNT_ID) != "string":
            raise ConfigProblem("columns", f"every source needs an `{ACCOUNT_ID}` column of type string")
        for i, k in enumerate(self.natural_key or []):
            if k not in types:
                raise ConfigProblem(f"natural_key[{i}]", f"{k!r} is not a declared column")
        for i, rule in enumerate(self.range_rules):
            if types.get(rule.column) not in ("integer", "float"):
                raise ConfigProblem(f"range_rules[{i}].column", f"must name a numeric column, got {rule.column!r}")
            ((where_column, where_value),) = rule.where.items()
            if where_column not in types:
                raise ConfigProblem(f"range_rules[{i}].where", f"{where_column!r} is not a declared column")
            vocabulary = _values(self.columns[where_column])
            if vocabulary is not None and where_value not in vocabulary:
                raise ConfigProblem(f"range_rules[{i}].where", f"{where_value!r} is not one of {', '.join(vocabulary)}")
        for name, derived in self.derived.items():
            if name in types:
                raise ConfigProblem(f"derived.{name}", "a derived column must not have the name of a declared column")
            for column in derived.hours_between or derived.days_between or []:
                if types.get(column) != "timestamp":
                    raise ConfigProblem(f"derived.{name}", f"{column!r} is not a timestamp column")
        if self.role == ACCOUNTS:
            if self.records != VERSIONED:
                raise ConfigProblem("records", "the accounts source keeps a version per `updated_at`: versioned")
            if self.key != [ACCOUNT_ID]:
                raise ConfigProblem("key", f"the accounts source is keyed by [{ACCOUNT_ID}], got {self.key}")
            for column, kind in {**ACCOUNT_REQUIRED}.items():
                if types.get(column) != kind:
                    raise ConfigProblem("columns", f"the accounts source needs `{column}` of type {kind}")
            for column, kind in ACCOUNT_CONTEXT.items():
                if column in types and types[column] != kind:
                    raise ConfigProblem(f"columns.{column}", f"must be of type {kind}, got {types[column]}")
        return self

    def transport(self) -> dict[str, Any]:
        """The keys of `kind: http` (everything outside the contract)."""
        return {"kind": self.kind, **(self.model_extra or {})}


def _values(decl: ColumnDecl) -> list[str] | None:
    return decl.values


class SourcesFile(ConfigModel):
    version: Literal[2]
    sources: dict[str, SourceDecl] = Field(min_length=1)

    @model_validator(mode="after")
    def _accounts(self) -> "SourcesFile":
        for name, decl in self.sources.items():
            if not NAME.match(name):
                raise ConfigProblem(f"sources.{name}", "source names are lowercase letters, digits and _ (at most 63)")
            if decl.kind == "file" and decl.model_extra:
                raise ConfigProblem(
                    f"sources.{name}",
                    f"unknown key(s): {', '.join(sorted(decl.model_extra))} (allowed: {', '.join(CONTRACT_KEYS)}; "
                    "HTTP keys need `kind: http`)",
                )
        accounts = [n for n, d in self.sources.items() if d.role == ACCOUNTS]
        if len(accounts) != 1:
            raise ConfigProblem(
                "sources", f"exactly one source must have `role: accounts` (the CRM), found {accounts or 'none'}"
            )
        return self


@dataclass(frozen=True)
class SourceSpec:
    """One declared source, as the loaders, checks and indicator compiler use it."""

    name: str
    path: str  # file, or directory of part files, relative to the landing directory
    file_format: str  # "csv" | "parquet" | "jsonl"
    columns: dict[str, DType]  # column -> type after normalisation
    key: tuple[str, ...]  # columns that identify a row; duplicates on these are dropped
    timestamp_column: str  # newest value says how fresh the source is
    description: str = ""
    event_time_column: str | None = None  # when a record happened (None: the timestamp column)
    role: str = EVENTS
    received_column: str | None = None
    vocabulary: dict[str, tuple[str, ...]] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    bounds: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    natural_key: tuple[str, ...] = ()
    records: str = VERSIONED
    range_rules: tuple[RangeRuleDecl, ...] = ()
    derived: dict[str, DerivedDecl] = field(default_factory=dict)
    list_separators: dict[str, str] = field(default_factory=dict)
    transport: dict[str, Any] = field(default_factory=lambda: {"kind": "file"})
    renames: dict[str, str] = field(default_factory=dict)  # export column -> contract column

    @property
    def event_time(self) -> str:
        return self.event_time_column or self.timestamp_column

    @property
    def is_accounts(self) -> bool:
        return self.role == ACCOUNTS

    def column_type(self, column: str) -> DType | None:
        if column in self.columns:
            return self.columns[column]
        if column in self.derived:
            return pl.Float64
        return None

    @property
    def timestamp_columns(self) -> tuple[str, ...]:
        return tuple(c for c, t in self.columns.items() if t == UTC_TS)


def spec_from_decl(name: str, decl: SourceDecl) -> SourceSpec:
    columns, vocabulary, bounds, required, separators, renames = {}, {}, {}, [], {}, {}
    for column, d in decl.columns.items():
        if d.from_ is not None and d.from_ != column:
            renames[d.from_] = column
        columns[column] = TYPES[d.type]
        if d.values is not None:
            vocabulary[column] = tuple(d.values)
        if d.min is not None or d.max is not None:
            bounds[column] = (d.min, d.max)
        if d.required:
            required.append(column)
        if d.list_separator is not None:
            separators[column] = d.list_separator
    return SourceSpec(
        name=name,
        path=decl.export,
        file_format=decl.format,
        columns=columns,
        key=tuple(decl.key),
        timestamp_column=decl.timestamp,
        description=decl.description or f"{name} export ({decl.format}).",
        event_time_column=decl.event_time,
        role=decl.role,
        received_column=decl.received_at,
        vocabulary=vocabulary,
        required=tuple(required),
        bounds=bounds,
        natural_key=tuple(decl.natural_key or ()),
        records=decl.records,
        range_rules=tuple(decl.range_rules),
        derived=dict(decl.derived),
        list_separators=separators,
        transport=decl.transport(),
        renames=renames,
    )


@dataclass(frozen=True)
class Contract:
    """Every declared source, the accounts source first."""

    origin: str
    sources: dict[str, SourceSpec]

    @property
    def accounts(self) -> SourceSpec:
        return next(s for s in self.sources.values() if s.is_accounts)

    @property
    def event_sources(self) -> dict[str, SourceSpec]:
        return {n: s for n, s in self.sources.items() if not s.is_accounts}

    def __contains__(self, name: str) -> bool:
        return name in self.sources

    def __getitem__(self, name: str) -> SourceSpec:
        return self.sources[name]


def contract_from_file(parsed: SourcesFile, origin: str) -> Contract:
    specs = {name: spec_from_decl(name, decl) for name, decl in parsed.sources.items()}
    ordered = dict(sorted(specs.items(), key=lambda item: (not item[1].is_accounts, list(specs).index(item[0]))))
    return Contract(origin=origin, sources=ordered)
