"""Where each source comes from (`sources.yaml`, `kind:`): landing files, or an HTTP API.

The file is reviewed like the health model and validated when the definitions load, with
messages that name the file, the source and the key. Nothing secret is ever in it: credentials
are read from the environment variable that `auth` names, at request time.

Every source defaults to `kind: file` (the landing export, as before). An HTTP source names a
preset for the shape of its API. A full fetch (the first one, or every one without an
incremental cursor) replaces the stored records; an incremental fetch is merged into them by the
source key, so a re-run never duplicates a row.

- `hubspot_crm_v3`: CRM objects (`results`, `paging.next.after`); incremental re-runs use the
  search endpoint with a `GTE` filter on a modified-date property;
- `zendesk_incremental`: time-based incremental export (`end_time`, `next_page`, `end_of_stream`);
- `csv_export`: one CSV export URL (a survey spreadsheet); re-runs send `If-None-Match`;
- `generic_json`: any JSON REST API: records path, pagination (cursor, next link, offset),
  page size, and an `updated_since`-style incremental parameter.

The transport keys of a source are validated by its preset's pydantic model (strict types, no
key outside the preset's, the shared error format of `cs_assets.config_file`); what depends on
the source's contract (the columns `fields` maps, the timestamp column a cursor is read from)
is checked when the model becomes an `HttpSource`. Identifiers (field paths, parameter and
environment variable names) must match strict patterns, and URLs must be http(s) without
credentials, so config can neither inject anything nor leak a secret.
"""

import functools
import hashlib
import json
import os
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import parse_qsl, urlsplit

from pydantic import AfterValidator, WrapValidator, field_validator, model_validator

from cs_assets.config_file import ConfigModel, ConfigProblem, join_key, parse_yaml, read_config_text, validate_config
from cs_assets.settings import REPO_ROOT
from cs_assets.sources.contract import Contract, SourcesContractError, SourcesFile, SourceSpec, contract_from_file

SOURCES_CONFIG_ENV = "CS_HEALTH_SOURCES_CONFIG"
DEFAULT_SOURCES_PATH = REPO_ROOT / "config" / "sources.yaml"

FILE, HTTP = "file", "http"
HUBSPOT, ZENDESK, CSV_EXPORT, GENERIC = "hubspot_crm_v3", "zendesk_incremental", "csv_export", "generic_json"
PRESETS = (HUBSPOT, ZENDESK, CSV_EXPORT, GENERIC)
PAGINATION_TYPES = ("cursor", "next_link", "offset", "none")
SINCE_FORMATS = ("iso", "unix", "unix_ms")

# a JSON path into a record or a response: dot-separated names, nothing else
FIELD_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,99}(\.[A-Za-z0-9_-]{1,100}){0,9}$")
PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\[\]-]{0,99}$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
OBJECT_NAME = re.compile(r"^[A-Za-z0-9_]{1,100}$")
URL_PATH = re.compile(r"^/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$")
CSV_HEADER = re.compile(r"^[^\x00-\x1f\x7f]{1,200}$")
SECRET_WORDS = re.compile(r"(?i)(token|secret|passw|api[_-]?key|apikey|access[_-]?key|auth|signature|credential)")
# keys under `auth` that would hold the secret itself instead of the name of its variable
INLINE_SECRETS = ("token", "password", "secret", "api_key")


class SourceConfigError(SourcesContractError):
    """sources.yaml is invalid (its contract or its HTTP keys); names the file, key and problem."""


@dataclass(frozen=True)
class Auth:
    type: str = "none"  # none | bearer | basic
    token_env: str | None = None  # bearer
    username: str | None = None  # basic (not a secret, e.g. "agent@example.com/token")
    username_env: str | None = None
    password_env: str | None = None


@dataclass(frozen=True)
class Retry:
    max_attempts: int = 5
    backoff_seconds: float = 1.0  # doubled after each failed attempt
    max_backoff_seconds: float = 30.0  # cap on one computed wait (a longer Retry-After is honoured)
    max_total_seconds: float = 120.0  # bound on all attempts and waits together


@dataclass(frozen=True)
class Pagination:
    type: str = "none"  # cursor | next_link | offset | none
    cursor_path: str | None = None  # where the next cursor is in a response
    cursor_param: str | None = None  # query parameter that sends it back
    next_path: str | None = None  # where the next page's URL is in a response
    offset_param: str | None = None


@dataclass(frozen=True)
class Incremental:
    field: str  # contract column whose newest value becomes the cursor
    param: str | None = None  # generic_json: query parameter carrying the cursor
    format: str = "iso"  # iso | unix | unix_ms (how the cursor is sent)
    property: str | None = None  # hubspot: the property the search filter compares
    start_time: int = 0  # zendesk: start_time of the first (full) export


@dataclass(frozen=True)
class HttpSource:
    source: str
    preset: str
    base_url: str  # scheme://host[:port][/prefix]
    path: str  # endpoint path (joined to base_url); error messages show only this
    auth: Auth
    fields: dict[str, str]  # contract column -> record field path (CSV: header name)
    params: dict[str, str]
    page_size: int
    page_size_param: str | None
    records_path: str | None
    pagination: Pagination
    incremental: Incremental | None
    timeout_seconds: float
    retry: Retry
    max_pages: int
    max_response_bytes: int
    object: str | None = None

    @property
    def url(self) -> str:
        return self.base_url.rstrip("/") + self.path

    @property
    def label(self) -> str:
        return f"source {self.source}"

    def identity(self) -> str:
        """Hash of what decides which records a cursor refers to; a change forces a full load."""
        parts = {
            "preset": self.preset,
            "url": self.url,
            "fields": self.fields,
            "params": self.params,
            "records_path": self.records_path,
            "incremental": repr(self.incremental),
        }
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class SourcesConfig:
    origin: str
    http_sources: dict[str, HttpSource] = field(default_factory=dict)

    def http(self, source: str) -> HttpSource | None:
        return self.http_sources.get(source)

    def kind(self, source: str) -> str:
        return HTTP if source in self.http_sources else FILE


# --------------------------------------------------------------------------- value types


def _matching(pattern: re.Pattern, what: str, value: str) -> str:
    if not pattern.match(value):
        raise ConfigProblem("", f"{value!r} is not {what}")
    return value


def _pattern(pattern: re.Pattern, what: str) -> AfterValidator:
    return AfterValidator(lambda value: _matching(pattern, what, value))


def _param_name(value: str) -> str:
    _matching(PARAM_NAME, "a valid query parameter name", value)
    if SECRET_WORDS.search(value):
        raise ConfigProblem(
            "",
            f"parameter {value!r} looks like a secret: secrets go in `auth` through an "
            "environment variable, never in this file or a URL",
        )
    return value


def _http_url(value: str, query: bool) -> str:
    """`value` if it is an http(s) URL without credentials or fragment (and a query only if `query`)."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https"):
        raise ConfigProblem("", f"only http:// and https:// URLs are allowed, got scheme {parts.scheme or 'none'!r}")
    if not parts.hostname:
        raise ConfigProblem("", "the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise ConfigProblem("", "credentials in the URL are not allowed: use `auth` with an environment variable")
    if parts.fragment:
        raise ConfigProblem("", "the URL must not have a #fragment")
    if parts.query and not query:
        raise ConfigProblem("", "the URL must not have a query string: use `params`")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        raise ConfigProblem("", f"bad port: {exc}") from None
    if parts.path and not URL_PATH.match(parts.path):
        raise ConfigProblem("", f"path {parts.path!r} has characters that are not allowed")
    for name, _ in parse_qsl(parts.query, keep_blank_values=True):
        _param_name(name)
    return value


def _between(low: float, high: float) -> WrapValidator:
    """A number in [low, high]; the message names both bounds (what a reviewer needs to fix it)."""

    def check(value: Any, handler: Any) -> Any:
        number = handler(value)  # the type first: a bool or a string is no number at all
        if not low <= number <= high:
            kind = "an integer" if isinstance(number, int) else "a number"  # as the field's type says
            raise ConfigProblem("", f"must be {kind} between {low:g} and {high:g}, got {value!r}")
        return number

    return WrapValidator(check)


FieldPath = Annotated[str, _pattern(FIELD_PATH, "a field path like `name` or `properties.name`")]
RecordsPath = Annotated[str, _pattern(FIELD_PATH, "a field path like `data` or `result.items`")]
PagePath = Annotated[str, _pattern(FIELD_PATH, "a valid name or field path")]
CsvHeader = Annotated[str, _pattern(CSV_HEADER, "a printable CSV header")]
ParamName = Annotated[str, AfterValidator(_param_name)]
EnvName = Annotated[str, _pattern(ENV_NAME, "an environment variable name")]
UserName = Annotated[str, _pattern(CSV_HEADER, "a printable user name")]
UrlPath = Annotated[str, _pattern(URL_PATH, "a URL path starting with /")]
ApiUrl = Annotated[str, AfterValidator(lambda value: _http_url(value, query=False))]
# an export link carries its sheet and format in the query (`?format=csv&gid=0`)
ExportUrl = Annotated[str, AfterValidator(lambda value: _http_url(value, query=True))]


def _keys_of_its_type(decl: ConfigModel, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> None:
    """The keys a mapping's `type` takes; one model holds every type's keys, so it checks them here."""
    allowed = ("type", *required, *optional)
    unknown = sorted(decl.model_fields_set - set(allowed))
    if unknown:
        raise ConfigProblem("", f"unknown key(s): {', '.join(unknown)} (allowed: {', '.join(allowed)})")
    missing = [key for key in required if getattr(decl, key) is None]
    if missing:
        raise ConfigProblem("", f"missing required key(s): {', '.join(missing)}")


def _timestamp_column(spec: SourceSpec, column: str | None) -> str:
    column = spec.timestamp_column if column is None else column
    if column not in spec.timestamp_columns:
        raise ConfigProblem(
            "incremental.field",
            f"must be a timestamp column of {spec.name} ({', '.join(spec.timestamp_columns)}), got {column!r}",
        )
    return column


# --------------------------------------------------------------------------- nested keys


class AuthDecl(ConfigModel):
    type: Literal["none", "bearer", "basic"]
    token_env: EnvName | None = None  # bearer
    username: UserName | None = None  # basic: one of username / username_env
    username_env: EnvName | None = None
    password_env: EnvName | None = None  # basic

    @model_validator(mode="before")
    @classmethod
    def _no_inline_secret(cls, raw: Any) -> Any:
        # before any other check: "unknown key: token" would not say where the secret goes instead
        if isinstance(raw, dict):
            for key in INLINE_SECRETS:
                if key in raw:
                    raise ConfigProblem(
                        key,
                        "secrets are never written in this file: put it in an environment variable "
                        "and name the variable (`token_env` / `password_env`)",
                    )
        return raw

    @model_validator(mode="after")
    def _consistent(self) -> "AuthDecl":
        if self.type == "basic":
            _keys_of_its_type(self, ("password_env",), ("username", "username_env"))
            if (self.username is None) == (self.username_env is None):
                raise ConfigProblem("", "basic auth needs exactly one of `username` or `username_env`")
        else:
            _keys_of_its_type(self, ("token_env",) if self.type == "bearer" else ())
        return self

    def build(self) -> Auth:
        return Auth(
            type=self.type,
            token_env=self.token_env,
            username=self.username,
            username_env=self.username_env,
            password_env=self.password_env,
        )


_RETRY = Retry()


class RetryDecl(ConfigModel):
    max_attempts: Annotated[int, _between(1, 20)] = _RETRY.max_attempts
    backoff_seconds: Annotated[float, _between(0, 600)] = _RETRY.backoff_seconds
    max_backoff_seconds: Annotated[float, _between(0, 3600)] = _RETRY.max_backoff_seconds
    max_total_seconds: Annotated[float, _between(0.01, 86400)] = _RETRY.max_total_seconds

    def build(self) -> Retry:
        return Retry(
            max_attempts=self.max_attempts,
            backoff_seconds=self.backoff_seconds,
            max_backoff_seconds=self.max_backoff_seconds,
            max_total_seconds=self.max_total_seconds,
        )


class PaginationDecl(ConfigModel):
    NEEDS: ClassVar[dict[str, tuple[str, ...]]] = {
        "cursor": ("cursor_path", "cursor_param"),
        "next_link": ("next_path",),
        "offset": ("offset_param",),
        "none": (),
    }

    type: Literal["cursor", "next_link", "offset", "none"]
    cursor_path: PagePath | None = None
    cursor_param: ParamName | None = None
    next_path: PagePath | None = None
    offset_param: ParamName | None = None

    @model_validator(mode="after")
    def _keys_of_type(self) -> "PaginationDecl":
        _keys_of_its_type(self, self.NEEDS[self.type])
        return self

    def build(self) -> Pagination:
        return Pagination(
            type=self.type,
            cursor_path=self.cursor_path,
            cursor_param=self.cursor_param,
            next_path=self.next_path,
            offset_param=self.offset_param,
        )


# `field` (default: the source's timestamp column) is checked against the contract in `build`


class HubspotIncrementalDecl(ConfigModel):
    field: str | None = None
    property: Annotated[str, _pattern(OBJECT_NAME, "a property name")] = "hs_lastmodifieddate"

    def build(self, spec: SourceSpec) -> Incremental:
        return Incremental(field=_timestamp_column(spec, self.field), property=self.property, format="unix_ms")


class ZendeskIncrementalDecl(ConfigModel):
    field: str | None = None
    start_time: Annotated[int, _between(0, 2**40)] = 0

    def build(self, spec: SourceSpec) -> Incremental:
        return Incremental(field=_timestamp_column(spec, self.field), start_time=self.start_time, format="unix")


class GenericIncrementalDecl(ConfigModel):
    param: ParamName
    field: str | None = None
    format: Literal["iso", "unix", "unix_ms"] = "iso"

    def build(self, spec: SourceSpec) -> Incremental:
        return Incremental(field=_timestamp_column(spec, self.field), param=self.param, format=self.format)


# --------------------------------------------------------------------------- one model per preset


class _HttpDecl(ConfigModel, ABC):
    """The keys of every preset; a preset's model narrows `preset`, bounds `page_size` and adds its own."""

    FIELD_DEFAULT: ClassVar[str] = "{column}"  # the record field of a column `fields` does not map

    kind: Literal["http"]
    preset: str
    auth: AuthDecl | None = None
    fields: dict[str, FieldPath] | None = None
    params: dict[str, str] | None = None
    page_size: int
    timeout_seconds: Annotated[float, _between(0.01, 3600)] = 30.0
    retry: RetryDecl | None = None
    max_pages: Annotated[int, _between(1, 1_000_000)] = 10_000
    max_response_mb: Annotated[float, _between(0.001, 4096)] = 100.0

    @field_validator("fields", mode="before")
    @classmethod
    def _columns_as_text(cls, raw: Any) -> Any:
        # YAML reads `1:` as a number: as text it is reported as the unknown column it is
        return {str(column): path for column, path in raw.items()} if isinstance(raw, dict) else raw

    @field_validator("params", mode="before")
    @classmethod
    def _params_as_text(cls, raw: Any) -> Any:
        # the names are checked here, not as dict keys, so that a problem points at `params.<name>`
        if not isinstance(raw, dict):
            return raw
        for name, value in raw.items():
            if not isinstance(name, str):
                raise ConfigProblem(str(name), f"must be a string, got {name!r}")
            try:
                _param_name(name)
            except ConfigProblem as problem:
                raise ConfigProblem(name, problem.problem) from None
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                raise ConfigProblem(name, f"must be a string or a number, got {value!r}")
        return {name: str(value) for name, value in raw.items()}

    @abstractmethod
    def endpoint(self) -> tuple[str, str, dict[str, str]]:
        """(scheme://host[:port][/prefix], path, query parameters of the URL)."""

    @abstractmethod
    def preset_parts(self, spec: SourceSpec) -> dict[str, Any]:
        """The `HttpSource` values the preset fixes or takes from its own keys."""

    def build(self, spec: SourceSpec) -> HttpSource:
        """The validated source; raises `ConfigProblem` for what the contract refuses."""
        mapped = self.fields or {}
        unknown = sorted(column for column in mapped if column not in spec.columns)
        if unknown:
            raise ConfigProblem("fields", f"unknown key(s): {', '.join(unknown)} (allowed: {', '.join(spec.columns)})")
        # a default always matches the pattern too: column names are stricter than field paths
        fields = {column: mapped.get(column, self.FIELD_DEFAULT.format(column=column)) for column in spec.columns}
        base_url, path, query = self.endpoint()
        return HttpSource(
            source=spec.name,
            preset=self.preset,
            base_url=base_url,
            path=path,
            auth=self.auth.build() if self.auth is not None else Auth(),
            fields=fields,
            params={**query, **(self.params or {})},
            page_size=self.page_size,
            timeout_seconds=self.timeout_seconds,
            retry=self.retry.build() if self.retry is not None else Retry(),
            max_pages=self.max_pages,
            max_response_bytes=int(self.max_response_mb * 1024 * 1024),
            **self.preset_parts(spec),
        )


class _ApiDecl(_HttpDecl):
    """A preset that talks to an API below `base_url` (every one but csv_export)."""

    base_url: ApiUrl
    path: UrlPath

    @field_validator("incremental", mode="before", check_fields=False)
    @classmethod
    def _incremental_off(cls, raw: Any) -> Any:
        # `false` turns it off; `null` means what leaving the key out means: the preset's default
        if raw is False:
            return None
        return cls.model_fields["incremental"].default if raw is None else raw

    def endpoint(self) -> tuple[str, str, dict[str, str]]:
        parts = urlsplit(self.base_url)
        return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}", self.path, {}


class HubspotDecl(_ApiDecl):
    FIELD_DEFAULT: ClassVar[str] = "properties.{column}"

    preset: Literal["hubspot_crm_v3"]
    page_size: Annotated[int, _between(1, 100)] = 100  # HubSpot's maximum
    object: Annotated[str, _pattern(OBJECT_NAME, "a CRM object type name")] = "companies"
    # optional here, required in the other API presets (mypy: an incompatible override); pydantic
    # validates each model by its own field
    path: UrlPath | None = None  # type: ignore[assignment]  # default: /crm/v3/objects/<object>
    incremental: HubspotIncrementalDecl | None = HubspotIncrementalDecl()

    def endpoint(self) -> tuple[str, str, dict[str, str]]:
        base_url, path, query = super().endpoint()
        return base_url, path or f"/crm/v3/objects/{self.object}", query

    def preset_parts(self, spec: SourceSpec) -> dict[str, Any]:
        return {
            "page_size_param": "limit",
            "records_path": "results",
            "pagination": Pagination("cursor", cursor_path="paging.next.after", cursor_param="after"),
            "incremental": self.incremental.build(spec) if self.incremental is not None else None,
            "object": self.object,
        }


class ZendeskDecl(_ApiDecl):
    preset: Literal["zendesk_incremental"]
    page_size: Annotated[int, _between(1, 1000)] = 1000
    path: UrlPath = "/api/v2/incremental/tickets.json"
    records_path: RecordsPath = "tickets"
    incremental: ZendeskIncrementalDecl | None = ZendeskIncrementalDecl()

    def preset_parts(self, spec: SourceSpec) -> dict[str, Any]:
        return {
            "page_size_param": "per_page",
            "records_path": self.records_path,
            "pagination": Pagination("next_link", next_path="next_page"),
            "incremental": self.incremental.build(spec) if self.incremental is not None else None,
        }


class CsvExportDecl(_HttpDecl):
    preset: Literal["csv_export"]
    fields: dict[str, CsvHeader] | None = None  # contract column -> CSV header
    page_size: Annotated[int, _between(1, 1)] = 1  # one export is one page
    url: ExportUrl

    def endpoint(self) -> tuple[str, str, dict[str, str]]:
        parts = urlsplit(self.url)
        return (
            f"{parts.scheme}://{parts.netloc}",
            parts.path or "/",
            dict(parse_qsl(parts.query, keep_blank_values=True)),
        )

    def preset_parts(self, spec: SourceSpec) -> dict[str, Any]:
        return {"page_size_param": None, "records_path": None, "pagination": Pagination(), "incremental": None}


class GenericDecl(_ApiDecl):
    preset: Literal["generic_json"]
    page_size: Annotated[int, _between(1, 100_000)] = 100
    records_path: str  # "" when the response body itself is the list of records
    pagination: PaginationDecl | None = None
    page_size_param: ParamName | None = None
    # generic APIs differ too much to guess an incremental parameter: none unless configured
    incremental: GenericIncrementalDecl | None = None

    @field_validator("records_path")
    @classmethod
    def _records_path(cls, value: str) -> str:
        return value if value == "" else _matching(FIELD_PATH, "a field path like `data` or `result.items`", value)

    @model_validator(mode="after")
    def _offset_sends_a_page_size(self) -> "GenericDecl":
        if self.pagination is not None and self.pagination.type == "offset" and not self.page_size_param:
            raise ConfigProblem("page_size_param", "offset pagination needs the page size parameter (e.g. `limit`)")
        return self

    def preset_parts(self, spec: SourceSpec) -> dict[str, Any]:
        return {
            "page_size_param": self.page_size_param,
            "records_path": self.records_path,
            "pagination": self.pagination.build() if self.pagination is not None else Pagination(),
            "incremental": self.incremental.build(spec) if self.incremental is not None else None,
        }


PRESET_MODELS: dict[str, type[_HttpDecl]] = {
    HUBSPOT: HubspotDecl,
    ZENDESK: ZendeskDecl,
    CSV_EXPORT: CsvExportDecl,
    GENERIC: GenericDecl,
}
COMMON_KEYS = tuple(_HttpDecl.model_fields)
PRESET_KEYS = {
    preset: tuple(key for key in model.model_fields if key not in COMMON_KEYS)
    for preset, model in PRESET_MODELS.items()
}
RETRY_KEYS = tuple(RetryDecl.model_fields)


class _Preset(ConfigModel):
    # read on its own first: the preset decides which model validates the other keys
    model_config = {**ConfigModel.model_config, "extra": "ignore"}

    preset: Literal["hubspot_crm_v3", "zendesk_incremental", "csv_export", "generic_json"]


def _http_source(origin: str, spec: SourceSpec, raw: dict) -> HttpSource:
    prefix = f"sources.{spec.name}"
    preset = validate_config(_Preset, raw, origin, SourceConfigError, prefix).preset
    decl = validate_config(PRESET_MODELS[preset], raw, origin, SourceConfigError, prefix)
    try:
        return decl.build(spec)
    except ConfigProblem as problem:
        raise SourceConfigError(origin, join_key(prefix, problem.key), problem.problem) from None


def parse_sources_config(raw: Any, origin: str = "<sources>") -> SourcesConfig:
    """The HTTP transport of every source of a parsed sources.yaml (its contract validated too)."""
    parsed = validate_config(SourcesFile, raw, origin, SourceConfigError)
    return http_config(contract_from_file(parsed, origin))


def http_config(contract: Contract) -> SourcesConfig:
    """The `kind: http` sources of a contract, validated."""
    http_sources = {}
    for name, spec in contract.sources.items():
        if spec.transport.get("kind") == HTTP:
            http_sources[name] = _http_source(contract.origin, spec, spec.transport)
    return SourcesConfig(origin=contract.origin, http_sources=http_sources)


def sources_config_path(explicit: str | Path | None = None) -> Path:
    return Path(explicit or os.environ.get(SOURCES_CONFIG_ENV) or DEFAULT_SOURCES_PATH).resolve()


def load_sources_config(path: str | Path | None = None) -> SourcesConfig:
    """The validated HTTP transport of the sources file (default: $CS_HEALTH_SOURCES_CONFIG, else config/sources.yaml)."""
    path = sources_config_path(path)
    text = read_config_text(path, SourceConfigError, "sources config file")
    # each source step loads the file: parse a given content once per process
    return _parse_cached(str(path), text)


@functools.lru_cache(maxsize=16)
def _parse_cached(path: str, text: str) -> SourcesConfig:
    return parse_sources_config(parse_yaml(text, path, SourceConfigError), path)
