"""Fault injection for HTTP sources: each fault is a real graph run that must fail loudly.

Every case starts from a copy of one home whose five sources were pulled over HTTP and whose
scores were published. The demo API on 127.0.0.1 then misbehaves (HTTP errors, slow or
trickled responses, dropped connections, broken or repeating pages, bad records) or the config
is bad, and a real run through `tests.harness.run_graph` must:

- fail the source's step with exactly the expected message (source, method and URL path, status
  or problem, never the token); a bad config fails before any step runs, when the definitions
  load, with the file, key and problem;
- leave the published scores, every landing export and every cursor byte for byte unchanged;
- keep the token out of the run's event log.

The fault is in the source's step, so most cases run that step (and its checks) alone; the cases
in WHOLE_GRAPH run the whole scoring job, where the failed source must also stop the publish
while the other sources still load.

A last test checks that a retry after a failure mid-pagination stores exactly what a clean run
stores.
"""

import collections
import re
import shutil
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import dagster as dg
import polars as pl
import pytest

from cs_assets import settings
from cs_assets.demo.api_server import CSV_PATH, DemoApi, Fault, load_landing
from cs_assets.demo.generator import DEMO_AS_OF, generate_demo_data
from cs_assets.sources.source_config import SOURCES_CONFIG_ENV, SourceConfigError
from resources.connectors.store import as_text
from tests.harness import ACCOUNTS, SEED, published, run_graph
from tests.http_harness import (
    TOKEN,
    TOKEN_ENV,
    demo_config,
    failures,
    new_rows,
    stored_bytes,
    write_config,
)

ENGAGEMENT = "/api/v1/engagement_events"
USAGE = "/api/v1/usage_events"
TICKETS = "/api/v2/incremental/tickets.json"
SEARCH = "/crm/v3/objects/companies/search"
KEPT = "; nothing was written: the stored data and cursor are unchanged"
SECS = r"\d+\.\d"
CURSOR_PAGES = {"type": "cursor", "cursor_path": "next_cursor", "cursor_param": "cursor"}
# one fault at the first request and one in the middle of a pagination, through the whole job
WHOLE_GRAPH = {"http_500_on_every_attempt", "http_503_mid_pagination"}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The demo API and a home whose five sources came over HTTP and whose scores are published."""
    root = tmp_path_factory.mktemp("faults")
    source = settings.landing_dir(root / "source")
    generate_demo_data(source, accounts=ACCOUNTS, seed=SEED)
    original = load_landing(source)
    with DemoApi(original, token=TOKEN) as api, pytest.MonkeyPatch.context() as env:
        home = root / "baseline"
        settings.landing_dir(home).mkdir(parents=True)
        env.setenv(SOURCES_CONFIG_ENV, str(write_config(root / "sources.yaml", demo_config(api.url))))
        env.setenv(TOKEN_ENV, TOKEN)
        result = run_graph(home, DEMO_AS_OF)
        assert result.success, failures(result)
        yield api, original, home


@dataclass
class Ctx:
    api: DemoApi
    home: Path
    config: dict
    env: pytest.MonkeyPatch


def on(path: str, make: Callable, requests: set[int] | None = None):
    """A fault hook for requests to `path` (the n-th request to it, when `requests` is given)."""
    count = collections.Counter()

    def hook(request):
        if request.path != path:
            return None
        count[path] += 1
        if requests is None or count[path] in requests:
            return make(request)
        return None

    return hook


def more_engagement(ctx: Ctx, n: int = 900) -> None:
    """New activities at the cursor's time: the incremental run spans several pages of 300."""
    ctx.api.upsert("engagement_events", new_rows(ctx.api, "engagement_events", n, "NEW-"))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _first_page_records(store: dict):
    def make(request):
        if "cursor" not in request.query:
            return Fault(transform=lambda p: store.setdefault("page", p) and p)
        return Fault(transform=lambda p: {**p, "data": store["page"]["data"]})

    return make


def _set_record(page_key: str, index: int, field: str, value):
    def transform(payload):
        payload[page_key][index][field] = value
        return payload

    return transform


def _drop_field(page_key: str, index: int, field: str):
    def transform(payload):
        del payload[page_key][index][field]
        return payload

    return transform


def _all_records(page_key: str, field: str, value):
    def transform(payload):
        for record in payload[page_key]:
            record[field] = value
        return payload

    return transform


def _csv_without_score(api: DemoApi) -> bytes:
    return as_text(api.data("survey_responses").drop("score")).write_csv().encode()


@dataclass(frozen=True)
class Case:
    id: str
    source: str
    setup: Callable[[Ctx], None]
    message: str  # a regular expression the whole message must match


CASES = [
    Case(
        "http_500_on_every_attempt",
        "engagement_events",
        lambda c: setattr(c.api, "fault", on(ENGAGEMENT, lambda r: Fault(status=500))),
        rf"source engagement_events: GET {ENGAGEMENT}: HTTP 500 Internal Server Error; gave up after 3 attempt\(s\) in {SECS} s{KEPT}",
    ),
    Case(
        "http_503_mid_pagination",
        "engagement_events",
        lambda c: (more_engagement(c), setattr(c.api, "fault", on(ENGAGEMENT, lambda r: Fault(status=503), {3, 4, 5}))),
        rf"source engagement_events: GET {ENGAGEMENT}: HTTP 503 Service Unavailable; gave up after 3 attempt\(s\) in {SECS} s{KEPT}",
    ),
    Case(
        "http_429_retry_after_beyond_budget",
        "crm_accounts",
        lambda c: setattr(c.api, "fault", on(SEARCH, lambda r: Fault(status=429, headers={"Retry-After": "3600"}))),
        rf"source crm_accounts: POST {SEARCH}: HTTP 429 Too Many Requests; gave up after 1 attempt\(s\) in {SECS} s: "
        rf"the server asked to retry after 3600 s, waiting 3600 s more would exceed the retry budget of 3 s{KEPT}",
    ),
    Case(
        "http_5xx_reason_echoes_the_token",
        "usage_events",
        lambda c: setattr(c.api, "fault", on(USAGE, lambda r: Fault(status=599, reason=f"bad token {TOKEN}"))),
        rf"source usage_events: GET {USAGE}: HTTP 599 bad token \*\*\*; gave up after 3 attempt\(s\) in {SECS} s{KEPT}",
    ),
    Case(
        "http_401_wrong_token",
        "usage_events",
        lambda c: c.env.setenv(TOKEN_ENV, "not-the-token"),
        rf"source usage_events: GET {USAGE}: HTTP 401 Unauthorized: check the token in \${TOKEN_ENV}{KEPT}",
    ),
    Case(
        "token_variable_not_set",
        "crm_accounts",
        lambda c: c.env.delenv(TOKEN_ENV),
        rf"source crm_accounts: auth: environment variable {TOKEN_ENV} \(bearer token\) is not set or empty{KEPT}",
    ),
    Case(
        "http_404_wrong_path",
        "engagement_events",
        lambda c: c.config["sources"]["engagement_events"].update(path="/api/v1/engagement"),
        rf"source engagement_events: GET /api/v1/engagement: HTTP 404 Not Found{KEPT}",
    ),
    Case(
        "slow_response_times_out",
        "engagement_events",
        lambda c: (
            # margins of several times the timeout: a loaded machine must not turn one case into the other
            c.config["sources"]["engagement_events"].update(timeout_seconds=1.0),
            setattr(c.api, "fault", on(ENGAGEMENT, lambda r: Fault(delay=5.0))),
        ),
        rf"source engagement_events: GET {ENGAGEMENT}: no response within the timeout of 1 s; gave up after 3 attempt\(s\) in {SECS} s{KEPT}",
    ),
    Case(
        "trickled_body_times_out",
        "support_tickets",
        lambda c: (
            c.config["sources"]["support_tickets"].update(timeout_seconds=1.0),
            setattr(c.api, "fault", on(TICKETS, lambda r: Fault(trickle=0.25))),
        ),
        rf"source support_tickets: GET {TICKETS}: the response body did not arrive within the timeout of 1 s; "
        rf"gave up after 3 attempt\(s\) in {SECS} s{KEPT}",
    ),
    Case(
        "connection_dropped",
        "support_tickets",
        lambda c: setattr(c.api, "fault", on(TICKETS, lambda r: Fault(drop=True))),
        rf"source support_tickets: GET {TICKETS}: connection failed \(127\.0\.0\.1:\d+; ConnectionError\); gave up after 3 attempt\(s\) in {SECS} s{KEPT}",
    ),
    Case(
        "connection_refused",
        "engagement_events",
        lambda c: c.config["sources"]["engagement_events"].update(base_url=f"http://127.0.0.1:{closed_port()}"),
        rf"source engagement_events: GET {ENGAGEMENT}: connection refused \(127\.0\.0\.1:\d+; ConnectionError\); gave up after 3 attempt\(s\) in {SECS} s{KEPT}",
    ),
    Case(
        "malformed_json_on_page_2",
        "engagement_events",
        lambda c: (
            more_engagement(c),
            setattr(
                c.api,
                "fault",
                on(
                    ENGAGEMENT,
                    lambda r: Fault(body=b'{"data": [{"activity_id": ', content_type="application/json"),
                    {2},
                ),
            ),
        ),
        rf"source engagement_events: GET {ENGAGEMENT} page 2: response is not valid JSON \(Content-Type application/json\): "
        rf"Expecting value at line 1 column 27{KEPT}",
    ),
    Case(
        "empty_response_body",
        "engagement_events",
        lambda c: setattr(c.api, "fault", on(ENGAGEMENT, lambda r: Fault(body=b"", content_type="application/json"))),
        rf"source engagement_events: GET {ENGAGEMENT} page 1: empty response body \(HTTP 200\), expected JSON{KEPT}",
    ),
    Case(
        "missing_records_path",
        "engagement_events",
        lambda c: setattr(
            c.api,
            "fault",
            on(
                ENGAGEMENT,
                lambda r: Fault(
                    transform=lambda p: {"items": p["data"], "next_cursor": p["next_cursor"], "links": p["links"]}
                ),
            ),
        ),
        rf"source engagement_events: GET {ENGAGEMENT} page 1: the response has no 'data' \(records_path\); "
        rf"it has: 'items', 'next_cursor', 'links'{KEPT}",
    ),
    Case(
        "field_changed_type_since_last_sync",
        "support_tickets",
        lambda c: setattr(
            c.api, "fault", on(TICKETS, lambda r: Fault(transform=_all_records("tickets", "csat_score", "5")))
        ),
        rf"source support_tickets: GET {TICKETS} page 1 record 1: field 'csat_score' \(column csat_score\) changed type "
        rf"since the last sync: it was a number, now a string{KEPT}",
    ),
    Case(
        "value_does_not_parse",
        "engagement_events",
        lambda c: (
            more_engagement(c, 5),
            setattr(
                c.api,
                "fault",
                on(ENGAGEMENT, lambda r: Fault(transform=_set_record("data", 1, "occurred_at", "yesterday"))),
            ),
        ),
        rf"source engagement_events: GET {ENGAGEMENT} page 1: column 'occurred_at' record 2: cannot read 'yesterday' "
        rf"as an ISO-8601 timestamp with a UTC offset, e.g. 2026-10-31T08:00:00\+00:00{KEPT}",
    ),
    Case(
        "object_in_a_scalar_field",
        "usage_events",
        lambda c: setattr(
            c.api, "fault", on(USAGE, lambda r: Fault(transform=_set_record("data", 0, "account_id", {"id": 1})))
        ),
        rf"source usage_events: GET {USAGE} page 1 record 1: field 'account_id' \(column account_id\) is an object, "
        rf"expected a value of type String{KEPT}",
    ),
    Case(
        "record_without_its_key",
        "engagement_events",
        lambda c: (
            more_engagement(c, 5),
            setattr(c.api, "fault", on(ENGAGEMENT, lambda r: Fault(transform=_drop_field("data", 2, "activity_id")))),
        ),
        rf"source engagement_events: GET {ENGAGEMENT} page 1 record 3: required field 'activity_id' \(column activity_id\) is missing{KEPT}",
    ),
    Case(
        "cursor_repeats",
        "engagement_events",
        lambda c: (
            more_engagement(c),
            c.config["sources"]["engagement_events"].update(pagination=CURSOR_PAGES),
            setattr(
                c.api,
                "fault",
                on(
                    ENGAGEMENT,
                    lambda r: Fault(transform=lambda p: {**p, "next_cursor": r.query.get("cursor", p["next_cursor"])}),
                ),
            ),
        ),
        rf"source engagement_events: GET {ENGAGEMENT} page 3: the page cursor repeats the one of page 2; "
        rf"the API is paginating in a loop{KEPT}",
    ),
    Case(
        "next_link_points_back",
        "engagement_events",
        lambda c: (
            more_engagement(c),
            setattr(
                c.api,
                "fault",
                on(
                    ENGAGEMENT,
                    lambda r: Fault(
                        transform=lambda p: {
                            **p,
                            "links": {
                                "next": f"{c.api.url}{r.path}?{urlencode(r.query)}"
                                if "cursor" in r.query
                                else p["links"]["next"]
                            },
                        }
                    ),
                ),
            ),
        ),
        rf"source engagement_events: GET {ENGAGEMENT} page 3: the next-page link repeats the one of page 2; "
        rf"the API is paginating in a loop{KEPT}",
    ),
    Case(
        "page_repeats_with_a_new_cursor",
        "engagement_events",
        lambda c: (more_engagement(c), setattr(c.api, "fault", on(ENGAGEMENT, _first_page_records({})))),
        rf"source engagement_events: GET {ENGAGEMENT} page 2: returned exactly the records of page 1; "
        rf"the API ignored the page cursor{KEPT}",
    ),
    Case(
        "no_records_on_a_full_fetch",
        "engagement_events",
        lambda c: (
            (c.home / "state" / "engagement_events.cursor.json").unlink(),
            setattr(
                c.api,
                "fault",
                on(
                    ENGAGEMENT,
                    lambda r: Fault(transform=lambda p: {"data": [], "next_cursor": None, "links": {"next": None}}),
                ),
            ),
        ),
        rf"source engagement_events: GET {ENGAGEMENT}: the API returned no records on a full fetch; "
        rf"refusing to replace the stored data with nothing{KEPT}",
    ),
    Case(
        "zendesk_page_without_next_page",
        "support_tickets",
        lambda c: setattr(
            c.api,
            "fault",
            on(TICKETS, lambda r: Fault(transform=lambda p: {**p, "end_of_stream": False, "next_page": None})),
        ),
        rf"source support_tickets: GET {TICKETS} page 1: `end_of_stream` is false but there is no `next_page` link{KEPT}",
    ),
    Case(
        "next_link_to_another_host",
        "engagement_events",
        lambda c: (
            c.config["sources"]["engagement_events"].update(
                pagination={"type": "next_link", "next_path": "links.next"}
            ),
            setattr(
                c.api,
                "fault",
                on(
                    ENGAGEMENT,
                    lambda r: Fault(transform=lambda p: {**p, "links": {"next": "http://attacker.example/collect"}}),
                ),
            ),
        ),
        rf"source engagement_events: GET {ENGAGEMENT} page 1: next-page link points to another host \(attacker.example\); "
        rf"it is not followed, so the credentials never leave the configured API{KEPT}",
    ),
    Case(
        "csv_export_is_a_login_page",
        "survey_responses",
        lambda c: setattr(
            c.api, "fault", on(CSV_PATH, lambda r: Fault(body=b"<html>Sign in</html>", content_type="text/html"))
        ),
        rf"source survey_responses: GET {CSV_PATH} page 1: expected a CSV export, got Content-Type text/html "
        rf"\(a login or error page\?\){KEPT}",
    ),
    Case(
        "csv_export_lost_a_column",
        "survey_responses",
        lambda c: setattr(
            c.api, "fault", on(CSV_PATH, lambda r: Fault(body=_csv_without_score(c.api), content_type="text/csv"))
        ),
        rf"source survey_responses: GET {CSV_PATH} page 1: the CSV export has no column\(s\) 'score' \(column score\); "
        rf"its header is: 'response_id', 'account_id', 'user_id', 'survey_type', 'submitted_at', 'comment'{KEPT}",
    ),
    Case(
        "config_url_not_http",
        "crm_accounts",
        lambda c: c.config["sources"]["crm_accounts"].update(base_url="file:///etc/passwd"),
        r".*sources\.yaml: `sources\.crm_accounts\.base_url`: only http:// and https:// URLs are allowed, got scheme 'file'",
    ),
    Case(
        "config_identifier_injection",
        "usage_events",
        lambda c: c.config["sources"]["usage_events"].update(
            fields={"event_id": 'id"; DROP TABLE published.account_health; --'}
        ),
        r".*sources\.yaml: `sources\.usage_events\.fields\.event_id`: 'id\"; DROP TABLE published\.account_health; --' "
        r"is not a field path like `name` or `properties\.name`",
    ),
    Case(
        "config_secret_written_inline",
        "crm_accounts",
        lambda c: c.config["sources"]["crm_accounts"].update(auth={"type": "bearer", "token": TOKEN}),
        r".*sources\.yaml: `sources\.crm_accounts\.auth\.token`: secrets are never written in this file: put it in an "
        r"environment variable and name the variable \(`token_env` / `password_env`\)",
    ),
]


@pytest.fixture
def ctx(world, tmp_path, monkeypatch):
    api, original, baseline = world
    home = tmp_path / "home"
    shutil.copytree(baseline, home)
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    yield Ctx(api, home, demo_config(api.url), monkeypatch)
    api.fault = None
    for name, frame in original.items():
        api.set_data(name, frame)
    api.requests.clear()


def test_enough_distinct_faults():
    assert len({case.id for case in CASES}) == len(CASES) >= 15


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_fault_fails_loudly_and_changes_nothing(ctx, case, tmp_path):
    case.setup(ctx)
    ctx.env.setenv(SOURCES_CONFIG_ENV, str(write_config(tmp_path / "sources.yaml", ctx.config)))
    published_before = published(ctx.home)
    stored_before = stored_bytes(ctx.home)
    instance = dg.DagsterInstance.ephemeral()

    if case.id.startswith("config_"):
        # the sources file is validated when the definitions load: nothing runs at all
        with pytest.raises(SourceConfigError) as error:
            run_graph(ctx.home, DEMO_AS_OF, instance=instance)
        assert re.fullmatch(case.message, str(error.value)), str(error.value)
        assert TOKEN not in str(error.value)
        assert instance.get_runs() == []
    else:
        selection = None if case.id in WHOLE_GRAPH else [case.source]
        result = run_graph(ctx.home, DEMO_AS_OF, instance=instance, selection=selection)
        assert not result.success
        message = failures(result).get(case.source)
        assert message is not None, failures(result)
        assert re.fullmatch(case.message, message), message
        if selection is None:
            # the other sources loaded; nothing downstream of the failed one ran, publish included
            steps = {e.step_key for e in result.all_events if e.event_type_value == "STEP_SUCCESS"}
            assert {"crm_accounts", "usage_events", "survey_responses"} - {case.source} <= steps, steps
            assert not any(step.startswith("published") for step in steps), steps
        assert not any(TOKEN in dg.serialize_value(record) for record in instance.all_logs(result.run_id))
    assert published(ctx.home).equals(published_before)
    assert stored_bytes(ctx.home) == stored_before


def test_retry_after_a_failure_mid_pagination_equals_a_clean_run(ctx, tmp_path):
    clean_home = tmp_path / "clean"
    shutil.copytree(ctx.home, clean_home)
    more_engagement(ctx)
    ctx.env.setenv(SOURCES_CONFIG_ENV, str(write_config(tmp_path / "sources.yaml", ctx.config)))

    ctx.api.fault = on(ENGAGEMENT, lambda r: Fault(status=502), {3, 4, 5})
    failed = run_graph(ctx.home, DEMO_AS_OF)
    assert not failed.success and "HTTP 502 Bad Gateway" in failures(failed)["engagement_events"]

    ctx.api.fault = None
    retried = run_graph(ctx.home, DEMO_AS_OF)
    clean = run_graph(clean_home, DEMO_AS_OF)
    assert retried.success and clean.success
    assert stored_bytes(ctx.home) == stored_bytes(clean_home)
    stored = pl.read_ndjson(settings.landing_dir(ctx.home) / "engagement" / "activities.jsonl")
    assert stored["activity_id"].is_unique().all()
    assert stored.height == ctx.api.data("engagement_events").height
    columns = ["account_id", "snapshot_date", "health_score", "band"]
    assert published(ctx.home).select(columns).equals(published(clean_home).select(columns))
