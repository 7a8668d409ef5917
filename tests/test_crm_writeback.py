"""The CRM write-back: which values it sends, its batches, and its answers from a real CRM-like
server on 127.0.0.1 (the demo API speaking HubSpot's batch update), with the faults of the HTTP
sources: 429 with Retry-After, 5xx, timeouts, a batch refused in part, a wrong token."""

import datetime as dt
import json
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest
import yaml

from cs_assets import settings
from cs_assets.demo.api_server import HUBSPOT_BATCH_PATH, DemoApi, Fault, demo_writeback_config
from cs_assets.writeback.assets import CRM_WRITEBACK
from cs_assets.writeback.changes import batch_problems, changed_values, crm_values, plan_batches
from cs_assets.writeback.config import WritebackConfigError, WritebackFile, load_writeback, parse_writeback
from cs_assets.writeback.deliver import send_batches
from cs_assets.writeback.store import ACCEPTED, REJECTED, UNDELIVERED
from resources.crm import Sent
from resources.instance import home_instance
from tests.harness import copy_home, definitions
from tests.http_harness import FAST_RETRY, TOKEN, TOKEN_ENV

PROPERTIES = {"cs_health_score": "health_score", "cs_health_band": "band", "cs_health_stage": "health_stage"}


def _writeback(**changes) -> object:
    raw = {"id_property": "account_id", "properties": dict(PROPERTIES), "batch_size": 2, **changes}
    return parse_writeback(WritebackFile.model_validate(raw), "<test>")


# --------------------------------------------------------------------------- pure functions


def test_values_are_text_rounded_once_and_a_missing_value_clears_the_property():
    latest = pl.DataFrame(
        {
            "account_id": ["A", "B", "C"],
            "health_score": [71.25, -0.04, None],
            "band": ["green", None, "red"],
            "health_stage": ["growth", "rescue", None],
            "stage_since": [dt.date(2026, 10, 1), None, None],
            "days_to_renewal": [45, None, 0],
        }
    )
    writeback = _writeback(properties={**PROPERTIES, "since": "stage_since", "renewal": "days_to_renewal"}, decimals=1)
    values = crm_values(latest, writeback)
    got = {(r["account_id"], r["property"]): r["value"] for r in values.iter_rows(named=True)}
    assert got[("A", "cs_health_score")] == "71.3"  # half away from zero, like SQL's round
    assert got[("B", "cs_health_score")] == "0.0"  # never "-0.0": the same score is the same text
    assert got[("C", "cs_health_score")] == "" and got[("B", "cs_health_band")] == ""
    assert got[("A", "since")] == "2026-10-01" and got[("B", "since")] == ""
    assert [got[(a, "renewal")] for a in "ABC"] == ["45", "", "0"]  # days are whole: no "45.0"
    assert values.height == 3 * 5


def test_only_values_the_crm_does_not_hold_are_sent_in_batches_of_accounts():
    values = pl.DataFrame(
        {
            "account_id": ["A", "A", "B", "B", "C", "C"],
            "property": ["band", "score", "band", "score", "band", "score"],
            "value": ["red", "30.0", "green", "80.0", "red", "20.0"],
        }
    )
    written = pl.DataFrame(
        {
            "account_id": ["A", "A", "B", "B"],
            "property": ["band", "score", "band", "score"],
            "value": ["red", "31.0", "green", "80.0"],
        }
    )
    changed = changed_values(values, written)
    # A's score moved, B is unchanged, C was never written
    assert changed.rows() == [("A", "score", "30.0"), ("C", "band", "red"), ("C", "score", "20.0")]
    batches = plan_batches(changed, _writeback(batch_size=1))
    assert [b.body for b in batches] == [
        {"inputs": [{"id": "A", "idProperty": "account_id", "properties": {"score": "30.0"}}]},
        {"inputs": [{"id": "C", "idProperty": "account_id", "properties": {"band": "red", "score": "20.0"}}]},
    ]
    # the same batch to the same destination has the same id; another destination another one
    assert [b.batch_id for b in plan_batches(changed, _writeback(batch_size=1))] == [b.batch_id for b in batches]
    generic = _writeback(
        batch_size=1, endpoint={"format": "generic_json", "base_url": "https://crm.example.com", "path": "/health"}
    )
    other = plan_batches(changed, generic)
    assert other[0].body == {"records": [{"id": "A", "properties": {"score": "30.0"}}]}
    assert other[0].batch_id != batches[0].batch_id
    assert [b.accounts for b in plan_batches(changed, _writeback(batch_size=2))] == [2]


def test_a_partial_answer_is_a_rejected_batch_naming_the_ids():
    partial = {
        "status": "COMPLETE",
        "results": [],
        "numErrors": 1,
        "errors": [{"status": "error", "category": "OBJECT_NOT_FOUND", "message": "gone", "context": {"ids": ["X"]}}],
    }
    assert batch_problems("hubspot_batch", 207, partial) == ["OBJECT_NOT_FOUND: gone (ids: X)"]
    assert batch_problems("hubspot_batch", 200, {"status": "COMPLETE", "results": []}) == []
    assert batch_problems("hubspot_batch", 207, {"status": "COMPLETE"}) == [
        "HTTP 207 Multi-Status without the errors it reports"
    ]
    assert batch_problems("generic_json", 200, {"errors": [{"id": "Y", "message": "locked"}]}) == [
        "error: locked (ids: Y)"
    ]
    assert batch_problems("generic_json", 204, None) == []
    # a 200 that is not HubSpot's answer (a proxy's page) proves nothing was applied
    assert batch_problems("hubspot_batch", 200, None) == [
        "HTTP 200 without the batch's JSON answer (a proxy or login page?)"
    ]
    assert batch_problems("hubspot_batch", 200, {"status": "PENDING"}) == ["batch status 'PENDING', not COMPLETE"]


def test_an_undelivered_batch_stops_the_run_and_the_budget_leaves_the_rest_for_the_next():
    changed = pl.DataFrame({"account_id": list("ABCD"), "property": ["band"] * 4, "value": ["red"] * 4})
    batches = plan_batches(changed, _writeback(batch_size=1))
    answers = iter([Sent(ACCEPTED, 1, 200, None), Sent(REJECTED, 1, 207, "part"), Sent(UNDELIVERED, 3, None, "down")])
    recorded = []

    class Script:
        where = "test"

        def send(self, batch):
            return next(answers)

    done = send_batches(batches, Script(), lambda b, a: recorded.append((b.batch_id, a.status)), max_seconds=60)
    assert [s for _, s in recorded] == [ACCEPTED, REJECTED, UNDELIVERED]
    assert len(done.accepted) == 1 and len(done.rejected) == 1 and done.left == batches[3:]
    assert done.problems == ["part", "down"]

    # a clock that moves 10 s per batch: the third batch would start after the 15 s budget
    ticks = iter(range(0, 1000, 10))
    always = type("Ok", (), {"where": "test", "send": lambda self, b: Sent(ACCEPTED, 1, 200, None)})()
    done = send_batches(batches, always, lambda b, a: None, max_seconds=15, clock=lambda: next(ticks))
    assert len(done.accepted) == 1 and done.out_of_time and done.left == batches[1:]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"properties": {"cs_score": "healthscore"}}, r"`properties.cs_score`: unknown published field 'healthscore'"),
        ({"properties": {"bad name": "band"}}, r"`properties.bad name`: 'bad name' is not a CRM property name"),
        (
            {"batch_size": 500, "endpoint": {"format": "hubspot_batch", "base_url": "https://api.hubapi.com"}},
            r"`batch_size`: must be at most 100 for hubspot_batch",
        ),
        (
            {
                "endpoint": {
                    "format": "hubspot_batch",
                    "base_url": "https://api.hubapi.com",
                    "auth": {"type": "bearer", "token": "x"},
                }
            },
            r"`endpoint.auth.token`: secrets are never written in this file",
        ),
        (
            {"endpoint": {"format": "generic_json", "base_url": "https://crm.example.com"}},
            r"`endpoint.path`: generic_json needs the `path`",
        ),
        (
            {"endpoint": {"format": "hubspot_batch", "base_url": "ftp://api.hubapi.com"}},
            r"`endpoint.base_url`: only http:// and https:// URLs are allowed",
        ),
    ],
)
def test_config_errors_name_the_file_and_key(tmp_path, change, message):
    raw = yaml.safe_load((settings.REPO_ROOT / "config" / "crm_writeback.yaml").read_text())
    raw.update(change)
    path = tmp_path / "crm_writeback.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(WritebackConfigError, match=message):
        load_writeback(path)


# --------------------------------------------------------------------------- against a server


def _config(tmp_path: Path, url: str) -> Path:
    """The demo API's write-back file, in batches of 40 (the test demo's 96 accounts: three)."""
    raw = yaml.safe_load(demo_writeback_config(url, TOKEN_ENV))
    raw["batch_size"] = 40
    raw["endpoint"].update(timeout_seconds=1, retry=dict(FAST_RETRY))
    path = tmp_path / "crm_writeback.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def _materialize(home: Path, config: Path, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    """The write-back alone, as the definitions build it (with its gate), on the home's instance:
    the one that recorded the checks of the loads its published snapshot was made from."""
    defs = definitions(home, writeback_path=config)
    return dg.materialize(
        [defs.get_assets_def(CRM_WRITEBACK)], resources=defs.resources, instance=instance, raise_on_error=False
    )


def _query(home: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(settings.warehouse_path(home)), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _expected(home: Path) -> dict[str, dict[str, str]]:
    """What the CRM should hold, straight from the warehouse (one decimal, as configured)."""
    rows = _query(
        home,
        "SELECT h.account_id, CAST(round(CAST(h.health_score AS DOUBLE), 1) AS VARCHAR), h.band, "
        "coalesce(s.health_stage, ''), coalesce(CAST(round(t.change_7d, 1) AS VARCHAR), ''), "
        "coalesce(h.drag_1_indicator, ''), coalesce(h.drag_2_indicator, ''), coalesce(h.triage_priority, '') "
        "FROM published.account_health h JOIN published.account_health_trend t USING (account_id, snapshot_date) "
        "LEFT JOIN published.account_health_stages s USING (account_id, snapshot_date) "
        "WHERE h.snapshot_date = (SELECT max(snapshot_date) FROM published.account_health)",
    )
    names = [
        "cs_health_score",
        "cs_health_band",
        "cs_health_stage",
        "cs_health_trend_7d",
        "cs_health_top_drag",
        "cs_health_second_drag",
        "cs_health_priority",
    ]
    return {r[0]: dict(zip(names, r[1:], strict=True)) for r in rows}


def _batches(api: DemoApi) -> list[list[str]]:
    """The account ids of every batch request the server received, in order."""
    return [[i["id"] for i in r.body["inputs"]] for r in api.requests if r.path == HUBSPOT_BATCH_PATH]


def _run_text(instance: dg.DagsterInstance, result: dg.ExecuteInProcessResult) -> str:
    logs = " ".join(str(e.user_message) + str(e.dagster_event) for e in instance.all_logs(result.run_id))
    return logs


@pytest.fixture
def crm(published_demo_home, tmp_path, monkeypatch):
    """A copy of the published demo home, the demo API as its CRM, and the token in the environment."""
    home = copy_home(published_demo_home, tmp_path / "home")
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    with DemoApi.from_landing(settings.landing_dir(home), token=TOKEN) as api:
        yield home, api


def test_the_crm_gets_every_value_once_and_a_rerun_sends_nothing(crm, tmp_path):
    home, api = crm
    config = _config(tmp_path, api.url)
    instance = home_instance(home)
    result = _materialize(home, config, instance)
    assert result.success
    expected = _expected(home)
    assert api.crm_properties == expected  # what the CRM holds is what the warehouse published
    sent = _batches(api)
    assert [len(b) for b in sent] == [40, 40, 16] and sorted(sum(sent, [])) == sorted(expected)
    metadata = result.asset_materializations_for_node("crm_writeback")[0].metadata
    assert metadata["values_changed"].value == 96 * 7 and metadata["batches_accepted"].value == 3
    assert _query(
        home, "SELECT count(*), count(DISTINCT batch_id) FROM published.crm_writeback_state WHERE destination <> 'file'"
    ) == [(672, 3)]
    assert TOKEN not in _run_text(instance, result)

    # the same snapshot again: nothing has changed, nothing is sent
    requests = len(api.requests)
    result = _materialize(home, config, instance)
    assert result.success and len(api.requests) == requests
    assert result.asset_materializations_for_node("crm_writeback")[0].metadata["values_changed"].value == 0

    # five accounts' scores move: exactly their score property is sent, in one batch
    moved = sorted(expected)[10:15]
    con = duckdb.connect(str(settings.warehouse_path(home)))
    con.execute(
        "UPDATE published.account_health SET health_score = health_score + 1 WHERE account_id IN (SELECT unnest(?))",
        [moved],
    )
    con.close()
    result = _materialize(home, config, instance)
    assert result.success
    last = api.requests[-1].body["inputs"]
    assert len(api.requests) == requests + 1
    assert [i["id"] for i in last] == moved
    assert {k for i in last for k in i["properties"]} == {"cs_health_score"}
    assert api.crm_properties == _expected(home)


def test_a_failed_batch_is_retried_alone_after_its_retry_after(crm, tmp_path):
    home, api = crm
    seen = []

    def second_batch_busy(request):
        if request.path != HUBSPOT_BATCH_PATH:
            return None
        first = request.body["inputs"][0]["id"]
        seen.append(first)
        # the second batch: throttled once, then a 503, then accepted
        if first == sorted(_expected(home))[40] and seen.count(first) == 1:
            return Fault(status=429, headers={"Retry-After": "0.2"})
        if first == sorted(_expected(home))[40] and seen.count(first) == 2:
            return Fault(status=503)
        return None

    api.fault = second_batch_busy
    result = _materialize(home, _config(tmp_path, api.url), home_instance(home))
    assert result.success
    firsts = [b[0] for b in _batches(api)]
    assert len(firsts) == 5 and firsts[1] == firsts[2] == firsts[3] and len(set(firsts)) == 3
    assert api.crm_properties == _expected(home)
    attempts = _query(
        home,
        "SELECT accounts, attempts, http_status FROM published.crm_writeback_batches WHERE destination <> 'file' ORDER BY ALL",
    )
    assert attempts == [(16, 1, 200), (40, 1, 200), (40, 3, 200)]


def test_a_batch_refused_in_part_is_not_recorded_and_the_next_run_sends_only_it(crm, tmp_path):
    home, api = crm
    accounts = sorted(_expected(home))
    gone = accounts[50]  # in the second batch
    crm_rows = api.data("crm_accounts")
    api.set_data("crm_accounts", crm_rows.filter(pl.col("account_id") != gone))
    config = _config(tmp_path, api.url)
    instance = home_instance(home)
    result = _materialize(home, config, instance)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert (
        "OBJECT_NOT_FOUND" in failure.step_failure_data.error.message
        and gone in failure.step_failure_data.error.message
    )
    # the first and the third batch are recorded, the second not at all (all or nothing)
    recorded = {
        r[0]
        for r in _query(
            home, "SELECT DISTINCT account_id FROM published.crm_writeback_state WHERE destination <> 'file'"
        )
    }
    assert recorded == set(accounts[:40]) | set(accounts[80:])
    assert _query(
        home, "SELECT status, accounts FROM published.crm_writeback_batches WHERE destination <> 'file' ORDER BY ALL"
    ) == [("accepted", 16), ("accepted", 40), ("rejected", 40)]
    # the account is back in the CRM: the next run sends that batch alone, and succeeds
    api.set_data("crm_accounts", crm_rows)
    before = len(_batches(api))
    result = _materialize(home, config, instance)
    assert result.success
    assert _batches(api)[before:] == [accounts[40:80]]
    assert api.crm_properties == _expected(home)


@pytest.mark.parametrize(
    "fault, words",
    [
        (lambda r: Fault(status=500), ["HTTP 500", "gave up after 3 attempt(s)"]),
        # on a loaded machine the retry budget may end it after the second attempt: either way it gave up
        (lambda r: Fault(delay=5), ["no response within the timeout of 1 s", "gave up after"]),
        (lambda r: Fault(status=429, headers={"Retry-After": "3600"}), ["retry after 3600 s", "retry budget"]),
    ],
    ids=["http_500", "timeout", "retry_after_beyond_budget"],
)
def test_an_endpoint_that_keeps_failing_records_nothing_and_stops(crm, tmp_path, fault, words):
    home, api = crm
    api.fault = lambda r: fault(r) if r.path == HUBSPOT_BATCH_PATH else None
    result = _materialize(home, _config(tmp_path, api.url), home_instance(home))
    assert not result.success
    message = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE").step_failure_data.error.message
    assert "CRM write-back: POST /crm/v3/objects/companies/batch/update" in message
    for word in words:
        assert word in message
    # the first batch failed for good: the others were never tried, nothing is recorded as sent
    assert len({tuple(b) for b in _batches(api)}) == 1
    assert _query(home, "SELECT count(*) FROM published.crm_writeback_state WHERE destination <> 'file'") == [(0,)]
    assert _query(home, "SELECT status FROM published.crm_writeback_batches WHERE destination <> 'file'") == [
        ("undelivered",)
    ]


def test_a_wrong_token_is_refused_once_and_never_shown(crm, tmp_path, monkeypatch):
    home, api = crm
    wrong = "tok-wrong-0123456789-SECRET"
    monkeypatch.setenv(TOKEN_ENV, wrong)
    instance = home_instance(home)
    result = _materialize(home, _config(tmp_path, api.url), instance)
    assert not result.success
    message = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE").step_failure_data.error.message
    assert "HTTP 401 Unauthorized: check the token in $CS_TEST_API_TOKEN" in message
    assert len(_batches(api)) == 1  # not retried, and no other batch tried
    text = _run_text(instance, result) + json.dumps(
        _query(home, "SELECT * FROM published.crm_writeback_batches"), default=str
    )
    assert wrong not in text and TOKEN not in text
    assert api.crm_properties == {}


def test_without_an_endpoint_the_batches_go_to_the_dry_run_file_once(published_demo_home, tmp_path):
    home = copy_home(published_demo_home, tmp_path / "home")
    # the shipped file has no endpoint: the published demo home's run wrote its dry run already
    dry_run = settings.outbox_dir(home) / "crm_writeback.jsonl"
    lines = [json.loads(line) for line in dry_run.read_text().splitlines()]
    shipped = settings.REPO_ROOT / "config" / "crm_writeback.yaml"
    assert len(lines) == 1 and len(lines[0]["body"]["inputs"]) == 96
    held = {i["id"]: i["properties"] for i in lines[0]["body"]["inputs"]}
    assert held == _expected(home)
    result = _materialize(home, shipped, home_instance(home))
    assert result.success and len(dry_run.read_text().splitlines()) == 1
