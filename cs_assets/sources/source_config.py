"""Where each source comes from (`sources.yaml`, `kind:`): landing files, or an HTTP API.

The file is reviewed like the health model and validated when a source asset loads it, with
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

Only the keys listed per preset are accepted, identifiers (field paths, parameter and
environment variable names) must match strict patterns, and URLs must be http(s) without
credentials, so config can neither inject anything nor leak a secret.
"""

import functools
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from cs_assets.config_file import ConfigFileError, parse_yaml, read_config_text, require_mapping
from cs_assets.settings import REPO_ROOT
from cs_assets.sources.contract import Contract, SourceSpec, SourcesContractError

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

COMMON_KEYS = (
    "kind", "preset", "auth", "fields", "params", "page_size", "timeout_seconds", "retry",
    "max_pages", "max_response_mb",
)
PRESET_KEYS = {
    HUBSPOT: ("base_url", "object", "path", "incremental"),
    ZENDESK: ("base_url", "path", "records_path", "incremental"),
    CSV_EXPORT: ("url",),
    GENERIC: ("base_url", "path", "records_path", "pagination", "page_size_param", "incremental"),
}
RETRY_KEYS = ("max_attempts", "backoff_seconds", "max_backoff_seconds", "max_total_seconds")


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

    def identity(self) -> str:
        """Hash of what decides which records a cursor refers to; a change forces a full load."""
        parts = {
            "preset": self.preset, "url": self.url, "fields": self.fields, "params": self.params,
            "records_path": self.records_path, "incremental": repr(self.incremental),
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


# --------------------------------------------------------------------------- validation helpers


def _mapping(origin: str, key: str, value: Any, allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> dict:
    return require_mapping(SourceConfigError, origin, key, value, required, allowed)


def _string(origin: str, key: str, value: Any, pattern: re.Pattern | None = None, what: str = "") -> str:
    if not isinstance(value, str) or not value:
        raise SourceConfigError(origin, key, f"must be a non-empty string, got {value!r}")
    if pattern is not None and not pattern.match(value):
        raise SourceConfigError(origin, key, f"{value!r} is not {what or 'allowed here'}")
    return value


def _number(origin: str, key: str, value: Any, minimum: float, maximum: float, integer: bool = False) -> float:
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not minimum <= value <= maximum:
        kind = "an integer" if integer else "a number"
        raise SourceConfigError(origin, key, f"must be {kind} between {minimum:g} and {maximum:g}, got {value!r}")
    return value


def _url(origin: str, key: str, value: Any, allow_query: bool) -> tuple[str, str, dict[str, str]]:
    """(scheme://host[:port], path, query params) of an http(s) URL without credentials."""
    text = _string(origin, key, value)
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https"):
        raise SourceConfigError(origin, key, f"only http:// and https:// URLs are allowed, got scheme {parts.scheme or 'none'!r}")
    if not parts.hostname:
        raise SourceConfigError(origin, key, "the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise SourceConfigError(
            origin, key, "credentials in the URL are not allowed: use `auth` with an environment variable"
        )
    if parts.fragment:
        raise SourceConfigError(origin, key, "the URL must not have a #fragment")
    if parts.query and not allow_query:
        raise SourceConfigError(origin, key, "the URL must not have a query string: use `params`")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        raise SourceConfigError(origin, key, f"bad port: {exc}") from None
    if parts.path and not URL_PATH.match(parts.path):
        raise SourceConfigError(origin, key, f"path {parts.path!r} has characters that are not allowed")
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    for name in query:
        _param_name(origin, key, name)
    return f"{parts.scheme}://{parts.netloc}", parts.path, query


def _param_name(origin: str, key: str, name: Any) -> str:
    name = _string(origin, key, name, PARAM_NAME, "a valid query parameter name")
    if SECRET_WORDS.search(name):
        raise SourceConfigError(
            origin, key, f"parameter {name!r} looks like a secret: secrets go in `auth` through an "
            "environment variable, never in this file or a URL",
        )
    return name


def _auth(origin: str, key: str, raw: Any) -> Auth:
    if raw is None:
        return Auth()
    if isinstance(raw, dict):
        for inline in ("token", "password", "secret", "api_key"):
            if inline in raw:
                raise SourceConfigError(
                    origin, f"{key}.{inline}", "secrets are never written in this file: put it in an "
                    "environment variable and name the variable (`token_env` / `password_env`)",
                )
    raw = _mapping(origin, key, raw, ("type", "token_env", "username", "username_env", "password_env"), ("type",))
    kind = raw["type"]
    if kind == "none":
        _mapping(origin, key, raw, ("type",))
        return Auth()
    if kind == "bearer":
        raw = _mapping(origin, key, raw, ("type", "token_env"), ("type", "token_env"))
        return Auth("bearer", token_env=_string(origin, f"{key}.token_env", raw["token_env"], ENV_NAME, "an environment variable name"))
    if kind == "basic":
        raw = _mapping(origin, key, raw, ("type", "username", "username_env", "password_env"), ("type", "password_env"))
        if ("username" in raw) == ("username_env" in raw):
            raise SourceConfigError(origin, key, "basic auth needs exactly one of `username` or `username_env`")
        username = raw.get("username")
        if username is not None:
            _string(origin, f"{key}.username", username, CSV_HEADER, "a printable user name")
        username_env = raw.get("username_env")
        if username_env is not None:
            _string(origin, f"{key}.username_env", username_env, ENV_NAME, "an environment variable name")
        password_env = _string(origin, f"{key}.password_env", raw["password_env"], ENV_NAME, "an environment variable name")
        return Auth("basic", username=username, username_env=username_env, password_env=password_env)
    raise SourceConfigError(origin, f"{key}.type", f"must be none, bearer or basic, got {kind!r}")


def _retry(origin: str, key: str, raw: Any) -> Retry:
    if raw is None:
        return Retry()
    raw = _mapping(origin, key, raw, RETRY_KEYS)
    default = Retry()
    return Retry(
        max_attempts=int(_number(origin, f"{key}.max_attempts", raw.get("max_attempts", default.max_attempts), 1, 20, integer=True)),
        backoff_seconds=float(_number(origin, f"{key}.backoff_seconds", raw.get("backoff_seconds", default.backoff_seconds), 0, 600)),
        max_backoff_seconds=float(_number(origin, f"{key}.max_backoff_seconds", raw.get("max_backoff_seconds", default.max_backoff_seconds), 0, 3600)),
        max_total_seconds=float(_number(origin, f"{key}.max_total_seconds", raw.get("max_total_seconds", default.max_total_seconds), 0.01, 86400)),
    )


def _fields(origin: str, key: str, raw: Any, spec: SourceSpec, preset: str) -> dict[str, str]:
    columns = tuple(spec.columns)
    raw = _mapping(origin, key, raw or {}, columns)
    pattern, what = (CSV_HEADER, "a printable CSV header") if preset == CSV_EXPORT else (FIELD_PATH, "a field path like `name` or `properties.name`")
    fields = {}
    for column in columns:
        default = f"properties.{column}" if preset == HUBSPOT else column
        fields[column] = _string(origin, f"{key}.{column}", raw.get(column, default), pattern, what)
    return fields


def _params(origin: str, key: str, raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise SourceConfigError(origin, key, f"must be a mapping, got {type(raw).__name__}")
    params = {}
    for name, value in raw.items():
        _param_name(origin, f"{key}.{name}", name)
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise SourceConfigError(origin, f"{key}.{name}", f"must be a string or a number, got {value!r}")
        params[name] = str(value)
    return params


def _incremental(origin: str, key: str, raw: Any, spec: SourceSpec, preset: str) -> Incremental | None:
    source = spec.name
    if raw is False or preset == CSV_EXPORT:
        return None
    allowed = {
        HUBSPOT: ("field", "property"),
        ZENDESK: ("field", "start_time"),
        GENERIC: ("param", "field", "format"),
    }[preset]
    if raw is None:
        if preset == GENERIC:
            return None  # generic APIs differ too much to guess an incremental parameter
        raw = {}
    raw = _mapping(origin, key, raw, allowed, ("param",) if preset == GENERIC else ())
    column = raw.get("field", spec.timestamp_column)
    if column not in spec.columns or not str(spec.columns[column]).startswith("Datetime"):
        stamps = [c for c, t in spec.columns.items() if str(t).startswith("Datetime")]
        raise SourceConfigError(origin, f"{key}.field", f"must be a timestamp column of {source} ({', '.join(stamps)}), got {column!r}")
    if preset == HUBSPOT:
        prop = _string(origin, f"{key}.property", raw.get("property", "hs_lastmodifieddate"), OBJECT_NAME, "a property name")
        return Incremental(field=column, property=prop, format="unix_ms")
    if preset == ZENDESK:
        start = int(_number(origin, f"{key}.start_time", raw.get("start_time", 0), 0, 2**40, integer=True))
        return Incremental(field=column, start_time=start, format="unix")
    since_format = raw.get("format", "iso")
    if since_format not in SINCE_FORMATS:
        raise SourceConfigError(origin, f"{key}.format", f"must be one of {', '.join(SINCE_FORMATS)}, got {since_format!r}")
    return Incremental(field=column, param=_param_name(origin, f"{key}.param", raw["param"]), format=since_format)


def _pagination(origin: str, key: str, raw: Any) -> Pagination:
    if raw is None:
        return Pagination()
    raw = _mapping(origin, key, raw, ("type", "cursor_path", "cursor_param", "next_path", "offset_param"), ("type",))
    kind = raw["type"]
    if kind not in PAGINATION_TYPES:
        raise SourceConfigError(origin, f"{key}.type", f"must be one of {', '.join(PAGINATION_TYPES)}, got {kind!r}")
    needs = {"cursor": ("cursor_path", "cursor_param"), "next_link": ("next_path",), "offset": ("offset_param",), "none": ()}[kind]
    raw = _mapping(origin, key, raw, ("type", *needs), ("type", *needs))
    values = {}
    for name in needs:
        pattern = PARAM_NAME if name.endswith("_param") else FIELD_PATH
        values[name] = _string(origin, f"{key}.{name}", raw[name], pattern, "a valid name or field path")
        if name.endswith("_param"):
            _param_name(origin, f"{key}.{name}", raw[name])
    return Pagination(type=kind, **values)


def _http_source(origin: str, spec: SourceSpec, raw: dict) -> HttpSource:
    source = spec.name
    key = f"sources.{source}"
    preset = raw.get("preset")
    if preset not in PRESETS:
        raise SourceConfigError(origin, f"{key}.preset", f"must be one of {', '.join(PRESETS)}, got {preset!r}")
    allowed = COMMON_KEYS + PRESET_KEYS[preset]
    required = ("kind", "preset", "url") if preset == CSV_EXPORT else ("kind", "preset", "base_url")
    if preset == GENERIC:
        required += ("path", "records_path")
    raw = _mapping(origin, key, raw, allowed, required)

    params = {}
    if preset == CSV_EXPORT:
        base_url, path, params = _url(origin, f"{key}.url", raw["url"], allow_query=True)
        path = path or "/"
    else:
        base_url, prefix, _ = _url(origin, f"{key}.base_url", raw["base_url"], allow_query=False)
        base_url += prefix.rstrip("/")
    obj = None
    if preset == HUBSPOT:
        obj = _string(origin, f"{key}.object", raw.get("object", "companies"), OBJECT_NAME, "a CRM object type name")
    if preset != CSV_EXPORT:
        default_path = {HUBSPOT: f"/crm/v3/objects/{obj}", ZENDESK: "/api/v2/incremental/tickets.json", GENERIC: None}[preset]
        path = _string(origin, f"{key}.path", raw.get("path", default_path), URL_PATH, "a URL path starting with /")
    params.update(_params(origin, f"{key}.params", raw.get("params")))

    page_size_max = {HUBSPOT: 100, ZENDESK: 1000, CSV_EXPORT: 1, GENERIC: 100_000}[preset]
    page_size_default = {HUBSPOT: 100, ZENDESK: 1000, CSV_EXPORT: 1, GENERIC: 100}[preset]
    page_size = int(_number(origin, f"{key}.page_size", raw.get("page_size", page_size_default), 1, page_size_max, integer=True))
    page_size_param = {HUBSPOT: "limit", ZENDESK: "per_page", CSV_EXPORT: None}.get(preset)
    if preset == GENERIC and "page_size_param" in raw:
        page_size_param = _param_name(origin, f"{key}.page_size_param", raw["page_size_param"])

    records_path = {HUBSPOT: "results", ZENDESK: "tickets", CSV_EXPORT: None}.get(preset)
    if "records_path" in raw:
        value = raw["records_path"]
        if preset == GENERIC and value == "":
            records_path = ""  # the response body is the list of records
        else:
            records_path = _string(origin, f"{key}.records_path", value, FIELD_PATH, "a field path like `data` or `result.items`")

    pagination = {
        HUBSPOT: Pagination("cursor", cursor_path="paging.next.after", cursor_param="after"),
        ZENDESK: Pagination("next_link", next_path="next_page"),
        CSV_EXPORT: Pagination(),
    }.get(preset) or _pagination(origin, f"{key}.pagination", raw.get("pagination"))
    if pagination.type == "offset" and not page_size_param:
        raise SourceConfigError(origin, f"{key}.page_size_param", "offset pagination needs the page size parameter (e.g. `limit`)")

    incremental = _incremental(origin, f"{key}.incremental", raw.get("incremental"), spec, preset)

    return HttpSource(
        source=source,
        preset=preset,
        base_url=base_url,
        path=path,
        auth=_auth(origin, f"{key}.auth", raw.get("auth")),
        fields=_fields(origin, f"{key}.fields", raw.get("fields"), spec, preset),
        params=params,
        page_size=page_size,
        page_size_param=page_size_param,
        records_path=records_path,
        pagination=pagination,
        incremental=incremental,
        timeout_seconds=float(_number(origin, f"{key}.timeout_seconds", raw.get("timeout_seconds", 30), 0.01, 3600)),
        retry=_retry(origin, f"{key}.retry", raw.get("retry")),
        max_pages=int(_number(origin, f"{key}.max_pages", raw.get("max_pages", 10_000), 1, 1_000_000, integer=True)),
        max_response_bytes=int(_number(origin, f"{key}.max_response_mb", raw.get("max_response_mb", 100), 0.001, 4096) * 1024 * 1024),
        object=obj,
    )


def parse_sources_config(raw: Any, origin: str = "<sources>") -> SourcesConfig:
    """The HTTP transport of every source of a parsed sources.yaml (its contract validated too)."""
    from cs_assets.config_file import validate_config
    from cs_assets.sources.contract import SourcesFile, contract_from_file

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
