"""Models per segment: overrides validated on load, exactly the segment's accounts scored by them,
and change attribution that stays exact when an account moves to another segment model."""

import datetime as dt
import shutil
from decimal import Decimal
from pathlib import Path

import duckdb
import polars as pl
import pytest
import yaml

from cs_assets import settings
from cs_assets.demo.generator import DEMO_AS_OF
from cs_assets.deployment import load_deployment
from cs_assets.publish.queries import score_change
from cs_assets.scoring.assets import contributions_for
from cs_assets.scoring.attribution import MODEL_CHANGE, SEGMENT_CHANGE, attribute_change
from cs_assets.scoring.model_config import DEFAULT_SEGMENT, ModelConfigError, parse_model
from tests.harness import copy_home, make_home, published, run_graph

CATALOGUE = load_deployment().catalogue
SMB = {
    "name": "smb",
    "description": "small accounts: fewer jobs is normal",
    "when": {"size_tier": ["SMB"]},
    "indicators": {
        "jobs_run_30d": {"weight": 40, "scoring": {"function": "linear", "worst": 0, "best": 8}},
        "seat_penetration": {"weight": 0},
    },
    "bands": [
        {"name": "red", "min_score": 0},
        {"name": "yellow", "min_score": 35},
        {"name": "green", "min_score": 60},
    ],
}


def default_raw() -> dict:
    return yaml.safe_load(settings.DEFAULT_MODEL_PATH.read_text(encoding="utf-8"))


def with_segments(*segments: dict) -> dict:
    return {**default_raw(), "segments": list(segments)}


def write_model(path: Path, raw: dict) -> Path:
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- the file


def test_a_segment_is_the_default_with_its_overrides():
    model = parse_model(with_segments(SMB), "m.yaml", CATALOGUE)
    default = parse_model(default_raw(), "m.yaml", CATALOGUE)
    assert model.segment_names == [DEFAULT_SEGMENT, "smb"]
    smb = model.for_segment("smb")
    assert smb.indicator("jobs_run_30d").weight == 40 and smb.indicator("jobs_run_30d").bounds == (0.0, 8.0)
    assert smb.indicator("seat_penetration").weight == 0
    # the rest is the default's: same indicators, same scoring elsewhere, the segment's cut points
    assert smb.indicator("usage_trend_30d") == default.indicator("usage_trend_30d")
    assert [b.min_score for b in smb.bands] == [0, 35, 60]
    assert model.indicators == default.indicators and model.bands == default.bands
    # the version covers the segments; a model without segments keeps the version it had
    assert model.version != default.version
    assert parse_model(with_segments({**SMB, "bands": None}), "m.yaml", CATALOGUE).version != model.version
    # the stored effective model gives the same model back
    import json

    assert parse_model(json.loads(model.to_json()), "stored").version == model.version


@pytest.mark.parametrize(
    ("segment", "key", "problem"),
    [
        (
            {**SMB, "indicators": {"jobs_run_7d": {"weight": 1}}},
            "segments[0].indicators.jobs_run_7d",
            "not an indicator of the model",
        ),
        (
            {**SMB, "indicators": {"jobs_run_30d": {"scoring": {"function": "linear", "worst": 8, "best": 0}}}},
            "segments[0].indicators.jobs_run_30d.scoring",
            "direction higher_is_better contradicts worst=8.0, best=0.0",
        ),
        (
            {**SMB, "bands": [{"name": "red", "min_score": 0}, {"name": "green", "min_score": 60}]},
            "segments[0].bands",
            "must name the model's bands in its order (red, yellow, green), got red, green",
        ),
        (
            {
                **SMB,
                "bands": [
                    {"name": "red", "min_score": 0},
                    {"name": "yellow", "min_score": 70},
                    {"name": "green", "min_score": 60},
                ],
            },
            "segments[0].bands[2].min_score",
            "cut points must rise strictly",
        ),
        ({**SMB, "when": {}}, "segments[0].when", "at least 1 item"),
        ({**SMB, "when": {"size_tier": []}}, "segments[0].when.size_tier", "must list at least one value"),
        ({**SMB, "name": "default"}, "segments[0].name", "`default` is the model of the accounts no segment matches"),
        (
            {**SMB, "indicators": {"jobs_run_30d": {"direction": "lower_is_better"}}},
            "segments[0].indicators.jobs_run_30d",
            "direction",
        ),
    ],
)
def test_a_wrong_segment_is_refused_naming_the_key(segment, key, problem):
    with pytest.raises(ModelConfigError) as error:
        parse_model(with_segments(segment), "m.yaml", CATALOGUE)
    assert f"`{key}" in str(error.value) and problem in str(error.value), str(error.value)


def test_two_segments_of_one_name_are_refused():
    with pytest.raises(
        ModelConfigError, match=r"`segments\[1\].name`: segment names must be unique, 'smb' is used twice"
    ):
        parse_model(with_segments(SMB, SMB), "m.yaml", CATALOGUE)


def test_the_first_matching_segment_scores_and_an_unknown_column_is_named():
    model = parse_model(
        with_segments(
            {"name": "new_smb", "when": {"size_tier": "SMB", "lifecycle_stage": "onboarding"}, "bands": SMB["bands"]},
            SMB,
        ),
        "m.yaml",
        CATALOGUE,
    )
    names = [i.name for i in model.indicators]
    frame = pl.DataFrame(
        {
            "account_id": ["a", "b", "c", "d"],
            "is_active": [True] * 4,
            "size_tier": ["SMB", "SMB", "Mid", None],
            "tenure_days": [10, 400, 10, 10],
            "days_to_renewal": [300, 300, 300, 300],
            **{n: [1.0, 1.0, 1.0, 1.0] for n in names},
        }
    )
    points = contributions_for(frame, model)
    chosen = dict(points.group_by("account_id").agg(pl.col("segment_model").first()).iter_rows())
    assert chosen == {"a": "new_smb", "b": "smb", "c": DEFAULT_SEGMENT, "d": DEFAULT_SEGMENT}
    # every account's points still add up under its own model
    assert (points.group_by("account_id").agg(pl.col("points").sum())["points"] <= 100).all()
    wrong = parse_model(with_segments({**SMB, "when": {"industry_code": ["x"]}}), "m.yaml", CATALOGUE)
    with pytest.raises(ValueError, match=r"segments\[0\] \(smb\): `when` column 'industry_code' is not a column"):
        contributions_for(frame, wrong)


def test_segment_change_parts_add_up_between_model_and_segment():
    def frame(points: dict[str, str]) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "account_id": ["a"] * len(points),
                "indicator": list(points),
                "points": [Decimal(v) for v in points.values()],
            }
        )

    before = frame({"x": "30.0000", "y": "20.0000"})
    old_way = frame({"x": "35.0000", "y": "20.0000"})  # the later data, the earlier model and segment
    new_model = frame({"x": "40.0000", "y": "18.0000"})  # the later model, the earlier segment
    after = frame({"x": "50.0000", "y": "10.0000"})
    parts = attribute_change(before, after, steps=[(MODEL_CHANGE, old_way), (SEGMENT_CHANGE, new_model)])
    by = dict(zip(parts["indicator"], parts["change"]))
    assert by == {"x": Decimal(5), "y": Decimal(0), MODEL_CHANGE: Decimal(3), SEGMENT_CHANGE: Decimal(2)}
    assert sum(by.values()) == Decimal(60) - Decimal(50)


# --------------------------------------------------------------------------- real runs


@pytest.fixture(scope="module")
def default_home(published_demo_home, tmp_path_factory) -> Path:
    return copy_home(published_demo_home, tmp_path_factory.mktemp("segments") / "default")


def test_a_segment_override_changes_exactly_the_accounts_of_that_segment(default_home, tmp_path):
    home = tmp_path / "segmented"
    shutil.copytree(settings.landing_dir(default_home), settings.landing_dir(home))
    model = write_model(tmp_path / "model.yaml", with_segments(SMB))
    assert run_graph(home, DEMO_AS_OF, model_path=model).success
    before, after = published(default_home), published(home)
    joined = before.join(after, on=["account_id", "snapshot_date"], suffix="_seg")
    assert joined.height == before.height == after.height
    smb = joined.filter(pl.col("size_tier") == "SMB")
    others = joined.filter(pl.col("size_tier") != "SMB")
    assert smb.height > 0 and others.height > 0
    assert (smb["segment_model_seg"] == "smb").all() and (others["segment_model_seg"] == DEFAULT_SEGMENT).all()
    assert (before["segment_model"] == DEFAULT_SEGMENT).all()
    # the other accounts keep every number; the segment's accounts are scored its way
    for column in ("health_score", "co_score", "cx_score", "band", "triage_priority"):
        assert others[column].equals(others[f"{column}_seg"], null_equal=True), column
    assert (smb["health_score"] != smb["health_score_seg"]).sum() > smb.height // 2
    # the band follows the segment's cut points
    seg = smb.with_columns(score=pl.col("health_score_seg").cast(pl.Float64))
    expected = seg.select(
        pl.when(pl.col("score") >= 60)
        .then(pl.lit("green"))
        .when(pl.col("score") >= 35)
        .then(pl.lit("yellow"))
        .otherwise(pl.lit("red"))
    ).to_series()
    assert seg["band_seg"].to_list() == expected.to_list()
    # one model version covers the default and its segments
    assert after["model_version"].n_unique() == 1 and after["model_version"][0] != before["model_version"][0]
    contributions = published(home, "account_health_contributions")
    sums = contributions.group_by("account_id").agg(pl.col("points").sum())
    assert (
        sums.join(after.select("account_id", "health_score"), on="account_id")
        .filter(pl.col("points") != pl.col("health_score"))
        .is_empty()
    )


def test_moving_to_another_segment_model_is_its_own_part_of_the_change(tmp_path):
    home = make_home(tmp_path, "moves")
    # accounts enter the renewal window as the month passes: they move to its segment model
    renewal = {
        "name": "renewing",
        "when": {"lifecycle_stage": ["renewal_window"]},
        "indicators": {"champion_days_inactive": {"weight": 60}},
        "bands": [
            {"name": "red", "min_score": 0},
            {"name": "yellow", "min_score": 55},
            {"name": "green", "min_score": 80},
        ],
    }
    model = write_model(tmp_path / "model.yaml", with_segments(renewal))
    first, last = DEMO_AS_OF - dt.timedelta(days=30), DEMO_AS_OF
    assert run_graph(home, [first, last], model_path=model).success
    health = published(home).filter(pl.col("snapshot_date").is_in([first, last]))
    wide = health.pivot(on="snapshot_date", index="account_id", values="segment_model")
    moved = wide.filter(pl.col(str(first)) == DEFAULT_SEGMENT, pl.col(str(last)) == "renewing")["account_id"]
    assert moved.len() > 0
    con = duckdb.connect(str(settings.warehouse_path(home)), read_only=True)
    try:
        for account in moved.head(10):
            change = score_change(con, account, first, last)
            parts = change["parts"]
            assert (change["segment_before"], change["segment_after"]) == (DEFAULT_SEGMENT, "renewing")
            assert parts["change"].sum() == change["score_after"] - change["score_before"]
            assert SEGMENT_CHANGE in parts["indicator"].to_list() and MODEL_CHANGE not in parts["indicator"].to_list()
        stayed = wide.filter(pl.col(str(first)) == pl.col(str(last)))["account_id"][0]
        assert SEGMENT_CHANGE not in score_change(con, stayed, first, last)["parts"]["indicator"].to_list()
    finally:
        con.close()


# --------------------------------------------------------------------------- calibration


def test_calibrate_fits_a_segment_with_enough_outcomes_and_says_which_it_did_not():
    import numpy as np

    from cs_assets.validation.calibration import calibrate
    from tests.calibration_harness import TRUTH_MODEL, calibration_settings, truth_rows

    rows = truth_rows(n=3000, seed=5)
    rng = np.random.default_rng(7)
    plan = np.where(np.arange(rows.height) < 1400, "pro", np.where(np.arange(rows.height) < 1430, "trial", "basic"))
    # in the "pro" segment churn follows `noise` (low noise churns), which the default does not see
    pro = plan == "pro"
    noise = rows["noise"].to_numpy()
    churned = np.where(pro, rng.random(rows.height) < 1 / (1 + np.exp(10 * (noise - 0.4))), rows["churned"].to_numpy())
    rows = rows.with_columns(plan=pl.Series(plan), churned=pl.Series(churned)).with_columns(
        segment_model=pl.when(pl.col("plan") == "pro")
        .then(pl.lit("pro"))
        .when(pl.col("plan") == "trial")
        .then(pl.lit("trial"))
        .otherwise(pl.lit(DEFAULT_SEGMENT))
    )
    raw = {
        **TRUTH_MODEL,
        "segments": [
            {"name": "pro", "when": {"plan": ["pro"]}},
            {"name": "trial", "when": {"plan": ["trial"]}, "indicators": {"noise": {"weight": 2}}},
        ],
    }
    current = parse_model(raw)
    result = calibrate(rows, current, current.document, calibration_settings())
    notes = {n["segment"]: n for n in result.report["segments"]}
    assert notes["pro"]["fitted"] and notes["pro"]["train_outcomes"] > 0
    assert not notes["trial"]["fitted"] and "not fitted" in notes["trial"]["note"]
    assert "keeps its configured overrides" in notes["trial"]["note"]
    segments = {s["name"]: s for s in result.document["segments"]}
    assert segments["trial"] == raw["segments"][1]  # as configured
    # the pro segment's fit gives noise the weight the pooled default does not
    pro_weights = {n: r["weight"] for n, r in segments["pro"]["indicators"].items()}
    default_weights = {n: r["weight"] for n, r in result.document["indicators"].items()}
    assert pro_weights["noise"] > default_weights["noise"]
    assert pro_weights["noise"] == max(pro_weights.values())
    # the candidate is a valid model whose pro accounts are scored by their own fit, better than before
    assert parse_model(result.document).version == result.candidate.version
    assert notes["pro"]["candidate_auc"] > notes["pro"]["current_auc"]
    # the same inputs give the same candidate
    again = calibrate(rows, current, current.document, calibration_settings())
    assert again.document == result.document


def test_config_check_lists_the_segments_and_names_a_column_the_table_lacks(tmp_path, capsys):
    from cs_assets.cli import main

    config = tmp_path / "config"
    shutil.copytree(settings.REPO_ROOT / "config", config, ignore=shutil.ignore_patterns("schema"))
    write_model(config / "health_model.yaml", with_segments(SMB))
    assert main(["--config", str(config), "config", "check"]) == 0
    out = capsys.readouterr().out
    assert "  segment smb: size_tier in [SMB]; bands from 0, 35, 60" in out and "  default: every other account" in out
    write_model(config / "health_model.yaml", with_segments({**SMB, "when": {"region": ["EU"]}}))
    assert main(["--config", str(config), "config", "check"]) == 2
    assert "`segments[0].when.region`: not a column of the indicator table (columns: " in capsys.readouterr().err
