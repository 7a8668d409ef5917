"""Validation against outcomes: metrics on hand-computed cases, the split, calibration on data with a known truth."""

import datetime as dt
import json

import numpy as np
import polars as pl
import pytest
import yaml

from cs_assets import settings
from cs_assets.demo.generator import DEMO_AS_OF
from cs_assets.scoring.model_config import parse_model
from cs_assets.validation.calibration import (
    STRATIFIED,
    TIME,
    calibrate,
    fit_band_cuts,
    fit_scoring,
    migration_matrix,
    split_outcomes,
)
from cs_assets.validation.config import DEFAULT_VALIDATION_PATH, ValidationConfigError, parse_validation_config
from cs_assets.validation.contribution import cs_contribution
from cs_assets.validation.metrics import horizon_metrics, with_deciles
from cs_assets.validation.outcomes import OutcomesError, outcomes_from_crm, read_outcomes_file, scores_before_outcomes
from tests.calibration_harness import TRUTH_MODEL, calibration_settings, truth_rows
from tests.harness import copy_home, published, run_validation

BANDS = ["red", "yellow", "green"]
D = dt.date(2026, 6, 1)


def rows(scores: list[float], churned: list[bool], bands: list[str]) -> pl.DataFrame:
    n = len(scores)
    return pl.DataFrame(
        {"account_id": [f"A{i:02d}" for i in range(n)], "health_score": scores, "band": bands, "churned": churned}
    )


def test_metrics_match_a_hand_computed_case():
    # 6 accounts; churned scores 10, 40, 65; retained 30, 60, 90.
    # AUC over the 9 (churned, retained) pairs with the lower score "riskier": churned 10 beats
    # all three; 40 beats 60 and 90; 65 beats 90 -> 6 of 9 = 0.6667
    frame = rows(
        [10, 30, 40, 60, 65, 90],
        [True, False, True, False, True, False],
        ["red", "red", "yellow", "yellow", "green", "green"],
    )
    m = horizon_metrics(frame, BANDS, "red")
    assert m["auc"] == pytest.approx(6 / 9)
    assert m["per_band"].select("band", "accounts", "churned", "churn_rate").rows() == [
        ("red", 2, 1, 0.5),
        ("yellow", 2, 1, 0.5),
        ("green", 2, 1, 0.5),
    ]
    assert m["band_verdict"].monotonic  # ties are allowed
    assert m["red_precision"] == 0.5 and m["red_recall"] == pytest.approx(1 / 3)
    # 6 rows in 10 deciles: ranks 0..5 -> deciles 1, 2, 4, 6, 7, 9; decile 1 is the riskiest (score 10, churned)
    assert with_deciles(frame)["decile"].to_list() == [1, 2, 4, 6, 7, 9]
    assert m["top_decile_lift"] == pytest.approx(1.0 / 0.5)


def test_a_band_that_churns_more_than_a_riskier_one_breaks_monotonicity():
    frame = rows(
        [10, 20, 50, 55, 80, 85],
        [True, False, False, False, True, True],
        ["red", "red", "yellow", "yellow", "green", "green"],
    )
    m = horizon_metrics(frame, BANDS, "red")
    assert not m["band_verdict"].monotonic
    assert m["band_verdict"].text == "not monotonic: green churns 100.0% > yellow 0.0%"
    assert m["auc"] == pytest.approx(3 / 9)


def test_outcomes_from_the_crm_are_churn_or_the_last_renewal_passed():
    crm = pl.DataFrame(
        {
            "account_id": ["CHURN", "RENEWED", "FIRST_TERM", "FUTURE_CHURN"],
            "contract_start_date": [
                dt.date(2023, 1, 10),
                dt.date(2024, 3, 1),
                dt.date(2026, 2, 1),
                dt.date(2022, 1, 1),
            ],
            "renewal_date": [dt.date(2026, 1, 10), dt.date(2027, 3, 1), dt.date(2027, 2, 1), dt.date(2027, 1, 1)],
            "churn_date": [dt.date(2026, 1, 9), None, None, dt.date(2026, 12, 1)],
        }
    )
    out = outcomes_from_crm(crm, dt.date(2026, 10, 31))
    assert out.rows() == [("CHURN", dt.date(2026, 1, 9), "churned"), ("RENEWED", dt.date(2026, 3, 1), "renewed")]


def test_scores_are_taken_exactly_n_days_before_the_outcome():
    history = pl.DataFrame(
        {
            "account_id": ["A", "A", "B"],
            "snapshot_date": [D - dt.timedelta(days=60), D - dt.timedelta(days=59), D],
            "health_score": [30.0, 99.0, 50.0],
        }
    )
    outcomes = pl.DataFrame({"account_id": ["A", "B"], "outcome_date": [D, D], "outcome": ["churned", "renewed"]})
    joined = scores_before_outcomes(history, outcomes, 60)
    assert joined.select("account_id", "health_score", "churned").rows() == [("A", 30.0, True)]


def test_the_time_split_never_trains_on_an_outcome_at_or_after_the_split():
    frame = pl.DataFrame(
        {
            "account_id": [f"A{i}" for i in range(10)],
            "outcome_date": [D + dt.timedelta(days=i // 2) for i in range(10)],
            "churned": [i % 2 == 0 for i in range(10)],
        }
    )
    split = split_outcomes(frame, 0.3, seed=1)
    assert split.method == TIME and split.split_date == D + dt.timedelta(days=3)
    assert split.train["outcome_date"].max() < split.split_date <= split.holdout["outcome_date"].min()
    assert split.train.height + split.holdout.height == 10


def test_outcomes_on_one_date_get_a_seeded_stratified_split():
    frame = pl.DataFrame(
        {
            "account_id": [f"A{i:02d}" for i in range(40)],
            "outcome_date": [D] * 40,
            "churned": [i < 10 for i in range(40)],
        }
    )
    split = split_outcomes(frame, 0.3, seed=3)
    assert split.method == STRATIFIED and split.split_date is None
    assert (split.holdout.height, int(split.holdout["churned"].sum())) == (12, 3)  # 30% of each class
    assert not set(split.train["account_id"]) & set(split.holdout["account_id"])
    again = split_outcomes(frame.sample(fraction=1.0, shuffle=True, seed=9), 0.3, seed=3)
    assert again.holdout["account_id"].sort().equals(split.holdout["account_id"].sort())  # row order does not matter
    assert (
        not split_outcomes(frame, 0.3, seed=4).holdout["account_id"].sort().equals(split.holdout["account_id"].sort())
    )


# --- calibration on generated data with a known truth ----------------------------------------


def test_calibration_recovers_the_directions_and_beats_the_best_single_indicator_on_the_holdout():
    rows = truth_rows()
    current = parse_model(TRUTH_MODEL)
    result = calibrate(rows, current, current.document, calibration_settings())
    report = result.report
    # scoring functions follow the configured directions: monotone, 0 at the riskiest end
    active = [s for _, s in result.fitted["active_days"].points]
    idle = [s for _, s in result.fitted["days_idle"].points]
    assert active == sorted(active) and active[0] == 0 and active[-1] == 100
    assert idle == sorted(idle, reverse=True) and idle[0] == 100 and idle[-1] == 0
    assert result.fitted["days_idle"].missing_score is not None  # no data scored by its own churn
    # the noise gets (almost) no weight; the signals carry it
    shares = result.weights.shares
    assert shares["noise"] < 0.1 < shares["active_days"] and shares["days_idle"] > 0.1
    # on the holdout the candidate beats the current model and every indicator alone
    assert report["candidate_auc"] > report["current_auc"]
    assert report["candidate_auc"] > report["best_single_auc"] > 0.6
    assert report["best_single_indicator"] in ("active_days", "days_idle")
    # bands: churn falls band by band and each band holds at least 10% of the holdout
    churn = [b["churn_rate"] for b in report["candidate_bands"]]
    assert churn == sorted(churn, reverse=True)
    assert min(b["accounts"] for b in report["candidate_bands"]) >= 0.1 * report["holdout_outcomes"] * 0.5
    assert parse_model(result.document).version == result.candidate.version  # a valid model file
    assert result.candidate.version != current.version


def test_no_holdout_outcome_is_used_to_fit_anything():
    rows = truth_rows(seed=8)
    current = parse_model(TRUTH_MODEL)
    result = calibrate(rows, current, current.document, calibration_settings())
    split_date = dt.date.fromisoformat(result.report["split_date"])
    assert result.split.train["outcome_date"].max() < split_date
    # the fitted bins hold exactly the training rows with a value
    trained = result.split.train.filter(pl.col("active_days").is_not_null()).height
    assert sum(b[2] for b in result.fitted["active_days"].bins) == trained
    # changing every holdout outcome changes nothing fitted, only the report
    flipped = rows.with_columns(
        churned=pl.when(pl.col("outcome_date") >= split_date).then(~pl.col("churned")).otherwise(pl.col("churned"))
    )
    other = calibrate(flipped, current, current.document, calibration_settings())
    assert other.document == result.document
    assert other.report["candidate_auc"] != result.report["candidate_auc"]


def test_calibration_is_reproducible_byte_for_byte():
    rows = truth_rows(n=1200)
    current = parse_model(TRUTH_MODEL)
    first = calibrate(rows, current, current.document, calibration_settings())
    second = calibrate(
        rows.sample(fraction=1.0, shuffle=True, seed=2), current, current.document, calibration_settings()
    )
    assert yaml.safe_dump(first.document) == yaml.safe_dump(second.document)
    assert first.report == second.report


def test_a_direction_the_data_contradicts_is_said():
    rng = np.random.default_rng(1)
    values = rng.random(900)
    churned = rng.random(900) < 0.1 + 0.6 * values  # the higher, the more churn
    fitted = fit_scoring("logins", "higher_is_better", values, churned, 30, 8)
    assert "opposite of higher_is_better" in fitted.note
    assert fitted.points == () or len({s for _, s in fitted.points}) == 1  # flat in the configured direction
    too_few = fit_scoring(
        "rare", "higher_is_better", np.array([1.0, 2.0, np.nan]), np.array([True, False, True]), 30, 8
    )
    assert too_few.points == () and too_few.note.startswith("not fitted: 2 training value(s)")
    lumped = fit_scoring(
        "rare", "higher_is_better", np.array([0.0] * 500 + [1.0] * 10), np.array([False, True] * 255), 30, 8
    )
    assert lumped.note.startswith(
        "not fitted: the values do not split into two ranges of 30 outcomes (98% share one value)"
    )


def test_band_cuts_give_falling_churn_and_a_minimum_share():
    rng = np.random.default_rng(4)
    scores = rng.uniform(0, 100, 3000)
    churned = rng.random(3000) < (1 - scores / 100) ** 3
    cuts, note = fit_band_cuts(scores, churned, 3, 0.1)
    assert len(cuts) == 2 and cuts[0] < cuts[1] and "falling" in note
    edges = [-1, *cuts, 101]
    rates = [churned[(scores >= a) & (scores < b)].mean() for a, b in zip(edges, edges[1:])]
    shares = [((scores >= a) & (scores < b)).mean() for a, b in zip(edges, edges[1:])]
    assert rates == sorted(rates, reverse=True) and min(shares) >= 0.1


def test_too_few_outcomes_say_what_is_needed():
    rows = truth_rows(n=60)
    current = parse_model(TRUTH_MODEL)
    with pytest.raises(ValueError, match=r"not calibrated: 60 outcome\(s\).*need 10 of each"):
        calibrate(rows.with_columns(churned=pl.lit(False)), current, current.document, calibration_settings())


def test_an_external_outcomes_file_is_read_and_bad_rows_are_named(tmp_path):
    good = tmp_path / "outcomes.csv"
    good.write_text("account_id,outcome_date,outcome\nACC-1 ,2026-05-01,Churned\nACC-2,2026-06-01,renewed\n")
    assert read_outcomes_file(good).rows() == [
        ("ACC-1", dt.date(2026, 5, 1), "churned"),
        ("ACC-2", dt.date(2026, 6, 1), "renewed"),
    ]
    bad = tmp_path / "bad.csv"
    bad.write_text("account_id,outcome_date,outcome\nACC-1,2026-05-01,churned\nACC-2,2026-06-01,upsold\n")
    with pytest.raises(OutcomesError, match=r"bad.csv: column 'outcome' line 3: 'upsold' is not churned or renewed"):
        read_outcomes_file(bad)
    bad.write_text("account_id,outcome_date,outcome\nACC-1,01/05/2026,churned\n")
    with pytest.raises(OutcomesError, match=r"column 'outcome_date' line 2: cannot read '01/05/2026' as YYYY-MM-DD"):
        read_outcomes_file(bad)


def test_validation_config_errors_name_the_key():
    raw = yaml.safe_load(DEFAULT_VALIDATION_PATH.read_text())
    raw["calibration"]["holdout_share"] = 1.5
    with pytest.raises(
        ValidationConfigError, match=r"`calibration.holdout_share`: must be a number between 0 and 1, got 1.5"
    ):
        parse_validation_config(raw, "v.yaml")
    raw = yaml.safe_load(DEFAULT_VALIDATION_PATH.read_text())
    raw["contribution"]["engaged_when"][0]["field"] = "webinar"
    with pytest.raises(ValidationConfigError, match=r"`contribution.engaged_when\[0\].field`: unknown field 'webinar'"):
        parse_validation_config(raw, "v.yaml")


def test_contribution_is_the_ltv_difference_times_supported_accounts():
    cohort = D
    history = pl.DataFrame(
        {
            "account_id": ["S1", "S2", "U1", "U2"],
            "snapshot_date": [cohort] * 4,
            "size_tier": ["SMB"] * 4,
            "arr_usd": [1200.0] * 4,  # 100 a month
            "webinars_attended_90d": [2.0, 1.0, 0.0, None],
        }
    )
    churn = pl.DataFrame(
        {
            "account_id": ["S1", "U1", "U2"],
            "churn_date": [cohort + dt.timedelta(days=10), cohort + dt.timedelta(days=5), None],
        }
    )
    cfg = parse_validation_config(yaml.safe_load(DEFAULT_VALIDATION_PATH.read_text()), "v.yaml")
    end = cohort + dt.timedelta(days=365)  # 12 months observed
    table = cs_contribution(history, churn, cfg.engaged_when, 0.8, cohort, end)
    row = table.row(0, named=True)
    # supported: 1 churn in 2 accounts over 12 months -> 1/24 a month; LTV = 0.8 * 100 * 24 = 1920
    # unsupported: 1 in 2 as well -> the same LTV, contribution 0
    assert row["monthly_churn_supported"] == pytest.approx(round(1 / 24, 4))
    assert row["ltv_supported"] == pytest.approx(1920.0, rel=1e-3)
    assert row["contribution_usd"] == pytest.approx(0.0, abs=1e-6)


def test_migrations_are_counted():
    current = pl.DataFrame({"band": ["red", "red", "yellow", "green"]})
    candidate = pl.DataFrame({"band": ["red", "yellow", "yellow", "yellow"]})
    assert migration_matrix(current, candidate, BANDS).rows() == [
        ("red", 1, 1, 0),
        ("yellow", 0, 1, 0),
        ("green", 0, 1, 0),
    ]


@pytest.fixture(scope="module")
def validated_home(long_history_home, tmp_path_factory):
    """A copy of the session's 150-snapshot demo home, for this module's validation runs to write to."""
    return copy_home(long_history_home, tmp_path_factory.mktemp("validation") / "home")


@pytest.mark.slow
def test_a_validation_run_writes_the_report_the_candidate_and_the_contribution(validated_home, tmp_path):
    config = yaml.safe_load(DEFAULT_VALIDATION_PATH.read_text())
    # 120 accounts: few churns, so small bins and a short horizon
    config["calibration"].update(horizon_days=30, min_outcomes_per_class=3, min_accounts_per_bin=5, max_bins=4)
    config["target_tiers"] = {"by": ["size_tier", "plan"], "window_days": 120, "min_accounts": 10}
    config_path = tmp_path / "validation.yaml"
    config_path.write_text(yaml.safe_dump(config))
    result = run_validation(validated_home, validation_path=config_path)
    assert result.success
    # target tiers: the cohort scored 120 days before the newest snapshot, each account in one tier
    health = published(validated_home)
    cohort = health.filter(pl.col("snapshot_date") == health["snapshot_date"].max() - dt.timedelta(days=120))
    tiers = published(validated_home, "target_tiers").sort("rank", nulls_last=True)
    assert tiers["accounts"].sum() == cohort.height and tiers["retained"].sum() < cohort.height
    ranked = tiers.filter(pl.col("rank").is_not_null())
    assert ranked["rank"].to_list() == list(range(1, ranked.height + 1)) and ranked.height >= 2
    assert ranked["retention_low"].to_list() == sorted(ranked["retention_low"].to_list(), reverse=True)
    assert (tiers.filter(pl.col("rank").is_null())["accounts"] < 10).all()
    summary = published(validated_home, "score_validation").sort("horizon_days")
    assert summary["horizon_days"].to_list() == [30, 60, 90]
    at_30 = summary.row(0, named=True)
    assert at_30["outcomes"] > 20 and 0.5 < at_30["auc"] <= 1.0
    # churn per health stage: every outcome's account had a stage on the day it was scored
    stages = published(validated_home, "score_validation_groups").filter(
        pl.col("kind") == "stage", pl.col("horizon_days") == 30
    )
    assert set(stages["segment"]) <= {"sunk", "rescue", "growth", "success"} and stages.height >= 2
    assert stages["accounts"].sum() == at_30["outcomes"]
    assert stages["churned"].sum() == at_30["churned"]
    # the candidate goes under $CS_HEALTH_HOME/models, never into the repository's config/
    candidate = settings.models_dir(validated_home) / "health_model.candidate.yaml"
    assert parse_model(yaml.safe_load(candidate.read_text())).name == "default-calibrated"
    assert not (settings.DEFAULT_MODEL_PATH.parent / "health_model.candidate.yaml").exists()
    report = json.loads((settings.models_dir(validated_home) / "calibration_report.json").read_text())
    assert report["holdout_outcomes"] > 0 and report["candidate_auc"] is not None
    materialized = {
        m.asset_key.to_user_string(): m for m in result.asset_materializations_for_node("model_calibration")
    }
    meta = materialized["model_calibration"].metadata
    assert meta["train_outcomes"].value > 0 and meta["holdout_outcomes"].value > 0
    migration = meta["band_migration_current_to_candidate"].value
    assert [c.name for c in migration.schema.columns] == ["current", "red", "yellow", "green"]
    check = result.get_asset_check_evaluations()[0]
    assert check.check_name == "score_predicts_churn" and check.severity.value == "WARN"


@pytest.mark.slow
def test_external_outcomes_replace_the_crm_ones(validated_home, tmp_path):
    outcome_date = DEMO_AS_OF - dt.timedelta(days=50)
    needed = [outcome_date - dt.timedelta(days=d) for d in (30, 60, 90)]  # all inside the 150 days
    health = published(validated_home).filter(pl.col("snapshot_date").is_in(needed))
    scored_on_all = health.group_by("account_id").len().filter(pl.col("len") == 3)
    accounts = scored_on_all.sort("account_id")["account_id"].to_list()[:6]
    target = settings.landing_dir(validated_home) / "outcomes" / "outcomes.csv"
    target.parent.mkdir(parents=True, exist_ok=True)
    lines = ["account_id,outcome_date,outcome"] + [
        f"{a},{outcome_date.isoformat()},{'churned' if i % 2 else 'renewed'}" for i, a in enumerate(accounts)
    ]
    target.write_text("\n".join(lines) + "\n")
    try:
        result = run_validation(validated_home)
        assert result.success
        meta = result.asset_materializations_for_node("score_validation")[0].metadata
        assert meta["outcomes_source"].value == str(target) and meta["outcomes"].value == 6
        summary = published(validated_home, "score_validation").sort("horizon_days")
        assert summary["outcomes"].to_list() == [6, 6, 6] and summary["churned"].to_list() == [3, 3, 3]
    finally:
        target.unlink()


@pytest.mark.slow
def test_a_validation_step_that_materializes_nothing_says_why_on_its_asset(validated_home, tmp_path):
    config = yaml.safe_load(DEFAULT_VALIDATION_PATH.read_text())
    config["calibration"]["min_outcomes_per_class"] = 10_000
    config["contribution"]["observation_days"] = 400  # the history is 150 days
    config.pop("target_tiers")
    config_path = tmp_path / "validation.yaml"
    config_path.write_text(yaml.safe_dump(config))
    result = run_validation(validated_home, validation_path=config_path)
    assert result.success
    assert {m.asset_key.to_user_string() for m in result.get_asset_materialization_events()} == {"score_validation"}
    why = {
        e.asset_key.to_user_string(): e.event_specific_data.asset_observation.metadata["not_materialized_because"].value
        for e in result.get_asset_observation_events()
    }
    assert why["model_calibration"].startswith("no candidate model: ") and "10000" in why["model_calibration"]
    assert "not estimated: no published snapshot on" in why["cs_contribution_estimate"]
    assert "backfill at least 401 days or lower contribution.observation_days" in why["cs_contribution_estimate"]
    assert why["target_tiers"] == "not ranked: validation.yaml has no `target_tiers` section"
