"""Action rules: validation, hysteresis over a snapshot sequence, the table, and delivery."""

import datetime as dt
import json
import shutil

import dagster as dg
import duckdb
import polars as pl
import pytest
import yaml

from cs_assets import settings
from cs_assets.actions.assets import account_actions, account_health_stages
from cs_assets.actions.evaluate import (
    CLEARED,
    NO_LONGER_SCORED,
    OPEN,
    actions_to_send,
    evaluate_actions,
    held_back_summary,
    split_by_cap,
)
from cs_assets.actions.rules import DEFAULT_ACTIONS_PATH, ActionRulesError, load_action_rules, parse_action_rules
from cs_assets.actions.store import history_in_groups, read_history
from cs_assets.demo.generator import DEMO_AS_OF
from cs_assets.deployment import load_deployment
from cs_assets.scoring.model_config import load_model
from resources import build_resources
from resources.instance import home_instance
from resources.notifier import NotifierError, NotifierResource
from resources.warehouse import WarehouseResource
from tests.harness import copy_home, definitions, make_home, published, run_graph
from tests.http_harness import Webhook

DAY0 = dt.date(2026, 3, 1)
MODEL = load_model(settings.DEFAULT_MODEL_PATH, load_deployment().catalogue)


def rules_from(*rules: dict, max_age_days: int = 3):
    return parse_action_rules(
        {"version": 1, "delivery": {"max_age_days": max_age_days}, "rules": list(rules)}, "t.yaml", MODEL
    )


def history(account: str, **columns: list) -> pl.DataFrame:
    n = len(next(iter(columns.values())))
    base = {
        "account_id": [account] * n,
        "snapshot_date": [DAY0 + dt.timedelta(days=i) for i in range(n)],
        "csm_owner": ["csm.sato@example.com"] * n,
        "health_score": [50.0] * n,
        "band": ["yellow"] * n,
    }
    return pl.DataFrame({**base, **columns})


DROPPED_TO_RED = {
    "name": "dropped_to_red",
    "action": "call",
    "priority": "P1",
    "when": [
        {"field": "band", "op": "eq", "value": "red"},
        {"field": "previous_band", "op": "in", "value": ["yellow", "green"]},
    ],
}
RED = {"name": "is_red", "action": "call", "priority": "P1", "when": [{"field": "band", "op": "eq", "value": "red"}]}
DECLINE = {
    "name": "decline",
    "description": "Fell three times",
    "action": "review",
    "priority": "P3",
    "for_snapshots": 3,
    "when": [{"field": "change_since_previous", "op": "lt", "value": -1}],
}


def test_a_rule_fires_when_its_condition_starts_quiet_while_it_holds_and_again_after_it_cleared():
    bands = ["green", "red", "red", "red", "yellow", "red", "red"]
    frame = history("A1", band=bands).with_columns(previous_band=pl.col("band").shift(1))
    actions = evaluate_actions(frame, rules_from(RED))
    assert actions.sort("first_snapshot").select(
        "first_snapshot", "last_snapshot", "snapshots_held", "status"
    ).rows() == [
        (DAY0 + dt.timedelta(days=1), DAY0 + dt.timedelta(days=3), 3, CLEARED),
        (DAY0 + dt.timedelta(days=5), DAY0 + dt.timedelta(days=6), 2, OPEN),
    ]
    assert actions["action_id"].sort().to_list() == ["is_red:A1:2026-03-02", "is_red:A1:2026-03-06"]
    assert set(actions["owner"]) == {"csm.sato@example.com"}


def test_for_snapshots_needs_that_many_in_a_row_and_short_runs_never_fire():
    changes = [None, -2.0, -3.0, -1.5, -2.0, 0.5, -2.0, -2.0, 1.0, -4.0, -2.0, -1.5]
    frame = history("A1", change_since_previous=changes, health_score=[60.0 - i for i in range(len(changes))])
    actions = evaluate_actions(frame, rules_from(DECLINE))
    # run 1..4 fires on its third snapshot (day 3) and stays quiet on day 4; the run 6..7 is too
    # short; run 9..11 fires on day 11 and is still open at the newest snapshot
    assert actions.sort("first_snapshot").select("first_snapshot", "snapshots_held", "status").rows() == [
        (DAY0 + dt.timedelta(days=3), 4, CLEARED),
        (DAY0 + dt.timedelta(days=11), 3, OPEN),
    ]
    reason = actions.sort("first_snapshot")["reason"][0]
    assert reason == "Fell three times: change_since_previous = -1.5 (< -1), for 3 snapshots in a row"
    assert actions.sort("first_snapshot")["score_at_trigger"].to_list() == [57.0, 49.0]


def test_missing_values_hold_only_with_if_missing():
    inactive = {
        "name": "champion",
        "action": "reach",
        "priority": "P2",
        "when": [{"field": "champion_days_inactive", "op": "gte", "value": 14}],
    }
    frame = history("A1", champion_days_inactive=[3.0, None, None, 20.0, 2.0])
    strict = evaluate_actions(frame, rules_from(inactive))
    assert strict.select("first_snapshot", "snapshots_held").rows() == [(DAY0 + dt.timedelta(days=3), 1)]
    inactive["when"][0]["if_missing"] = True
    lenient = evaluate_actions(frame, rules_from(inactive))
    assert lenient.select("first_snapshot", "snapshots_held").rows() == [(DAY0 + dt.timedelta(days=1), 3)]
    assert lenient["reason"][0].endswith("champion_days_inactive = no data (≥ 14)")


def test_an_account_that_left_is_no_longer_scored_and_transitions_are_per_account():
    a = history("A1", band=["yellow", "red", "red"]).with_columns(previous_band=pl.col("band").shift(1))
    b = history("B2", band=["green", "red"]).with_columns(previous_band=pl.col("band").shift(1))
    actions = evaluate_actions(pl.concat([a, b]), rules_from(DROPPED_TO_RED))
    # a transition condition holds on the snapshot of the transition only: cleared the next day
    assert actions.select("account_id", "first_snapshot", "status").sort("account_id").rows() == [
        ("A1", DAY0 + dt.timedelta(days=1), CLEARED),
        ("B2", DAY0 + dt.timedelta(days=1), NO_LONGER_SCORED),
    ]


def test_the_first_published_snapshot_is_a_baseline_unless_the_rule_asks_for_it():
    # red from its first snapshot on, then green, then red again
    frame = history("A1", band=["red", "red", "green", "red"])
    baseline = evaluate_actions(frame, rules_from(RED))
    assert baseline.select("first_snapshot", "status").rows() == [(DAY0 + dt.timedelta(days=3), OPEN)]
    eager = evaluate_actions(frame, rules_from({**RED, "fire_on_first_snapshot": True}))
    assert sorted(eager["first_snapshot"].to_list()) == [DAY0, DAY0 + dt.timedelta(days=3)]
    # an account first published later has its own baseline
    late = history("B2", band=["yellow", "red"]).with_columns(pl.col("snapshot_date") + dt.timedelta(days=2))
    both = evaluate_actions(
        pl.concat([frame, history("B2", band=["red", "red"]), late.with_columns(account_id=pl.lit("C3"))]),
        rules_from(RED),
    )
    assert both.select("account_id", "first_snapshot").sort("account_id").rows() == [
        ("A1", DAY0 + dt.timedelta(days=3)),
        ("C3", DAY0 + dt.timedelta(days=3)),
    ]


def test_delivery_is_capped_per_run_most_urgent_first_and_says_what_waits():
    frame = pl.concat(
        [history(f"A{i}", band=["green", "red"]) for i in range(5)]
        + [history(f"B{i}", band=["green", "yellow"]) for i in range(3)]
    )
    rules = rules_from(
        RED,
        {
            "name": "is_yellow",
            "action": "look",
            "priority": "P3",
            "when": [{"field": "band", "op": "eq", "value": "yellow"}],
        },
    )
    actions = evaluate_actions(frame, rules)
    pending = actions_to_send(actions, DAY0 + dt.timedelta(days=1), 3, delivered={"is_red:A0:2026-03-02"})
    assert pending.height == 7 and pending["priority"].to_list() == ["P1"] * 4 + ["P3"] * 3
    now, later = split_by_cap(pending, 5)
    assert now.height == 5 and later["priority"].to_list() == ["P3", "P3"]
    assert held_back_summary(later) == "2 held back (P3 2)"
    assert held_back_summary(later.clear()) == "none held back"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda r: r["rules"][0]["when"][0].update(field="band_colour"),
            r"rules\[0\] \(dropped_to_red\).when\[0\].field`: unknown field 'band_colour'",
        ),
        (
            lambda r: r["rules"][0]["when"][0].update(value="amber"),
            r"when\[0\].value`: band is never 'amber'; it is one of red, yellow, green",
        ),
        (
            lambda r: r["rules"][1]["when"][0].update(op="in"),
            r"when\[0\].op`: champion_days_inactive is number: op must be one of",
        ),
        (lambda r: r["rules"][2]["when"][0].update(value=[60, 0]), r"when\[0\].value`: low 60 is above high 0"),
        (lambda r: r["rules"][3].update(for_snapshots=0), r"`rules\[3\].for_snapshots`: must be >= 1, got 0"),
        (lambda r: r["rules"][3].update(priority="urgent"), r"priority`: must be one of P1, P2, P3, P4, got 'urgent'"),
        (
            lambda r: r["rules"][3].update(name="dropped_to_red"),
            r"`rules\[3\].name`: duplicate rule name 'dropped_to_red'",
        ),
        (lambda r: r["rules"][0].update(whenn=[]), r"`rules\[0\]`: unknown key\(s\): whenn"),
    ],
)
def test_rule_file_errors_name_the_rule_and_key(change, message):
    raw = yaml.safe_load(DEFAULT_ACTIONS_PATH.read_text())
    change(raw)
    with pytest.raises(ActionRulesError, match=message):
        parse_action_rules(raw, "actions.yaml", MODEL)


def test_shipped_rules_validate_against_the_shipped_models():
    # loading checks every field, band and stage name against the model and the catalogue
    for config in (DEFAULT_ACTIONS_PATH.parent, settings.REPO_ROOT / "examples" / "ledgerly" / "config"):
        deployment = load_deployment(config)
        model = load_model(config / "health_model.yaml", deployment.catalogue)
        rules = load_action_rules(config / "actions.yaml", model, deployment.catalogue)
        assert rules.rules and rules.stages is not None


# --- real runs --------------------------------------------------------------------------------

RANGE = [DEMO_AS_OF - dt.timedelta(days=i) for i in range(19, -1, -1)]


@pytest.fixture(scope="module")
def actions_home(tmp_path_factory):
    home = make_home(tmp_path_factory.mktemp("actions"), "home")
    instance = home_instance(home)  # kept with the home: a copy's steps run alone, gated on its checks
    try:
        assert run_graph(home, RANGE, instance=instance).success
    finally:
        instance.dispose()
    return home


def outbox(home) -> list[dict]:
    path = settings.outbox_dir(home) / "messages.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_published_actions_follow_the_history_from_each_accounts_baseline(actions_home):
    actions = published(actions_home, "account_actions")
    assert actions.height > 0 and actions["action_id"].n_unique() == actions.height
    health = published(actions_home)
    first_seen = health.group_by("account_id").agg(first=pl.col("snapshot_date").min())
    # nothing fires for the state an account was in on its first published snapshot
    fired = actions.join(first_seen, on="account_id")
    assert (fired["first_snapshot"] > fired["first"]).all()
    # an account that turned red during the range has its action, on the day it turned red
    bands = health.sort("account_id", "snapshot_date").with_columns(before=pl.col("band").shift(1).over("account_id"))
    turned = bands.filter(pl.col("band") == "red", pl.col("before") != "red").select("account_id", "snapshot_date")
    red = actions.filter(pl.col("rule") == "dropped_to_red").select(
        "account_id", pl.col("first_snapshot").alias("snapshot_date")
    )
    assert turned.height > 0 and turned.sort(pl.all()).equals(red.sort(pl.all()))
    health = health.select("account_id", "csm_owner").unique()
    owners = actions.join(health, on="account_id")
    assert (owners["owner"] == owners["csm_owner"]).all()
    red = actions.filter(pl.col("rule") == "dropped_to_red")["reason"][0]
    assert red == "Health dropped to red: band = red"


def test_the_rules_read_only_the_indicators_they_name_and_fire_as_on_the_whole_history(actions_home):
    inactive = {"field": "champion_days_inactive", "op": "gt", "value": 30}
    renewal = {"field": "days_to_renewal", "op": "lt", "value": 90}
    rules = rules_from(DROPPED_TO_RED, DECLINE, {**RED, "name": "quiet_renewal", "when": [inactive, renewal]})
    # band, previous_band, change_since_previous and days_to_renewal are health or trend columns
    assert rules.indicators_read == ["champion_days_inactive"]
    staged = parse_action_rules(
        {
            "version": 1,
            "stages": {
                "default": "growth",
                "rules": [{"name": "quiet", "when": [{"field": "active_users_30d", "op": "lt", "value": 2}]}],
            },
            "rules": [{**RED, "when": [{"field": "health_stage", "op": "eq", "value": "quiet"}]}],
        },
        "t.yaml",
        MODEL,
    )
    assert staged.indicators_read == ["active_users_30d"]  # a stage rule's indicator, not the stage itself
    con = duckdb.connect(str(settings.warehouse_path(actions_home)), read_only=True)
    try:
        narrow, whole = read_history(con, rules.indicators_read), read_history(con)
    finally:
        con.close()
    assert "champion_days_inactive" in narrow.columns and "active_users_30d" not in narrow.columns
    assert "active_users_30d" in whole.columns
    fired = evaluate_actions(narrow, rules)
    assert fired.height > 0 and set(fired["rule"]) == {"dropped_to_red", "decline", "quiet_renewal"}
    assert fired.equals(evaluate_actions(whole, rules))


def test_a_long_history_read_in_groups_of_accounts_publishes_the_same_stages_and_actions(actions_home, tmp_path):
    home = copy_home(actions_home, tmp_path / "grouped")
    resources = build_resources(load_deployment().paths, home)
    rows = published(home).height
    # about four groups of accounts, each with its whole history
    resources["warehouse"] = WarehouseResource(
        database=str(settings.warehouse_path(home)), history_rows_per_group=rows // 4 + 1
    )
    con = duckdb.connect(str(settings.warehouse_path(home)), read_only=True)
    try:
        groups = list(history_in_groups(con, None, rows // 4 + 1))
    finally:
        con.close()
    assert len(groups) == 4 and sum(g.height for g in groups) == rows
    ids = [set(g["account_id"]) for g in groups]
    assert all(ids[i].isdisjoint(ids[j]) for i in range(4) for j in range(i + 1, 4))
    defs = definitions(home)
    steps = [defs.get_assets_def(key) for key in (account_health_stages.key, account_actions.key)]
    result = dg.materialize(steps, resources=resources, instance=home_instance(home))
    assert result.success
    for table in ("account_health_stages", "account_actions"):
        grouped, whole = published(home, table), published(actions_home, table)
        assert grouped.height > 0 and grouped.equals(whole), table


def test_actions_before_anything_is_published_fail_saying_so(tmp_path):
    home = make_home(tmp_path, "empty")
    defs = definitions(home)
    result = dg.materialize(
        [defs.get_assets_def(account_actions.key)],
        resources=defs.resources,
        instance=home_instance(home),
        raise_on_error=False,
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    error = failure.step_failure_data.error
    message = (error.cause or error).message
    # the gate says which inputs were never loaded, before anything is read
    assert "crm_accounts: has never been loaded" in message and "nothing was sent" in message


def test_new_open_actions_are_sent_once_and_a_rerun_sends_nothing(actions_home):
    actions = published(actions_home, "account_actions")
    recent = actions.filter(pl.col("status") == OPEN, pl.col("first_snapshot") >= RANGE[-1] - dt.timedelta(days=3))
    sent = outbox(actions_home)
    assert sorted(m["idempotency_key"] for m in sent) == sorted(recent["action_id"].to_list())
    assert recent.height > 0
    assert run_graph(actions_home, RANGE[-1]).success
    assert len(outbox(actions_home)) == len(sent)


def test_a_blocked_publish_sends_nothing_and_keeps_the_actions(actions_home, tmp_path):
    home = tmp_path / "blocked"
    shutil.copytree(actions_home, home)
    before, sent = published(home, "account_actions"), outbox(home)
    # five days past the demo data: every source is stale, the publish is blocked
    result = run_graph(home, DEMO_AS_OF + dt.timedelta(days=5))
    assert not result.success
    assert published(home, "account_actions").equals(before)
    assert outbox(home) == sent


# --- the notifier against a real HTTP server --------------------------------------------------


@pytest.fixture
def webhook_factory(monkeypatch):
    hooks = []

    def make(script, retry_after=None):
        hook = Webhook(script, retry_after)
        hooks.append(hook)
        monkeypatch.setenv("CS_HEALTH_WEBHOOK_URL", hook.url)
        return hook

    yield make
    for hook in hooks:
        hook.close()


def notifier(tmp_path, attempts=4) -> NotifierResource:
    return NotifierResource(outbox_dir=str(tmp_path / "outbox"), max_attempts=attempts, backoff_seconds=0.01)


def test_notifier_retries_5xx_and_429_with_the_same_idempotency_key(webhook_factory, tmp_path):
    hook = webhook_factory([503, 502, 429], retry_after="0")
    delivery = notifier(tmp_path).send("dropped_to_red:ACC-1:2026-10-31", {"text": "hello"})
    assert (delivery.channel, delivery.attempts, delivery.http_status) == ("webhook", 4, 200)
    assert [r[1] for r in hook.requests] == ["dropped_to_red:ACC-1:2026-10-31"] * 4
    assert hook.requests[0][2] == {"text": "hello"}


def test_notifier_gives_up_with_an_error_that_hides_the_url(webhook_factory, tmp_path):
    hook = webhook_factory([500] * 10)
    with pytest.raises(NotifierError) as error:
        notifier(tmp_path, attempts=3).send("k1", {"text": "x"})
    assert str(error.value) == "webhook (CS_HEALTH_WEBHOOK_URL) failed for message k1 after 3 attempts; last: HTTP 500"
    assert len(hook.requests) == 3
    hook400 = webhook_factory([400])
    with pytest.raises(NotifierError, match=r"refused message k2: HTTP 400; not retried"):
        notifier(tmp_path).send("k2", {"text": "x"})
    assert len(hook400.requests) == 1


def test_notifier_refuses_a_non_http_url(monkeypatch, tmp_path):
    monkeypatch.setenv("CS_HEALTH_WEBHOOK_URL", "file:///etc/passwd")
    with pytest.raises(
        NotifierError,
        match="CS_HEALTH_WEBHOOK_URL must be an http\\(s\\) URL with a host; got a value with scheme 'file'",
    ):
        notifier(tmp_path).send("k", {"text": "x"})


def test_actions_reach_the_webhook_exactly_once_across_failures_and_reruns(actions_home, tmp_path, webhook_factory):
    home = tmp_path / "hooked"
    shutil.copytree(actions_home, home)
    (settings.outbox_dir(home) / "messages.jsonl").unlink()
    due = published(home, "account_actions").filter(
        pl.col("status") == OPEN, pl.col("first_snapshot") >= RANGE[-1] - dt.timedelta(days=3)
    )
    assert due.height >= 2
    # the second message fails every attempt: the first is delivered and recorded, the run fails
    hook = webhook_factory([200, 500, 500, 500, 500, 500])
    instance = dg.DagsterInstance.ephemeral()
    failed = run_graph(home, RANGE[-1], instance=instance)
    assert not failed.success
    failure = next(e for e in failed.all_events if e.is_step_failure)
    assert "after 5 attempts; last: HTTP 500" in failure.step_failure_data.error.to_string()
    assert "SECRETTOKEN" not in failure.step_failure_data.error.to_string()
    # the next run delivers the rest, and never the first one again
    assert run_graph(home, RANGE[-1], instance=instance).success
    keys = [r[1] for r in hook.requests if r[0].endswith("SECRETTOKEN")]
    delivered = [k for i, k in enumerate(keys) if i == 0 or i > 5]
    assert sorted(delivered) == sorted(due["action_id"].to_list())
    assert run_graph(home, RANGE[-1], instance=instance).success
    assert [r[1] for r in hook.requests if r[0].endswith("SECRETTOKEN")] == keys
    for run in (failed.run_id,):
        assert "SECRETTOKEN" not in "".join(dg.serialize_value(r) for r in instance.all_logs(run))
    assert not (settings.outbox_dir(home) / "messages.jsonl").exists()


def test_cs_health_actions_lists_open_actions_p1_first(actions_home, capsys, monkeypatch):
    from cs_assets.cli import main

    monkeypatch.setenv(settings.HOME_ENV, str(actions_home))  # --home sets it; restored after the test
    assert main(["--home", str(actions_home), "actions", "--limit", "5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "5 action(s) shown (open only; --all for every status)"
    heads = [line for line in lines if not line.startswith(" ")][:-1]
    assert len(heads) == 5 and all(h.endswith("[open]") for h in heads)
    assert [h.split()[0] for h in heads] == sorted(h.split()[0] for h in heads)
    assert any(line.startswith("    -> ") for line in lines)


def test_a_gap_in_the_history_is_not_a_transition_and_does_not_fire_again():
    # red, then 60 days without a snapshot, then red again: one episode, told once, still open
    before = history("A1", band=["green", "red", "red"])
    after = history("A1", band=["red", "red"]).with_columns(pl.col("snapshot_date") + dt.timedelta(days=62))
    actions = evaluate_actions(pl.concat([before, after]), rules_from(RED))
    assert actions.select("first_snapshot", "last_snapshot", "snapshots_held", "status").rows() == [
        (DAY0 + dt.timedelta(days=1), DAY0 + dt.timedelta(days=63), 4, OPEN)
    ]
    # green before the gap and red after it: the state did change, so that fires
    changed = pl.concat([history("A1", band=["green", "green"]), after])
    assert evaluate_actions(changed, rules_from(RED))["first_snapshot"].to_list() == [DAY0 + dt.timedelta(days=62)]


def test_for_snapshots_in_a_row_restarts_its_count_after_a_gap_and_fires_once_per_episode():
    # falling on days 1-2, a gap, then on days 10-13: three in a row first on day 12, once
    days = [1, 2, 10, 11, 12, 13]
    frame = pl.DataFrame(
        {
            "account_id": ["A1"] * 7,
            "snapshot_date": [DAY0] + [DAY0 + dt.timedelta(days=d) for d in days],
            "csm_owner": ["csm.sato@example.com"] * 7,
            "health_score": [50.0] * 7,
            "band": ["yellow"] * 7,
            "change_since_previous": [0.0] + [-2.0] * 6,
        }
    )
    actions = evaluate_actions(frame, rules_from(DECLINE))
    assert actions.select("first_snapshot", "snapshots_held", "status").rows() == [
        (DAY0 + dt.timedelta(days=12), 6, OPEN)
    ]
    # three in a row on each side of a gap: the same episode, fired on its first three only
    both = frame.with_columns(
        snapshot_date=pl.Series([DAY0] + [DAY0 + dt.timedelta(days=d) for d in [1, 2, 3, 10, 11, 12]])
    )
    assert evaluate_actions(both, rules_from(DECLINE)).select("first_snapshot", "snapshots_held").rows() == [
        (DAY0 + dt.timedelta(days=3), 6)
    ]
