"""`cs-health demo-api`: the demo landing data served over HTTP through the connector protocols.

A stdlib `ThreadingHTTPServer` on 127.0.0.1 that stands in for the remote systems, so the HTTP
path can run end to end without accounts anywhere:

- HubSpot CRM v3 style (bearer token): `GET /crm/v3/objects/companies` (`limit` <= 100,
  `after`, `properties`) and `POST /crm/v3/objects/companies/search` (a `GTE` filter on
  `hs_lastmodifieddate` in epoch milliseconds, ascending sort): `results` + `paging.next.after`;
- Zendesk incremental export style (basic auth, the token as password):
  `GET /api/v2/incremental/tickets.json?start_time=<unix>&per_page=<n>`: `tickets`, `end_time`,
  `next_page`, `end_of_stream`; records are `updated_at >= start_time`, ticket ids are `id`;
- a spreadsheet CSV export (no auth, like a published sheet):
  `GET /spreadsheets/d/demo-surveys/export?format=csv`, with an `ETag` (`If-None-Match` -> 304);
- a generic JSON REST API (bearer token) for every source: `GET /api/v1/<source>` with `limit`,
  `cursor` or `offset`, and `updated_since` (ISO-8601): `data`, `next_cursor`, `links.next`.
  `updated_since` compares `received_at` for usage events, the source's timestamp otherwise.

It also takes the CRM write-back, and keeps what it was sent in `crm_properties`:

- HubSpot CRM v3 batch update (bearer token): `POST /crm/v3/objects/companies/batch/update`,
  `{"inputs": [{"id", "idProperty", "properties"}]}`, at most 100 inputs; an id that is no CRM
  account is an `OBJECT_NOT_FOUND` error of a 207 Multi-Status answer, the others are applied;
- a generic JSON endpoint (bearer token): `POST /api/v1/crm_writeback`, `{"records": [{"id",
  "properties"}]}`, answered with the same `errors` list.

Each source is served from its cleaned landing frame (one record per key). Tests change the
served data with `upsert` and inject faults with the `fault` hook: a function of the request
(`DemoRequest`) returning a `Fault` (status, body, headers, delay, trickled body, a dropped
connection, or a transform of the JSON payload) or None.
"""

import base64
import binascii
import datetime as dt
import hashlib
import json
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import polars as pl

from cs_assets.deployment import DEFAULT_CONFIG_DIR, FILES, load_contract
from cs_assets.sources.normalise import clean

# the demo product's sources: the shipped contract (config/sources.yaml)
SOURCES = load_contract(DEFAULT_CONFIG_DIR / FILES["sources"]).sources

HOST = "127.0.0.1"
HUBSPOT_PATH = "/crm/v3/objects/companies"
ZENDESK_PATH = "/api/v2/incremental/tickets.json"
CSV_PATH = "/spreadsheets/d/demo-surveys/export"
GENERIC_PREFIX = "/api/v1/"
HUBSPOT_BATCH_PATH = HUBSPOT_PATH + "/batch/update"
GENERIC_WRITEBACK_PATH = GENERIC_PREFIX + "crm_writeback"
HUBSPOT_BATCH_LIMIT = 100
HUBSPOT_SOURCE, ZENDESK_SOURCE, CSV_SOURCE = "crm_accounts", "support_tickets", "survey_responses"
ZENDESK_USER = "demo@example.com/token"
SINCE_FIELD = {"usage_events": "received_at"}
TOKEN_ENV = "CS_DEMO_API_TOKEN"


@dataclass(frozen=True)
class DemoRequest:
    number: int  # 1-based count of the requests this server received
    method: str
    path: str
    query: dict[str, str]
    body: object | None
    sent_credentials: bool  # an Authorization header was present (its value is never kept)


@dataclass
class Fault:
    status: int | None = None  # answer with this status instead of the data
    body: bytes | None = None  # answer with these bytes instead of the data
    headers: dict[str, str] = field(default_factory=dict)
    reason: str | None = None  # the status line's reason phrase
    content_type: str | None = None
    delay: float = 0.0  # seconds to wait before answering
    trickle: float = 0.0  # seconds to wait between 64-byte pieces of the body
    drop: bool = False  # close the connection without answering
    transform: Callable[[object], object] | None = None  # edit the JSON payload before it is sent


def since_field(source: str) -> str:
    return SINCE_FIELD.get(source, SOURCES[source].timestamp_column)


def _iso(frame: pl.DataFrame) -> pl.DataFrame:
    """Timestamps as ISO-8601 'Z' text and dates as YYYY-MM-DD, the way JSON APIs send them."""
    return frame.with_columns(
        [
            pl.col(c).dt.to_string("%Y-%m-%dT%H:%M:%S%.fZ")
            if isinstance(t, pl.Datetime)
            else pl.col(c).dt.to_string("%Y-%m-%d")
            for c, t in frame.schema.items()
            if isinstance(t, pl.Datetime) or t == pl.Date
        ]
    )


def load_landing(landing_dir: Path) -> dict[str, pl.DataFrame]:
    from resources.landing import LandingZoneResource

    landing = LandingZoneResource(landing_dir=str(landing_dir))
    return {name: clean(spec, landing.read(spec)) for name, spec in SOURCES.items()}


class DemoApi:
    """The demo API server; `with DemoApi(...) as api:` serves on `api.url` until the block ends."""

    def __init__(self, data: dict[str, pl.DataFrame], token: str | None = None, port: int = 0):
        self.token = token
        self.port = port
        self.fault: Callable[[DemoRequest], Fault | None] | None = None
        self.requests: list[DemoRequest] = []
        self.crm_properties: dict[str, dict[str, str]] = {}  # what the write-back set, per account
        self._lock = threading.Lock()
        self._data: dict[str, pl.DataFrame] = {}
        for source, frame in data.items():
            self.set_data(source, frame)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def from_landing(cls, landing_dir: Path, token: str | None = None, port: int = 0) -> "DemoApi":
        return cls(load_landing(Path(landing_dir)), token=token, port=port)

    # ------------------------------------------------------------------ data

    def set_data(self, source: str, frame: pl.DataFrame) -> None:
        spec = SOURCES[source]
        ordered = frame.select(list(spec.columns)).sort([since_field(source), *spec.key], maintain_order=True)
        with self._lock:
            self._data[source] = ordered

    def upsert(self, source: str, rows: pl.DataFrame) -> None:
        """New or changed records (typed, the contract's columns): the new version of a key wins."""
        spec = SOURCES[source]
        current = self.data(source)
        kept = current.join(rows.select(spec.key), on=list(spec.key), how="anti")
        self.set_data(source, pl.concat([kept, rows.select(list(spec.columns))]))

    def data(self, source: str) -> pl.DataFrame:
        with self._lock:
            return self._data[source]

    # ------------------------------------------------------------------ server

    @property
    def url(self) -> str:
        assert self._server is not None, "not started"
        return f"http://{HOST}:{self._server.server_address[1]}"

    def start(self) -> "DemoApi":
        handler = type("DemoHandler", (_Handler,), {"api": self})
        self._server = ThreadingHTTPServer((HOST, self.port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="demo-api", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "DemoApi":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ protocols

    def _bearer_ok(self, headers) -> bool:
        return self.token is None or secrets.compare_digest(headers.get("Authorization", ""), f"Bearer {self.token}")

    def _basic_ok(self, headers) -> bool:
        if self.token is None:
            return True
        value = headers.get("Authorization", "")
        if not value.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(value[6:], validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return bool(user) and secrets.compare_digest(password, self.token)

    def route(self, method: str, path: str, query: dict[str, str], body: object, headers) -> tuple[int, dict, object]:
        """(status, headers, JSON payload or bytes) for one request."""
        if path == HUBSPOT_PATH and method == "GET":
            return self._hubspot(query, None) if self._bearer_ok(headers) else _unauthorized()
        if path == HUBSPOT_PATH + "/search" and method == "POST":
            return self._hubspot(query, body) if self._bearer_ok(headers) else _unauthorized()
        if path == HUBSPOT_BATCH_PATH and method == "POST":
            return self._writeback(body, "inputs") if self._bearer_ok(headers) else _unauthorized()
        if path == GENERIC_WRITEBACK_PATH and method == "POST":
            return self._writeback(body, "records") if self._bearer_ok(headers) else _unauthorized()
        if path == ZENDESK_PATH and method == "GET":
            return self._zendesk(query) if self._basic_ok(headers) else _unauthorized()
        if path == CSV_PATH and method == "GET":
            return self._csv(headers)
        if path.startswith(GENERIC_PREFIX) and path[len(GENERIC_PREFIX) :] in SOURCES and method == "GET":
            return (
                self._generic(path[len(GENERIC_PREFIX) :], path, query) if self._bearer_ok(headers) else _unauthorized()
            )
        return 404, {}, {"error": "not found", "path": path}

    def _writeback(self, body: object, key: str) -> tuple[int, dict, object]:
        """Apply a batch of CRM property updates to the known accounts; report the unknown ids."""
        inputs = body.get(key) if isinstance(body, dict) else None
        if not isinstance(inputs, list) or not inputs:
            return 400, {}, {"status": "error", "category": "VALIDATION_ERROR", "message": f"`{key}` must be a list"}
        if key == "inputs" and len(inputs) > HUBSPOT_BATCH_LIMIT:
            return (
                400,
                {},
                {"status": "error", "category": "VALIDATION_ERROR", "message": f"at most {HUBSPOT_BATCH_LIMIT} inputs"},
            )
        known = set(self.data(HUBSPOT_SOURCE)["account_id"].to_list())
        results, missing = [], []
        for item in inputs:
            record_id = item.get("id") if isinstance(item, dict) else None
            props = item.get("properties") if isinstance(item, dict) else None
            id_property = item.get("idProperty", "account_id") if isinstance(item, dict) else None
            if not isinstance(record_id, str) or not isinstance(props, dict) or id_property != "account_id":
                missing.append(str(record_id))
                continue
            if record_id not in known:
                missing.append(record_id)
                continue
            with self._lock:
                self.crm_properties.setdefault(record_id, {}).update({str(k): str(v) for k, v in props.items()})
            results.append({"id": record_id, "properties": props})
        answer: dict = {"status": "COMPLETE", "results": results}
        if not missing:
            return 200, {}, answer
        error = {"status": "error", "category": "OBJECT_NOT_FOUND", "message": "could not find the objects"}
        answer.update(numErrors=1, errors=[{**error, "context": {"ids": missing}}])
        return 207, {}, answer

    def _hubspot(self, query: dict[str, str], search: object) -> tuple[int, dict, object]:
        frame = self.data(HUBSPOT_SOURCE).sort("account_id")
        if search is not None:
            if not isinstance(search, dict):
                return 400, {}, {"status": "error", "message": "body must be a JSON object"}
            limit, after = _int(search.get("limit"), 10), _int(search.get("after"), 0)
            wanted = search.get("properties") or []
            for group in search.get("filterGroups", []):
                for flt in group.get("filters", []):
                    if flt.get("propertyName") != "hs_lastmodifieddate" or flt.get("operator") != "GTE":
                        return (
                            400,
                            {},
                            {"status": "error", "message": "demo API filters on hs_lastmodifieddate GTE only"},
                        )
                    since = dt.datetime.fromtimestamp(int(flt["value"]) / 1000, dt.UTC)
                    frame = frame.filter(pl.col("updated_at") >= since)
            frame = frame.sort(["updated_at", "account_id"])
            limit = min(limit, 200)
        else:
            limit, after = min(_int(query.get("limit"), 10), 100), _int(query.get("after"), 0)
            wanted = [p for p in query.get("properties", "").split(",") if p]
        page = _iso(frame.slice(after, limit))
        results = []
        for row in page.iter_rows(named=True):
            props = {
                "hs_object_id": row["account_id"],
                "hs_lastmodifieddate": row["updated_at"],
                "createdate": row["updated_at"],
            }
            props.update({k: None if v is None else str(v) for k, v in row.items()})
            results.append(
                {
                    "id": row["account_id"],
                    "properties": {k: props[k] for k in wanted if k in props}
                    if wanted
                    else {k: props[k] for k in ("hs_object_id", "createdate", "hs_lastmodifieddate")},
                    "createdAt": row["updated_at"],
                    "updatedAt": row["updated_at"],
                    "archived": False,
                }
            )
        payload: dict = {"results": results}
        if search is not None:
            payload = {"total": frame.height, **payload}
        if after + limit < frame.height:
            nxt = str(after + limit)
            payload["paging"] = {"next": {"after": nxt, "link": f"{self.url}{HUBSPOT_PATH}?after={nxt}"}}
        return 200, {}, payload

    def _zendesk(self, query: dict[str, str]) -> tuple[int, dict, object]:
        if "start_time" not in query:
            return 400, {}, {"error": "InvalidValue", "description": "start_time is required"}
        start, per_page = _int(query.get("start_time"), 0), min(_int(query.get("per_page"), 1000), 1000)
        since = dt.datetime.fromtimestamp(start, dt.UTC)
        frame = self.data(ZENDESK_SOURCE).filter(pl.col("updated_at") >= since).head(per_page)
        eos = frame.height < per_page
        end_time = int(frame["updated_at"][-1].timestamp()) if frame.height else start
        tickets = _iso(frame).rename({"ticket_id": "id"}).to_dicts()
        next_page = f"{self.url}{ZENDESK_PATH}?{urlencode({'start_time': end_time, 'per_page': per_page})}"
        return (
            200,
            {},
            {
                "tickets": tickets,
                "count": len(tickets),
                "end_time": end_time,
                "next_page": next_page,
                "end_of_stream": eos,
            },
        )

    def _csv(self, headers) -> tuple[int, dict, object]:
        from resources.connectors.store import as_text

        buffer = as_text(self.data(CSV_SOURCE).sort("response_id")).write_csv().encode("utf-8")
        etag = '"' + hashlib.sha256(buffer).hexdigest()[:20] + '"'
        if headers.get("If-None-Match") == etag:
            return 304, {"ETag": etag}, b""
        return 200, {"ETag": etag, "Content-Type": "text/csv; charset=utf-8"}, buffer

    def _generic(self, source: str, path: str, query: dict[str, str]) -> tuple[int, dict, object]:
        frame = self.data(source)
        if query.get("updated_since"):
            try:
                since = dt.datetime.fromisoformat(query["updated_since"].replace("Z", "+00:00"))
            except ValueError:
                return 400, {}, {"error": "updated_since must be ISO-8601"}
            frame = frame.filter(pl.col(since_field(source)) >= since)
        limit = min(_int(query.get("limit"), 100), 10_000)
        if "cursor" in query:
            try:
                start = int(base64.urlsafe_b64decode(query["cursor"].encode()).decode().removeprefix("o:"))
            except (ValueError, binascii.Error):
                return 400, {}, {"error": "bad cursor"}
        else:
            start = _int(query.get("offset"), 0)
        page = _iso(frame.slice(start, limit))
        payload: dict = {"data": page.to_dicts(), "next_cursor": None, "links": {"next": None}}
        if start + limit < frame.height:
            cursor = base64.urlsafe_b64encode(f"o:{start + limit}".encode()).decode()
            payload["next_cursor"] = cursor
            rest = {k: v for k, v in query.items() if k not in ("cursor", "offset")}
            payload["links"]["next"] = f"{self.url}{path}?{urlencode({**rest, 'cursor': cursor})}"
        return 200, {}, payload


def _int(value: object, default: int) -> int:
    # a query parameter, or any JSON value of a request body (a list or an object is no number)
    if value in (None, "") or not isinstance(value, (str, int, float)):
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _unauthorized() -> tuple[int, dict, object]:
    return (
        401,
        {"WWW-Authenticate": 'Bearer realm="demo"'},
        {"status": "error", "message": "Authentication credentials not found or invalid."},
    )


class _Handler(BaseHTTPRequestHandler):
    api: DemoApi
    server_version = "cs-health-demo-api/1"

    def log_message(self, format, *args):  # noqa: A002 - silent: the test output stays readable
        pass

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def _handle(self, method: str) -> None:
        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        api = self.api
        with api._lock:
            number = len(api.requests) + 1
            request = DemoRequest(number, method, parts.path, query, body, "Authorization" in self.headers)
            api.requests.append(request)
        fault = api.fault(request) if api.fault else None
        if fault and fault.delay:
            time.sleep(fault.delay)
        if fault and fault.drop:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        headers: dict
        payload: object  # JSON, or the bytes of a body
        if fault and (fault.status is not None or fault.body is not None):
            status, headers, payload = fault.status or 200, {}, fault.body if fault.body is not None else b""
        else:
            status, headers, payload = api.route(method, parts.path, query, body, self.headers)
            if fault and fault.transform and not isinstance(payload, bytes):
                payload = fault.transform(payload)
        if isinstance(payload, bytes):
            data, content_type = payload, headers.pop("Content-Type", "text/plain; charset=utf-8")
        else:
            data, content_type = json.dumps(payload).encode("utf-8"), "application/json; charset=utf-8"
        if fault:
            headers.update(fault.headers)
            content_type = fault.content_type or content_type
        self.send_response(status, fault.reason if fault and fault.reason else None)
        for name, value in headers.items():
            self.send_header(name, value)
        if status != 304:
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if status == 304:
            return
        try:
            if fault and fault.trickle:
                for i in range(0, len(data), 64):
                    self.wfile.write(data[i : i + 64])
                    self.wfile.flush()
                    time.sleep(fault.trickle)
            else:
                self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test)


def demo_sources_config(base_url: str, token_env: str = TOKEN_ENV) -> str:
    """A sources.yaml that pulls every demo source from a demo API at `base_url`: the shipped
    contract of each source, plus its HTTP keys."""
    import yaml

    document = yaml.safe_load((DEFAULT_CONFIG_DIR / FILES["sources"]).read_text(encoding="utf-8"))
    bearer = {"type": "bearer", "token_env": token_env}
    transport = {
        "crm_accounts": {
            "kind": "http",
            "preset": "hubspot_crm_v3",
            "base_url": base_url,
            "object": "companies",
            "auth": bearer,
            "page_size": 100,
            "incremental": {"property": "hs_lastmodifieddate", "field": "updated_at"},
        },
        "support_tickets": {
            "kind": "http",
            "preset": "zendesk_incremental",
            "base_url": base_url,
            "auth": {"type": "basic", "username": ZENDESK_USER, "password_env": token_env},
            "page_size": 1000,
            "incremental": {"start_time": 0},
            "fields": {"ticket_id": "id"},
        },
        "survey_responses": {"kind": "http", "preset": "csv_export", "url": f"{base_url}{CSV_PATH}?format=csv"},
        "usage_events": {
            "kind": "http",
            "preset": "generic_json",
            "base_url": base_url,
            "path": f"{GENERIC_PREFIX}usage_events",
            "auth": bearer,
            "records_path": "data",
            "pagination": {"type": "cursor", "cursor_path": "next_cursor", "cursor_param": "cursor"},
            "page_size": 10000,
            "page_size_param": "limit",
            "incremental": {"param": "updated_since", "field": "received_at", "format": "iso"},
        },
        "engagement_events": {
            "kind": "http",
            "preset": "generic_json",
            "base_url": base_url,
            "path": f"{GENERIC_PREFIX}engagement_events",
            "auth": bearer,
            "records_path": "data",
            "pagination": {"type": "next_link", "next_path": "links.next"},
            "page_size": 2000,
            "page_size_param": "limit",
            "incremental": {"param": "updated_since", "field": "occurred_at", "format": "iso"},
        },
        "csm_sentiment": {
            "kind": "http",
            "preset": "generic_json",
            "base_url": base_url,
            "path": f"{GENERIC_PREFIX}csm_sentiment",
            "auth": bearer,
            "records_path": "data",
            "pagination": {"type": "offset", "offset_param": "offset"},
            "page_size": 500,
            "page_size_param": "limit",
            "incremental": {"param": "updated_since", "field": "recorded_at", "format": "iso"},
        },
    }
    for name, keys in transport.items():
        document["sources"][name].update(keys)
    header = (
        f"# Written by `cs-health demo-api`: every source pulled from the demo API at {base_url}.\n"
        f"# The contract of each source is the shipped one; the token is read from ${token_env}, never written here.\n"
    )
    return header + yaml.safe_dump(document, sort_keys=False)


def demo_writeback_config(base_url: str, token_env: str = TOKEN_ENV, config_dir: Path = DEFAULT_CONFIG_DIR) -> str:
    """The deployment's crm_writeback.yaml with an endpoint: the demo API's HubSpot batch update."""
    import yaml

    document = yaml.safe_load((config_dir / FILES["writeback"]).read_text(encoding="utf-8"))
    document["endpoint"] = {
        "format": "hubspot_batch",
        "base_url": base_url,
        "auth": {"type": "bearer", "token_env": token_env},
    }
    header = (
        f"# Written by `cs-health demo-api`: the write-back of {config_dir} to the demo API at {base_url}.\n"
        f"# The token is read from ${token_env}, never written here.\n"
    )
    return header + yaml.safe_dump(document, sort_keys=False)


def new_token() -> str:
    return secrets.token_urlsafe(24)
