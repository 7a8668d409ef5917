"""Deployments that are not the demo: fewer sources, an extra source, the second example product,
and the first run on a new customer base. Real runs, real DuckDB files under tmp_path."""

import datetime as dt
import json
import math
import shutil
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
import yaml

from cs_assets import settings
from cs_assets.demo import PRODUCTS
from cs_assets.demo.generator import DEMO_AS_OF
from cs_assets.deployment import DEFAULT_CONFIG_DIR
from tests.harness import definitions, make_home, published, run_graph

LEDGERLY = PRODUCTS["ledgerly"].config_dir


def config_copy(tmp_path: Path, name: str = "config", source: Path = DEFAULT_CONFIG_DIR) -> Path:
    target = tmp_path / name
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("schema"))
    return target


def edit_yaml(path: Path, edit) -> None:
    document = yaml.safe_load(path.read_text())
    edit(document)
    path.write_text(yaml.safe_dump(document, sort_keys=False))


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory) -> Path:
    return make_home(tmp_path_factory.mktemp("deployments"), "demo")


def test_a_company_without_tickets_surveys_or_engagement_leaves_them_out(demo_home, tmp_path):
    config = config_copy(tmp_path)
    edit_yaml(
        config / "sources.yaml",
        lambda d: d.update(sources={k: d["sources"][k] for k in ("crm_accounts", "usage_events")}),
    )
    home = tmp_path / "home"
    shutil.copytree(demo_home, home)
    # what the company does not have is not read: an empty export of it changes nothing
    (settings.landing_dir(home) / "support/tickets.jsonl").write_text("")

    defs = definitions(home, config)
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {"crm_accounts", "usage_events"} <= keys and not keys & {
        "support_tickets",
        "survey_responses",
        "engagement_events",
    }
    checked = {k.asset_key.to_user_string() for k in defs.resolve_asset_graph().asset_check_keys}
    assert "support_tickets" not in checked and "usage_events" in checked

    result = run_graph(home, DEMO_AS_OF, config_dir=config)
    assert result.success
    points = published(home, "account_health_contributions")
    assert set(points["indicator"]) == {
        "seat_penetration",
        "champion_days_inactive",
        "jobs_run_30d",
        "job_error_rate_30d",
        "new_jobs_30d",
        "core_feature_breadth_30d",
        "addon_features_used_30d",
        "usage_trend_30d",
        "page_load_p75_ms",
    }
    health = published(home)
    per_account = points.group_by("account_id").agg(
        total=pl.col("points").sum(), weight=pl.col("effective_weight").sum()
    )
    joined = health.join(per_account, on="account_id")
    assert (joined["total"] == joined["health_score"]).all()
    assert joined["weight"].round(9).eq(1.0).all()  # the left-out weight went to what remains
    # CX keeps page load only: an account without page views has no CX, and CO carries its score
    no_cx = health.filter(pl.col("cx_score").is_null())
    assert (no_cx["health_score"].cast(pl.Float64) - no_cx["co_score"]).abs().max() < 0.01 if no_cx.height else True
    values = published(home, "account_indicator_values")
    assert "bug_tickets_90d" not in values.columns and "jobs_run_30d" in values.columns
    model = next(
        e
        for e in result.all_events
        if e.event_type_value == "ASSET_MATERIALIZATION" and e.asset_key == dg.AssetKey(["published", "account_health"])
    )
    assert model is not None


INVOICES = {
    "description": "Invoices from the billing system (JSON lines).",
    "export": "billing/invoices.jsonl",
    "format": "jsonl",
    "key": ["invoice_id"],
    "timestamp": "issued_at",
    "columns": {
        "invoice_id": "string",
        "account_id": "string",
        "issued_at": "timestamp",
        "status": {"type": "string", "required": True, "values": ["paid", "late", "open"]},
        "amount_usd": {"type": "float", "min": 0},
    },
}


def write_invoices(home: Path, rows: list[dict]) -> None:
    path = settings.landing_dir(home) / "billing/invoices.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_an_extra_event_source_is_read_checked_and_scored(demo_home, tmp_path):
    config = config_copy(tmp_path)
    edit_yaml(config / "sources.yaml", lambda d: d["sources"].update(invoices=INVOICES))
    edit_yaml(
        config / "indicators.yaml",
        lambda d: d["indicators"].update(
            late_invoices_90d={
                "source": "invoices",
                "aggregate": "count",
                "where": {"status": "late"},
                "window_days": 90,
                "no_data": "zero",
            }
        ),
    )
    edit_yaml(
        config / "health_model.yaml",
        lambda d: d["indicators"].update(
            late_invoices_90d={
                "subscore": "cx",
                "weight": 10,
                "direction": "lower_is_better",
                "scoring": {"function": "thresholds", "cuts": [1, 3], "scores": [100, 40, 0]},
                "missing": {"policy": "score", "score": 100},
            }
        ),
    )
    edit_yaml(
        config / "data_quality.yaml",
        lambda d: d.update(
            source_defaults={"max_age_hours": 240, "max_volume_drop_share": 0.3, "max_duplicate_share": 0.02}
        ),
    )
    home = tmp_path / "home"
    shutil.copytree(demo_home, home)
    accounts = published_accounts(home)
    issued = dt.datetime.combine(DEMO_AS_OF, dt.time(9), tzinfo=dt.UTC)
    rows = [
        {
            "invoice_id": f"I-{i}",
            "account_id": a,
            "issued_at": (issued - dt.timedelta(days=i)).isoformat(),
            "status": "late" if i % 3 == 0 else "paid",
            "amount_usd": 120.0,
        }
        for i, a in enumerate(accounts[:40])
    ]
    write_invoices(home, rows)

    result = run_graph(home, DEMO_AS_OF, config_dir=config)
    assert result.success
    checks = {(e.asset_key.to_user_string(), e.check_name): e.passed for e in result.get_asset_check_evaluations()}
    for check in ("freshness", "volume", "duplicates", "unknown_accounts", "gx_status_allowed", "gx_invoice_id_unique"):
        assert checks[("invoices", check)] is True, check
    points = published(home, "account_health_contributions").filter(pl.col("indicator") == "late_invoices_90d")
    late = points.filter(pl.col("raw_value") > 0)
    assert late.height == len([r for r in rows if r["status"] == "late"])
    assert (late["indicator_score"] < 100).all()

    # the extra source has the same gates: an invoice for an unknown account blocks the publish
    before = published(home)
    write_invoices(home, [*rows, {**rows[0], "invoice_id": "I-X", "account_id": "ACC-999999"}])
    blocked = run_graph(home, DEMO_AS_OF, config_dir=config)
    assert not blocked.success
    failed = {
        (e.asset_key.to_user_string(), e.check_name) for e in blocked.get_asset_check_evaluations() if not e.passed
    }
    assert ("invoices", "unknown_accounts") in failed
    assert published(home).equals(before)


def published_accounts(home: Path) -> list[str]:
    if settings.warehouse_path(home).exists():
        return published(home)["account_id"].unique().sort().to_list()
    crm = pl.read_csv(settings.landing_dir(home) / "crm/accounts.csv", infer_schema=False)
    return crm.filter(pl.col("churn_date").is_null())["account_id"].str.strip_chars().unique().sort().to_list()


@pytest.fixture(scope="module")
def ledgerly_home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("ledgerly") / "home"
    PRODUCTS["ledgerly"].generate(settings.landing_dir(home), accounts=400, seed=3)
    return home


def test_the_second_product_runs_from_its_config_files_only(ledgerly_home):
    dates = [DEMO_AS_OF - dt.timedelta(days=i) for i in range(4, -1, -1)]
    result = run_graph(ledgerly_home, dates, config_dir=LEDGERLY)
    assert result.success
    health = published(ledgerly_home)
    latest = health.filter(pl.col("snapshot_date") == DEMO_AS_OF)
    subscriptions = pl.read_csv(settings.landing_dir(ledgerly_home) / "subscriptions/accounts.csv", infer_schema=False)
    live = subscriptions.filter(pl.col("cancelled_on").is_null())["account_id"].unique()
    assert set(latest["account_id"]) == set(live)
    assert latest["health_score"].cast(pl.Float64).std() > 5 and latest["band"].n_unique() == 3
    # renamed columns reach the published tables: account_manager -> csm_owner
    managers = subscriptions.filter(pl.col("account_manager").is_not_null(), pl.col("cancelled_on").is_null())
    owners = latest.join(managers.select("account_id", "account_manager"), on="account_id")
    assert owners.height > 0 and (owners["csm_owner"] == owners["account_manager"]).all()
    assert latest["size_tier"].null_count() == latest.height  # a well-known column this export lacks
    indicators = set(published(ledgerly_home, "account_health_contributions")["indicator"])
    assert "days_since_last_activity" in indicators and not any(i.startswith("jobs") for i in indicators)
    # the baseline: the first snapshot of each account fires nothing; later snapshots may
    actions = published(ledgerly_home, "account_actions")
    first = health.group_by("account_id").agg(first=pl.col("snapshot_date").min())
    assert (
        actions.join(first, on="account_id")["first_snapshot"] > actions.join(first, on="account_id")["first"]
    ).all()
    # its own CRM properties go back (a dry run: no endpoint), whole points as its file says
    dry_run = [json.loads(line) for line in (settings.outbox_dir(ledgerly_home) / "crm_writeback.jsonl").open()]
    inputs = [i for batch in dry_run for i in batch["body"]["inputs"]]
    assert len(dry_run) == -(-latest.height // 50) and len(inputs) == latest.height  # batches of 50
    assert {k for i in inputs for k in i["properties"]} == {
        "health_score",
        "health_band",
        "health_stage",
        "health_change_4w",
        "health_biggest_drag",
    }
    scores = dict(zip(latest["account_id"], latest["health_score"].cast(pl.Float64), strict=True))
    assert all(i["properties"]["health_score"] == str(math.floor(scores[i["id"]] + 0.5)) for i in inputs)
    assert "idProperty" not in inputs[0]  # account_id is the record id in Ledgerly's CRM
    # and its manager's page, for the newest snapshot, compared with five days before (none a week before)
    page = (settings.reports_dir(ledgerly_home) / f"health_report_{DEMO_AS_OF}.html").read_text()
    assert f'data-metric="accounts">{latest.height:,}<' in page
    assert "No snapshot was published on or before" in page


@pytest.mark.slow
def test_the_first_run_on_a_new_customer_base_sends_nothing_and_later_runs_are_capped(demo_home, tmp_path):
    config = config_copy(tmp_path)
    edit_yaml(config / "actions.yaml", lambda d: d["delivery"].update(max_per_run=3))
    home = tmp_path / "home"
    shutil.copytree(demo_home, home)
    outbox = settings.outbox_dir(home) / "messages.jsonl"
    first = run_graph(home, DEMO_AS_OF - dt.timedelta(days=10), config_dir=config)
    assert first.success
    assert not outbox.exists()  # every account is at its baseline
    later = run_graph(home, [DEMO_AS_OF - dt.timedelta(days=i) for i in range(9, -1, -1)], config_dir=config)
    assert later.success
    meta = later.asset_materializations_for_node("action_notifications")[0].metadata
    sent = [json.loads(line) for line in outbox.read_text().splitlines()]
    assert meta["sent"].value == len(sent) == 3 and meta["held_back"].value > 0
    assert "held back" in meta["held_back_summary"].value
    assert [m["message"]["text"][:4] for m in sent] == sorted(m["message"]["text"][:4] for m in sent)  # P1 first
    waiting = meta["held_back"].value
    again = run_graph(home, DEMO_AS_OF, config_dir=config)
    assert again.success
    resent = [json.loads(line)["idempotency_key"] for line in outbox.read_text().splitlines()]
    # the next ones that waited, never one of the first three again
    assert len(resent) == 3 + min(3, waiting) and len(set(resent)) == len(resent)


def test_calibration_on_the_second_product_beats_its_best_single_indicator(tmp_path):
    """Ledgerly's own data, 150 daily snapshots of 1,500 businesses: the candidate fitted on the
    older outcomes beats every indicator alone on the newer ones (deterministic: seeded data)."""
    from cs_assets.deployment import load_deployment
    from cs_assets.indicators.compute import compute_account_indicators
    from cs_assets.scoring.model_config import load_model, parse_model
    from cs_assets.sources.normalise import clean
    from cs_assets.validation.calibration import calibrate
    from cs_assets.validation.config import load_validation_config
    from cs_assets.validation.outcomes import outcomes_from_crm, scores_before_outcomes
    from resources.landing import LandingZoneResource

    landing = settings.landing_dir(tmp_path)
    PRODUCTS["ledgerly"].generate(landing, accounts=1500, seed=1)
    deployment = load_deployment(LEDGERLY)
    loader = LandingZoneResource(landing_dir=str(landing))
    frames = {name: clean(spec, loader.read(spec)) for name, spec in deployment.contract.sources.items()}
    dates = [DEMO_AS_OF - dt.timedelta(days=i) for i in range(149, -1, -1)]
    history = compute_account_indicators(frames, deployment.contract, deployment.catalogue, dates).filter(
        pl.col("is_active")
    )
    outcomes = outcomes_from_crm(frames["subscriptions"], DEMO_AS_OF)
    settings_ = load_validation_config(deployment.paths.validation, deployment.catalogue).calibration
    rows = scores_before_outcomes(history, outcomes, settings_.horizon_days)
    current = load_model(deployment.paths.model, deployment.catalogue)

    result = calibrate(rows, current, current.document, settings_, deployment.catalogue)
    report = result.report
    assert (
        report["split"] == "time"
        and result.split.train["outcome_date"].max() < result.split.holdout["outcome_date"].min()
    )
    assert report["candidate_auc"] > report["best_single_auc"] + 0.03
    assert report["candidate_auc"] >= report["current_auc"]
    # every fitted function runs the way the model says: recency down, frequency and breadth up
    for name, fitted in result.fitted.items():
        scores = [s for _, s in fitted.points]
        if scores:
            expected = sorted(scores, reverse=current.indicator(name).direction == "lower_is_better")
            assert scores == expected, name
    assert parse_model(result.document, "candidate", deployment.catalogue).version == result.candidate.version
