"""HTTP source connectors: pull a source's API into its landing export, all or nothing.

`sync_source(landing, spec)` is called by a source asset before it reads the landing zone. For a
`kind: file` source (the default) it does nothing. For an HTTP source it:

1. loads `config/sources.yaml` (validated) and the source's cursor state;
2. fetches every page into memory through the preset's protocol, checking every record against
   the landing contract (see `presets`, `records`, `client`);
3. only then writes: a full fetch replaces the stored records, an incremental fetch is merged
   into them by the source key (the new version of a record replaces the stored one, so re-runs
   never duplicate rows); the landing export is replaced atomically, then the cursor state.

Any failure in 1-2 raises `ConnectorError` before anything is written: the previous landing
export and cursor stay as they were, and a later retry fetches exactly what a clean run would.
"""

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import requests

from cs_assets.sources.contract import SourceSpec
from cs_assets.sources.normalise import SourceDataError
from cs_assets.sources.source_config import CSV_EXPORT, SourcesConfig, load_sources_config
from resources.connectors.client import ConnectorError, HttpClient, describe
from resources.connectors.presets import FETCHERS, FULL, INCREMENTAL, NOT_MODIFIED, Fetched
from resources.connectors.store import RawStore

__all__ = ["ConnectorError", "SyncResult", "state_dir_for", "sync_source"]

KEPT = "nothing was written: the stored data and cursor are unchanged"


@dataclass(frozen=True)
class SyncResult:
    source: str
    preset: str
    endpoint: str  # "GET /path": never the host's query or credentials
    mode: str  # full | incremental | not_modified
    pages: int
    requests: int
    records_fetched: int
    rows_new: int
    rows_updated: int
    rows_stored: int
    wrote: bool
    cursor: str | None

    def metadata(self) -> dict:
        return {
            "http_preset": self.preset,
            "http_endpoint": self.endpoint,
            "http_mode": self.mode,
            "http_pages": self.pages,
            "http_requests": self.requests,
            "http_records_fetched": self.records_fetched,
            "http_records_new": self.rows_new,
            "http_records_updated": self.rows_updated,
            "http_cursor": self.cursor or "none",
        }

    def summary(self) -> str:
        change = (
            f"{self.rows_new} new and {self.rows_updated} updated rows, {self.rows_stored} stored"
            if self.wrote
            else f"no change, {self.rows_stored} rows stored"
        )
        return (
            f"source {self.source}: {self.mode} fetch {self.endpoint} ({self.preset}): {self.pages} page(s), "
            f"{self.requests} request(s), {self.records_fetched} record(s); {change}"
        )


def state_dir_for(landing) -> Path:
    explicit = getattr(landing, "state_dir", "") or ""
    return Path(explicit) if explicit else Path(landing.landing_dir).parent / "state"


def sync_source(
    landing,
    spec: SourceSpec,
    *,
    config: SourcesConfig | None = None,
    session: requests.Session | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    environ: Mapping[str, str] | None = None,
) -> SyncResult | None:
    """Pull an HTTP source into the landing zone (all or nothing); None for a file source."""
    config = config or load_sources_config(getattr(landing, "sources_config", "") or None)
    http = config.http(spec.name)
    if http is None:
        return None
    client = HttpClient(http, session=session, sleep=sleep, clock=clock, environ=environ)
    store = RawStore(landing, spec, state_dir_for(landing))
    with store.lock(client.fail):
        store.recover()
        state = store.load_state()
        if state is not None and (state.get("identity") != http.identity() or not store.has_data()):
            state = None  # the endpoint or mapping changed, or the data is gone: fetch everything
        try:
            fetched = FETCHERS[http.preset](client, spec, http, state)
            plan = _plan(client, store, spec, http, state, fetched)
        except ConnectorError as exc:
            raise ConnectorError(f"{exc}; {KEPT}") from None
        except Exception as exc:  # a bug or an unexpected library error: still name no secret
            raise ConnectorError(client.redact(f"source {spec.name}: {type(exc).__name__}: {exc}; {KEPT}")) from None
        frame, new_state, result = plan
        if result.wrote:
            store.write(frame)
        if new_state != {k: v for k, v in (state or {}).items() if k != "version"}:
            store.save_state(new_state)
    return result


def _key_columns(spec: SourceSpec) -> tuple[list[pl.Expr], list[str]]:
    names = [f"__key{i}" for i in range(len(spec.key))]
    exprs = [
        (pl.col(k).str.strip_chars() if spec.columns[k] == pl.String else pl.col(k)).alias(n)
        for k, n in zip(spec.key, names, strict=True)
    ]
    return exprs, names


def _plan(client: HttpClient, store: RawStore, spec: SourceSpec, http, state: dict | None, fetched: Fetched):
    """(frame to store, new cursor state, result) from what was fetched; raises before any write."""
    endpoint = describe("GET", http.url)
    previous_types = (state or {}).get("field_types", {})
    new_state = {
        "source": spec.name,
        "preset": http.preset,
        "identity": http.identity(),
        "cursor": (state or {}).get("cursor"),
        "field_types": previous_types,
        **fetched.cursor,
    }
    if fetched.mode == NOT_MODIFIED:
        stored = store.read().height
        new_state = {**(state or {}), **new_state}
        new_state.pop("version", None)
        return (
            None,
            new_state,
            SyncResult(
                spec.name,
                http.preset,
                endpoint,
                NOT_MODIFIED,
                fetched.pages,
                fetched.requests,
                0,
                0,
                0,
                stored,
                False,
                new_state.get("cursor") or new_state.get("etag"),
            ),
        )
    batch = fetched.batch
    if batch is None:
        # only a "not modified" answer comes without records, and it returned above
        raise ValueError(f"a {fetched.mode} fetch returned no batch of records")
    endpoint = batch.where
    batch.check_fields_seen()
    batch.check_types_against(previous_types)
    new_state["field_types"] = batch.observed_types(previous_types)
    fresh = batch.to_frame()
    key_exprs, key_names = _key_columns(spec)
    fresh = fresh.with_columns(key_exprs)
    if http.preset != CSV_EXPORT:
        # the same record on two pages (an inclusive boundary): its last version wins
        fresh = fresh.unique(subset=key_names, keep="last", maintain_order=True)
    if http.incremental is not None and fresh.height:
        newest = fresh.select(pl.col(http.incremental.field).max()).item()
        if newest is not None:
            text = newest.strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")
            previous = new_state.get("cursor")
            new_state["cursor"] = max(text, previous) if previous else text

    old = None
    if store.has_data():
        try:
            old = store.read().with_columns(key_exprs)
        except SourceDataError as exc:
            if fetched.mode == INCREMENTAL:
                raise client.fail(f"the stored data cannot be read to merge into: {exc}") from None
    if fetched.mode == FULL:
        if fresh.height == 0:
            raise client.fail(
                f"{endpoint}: the API returned no records on a full fetch; refusing to replace the stored data with nothing"
            )
        frame = fresh
        rows_new = fresh.height if old is None else fresh.join(old.select(key_names), on=key_names, how="anti").height
        changed = old is None or not frame.drop(key_names).equals(old.drop(key_names), null_equal=True)
        rows_updated = 0 if not changed else fresh.height - rows_new
    else:
        assert old is not None
        columns = list(spec.columns)
        # records that are byte-for-byte what is stored already change nothing
        changed_rows = fresh.join(old.select(columns), on=columns, how="anti", nulls_equal=True)
        rows_new = changed_rows.join(old.select(key_names), on=key_names, how="anti").height
        rows_updated = changed_rows.height - rows_new
        changed = changed_rows.height > 0
        frame = (
            pl.concat([old.join(changed_rows.select(key_names), on=key_names, how="anti"), changed_rows])
            if changed
            else old
        )
    frame = frame.drop(key_names)
    result = SyncResult(
        spec.name,
        http.preset,
        endpoint,
        fetched.mode,
        fetched.pages,
        fetched.requests,
        len(batch),
        rows_new if changed else 0,
        rows_updated if changed else 0,
        frame.height,
        changed,
        new_state.get("cursor")
        or (str(new_state["end_time"]) if new_state.get("end_time") is not None else None)
        or new_state.get("etag"),
    )
    return frame, new_state, result
