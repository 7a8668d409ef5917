"""The model file is validated on load, with errors that name the key and the problem."""

import copy
import json

import pytest
import yaml

from cs_assets.deployment import load_deployment
from cs_assets.scoring.model_config import ModelConfigError, load_model, parse_model
from cs_assets.settings import DEFAULT_MODEL_PATH

CATALOGUE = load_deployment().catalogue


@pytest.fixture()
def raw_model() -> dict:
    return yaml.safe_load(DEFAULT_MODEL_PATH.read_text())


def test_default_model_is_valid_and_versioned():
    model = load_model(DEFAULT_MODEL_PATH, CATALOGUE)
    assert len(model.version) == 12 and model.left_out == {}
    # the stored JSON is the effective model: parsed back without a catalogue it is the same model
    assert parse_model(json.loads(model.to_json())).version == model.version


def test_version_ignores_comments_and_key_order_but_not_values(raw_model, tmp_path):
    reordered = dict(reversed(list(raw_model.items())))
    path = tmp_path / "m.yaml"
    path.write_text("# a comment\n" + yaml.safe_dump(reordered, sort_keys=False))
    assert load_model(path, CATALOGUE).version == load_model(DEFAULT_MODEL_PATH, CATALOGUE).version
    changed = copy.deepcopy(raw_model)
    changed["indicators"]["seat_penetration"]["weight"] = 26
    assert parse_model(changed, catalogue=CATALOGUE).version != load_model(DEFAULT_MODEL_PATH, CATALOGUE).version


def _error(raw) -> str:
    with pytest.raises(ModelConfigError) as info:
        parse_model(raw, source="model.yaml", catalogue=CATALOGUE)
    return str(info.value)


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (
            lambda m: m["indicators"]["seat_penetration"].update(weight=-1),
            "`indicators.seat_penetration.weight`: must be >= 0, got -1",
        ),
        (
            lambda m: m["indicators"]["seat_penetration"].update(weight="high"),
            "`indicators.seat_penetration.weight`: must be a finite number, got 'high'",
        ),
        (
            lambda m: m["indicators"]["seat_penetration"].update(subscore="roi"),
            "`indicators.seat_penetration.subscore`: must be one of co, cx, got 'roi'",
        ),
        (
            lambda m: m["indicators"].update(logins_per_day=m["indicators"]["seat_penetration"]),
            "`indicators.logins_per_day`: unknown indicator; known indicators:",
        ),
        (
            lambda m: m["indicators"]["seat_penetration"]["scoring"].update(worst=0.9),
            "`indicators.seat_penetration.scoring`: direction higher_is_better contradicts worst=0.9, best=0.35",
        ),
        (
            lambda m: m["indicators"]["champion_days_inactive"]["scoring"].update(cuts=[14, 7, 30]),
            "`indicators.champion_days_inactive.scoring.cuts`: must be strictly ascending",
        ),
        (
            lambda m: m["indicators"]["champion_days_inactive"]["scoring"].update(scores=[100, 70]),
            "`indicators.champion_days_inactive.scoring.scores`: needs one score per interval: 4 for 3 cuts, got 2",
        ),
        (
            lambda m: m["indicators"]["champion_days_inactive"]["scoring"].update(scores=[0, 30, 70, 100]),
            "`indicators.champion_days_inactive.scoring.scores`: must not increase for lower_is_better",
        ),
        (
            lambda m: m["indicators"]["seat_penetration"]["missing"].update(policy="guess"),
            "`indicators.seat_penetration.missing.policy`: must be one of exclude, score, got 'guess'",
        ),
        (
            lambda m: m["indicators"]["seat_penetration"]["missing"].update(score=150),
            "`indicators.seat_penetration.missing.score`: must be within 0..100, got 150.0",
        ),
        (
            lambda m: m["indicators"]["seat_penetration"].update(wieght=3),
            "`indicators.seat_penetration`: unknown key(s): wieght",
        ),
        (
            lambda m: m["bands"][0].update(min_score=10),
            "`bands[0].min_score`: the lowest band must start at 0, got 10.0",
        ),
        (lambda m: m["bands"][2].update(min_score=40), "`bands[2].min_score`: cut points must rise strictly"),
        (
            lambda m: m["lifecycle"].update(onboarding_days=-5),
            "`lifecycle.onboarding_days`: must be a whole number of days >= 0, got -5",
        ),
        (lambda m: m["triage"]["adoption"].pop("red"), "`triage.adoption`: missing required key(s): red"),
        (
            lambda m: m["subscores"]["cx"].update(weight=0) or m["subscores"]["co"].update(weight=0),
            "`subscores`: sub-score weights must not all be zero",
        ),
        (lambda m: m.pop("bands"), "`<root>`: missing required key(s): bands"),
        (lambda m: m.update(version=2), "`version`: this release reads model file version 1, got 2"),
    ],
)
def test_invalid_model_names_key_and_problem(raw_model, mutate, expected):
    mutate(raw_model)
    message = _error(raw_model)
    assert message.startswith("model.yaml: ")
    assert expected in message


def test_some_indicator_must_score_missing_data(raw_model):
    for rule in raw_model["indicators"].values():
        rule["missing"] = {"policy": "exclude"}
    assert "`indicators`: needs at least one weighted indicator with missing.policy `score`" in _error(raw_model)


def test_indicators_of_undeclared_sources_are_left_out_and_their_weight_redistributed(raw_model, tmp_path):
    import dataclasses

    from cs_assets.deployment import load_catalogue, load_contract

    # a deployment with only the CRM and the usage events: no tickets, surveys or engagement
    sources = yaml.safe_load((DEFAULT_MODEL_PATH.parent / "sources.yaml").read_text())
    sources["sources"] = {k: v for k, v in sources["sources"].items() if k in ("crm_accounts", "usage_events")}
    (tmp_path / "sources.yaml").write_text(yaml.safe_dump(sources))
    contract = load_contract(tmp_path / "sources.yaml")
    catalogue = load_catalogue(DEFAULT_MODEL_PATH.parent / "indicators.yaml", contract)
    assert "bug_tickets_90d" in catalogue.unavailable and "jobs_run_30d" in catalogue.indicators
    model = parse_model(raw_model, "model.yaml", catalogue)
    assert "incident_tickets_90d" in model.left_out and "support_tickets" in model.left_out["incident_tickets_90d"]
    names = {r.name for r in model.indicators}
    assert names == {n for n, r in raw_model["indicators"].items() if n in catalogue.indicators}
    # CX keeps page load only (exclude policy): accounts without page views hand CX's weight to CO
    assert model.subscore_weights["co"] == pytest.approx(0.7) and model.subscore_weights["cx"] == pytest.approx(0.3)
    assert "incident_tickets_90d" not in model.document["indicators"]
    assert parse_model(model.document).version == model.version
    # a typo is still an error, not a left-out indicator
    raw_model["indicators"]["jobs_runs_30d"] = raw_model["indicators"].pop("jobs_run_30d")
    with pytest.raises(ModelConfigError, match="`indicators.jobs_runs_30d`: unknown indicator"):
        parse_model(raw_model, "model.yaml", catalogue)
    assert dataclasses.is_dataclass(model)


def test_a_subscore_whose_indicators_all_need_missing_sources_hands_its_weight_over(raw_model, tmp_path):
    from cs_assets.deployment import load_catalogue, load_contract

    sources = yaml.safe_load((DEFAULT_MODEL_PATH.parent / "sources.yaml").read_text())
    sources["sources"] = {k: v for k, v in sources["sources"].items() if k in ("crm_accounts", "usage_events")}
    (tmp_path / "sources.yaml").write_text(yaml.safe_dump(sources))
    catalogue = load_catalogue(DEFAULT_MODEL_PATH.parent / "indicators.yaml", load_contract(tmp_path / "sources.yaml"))
    raw_model["indicators"].pop("page_load_p75_ms")  # CX now only has ticket, survey and engagement indicators
    model = parse_model(raw_model, "model.yaml", catalogue)
    assert model.subscore_weights == {"co": 1.0, "cx": 0.0}
    assert model.document["subscores"]["cx"]["weight"] == 0


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ModelConfigError, match="model file not found"):
        load_model(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("indicators: [unclosed\n")
    with pytest.raises(ModelConfigError, match="not valid YAML"):
        load_model(bad)
