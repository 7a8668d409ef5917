"""The protocols: how each preset pages through an API and what it keeps as its cursor.

Every fetcher gets the previous cursor state (None: full fetch) and returns all records of this
sync, read into memory page by page and checked as they arrive; nothing is written here. A
cursor or next link that repeats, a page that returns exactly the records of the page before,
more pages than `max_pages`, a body that is empty or not JSON, a missing records path: each is
an error naming the page.
"""

import datetime as dt
import io
import json
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import urljoin

import polars as pl

from cs_assets.sources.contract import SourceSpec
from cs_assets.sources.source_config import CSV_EXPORT, GENERIC, HUBSPOT, ZENDESK, HttpSource
from resources.connectors.client import HttpClient, Response, describe
from resources.connectors.records import MISSING, RecordBatch, get_path, json_type

FULL, INCREMENTAL, NOT_MODIFIED = "full", "incremental", "not_modified"

T = TypeVar("T")


@dataclass
class Fetched:
    mode: str  # full | incremental | not_modified
    batch: RecordBatch | None = None
    pages: int = 0
    requests: int = 0  # attempts, retries included
    cursor: dict = field(default_factory=dict)  # preset-specific state to keep (besides the newest timestamp)


class Pager:
    """Page bookkeeping shared by the JSON protocols: limits and repeat detection."""

    def __init__(self, client: HttpClient, config: HttpSource, where: str):
        self.client, self.config, self.where = client, config, where
        self.number = 0
        self.requests = 0
        self.seen: dict[str, int] = {}
        self.previous_keys: list[tuple] | None = None

    def next_request(self, signature: str, what: str) -> None:
        self.number += 1
        if self.number > self.config.max_pages:
            raise self.client.fail(
                f"{self.where}: more than {self.config.max_pages} pages (max_pages); is the API paginating in a loop?"
            )
        if signature in self.seen:
            raise self.client.fail(
                f"{self.where} page {self.number}: the {what} repeats the one of page {self.seen[signature]}; "
                "the API is paginating in a loop"
            )
        self.seen[signature] = self.number

    def check_keys(self, keys: list[tuple]) -> None:
        if keys and keys == self.previous_keys:
            raise self.client.fail(
                f"{self.where} page {self.number}: returned exactly the records of page {self.number - 1}; "
                "the API ignored the page cursor"
            )
        self.previous_keys = keys

    def json(self, response: Response) -> object:
        self.requests += response.attempts
        at = f"{self.where} page {self.number}"
        content_type = response.headers.get("Content-Type", "none").split(";")[0].strip()
        if not response.body.strip():
            raise self.client.fail(f"{at}: empty response body (HTTP {response.status}), expected JSON")
        try:
            return json.loads(response.body)
        except UnicodeDecodeError:
            raise self.client.fail(
                f"{at}: response is not UTF-8 text (Content-Type {content_type}), expected JSON"
            ) from None
        except json.JSONDecodeError as exc:
            raise self.client.fail(
                f"{at}: response is not valid JSON (Content-Type {content_type}): {exc.msg} at line {exc.lineno} column {exc.colno}"
            ) from None

    def records(self, payload: object, path: str) -> list:
        at = f"{self.where} page {self.number}"
        records = get_path(payload, path)
        if records is MISSING:
            if not isinstance(payload, dict):
                raise self.client.fail(
                    f"{at}: the response is a {json_type(payload)}, not an object with {path!r} (records_path)"
                )
            keys = ", ".join(repr(str(k)[:40]) for k in list(payload)[:10])
            raise self.client.fail(f"{at}: the response has no {path!r} (records_path); it has: {keys or 'nothing'}")
        if not isinstance(records, list):
            raise self.client.fail(
                f"{at}: {path or 'the response'!r} is a {json_type(records)}, expected a list of records"
            )
        return records


def _required(spec: SourceSpec, config: HttpSource) -> set[str]:
    required = set(spec.key)
    if config.incremental is not None:
        required.add(config.incremental.field)
    return required


def _batch(client: HttpClient, spec: SourceSpec, config: HttpSource, where: str) -> RecordBatch:
    return RecordBatch(spec, config.fields, where, _required(spec, config), client.fail)


def _configured(value: T | None, key: str, config: HttpSource) -> T:
    """A key that the preset's model in `source_config` always sets where its protocol reads it:
    None here is a bug in that model, not a mistake in sources.yaml."""
    if value is None:
        raise ValueError(f"the {config.preset} protocol needs `{key}`, which its HTTP config left unset")
    return value


def since_value(cursor: str, since_format: str) -> str:
    """The stored cursor (ISO-8601 UTC) as the API wants it."""
    moment = dt.datetime.fromisoformat(cursor)
    if since_format == "unix":
        return str(int(moment.timestamp()))
    if since_format == "unix_ms":
        return str(int(moment.timestamp() * 1000))
    return cursor


# --------------------------------------------------------------------------- generic JSON


def fetch_generic(client: HttpClient, spec: SourceSpec, config: HttpSource, state: dict | None) -> Fetched:
    where = describe("GET", config.url)
    batch = _batch(client, spec, config, where)
    pager = Pager(client, config, where)
    pagination = config.pagination
    url, params = config.url, dict(config.params)
    if config.page_size_param:
        params[config.page_size_param] = str(config.page_size)
    records_path = _configured(config.records_path, "records_path", config)
    mode = FULL
    if state and config.incremental is not None and state.get("cursor"):
        param = _configured(config.incremental.param, "incremental.param", config)
        params[param] = since_value(state["cursor"], config.incremental.format)
        mode = INCREMENTAL
    offset = 0
    while True:
        pager.next_request(
            json.dumps([url, sorted(params.items())]),
            "page cursor" if pagination.type == "cursor" else "next-page link",
        )
        payload = pager.json(client.request("GET", url, params=params))
        records = pager.records(payload, records_path)
        pager.check_keys(batch.add_page(pager.number, records))
        if pagination.type == "cursor":
            cursor = get_path(payload, _configured(pagination.cursor_path, "pagination.cursor_path", config))
            if cursor is MISSING or cursor is None or cursor == "":
                break
            if not isinstance(cursor, (str, int)) or isinstance(cursor, bool):
                raise client.fail(
                    f"{where} page {pager.number}: cursor {pagination.cursor_path!r} is a {json_type(cursor)}, expected a string"
                )
            params[_configured(pagination.cursor_param, "pagination.cursor_param", config)] = str(cursor)
        elif pagination.type == "next_link":
            next_path = _configured(pagination.next_path, "pagination.next_path", config)
            link = get_path(payload, next_path)
            if link is MISSING or link is None or link == "":
                break
            if not isinstance(link, str):
                raise client.fail(f"{where} page {pager.number}: {next_path!r} is a {json_type(link)}, expected a URL")
            url, params = client.check_link(_absolute(config.url, link), f"{where} page {pager.number}"), {}
        elif pagination.type == "offset":
            if len(records) < config.page_size:
                break
            offset += len(records)
            params[_configured(pagination.offset_param, "pagination.offset_param", config)] = str(offset)
        else:
            break
    return Fetched(mode, batch, pager.number, pager.requests)


def _absolute(base: str, link: str) -> str:
    return urljoin(base, link)


# --------------------------------------------------------------------------- HubSpot CRM v3


def fetch_hubspot(client: HttpClient, spec: SourceSpec, config: HttpSource, state: dict | None) -> Fetched:
    """Full: GET /crm/v3/objects/{object} pages. Incremental: POST .../search, property >= cursor."""
    properties = sorted({path.split(".", 1)[1] for path in config.fields.values() if path.startswith("properties.")})
    incremental = config.incremental
    # (property, value) of the search filter: an incremental re-run from the stored cursor
    since: tuple[str, str] | None = None
    if state and incremental is not None and state.get("cursor"):
        since = (
            _configured(incremental.property, "incremental.property", config),
            since_value(state["cursor"], "unix_ms"),
        )
    search = since is not None
    records_path = _configured(config.records_path, "records_path", config)
    url = config.url + "/search" if search else config.url
    where = describe("POST" if search else "GET", url)
    batch = _batch(client, spec, config, where)
    pager = Pager(client, config, where)
    after: str | None = None
    while True:
        pager.next_request(f"after={after}", "`paging.next.after` cursor")
        if since is not None:
            search_property, since_ms = since
            body = {
                "filterGroups": [
                    {
                        "filters": [
                            {
                                "propertyName": search_property,
                                "operator": "GTE",
                                "value": since_ms,
                            }
                        ]
                    }
                ],
                "sorts": [{"propertyName": search_property, "direction": "ASCENDING"}],
                "properties": properties,
                "limit": config.page_size,
            }
            if after is not None:
                body["after"] = after
            response = client.request("POST", url, params=config.params or None, json_body=body)
        else:
            params = {**config.params, "limit": str(config.page_size), "archived": "false"}
            if properties:
                params["properties"] = ",".join(properties)
            if after is not None:
                params["after"] = after
            response = client.request("GET", url, params=params)
        payload = pager.json(response)
        records = pager.records(payload, records_path)
        pager.check_keys(batch.add_page(pager.number, records))
        cursor = get_path(payload, "paging.next.after")
        if cursor is MISSING or cursor is None or cursor == "":
            break
        if not isinstance(cursor, (str, int)) or isinstance(cursor, bool):
            raise client.fail(
                f"{where} page {pager.number}: `paging.next.after` is a {json_type(cursor)}, expected a string"
            )
        after = str(cursor)
    return Fetched(INCREMENTAL if search else FULL, batch, pager.number, pager.requests)


# --------------------------------------------------------------------------- Zendesk incremental export


def fetch_zendesk(client: HttpClient, spec: SourceSpec, config: HttpSource, state: dict | None) -> Fetched:
    """Time-based incremental export: start_time, then `next_page` until `end_of_stream`."""
    where = describe("GET", config.url)
    batch = _batch(client, spec, config, where)
    pager = Pager(client, config, where)
    incremental = config.incremental
    mode = FULL
    start = incremental.start_time if incremental is not None else 0
    if state and incremental is not None and state.get("end_time") is not None:
        start, mode = int(state["end_time"]), INCREMENTAL
    url = config.url
    page_size_param = _configured(config.page_size_param, "page_size_param", config)
    records_path = _configured(config.records_path, "records_path", config)
    params = {**config.params, "start_time": str(start), page_size_param: str(config.page_size)}
    end_time = None
    while True:
        pager.next_request(json.dumps([url, sorted(params.items())]), "`next_page` link")
        payload = pager.json(client.request("GET", url, params=params))
        records = pager.records(payload, records_path)
        at = f"{where} page {pager.number}"
        if not isinstance(payload, dict):
            raise client.fail(f"{at}: the response has no 'end_of_stream': not a Zendesk incremental export page")
        for name in ("end_of_stream", "end_time"):
            if name not in payload:
                raise client.fail(f"{at}: the response has no {name!r}: not a Zendesk incremental export page")
        eos, end_time = payload["end_of_stream"], payload["end_time"]
        if not isinstance(eos, bool):
            raise client.fail(f"{at}: `end_of_stream` is a {json_type(eos)}, expected true or false")
        if eos and end_time is None:
            end_time = start  # nothing new: keep the cursor
        if isinstance(end_time, bool) or not isinstance(end_time, int):
            raise client.fail(f"{at}: `end_time` is a {json_type(end_time)}, expected a Unix time in seconds")
        pager.check_keys(batch.add_page(pager.number, records))
        if eos:
            break
        link = payload.get("next_page")
        if not isinstance(link, str) or not link:
            raise client.fail(f"{at}: `end_of_stream` is false but there is no `next_page` link")
        url, params = client.check_link(_absolute(config.url, link), at), {}
    return Fetched(mode, batch, pager.number, pager.requests, cursor={"end_time": end_time})


# --------------------------------------------------------------------------- CSV export


def fetch_csv(client: HttpClient, spec: SourceSpec, config: HttpSource, state: dict | None) -> Fetched:
    """One CSV export; with a stored ETag / Last-Modified the request is conditional (304: unchanged)."""
    where = describe("GET", config.url)
    headers = {}
    if state and state.get("etag"):
        headers["If-None-Match"] = state["etag"]
    if state and state.get("last_modified"):
        headers["If-Modified-Since"] = state["last_modified"]
    response = client.request(
        "GET", config.url, params=config.params or None, headers=headers, ok_statuses=frozenset({200, 304})
    )
    if response.status == 304:
        if state is None:
            raise client.fail(
                f"{where} page 1: HTTP 304 Not Modified to a request that was not conditional "
                "(no stored ETag or Last-Modified)"
            )
        return Fetched(
            NOT_MODIFIED, None, 1, response.attempts, cursor={k: state.get(k) for k in ("etag", "last_modified")}
        )
    at = f"{where} page 1"
    content_type = response.headers.get("Content-Type", "none").split(";")[0].strip().lower()
    if content_type in ("text/html", "application/json", "application/xml", "text/xml"):
        raise client.fail(f"{at}: expected a CSV export, got Content-Type {content_type} (a login or error page?)")
    if not response.body.strip():
        raise client.fail(f"{at}: empty response body, expected a CSV export with a header row")
    try:
        text = response.body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise client.fail(f"{at}: the CSV export is not UTF-8 (byte {exc.start})") from None
    try:
        frame = pl.read_csv(io.StringIO(text), infer_schema=False)
    except pl.exceptions.PolarsError as exc:
        raise client.fail(f"{at}: cannot parse the CSV export: {str(exc).splitlines()[0][:200]}") from None
    headers_seen = set(frame.columns)
    missing = [f"{config.fields[c]!r} (column {c})" for c in spec.columns if config.fields[c] not in headers_seen]
    if missing:
        shown = ", ".join(repr(h[:40]) for h in frame.columns[:20])
        raise client.fail(f"{at}: the CSV export has no column(s) {', '.join(missing)}; its header is: {shown}")
    records = frame.select([pl.col(config.fields[c]).alias(c) for c in spec.columns]).to_dicts()
    # the header mapping is applied above, so the batch maps each column to itself
    batch = RecordBatch(spec, {c: c for c in spec.columns}, where, _required(spec, config), client.fail)
    batch.add_page(1, records)
    cursor = {"etag": response.headers.get("ETag"), "last_modified": response.headers.get("Last-Modified")}
    return Fetched(FULL, batch, 1, response.attempts, cursor=cursor)


FETCHERS = {GENERIC: fetch_generic, HUBSPOT: fetch_hubspot, ZENDESK: fetch_zendesk, CSV_EXPORT: fetch_csv}
