"""What the HTTP tests share: the test token, a demo-API sources config, readers of what a sync
stored or a run failed on, and a webhook server on 127.0.0.1."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import polars as pl
import yaml

from cs_assets import settings
from cs_assets.demo.api_server import SOURCES, DemoApi, demo_sources_config
from cs_assets.sources.source_config import (
    parse_sources_config,
)
from resources.connectors import sync_source
from resources.landing import LandingZoneResource

TOKEN = "tok-9f8e7d6c5b4a-SECRET"
TOKEN_ENV = "CS_TEST_API_TOKEN"
FAST_RETRY = {"max_attempts": 3, "backoff_seconds": 0.01, "max_backoff_seconds": 0.05, "max_total_seconds": 3}


# --------------------------------------------------------------------------- shared helpers


def demo_config(url: str, **overrides: dict) -> dict:
    """The demo-api config with small pages (several per source) and fast retries."""
    config = yaml.safe_load(demo_sources_config(url, TOKEN_ENV))
    small_pages = {"crm_accounts": 25, "support_tickets": 200, "usage_events": 10_000, "engagement_events": 300}
    for name, entry in config["sources"].items():
        entry["retry"] = dict(FAST_RETRY)
        entry["timeout_seconds"] = 5
        if name in small_pages:
            entry["page_size"] = small_pages[name]
    for name, changes in overrides.items():
        for key, value in changes.items():
            if value is None:
                config["sources"][name].pop(key, None)
            else:
                config["sources"][name][key] = value
    return config


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def stored_bytes(home: Path) -> dict[str, bytes]:
    """Every file of the landing zone and the cursor state, by relative path."""
    files = {}
    for top in (settings.landing_dir(home), home / "state"):
        if top.exists():
            for path in sorted(top.rglob("*")):
                if path.is_file() and not path.name.endswith(".lock"):
                    files[str(path.relative_to(home))] = path.read_bytes()
    return files


def landing_frame(home: Path, source: str) -> pl.DataFrame:
    landing = LandingZoneResource(landing_dir=str(settings.landing_dir(home)))
    return landing.read(SOURCES[source]).collect()


def sync(home: Path, source: str, config: dict, **kwargs):
    landing = LandingZoneResource(landing_dir=str(settings.landing_dir(home)))
    parsed = parse_sources_config(config, "<test config>")
    return sync_source(landing, SOURCES[source], config=parsed, environ={TOKEN_ENV: TOKEN}, **kwargs)


def new_rows(api: DemoApi, source: str, count: int, prefix: str) -> pl.DataFrame:
    """`count` new records copied from existing ones, with new keys, stamped from the newest time on."""
    spec = SOURCES[source]
    frame = api.data(source)
    field = "received_at" if source == "usage_events" else spec.timestamp_column
    newest = frame[field].max()
    # one second apart from the newest on: no two copies are the same activity at the same
    # instant (which gx_natural_key_unique rightly flags), and all are at or after the cursor
    rows = frame.head(count).with_columns((pl.lit(newest) + pl.duration(seconds=pl.int_range(pl.len()))).alias(field))
    key = spec.key[0]
    if spec.columns[key] == pl.Int64:
        return rows.with_columns((pl.col(key) + 9_000_000).alias(key))
    return rows.with_columns((pl.lit(prefix) + pl.col(key)).alias(key))


def failures(result: dg.ExecuteInProcessResult) -> dict[str, str]:
    """step key -> the message of the exception that failed it."""
    found = {}
    for event in result.all_events:
        if event.event_type_value == "STEP_FAILURE":
            error = event.step_failure_data.error
            cause = error.cause if error.cause is not None else error
            # "package.module.ConnectorError: source x ..." -> "source x ..."
            head, _, rest = cause.message.strip().partition(": ")
            found[event.step_key] = rest if rest and "." in head and " " not in head else cause.message.strip()
    return found


class Webhook:
    """A Slack-like webhook on 127.0.0.1: answers from a script of status codes (then 200), after
    `delay` seconds, and logs every request as (path, Idempotency-Key, body)."""

    def __init__(self, script: list[int] | None = None, retry_after: str | None = None, delay: float = 0.0):
        self.script, self.retry_after, self.delay = list(script or []), retry_after, delay
        self.requests: list[tuple[str, str | None, dict]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                hook.requests.append((self.path, self.headers.get("Idempotency-Key"), body))
                status = hook.script.pop(0) if hook.script else 200
                time.sleep(hook.delay)
                self.send_response(status)
                if status == 429 and hook.retry_after is not None:
                    self.send_header("Retry-After", hook.retry_after)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/services/T000/B000/SECRETTOKEN"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def posts(self) -> list[tuple[str | None, dict]]:
        """(Idempotency-Key, body) of every request, in order."""
        return [(key, body) for _, key, body in self.requests]

    def close(self):
        self.server.shutdown()
        self.server.server_close()
