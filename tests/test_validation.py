"""Validation against outcomes: metrics on hand-computed cases, the time split, the challenger."""

import datetime as dt

import polars as pl
import pytest
import yaml

from cs_assets import settings
from cs_assets.demo.generator import DEMO_AS_OF
from cs_assets.scoring.model_config import load_model, load_model_document, parse_model
from cs_assets.validation.config import DEFAULT_VALIDATION_PATH, ValidationConfigError, parse_validation_config
from cs_assets.validation.contribution import cs_contribution
from cs_assets.validation.metrics import horizon_metrics, with_deciles
from cs_assets.validation.outcomes import OutcomesError, outcomes_from_crm, read_outcomes_file, scores_before_outcomes
from cs_assets.validation.tuning import challenger_document, migration_matrix, time_split
from tests.harness import make_home, published, run_graph, run_validation

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
    frame = rows([10, 30, 40, 60, 65, 90], [True, False, True, False, True, False], ["red", "red", "yellow", "yellow", "green", "green"])
    m = horizon_metrics(frame, BANDS, "red")
    assert m["auc"] == pytest.approx(6 / 9)
    assert m["per_band"].select("band", "accounts", "churned", "churn_rate").rows() == [
        ("red", 2, 1, 0.5), ("yellow", 2, 1, 0.5), ("green", 2, 1, 0.5)
    ]
    assert m["band_verdict"].monotonic  # ties are allowed
    assert m["red_precision"] == 0.5 and m["red_recall"] == pytest.approx(1 / 3)
    # 6 rows in 10 deciles: ranks 0..5 -> deciles 1, 2, 4, 6, 7, 9; decile 1 is the riskiest (score 10, churned)
    assert with_deciles(frame)["decile"].to_list() == [1, 2, 4, 6, 7, 9]
    assert m["top_decile_lift"] == pytest.approx(1.0 / 0.5)


def test_a_band_that_churns_more_than_a_riskier_one_breaks_monotonicity():
    frame = rows([10, 20, 50, 55, 80, 85], [True, False, False, False, True, True], ["red", "red", "yellow", "yellow", "green", "green"])
    m = horizon_metrics(frame, BANDS, "red")
    assert not m["band_verdict"].monotonic
    assert m["band_verdict"].text == "not monotonic: green churns 100.0% > yellow 0.0%"
    assert m["auc"] == pytest.approx(3 / 9)


def test_outcomes_from_the_crm_are_churn_or_the_last_renewal_passed():
    crm = pl.DataFrame(
        {
            "account_id": ["CHURN", "RENEWED", "FIRST_TERM", "FUTURE_CHURN"],
            "contract_start_date": [dt.date(2023, 1, 10), dt.date(2024, 3, 1), dt.date(2026, 2, 1), dt.date(2022, 1, 1)],
            "renewal_date": [dt.date(2026, 1, 10), dt.date(2027, 3, 1), dt.date(2027, 2, 1), dt.date(2027, 1, 1)],
            "churn_date": [dt.date(2026, 1, 9), None, None, dt.date(2026, 12, 1)],
        }
    )
    out = outcomes_from_crm(crm, dt.date(2026, 10, 31))
    assert out.rows() == [("CHURN", dt.date(2026, 1, 9), "churned"), ("RENEWED", dt.date(2026, 3, 1), "renewed")]


def test_scores_are_taken_exactly_n_days_before_the_outcome():
    history = pl.DataFrame(
        {"account_id": ["A", "A", "B"], "snapshot_date": [D - dt.timedelta(days=60), D - dt.timedelta(days=59), D], "health_score": [30.0, 99.0, 50.0]}
    )
    outcomes = pl.DataFrame({"account_id": ["A", "B"], "outcome_date": [D, D], "outcome": ["churned", "renewed"]})
    joined = scores_before_outcomes(history, outcomes, 60)
    assert joined.select("account_id", "health_score", "churned").rows() == [("A", 30.0, True)]


def test_the_time_split_never_trains_on_an_outcome_at_or_after_the_split():
    frame = pl.DataFrame(
        {"account_id": [f"A{i}" for i in range(10)], "outcome_date": [D + dt.timedelta(days=i // 2) for i in range(10)], "churned": [i % 2 == 0 for i in range(10)]}
    )
    split = time_split(frame, 0.7)
    assert split.split_date == D + dt.timedelta(days=3)
    assert split.train["outcome_date"].max() < split.split_date <= split.holdout["outcome_date"].min()
    assert split.train.height + split.holdout.height == 10


def test_an_external_outcomes_file_is_read_and_bad_rows_are_named(tmp_path):
    good = tmp_path / "outcomes.csv"
    good.write_text("account_id,outcome_date,outcome\nACC-1 ,2026-05-01,Churned\nACC-2,2026-06-01,renewed\n")
    assert read_outcomes_file(good).rows() == [("ACC-1", dt.date(2026, 5, 1), "churned"), ("ACC-2", dt.date(2026, 6, 1), "renewed")]
    bad = tmp_path / "bad.csv"
    bad.write_text("account_id,outcome_date,outcome\nACC-1,2026-05-01,churned\nACC-2,2026-06-01,upsold\n")
    with pytest.raises(OutcomesError, match=r"bad.csv: column 'outcome' line 3: 'upsold' is not churned or renewed"):
        read_outcomes_file(bad)
    bad.write_text("account_id,outcome_date,outcome\nACC-1,01/05/2026,churned\n")
    with pytest.raises(OutcomesError, match=r"column 'outcome_date' line 2: cannot read '01/05/2026' as YYYY-MM-DD"):
        read_outcomes_file(bad)


def test_validation_config_errors_name_the_key():
    raw = yaml.safe_load(DEFAULT_VALIDATION_PATH.read_text())
    raw["tuning"]["train_share"] = 1.5
    with pytest.raises(ValidationConfigError, match=r"`tuning.train_share`: must be a number between 0 and 1, got 1.5"):
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
    churn = pl.DataFrame({"account_id": ["S1", "U1", "U2"], "churn_date": [cohort + dt.timedelta(days=10), cohort + dt.timedelta(days=5), None]})
    cfg = parse_validation_config(yaml.safe_load(DEFAULT_VALIDATION_PATH.read_text()), "v.yaml")
    end = cohort + dt.timedelta(days=365)  # 12 months observed
    table = cs_contribution(history, churn, cfg.engaged_when, 0.8, cohort, end)
    row = table.row(0, named=True)
    # supported: 1 churn in 2 accounts over 12 months -> 1/24 a month; LTV = 0.8 * 100 * 24 = 1920
    # unsupported: 1 in 2 as well -> the same LTV, contribution 0
    assert row["monthly_churn_supported"] == pytest.approx(round(1 / 24, 4))
    assert row["ltv_supported"] == pytest.approx(1920.0, rel=1e-3)
    assert row["contribution_usd"] == pytest.approx(0.0, abs=1e-6)


def test_the_challenger_is_a_valid_model_file_and_migrations_are_counted():
    champion = load_model(settings.DEFAULT_MODEL_PATH)
    names = [i.name for i in champion.indicators]
    weights = pl.DataFrame(
        {
            "indicator": names,
            "suggested_share": [1.0 / len(names) if i % 3 else 0.0 for i in range(len(names))],
        }
    )
    doc = challenger_document(load_model_document(settings.DEFAULT_MODEL_PATH), weights)
    model = parse_model(yaml.safe_load(yaml.safe_dump(doc)), "challenger.yaml")
    assert model.name == "default-challenger" and model.version != champion.version
    champ = pl.DataFrame({"band": ["red", "red", "yellow", "green"]})
    chall = pl.DataFrame({"band": ["red", "yellow", "yellow", "yellow"]})
    assert migration_matrix(champ, chall, BANDS).rows() == [("red", 1, 1, 0), ("yellow", 0, 1, 0), ("green", 0, 1, 0)]


@pytest.fixture(scope="module")
def validated_home(tmp_path_factory):
    """120 demo accounts, 150 daily snapshots: enough outcomes at 30/60 days for a real run."""
    home = make_home(tmp_path_factory.mktemp("validation"), "home")
    dates = [DEMO_AS_OF - dt.timedelta(days=i) for i in range(149, -1, -1)]
    assert run_graph(home, dates).success
    return home


def test_a_validation_run_writes_the_report_the_challenger_and_the_contribution(validated_home, tmp_path):
    model_path = tmp_path / "model" / "health_model.yaml"
    model_path.parent.mkdir()
    model_path.write_text(settings.DEFAULT_MODEL_PATH.read_text())
    config = yaml.safe_load(DEFAULT_VALIDATION_PATH.read_text())
    config["tuning"].update(horizon_days=30, min_outcomes_per_class=3, train_share=0.6)  # 120 accounts: few churns
    config_path = tmp_path / "validation.yaml"
    config_path.write_text(yaml.safe_dump(config))
    result = run_validation(validated_home, model_path=model_path, validation_path=config_path)
    assert result.success
    summary = published(validated_home, "score_validation").sort("horizon_days")
    assert summary["horizon_days"].to_list() == [30, 60, 90]
    at_30 = summary.row(0, named=True)
    assert at_30["outcomes"] > 20 and 0.5 < at_30["auc"] <= 1.0
    challenger = model_path.parent / "health_model.challenger.yaml"
    parse_model(yaml.safe_load(challenger.read_text()), str(challenger))
    materialized = {m.asset_key.to_user_string(): m for m in result.asset_materializations_for_node("challenger_model")}
    meta = materialized["challenger_model"].metadata
    assert meta["train_outcomes"].value > 0 and meta["holdout_outcomes"].value > 0
    assert "| red |" in meta["band_migration"].value
    check = result.get_asset_check_evaluations()[0]
    assert check.check_name == "score_predicts_churn" and check.severity.value == "WARN"


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
