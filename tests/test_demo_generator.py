"""The demo generator: deterministic, follows the landing contract, behaves like real customers.

Small runs (60 accounts) keep this quick; one module-scoped run is shared by the read-only tests.
"""

import datetime as dt
import json
import pathlib

import polars as pl
import pytest

from cs_assets.demo import generator
from cs_assets.demo.generator import (
    ADDON_FEATURES,
    CORE_FEATURES,
    CRM_ACCOUNTS,
    DEMO_AS_OF,
    DEMO_CONTRACT,
    ENGAGEMENT_EVENTS,
    SUPPORT_TICKETS,
    SURVEY_RESPONSES,
    USAGE_EVENTS,
    DemoSummary,
    generate_demo_data,
)
from cs_assets.sources.contract import UTC_TS, SourceSpec

SOURCES = DEMO_CONTRACT.sources
ACCOUNTS = 60
SEED = 7
END = dt.datetime.combine(DEMO_AS_OF + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
ISO_WITH_OFFSET = "%Y-%m-%dT%H:%M:%S%#z"  # accepts "Z", "+00:00" and "+09:00"

ALLOWED = {
    (CRM_ACCOUNTS.name, "size_tier"): {"Enterprise", "Mid", "SMB"},
    (CRM_ACCOUNTS.name, "plan"): {"starter", "professional", "enterprise"},
    (USAGE_EVENTS.name, "event_type"): {"login", "job_run", "job_created", "feature_used", "page_view"},
    (USAGE_EVENTS.name, "job_status"): {"success", "failure"},
    (USAGE_EVENTS.name, "feature"): set(CORE_FEATURES) | set(ADDON_FEATURES),
    (USAGE_EVENTS.name, "feature_tier"): {"core", "addon"},
    (SUPPORT_TICKETS.name, "category"): {"bug", "feature_request", "question", "incident", "billing"},
    (SUPPORT_TICKETS.name, "priority"): {"low", "normal", "high", "urgent"},
    (SUPPORT_TICKETS.name, "status"): {"open", "pending", "solved", "closed"},
    (SURVEY_RESPONSES.name, "survey_type"): {"nps", "csat"},
    (ENGAGEMENT_EVENTS.name, "activity_type"): {
        "webinar_attended",
        "community_post",
        "help_article_view",
        "case_study",
    },
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[pathlib.Path, DemoSummary]:
    root = tmp_path_factory.mktemp("demo")
    return root, generate_demo_data(root / "landing", accounts=ACCOUNTS, seed=SEED)


@pytest.fixture(scope="module")
def raw(demo: tuple[pathlib.Path, DemoSummary]) -> dict[str, pl.DataFrame]:
    """Each source as a naive reader gets it (mess included)."""
    landing = demo[0] / "landing"
    return {name: _read(landing, spec) for name, spec in SOURCES.items()}


@pytest.fixture(scope="module")
def clean(raw: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """Each source in the contract's types, ids stripped, exact duplicates dropped."""
    return {name: _normalise(frame, SOURCES[name]) for name, frame in raw.items()}


@pytest.fixture(scope="module")
def truth(demo: tuple[pathlib.Path, DemoSummary]) -> pl.DataFrame:
    return pl.read_parquet(demo[0] / "demo_truth" / "account_truth.parquet")


def _read(landing: pathlib.Path, spec: SourceSpec) -> pl.DataFrame:
    path = landing / spec.path
    if spec.file_format == "csv":
        strings = {c: pl.String for c, t in spec.columns.items() if t == pl.String}
        return pl.read_csv(path, schema_overrides=strings)
    if spec.file_format == "jsonl":
        return pl.read_ndjson(path)
    return pl.read_parquet(path)


def _normalise(frame: pl.DataFrame, spec: SourceSpec) -> pl.DataFrame:
    exprs = []
    for column, dtype in spec.columns.items():
        expr = pl.col(column)
        if frame.schema[column] == pl.String and dtype == UTC_TS:
            expr = expr.str.to_datetime(ISO_WITH_OFFSET, time_zone="UTC")
        elif frame.schema[column] == pl.String and dtype == pl.Date:
            expr = expr.str.to_date("%Y-%m-%d")
        elif column == "account_id":
            expr = expr.str.strip_chars()
        exprs.append(expr.cast(dtype, strict=True).alias(column))
    return frame.select(exprs).unique(maintain_order=True)


def _all_files(root: pathlib.Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _last_30_days_usage(clean: dict[str, pl.DataFrame], truth: pl.DataFrame) -> pl.DataFrame:
    """Usage events per seat in the last 30 days of each account's life (before churn or as_of)."""
    crm = clean[CRM_ACCOUNTS.name]
    accounts = crm.join(truth, on="account_id").with_columns(
        life_end=pl.coalesce("churn_date", pl.lit(DEMO_AS_OF + dt.timedelta(days=1))).cast(UTC_TS)
    )
    usage = clean[USAGE_EVENTS.name].join(accounts.select("account_id", "life_end"), on="account_id")
    recent = usage.filter(pl.col("occurred_at") >= pl.col("life_end") - pl.duration(days=30))
    counts = recent.group_by("account_id").len("events")
    return (
        accounts.filter(pl.col("contract_start_date") <= DEMO_AS_OF - dt.timedelta(days=120))
        .join(counts, on="account_id", how="left")
        .with_columns(per_seat=pl.col("events").fill_null(0) / pl.col("licensed_seats"))
    )


# --------------------------------------------------------------------------- determinism


def test_same_seed_gives_byte_identical_files(demo, tmp_path):
    root, _ = demo
    again = tmp_path / "again"
    generate_demo_data(again / "landing", accounts=ACCOUNTS, seed=SEED)
    first, second = _all_files(root), _all_files(again)
    assert first.keys() == second.keys()
    assert "landing/usage/events/part-00000.parquet" in first
    assert "demo_truth/account_truth.parquet" in first
    for name in first:
        assert first[name] == second[name], name


def test_different_seed_gives_different_data(demo, tmp_path):
    root, _ = demo
    other = tmp_path / "other"
    generate_demo_data(other / "landing", accounts=ACCOUNTS, seed=SEED + 1)
    first, second = _all_files(root), _all_files(other)
    assert first.keys() == second.keys()
    differing = [name for name in first if first[name] != second[name]]
    assert len(differing) >= len(SOURCES)


def test_chunks_become_part_files_and_a_rerun_removes_stale_parts(tmp_path, monkeypatch):
    monkeypatch.setattr(generator, "CHUNK_ACCOUNTS", 25)
    landing = tmp_path / "landing"
    summary = generate_demo_data(landing, accounts=ACCOUNTS, seed=SEED)
    parts = sorted(p.name for p in (landing / USAGE_EVENTS.path).iterdir())
    assert parts == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    usage = pl.read_parquet(landing / USAGE_EVENTS.path).unique()
    assert usage.height == usage["event_id"].n_unique()  # ids stay unique across parts
    assert usage["account_id"].str.strip_chars().n_unique() <= ACCOUNTS
    assert summary.rows[USAGE_EVENTS.name] == pl.read_parquet(landing / USAGE_EVENTS.path).height

    generate_demo_data(landing, accounts=20, seed=SEED)
    assert [p.name for p in (landing / USAGE_EVENTS.path).iterdir()] == ["part-00000.parquet"]


# --------------------------------------------------------------------------- contract


def test_every_file_has_exactly_the_contract_columns(raw, clean):
    for name, spec in SOURCES.items():
        assert raw[name].columns == list(spec.columns), name
        assert clean[name].schema == pl.Schema(spec.columns), name
    assert raw[USAGE_EVENTS.name].schema == pl.Schema(USAGE_EVENTS.columns)  # Parquet is typed


def test_required_values_present_and_categories_allowed(clean):
    for name, spec in SOURCES.items():
        frame = clean[name]
        assert frame.height > 0, name
        for column in ("account_id", *spec.key, spec.timestamp_column):
            assert frame[column].null_count() == 0, (name, column)
    for (name, column), allowed in ALLOWED.items():
        assert set(clean[name][column].drop_nulls().unique()) <= allowed, (name, column)
    crm = clean[CRM_ACCOUNTS.name]
    assert crm["account_id"].str.contains(r"^ACC-\d{6}$").all()
    champion_ids = r"^U-\d{6}-\d{3,4}(;U-\d{6}-\d{3,4})?$"
    assert crm["champion_user_ids"].str.contains(champion_ids).all()
    surveys = clean[SURVEY_RESPONSES.name]
    nps = surveys.filter(pl.col("survey_type") == "nps")["score"]
    csat = surveys.filter(pl.col("survey_type") == "csat")["score"]
    assert nps.min() >= 0 and nps.max() <= 10 and csat.min() >= 1 and csat.max() <= 5
    tickets = clean[SUPPORT_TICKETS.name]
    assert tickets["csat_score"].drop_nulls().is_between(1, 5).all()
    unsolved = tickets.filter(pl.col("status").is_in(["open", "pending"]))
    assert unsolved["solved_at"].null_count() == unsolved.height
    usage = clean[USAGE_EVENTS.name]
    job_runs = usage.filter(pl.col("event_type") == "job_run")
    assert job_runs["job_status"].null_count() == 0 and job_runs["job_id"].null_count() == 0
    features = usage.filter(pl.col("event_type") == "feature_used")
    assert features["feature"].null_count() == 0
    assert features.filter(pl.col("feature").is_in(CORE_FEATURES))["feature_tier"].eq("core").all()


def test_every_account_id_is_a_crm_account_after_stripping(clean):
    crm_ids = set(clean[CRM_ACCOUNTS.name]["account_id"])
    assert len(crm_ids) == ACCOUNTS
    for name, frame in clean.items():
        assert set(frame["account_id"]) <= crm_ids, name
        assert frame["account_id"].str.contains(r"^ACC-\d{6}$").all(), name


def test_user_ids_belong_to_their_account(clean):
    for name in (USAGE_EVENTS.name, SURVEY_RESPONSES.name, ENGAGEMENT_EVENTS.name):
        frame = clean[name]
        owner = "ACC-" + frame["user_id"].str.slice(2, 6)
        assert (owner == frame["account_id"]).all(), name


# --------------------------------------------------------------------------- time


def test_no_timestamp_after_the_end_of_the_as_of_day(clean):
    for name, spec in SOURCES.items():
        for column, dtype in spec.columns.items():
            if dtype == UTC_TS:
                newest = clean[name][column].max()
                assert newest is None or newest < END, (name, column, newest)


def test_sources_are_fresh(clean):
    usage = clean[USAGE_EVENTS.name]
    assert usage["occurred_at"].max().date() == DEMO_AS_OF
    assert clean[CRM_ACCOUNTS.name]["updated_at"].max() >= END - dt.timedelta(days=1)
    assert clean[SUPPORT_TICKETS.name]["updated_at"].max() >= END - dt.timedelta(days=1)
    assert clean[SURVEY_RESPONSES.name]["submitted_at"].max() >= END - dt.timedelta(days=31)
    assert usage["occurred_at"].min() >= END - dt.timedelta(days=365)


def test_activity_only_while_under_contract(clean):
    crm = clean[CRM_ACCOUNTS.name].select("account_id", "contract_start_date", "churn_date")
    onboarding = crm.filter(pl.col("contract_start_date") > DEMO_AS_OF - dt.timedelta(days=90))
    assert onboarding.height >= 1
    assert crm["churn_date"].null_count() < crm.height
    activity = {
        USAGE_EVENTS.name: "occurred_at",
        SUPPORT_TICKETS.name: "created_at",
        SURVEY_RESPONSES.name: "submitted_at",
        ENGAGEMENT_EVENTS.name: "occurred_at",
    }
    for name, column in activity.items():
        events = clean[name].select("account_id", day=pl.col(column).dt.date()).join(crm, on="account_id")
        assert events.filter(pl.col("day") < pl.col("contract_start_date")).is_empty(), name
        assert events.filter(pl.col("day") >= pl.col("churn_date")).is_empty(), name


def test_late_events_arrive_after_they_occurred(clean):
    usage = clean[USAGE_EVENTS.name]
    delay = usage.select((pl.col("received_at") - pl.col("occurred_at")).alias("delay"))["delay"]
    assert delay.min() > dt.timedelta(0)
    assert (delay > dt.timedelta(days=1)).sum() > 0


# --------------------------------------------------------------------------- behaviour


def test_declining_and_churned_accounts_use_less_in_their_last_30_days(clean, truth):
    per_seat = _last_30_days_usage(clean, truth)
    at_risk = per_seat.filter(pl.col("trajectory").is_in(["declining", "churned"]))["per_seat"]
    healthy = per_seat.filter(pl.col("trajectory").is_in(["growing", "stable"]))["per_seat"]
    assert at_risk.len() >= 5 and healthy.len() >= 5
    assert at_risk.median() < 0.6 * healthy.median()


def test_champions_of_healthy_accounts_keep_logging_in(clean, truth):
    crm = clean[CRM_ACCOUNTS.name].join(truth, on="account_id")
    live = crm.filter(pl.col("churn_date").is_null() & (pl.col("contract_start_date") < DEMO_AS_OF))
    champions = live.select("account_id", "trajectory", user_id=pl.col("champion_user_ids").str.split(";")).explode(
        "user_id"
    )
    logins = clean[USAGE_EVENTS.name].filter(pl.col("event_type") == "login")
    last = (
        logins.join(champions, on=["account_id", "user_id"])
        .group_by("account_id", "trajectory")
        .agg(days=(pl.lit(END) - pl.col("occurred_at").max()).dt.total_days())
    )
    healthy = last.filter(pl.col("trajectory").is_in(["stable", "growing"]))["days"]
    assert healthy.median() <= 7


def test_truth_describes_every_account(truth, clean, demo):
    _, summary = demo
    assert truth.columns == ["account_id", "health_at_start", "health_at_as_of", "trajectory", "churn_date"]
    assert truth.height == ACCOUNTS and truth["account_id"].n_unique() == ACCOUNTS
    assert set(truth["account_id"]) == set(clean[CRM_ACCOUNTS.name]["account_id"])
    for column in ("health_at_start", "health_at_as_of"):
        assert truth[column].is_between(0.0, 1.0).all()
    assert set(truth["trajectory"]) <= {"declining", "stable", "growing", "churned"}
    churned = truth.filter(pl.col("trajectory") == "churned")
    assert churned["churn_date"].null_count() == 0
    live = truth.filter(pl.col("trajectory") != "churned")
    assert live["churn_date"].null_count() == live.height == ACCOUNTS - churned.height
    assert summary.churned_accounts == churned.height
    crm_churn = clean[CRM_ACCOUNTS.name].select("account_id", "churn_date").drop_nulls()
    assert crm_churn.sort("account_id").equals(churned.select("account_id", "churn_date").sort("account_id"))


# --------------------------------------------------------------------------- mess


def test_the_documented_mess_is_there(raw):
    for name, frame in raw.items():
        ids = frame["account_id"]
        assert (ids != ids.str.strip_chars()).sum() >= 1, name
    for name in (CRM_ACCOUNTS.name, USAGE_EVENTS.name, SUPPORT_TICKETS.name, SURVEY_RESPONSES.name):
        frame = raw[name]
        assert frame.is_duplicated().sum() >= 2, name  # an exact copy of a whole row
        key = SOURCES[name].key
        # duplicates on the key are exact copies: nothing conflicting to resolve
        assert frame.unique().select(key).is_duplicated().sum() == 0, name
    assert raw[SUPPORT_TICKETS.name]["csat_score"].null_count() > 0
    assert raw[SURVEY_RESPONSES.name]["comment"].null_count() > 0
    tickets = raw[SUPPORT_TICKETS.name]["created_at"]
    assert tickets.str.ends_with("Z").any() and tickets.str.ends_with("+00:00").any()


# --------------------------------------------------------------------------- manifest


def test_manifest_and_summary(demo, raw):
    root, summary = demo
    landing = root / "landing"
    manifest = json.loads((landing / "_demo_manifest.json").read_text(encoding="utf-8"))
    rows = {name: frame.height for name, frame in raw.items()}
    assert manifest == {
        "generator": "cs-health-demo",
        "version": 1,
        "seed": SEED,
        "accounts": ACCOUNTS,
        "as_of": "2026-10-31",
        "rows": rows,
    }
    assert summary == DemoSummary(
        landing_dir=landing,
        accounts=ACCOUNTS,
        seed=SEED,
        as_of=DEMO_AS_OF,
        rows=rows,
        churned_accounts=summary.churned_accounts,
    )
    manifest_path = landing / "_demo_manifest.json"
    written = [p.stat().st_mtime_ns for p in landing.rglob("*") if p.is_file() and p != manifest_path]
    assert manifest_path.stat().st_mtime_ns >= max(written)
    assert not list(landing.rglob("*.tmp"))
