"""The health model: a reviewed YAML file, validated on load into plain dataclasses.

Every tunable of the score (indicators, weights, scoring functions, missing-data policies,
sub-score weights, band cut points, lifecycle windows, triage matrix) lives in the file, never
in code. Validation errors name the offending key path and say what is wrong, so a reviewer
can fix the file without reading this module.
"""

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cs_assets.config_file import ConfigFileError, read_yaml, require_mapping
from cs_assets.indicators.definitions import INDICATOR_COLUMNS

SUBSCORES = ("co", "cx")
DIRECTIONS = ("higher_is_better", "lower_is_better")
SCORING_FUNCTIONS = ("linear", "thresholds")
MISSING_POLICIES = ("exclude", "score")
LIFECYCLE_STAGES = ("onboarding", "adoption", "renewal_window")  # scored stages; "churned" is never scored
MODEL_FILE_VERSION = 1


class ModelConfigError(ConfigFileError):
    """The model file is invalid; the message names the key path and the problem."""


@dataclass(frozen=True)
class IndicatorRule:
    name: str
    subscore: str
    weight: float
    direction: str
    function: str
    # linear: [lower, upper]; thresholds: ascending cut points
    bounds: tuple[float, ...]
    # thresholds only: one score per interval (len(bounds) + 1)
    scores: tuple[float, ...]
    missing_policy: str
    missing_score: float | None
    label: str


@dataclass(frozen=True)
class Band:
    name: str
    min_score: float


@dataclass(frozen=True)
class HealthModel:
    name: str
    subscore_weights: dict[str, float]
    indicators: tuple[IndicatorRule, ...]
    bands: tuple[Band, ...]  # ascending by min_score, first at 0
    onboarding_days: int
    renewal_window_days: int
    triage: dict[str, dict[str, str]]  # stage -> band -> priority
    version: str  # content hash of the validated model

    def indicator(self, name: str) -> IndicatorRule:
        return next(i for i in self.indicators if i.name == name)


def _fail(source: str, key: str, problem: str) -> None:
    raise ModelConfigError(source, key, problem)


def _number(source: str, key: str, value: Any, *, minimum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        _fail(source, key, f"must be a finite number, got {value!r}")
    if minimum is not None and value < minimum:
        _fail(source, key, f"must be >= {minimum}, got {value!r}")
    return float(value)


def _mapping(source: str, key: str, value: Any, required: set[str], optional: set[str] = frozenset()) -> dict:
    return require_mapping(ModelConfigError, source, key, value, required, optional)


def _choice(source: str, key: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        _fail(source, key, f"must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _indicator(source: str, name: str, raw: Any) -> IndicatorRule:
    key = f"indicators.{name}"
    if name not in INDICATOR_COLUMNS:
        _fail(source, key, f"unknown indicator; known indicators: {', '.join(sorted(INDICATOR_COLUMNS))}")
    raw = _mapping(source, key, raw, {"subscore", "weight", "direction", "scoring", "missing"}, {"label"})
    subscore = _choice(source, f"{key}.subscore", raw["subscore"], SUBSCORES)
    weight = _number(source, f"{key}.weight", raw["weight"], minimum=0)
    direction = _choice(source, f"{key}.direction", raw["direction"], DIRECTIONS)

    scoring = raw["scoring"]
    if not isinstance(scoring, dict) or "function" not in scoring:
        _fail(source, f"{key}.scoring", "must be a mapping with a `function` key (linear or thresholds)")
    function = _choice(source, f"{key}.scoring.function", scoring["function"], SCORING_FUNCTIONS)
    scores: tuple[float, ...] = ()
    if function == "linear":
        scoring = _mapping(source, f"{key}.scoring", scoring, {"function", "worst", "best"})
        worst = _number(source, f"{key}.scoring.worst", scoring["worst"])
        best = _number(source, f"{key}.scoring.best", scoring["best"])
        if worst == best:
            _fail(source, f"{key}.scoring", f"worst and best must differ, both are {worst}")
        if (direction == "higher_is_better") != (best > worst):
            _fail(
                source,
                f"{key}.scoring",
                f"direction {direction} contradicts worst={worst}, best={best}",
            )
        bounds = (worst, best)
    else:
        scoring = _mapping(source, f"{key}.scoring", scoring, {"function", "cuts", "scores"})
        cuts, pts = scoring["cuts"], scoring["scores"]
        if not isinstance(cuts, list) or not cuts:
            _fail(source, f"{key}.scoring.cuts", "must be a non-empty list of numbers")
        if not isinstance(pts, list):
            _fail(source, f"{key}.scoring.scores", "must be a list of numbers")
        bounds = tuple(_number(source, f"{key}.scoring.cuts[{i}]", c) for i, c in enumerate(cuts))
        scores = tuple(_number(source, f"{key}.scoring.scores[{i}]", s) for i, s in enumerate(pts))
        if any(b >= a for a, b in zip(bounds[1:], bounds[:-1])):
            _fail(source, f"{key}.scoring.cuts", f"must be strictly ascending, got {list(bounds)}")
        if len(scores) != len(bounds) + 1:
            _fail(
                source,
                f"{key}.scoring.scores",
                f"needs one score per interval: {len(bounds) + 1} for {len(bounds)} cuts, got {len(scores)}",
            )
        for i, s in enumerate(scores):
            if not 0 <= s <= 100:
                _fail(source, f"{key}.scoring.scores[{i}]", f"must be within 0..100, got {s}")
        rising = all(b >= a for a, b in zip(scores, scores[1:]))
        falling = all(b <= a for a, b in zip(scores, scores[1:]))
        if direction == "higher_is_better" and not rising:
            _fail(source, f"{key}.scoring.scores", f"must not decrease for {direction}, got {list(scores)}")
        if direction == "lower_is_better" and not falling:
            _fail(source, f"{key}.scoring.scores", f"must not increase for {direction}, got {list(scores)}")

    missing = raw["missing"]
    if not isinstance(missing, dict) or "policy" not in missing:
        _fail(source, f"{key}.missing", "must be a mapping with a `policy` key (exclude or score)")
    policy = _choice(source, f"{key}.missing.policy", missing["policy"], MISSING_POLICIES)
    missing_score = None
    if policy == "score":
        missing = _mapping(source, f"{key}.missing", missing, {"policy", "score"})
        missing_score = _number(source, f"{key}.missing.score", missing["score"], minimum=0)
        if missing_score > 100:
            _fail(source, f"{key}.missing.score", f"must be within 0..100, got {missing_score}")
    else:
        _mapping(source, f"{key}.missing", missing, {"policy"})

    label = raw.get("label", name.replace("_", " "))
    if not isinstance(label, str) or not label.strip():
        _fail(source, f"{key}.label", "must be a non-empty string")
    return IndicatorRule(
        name=name,
        subscore=subscore,
        weight=weight,
        direction=direction,
        function=function,
        bounds=bounds,
        scores=scores,
        missing_policy=policy,
        missing_score=missing_score,
        label=label,
    )


def parse_model(raw: Any, source: str = "<model>") -> HealthModel:
    """Validate a parsed YAML document and return the model it describes."""
    raw = _mapping(
        source, "<root>", raw, {"version", "name", "subscores", "indicators", "bands", "lifecycle", "triage"}
    )
    if raw["version"] != MODEL_FILE_VERSION:
        _fail(source, "version", f"this release reads model file version {MODEL_FILE_VERSION}, got {raw['version']!r}")
    name = raw["name"]
    if not isinstance(name, str) or not name.strip():
        _fail(source, "name", "must be a non-empty string")

    subs = _mapping(source, "subscores", raw["subscores"], set(SUBSCORES))
    sub_weights = {}
    for s in SUBSCORES:
        entry = _mapping(source, f"subscores.{s}", subs[s], {"weight"}, {"label"})
        sub_weights[s] = _number(source, f"subscores.{s}.weight", entry["weight"], minimum=0)
    total = sum(sub_weights.values())
    if total <= 0:
        _fail(source, "subscores", "sub-score weights must not all be zero")
    sub_weights = {s: w / total for s, w in sub_weights.items()}

    if not isinstance(raw["indicators"], dict) or not raw["indicators"]:
        _fail(source, "indicators", "must be a non-empty mapping of indicator name -> rule")
    indicators = tuple(_indicator(source, str(n), r) for n, r in raw["indicators"].items())
    for s in SUBSCORES:
        members = [i for i in indicators if i.subscore == s]
        if sub_weights[s] > 0 and not any(i.weight > 0 for i in members):
            _fail(source, f"subscores.{s}", "has weight but no indicator with a positive weight")
        # An account must always get a sub-score: at least one weighted indicator has to
        # score even when its data is missing, otherwise the weights have nothing to divide.
        if sub_weights[s] > 0 and not any(i.weight > 0 and i.missing_policy == "score" for i in members):
            _fail(
                source,
                f"subscores.{s}",
                "needs at least one weighted indicator with missing.policy `score`, "
                "so that an account with no data still gets a sub-score",
            )

    bands_raw = raw["bands"]
    if not isinstance(bands_raw, list) or len(bands_raw) < 2:
        _fail(source, "bands", "must be a list of at least two {name, min_score} entries, lowest first")
    bands = []
    for i, b in enumerate(bands_raw):
        b = _mapping(source, f"bands[{i}]", b, {"name", "min_score"})
        if not isinstance(b["name"], str) or not b["name"]:
            _fail(source, f"bands[{i}].name", "must be a non-empty string")
        bands.append(Band(b["name"], _number(source, f"bands[{i}].min_score", b["min_score"], minimum=0)))
    if bands[0].min_score != 0:
        _fail(source, "bands[0].min_score", f"the lowest band must start at 0, got {bands[0].min_score}")
    for i in range(1, len(bands)):
        if bands[i].min_score <= bands[i - 1].min_score or bands[i].min_score > 100:
            _fail(
                source,
                f"bands[{i}].min_score",
                f"cut points must rise strictly and stay <= 100, got {bands[i].min_score} after {bands[i - 1].min_score}",
            )
    band_names = [b.name for b in bands]
    if len(set(band_names)) != len(band_names):
        _fail(source, "bands", f"band names must be unique, got {band_names}")

    life = _mapping(source, "lifecycle", raw["lifecycle"], {"onboarding_days", "renewal_window_days"})
    onboarding = life["onboarding_days"]
    renewal = life["renewal_window_days"]
    for k, v in (("onboarding_days", onboarding), ("renewal_window_days", renewal)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            _fail(source, f"lifecycle.{k}", f"must be a whole number of days >= 0, got {v!r}")

    triage_raw = _mapping(source, "triage", raw["triage"], set(LIFECYCLE_STAGES))
    triage: dict[str, dict[str, str]] = {}
    for stage in LIFECYCLE_STAGES:
        row = _mapping(source, f"triage.{stage}", triage_raw[stage], set(band_names))
        for band in band_names:
            p = row[band]
            if not isinstance(p, str) or not p.strip():
                _fail(source, f"triage.{stage}.{band}", f"must be a priority label such as P1, got {p!r}")
        triage[stage] = {band: row[band] for band in band_names}

    model = HealthModel(
        name=name,
        subscore_weights=sub_weights,
        indicators=indicators,
        bands=tuple(bands),
        onboarding_days=onboarding,
        renewal_window_days=renewal,
        triage=triage,
        version="",
    )
    return HealthModel(**{**model.__dict__, "version": model_version(model)})


def model_version(model: HealthModel) -> str:
    """Hash of the validated model: comments and key order in the file do not change it."""
    payload = asdict(model)
    payload.pop("version")
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def load_model_document(path: str | Path) -> Any:
    """The model file as parsed YAML (not yet validated)."""
    return read_yaml(path, ModelConfigError, "model file")


def load_model(path: str | Path) -> HealthModel:
    return parse_model(load_model_document(path), source=str(path))


def model_to_json(path: str | Path) -> str:
    """The validated model file as canonical JSON: stored with published scores so any past
    model can be re-applied (change attribution) with `parse_model(json.loads(...))`."""
    document = load_model_document(path)
    parse_model(document, source=str(path))
    return json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
