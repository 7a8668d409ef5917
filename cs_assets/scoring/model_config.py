"""The health model: a reviewed YAML file, validated on load (pydantic) into plain dataclasses.

Every tunable of the score (which indicators are scored, weights, scoring functions,
missing-data policies, sub-score weights, band cut points, lifecycle windows, triage matrix)
lives in the file, never in code. Validation errors name the offending key path and say what is
wrong, so a reviewer can fix the file without reading this module.

A model is checked against the deployment's indicator catalogue: an unknown indicator is an
error (a typo), while an indicator whose source the deployment does not have is left out and its
weight goes to the other indicators of its sub-score (a sub-score left with nothing hands its
weight to the other one). The published model is that effective model: its version and its JSON
are what scored the rows.
"""

import copy
import hashlib
import json
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from cs_assets.config_file import ConfigFileError, ConfigModel, ConfigProblem, read_yaml, validate_config

if TYPE_CHECKING:
    from cs_assets.indicators.catalogue import Catalogue

Subscore = Literal["co", "cx"]
SUBSCORES: tuple[Subscore, ...] = ("co", "cx")
DIRECTIONS = ("higher_is_better", "lower_is_better")
SCORING_FUNCTIONS = ("linear", "thresholds", "piecewise_linear")
MISSING_POLICIES = ("exclude", "score")
LIFECYCLE_STAGES = ("onboarding", "adoption", "renewal_window")  # scored stages; "churned" is never scored
MODEL_FILE_VERSION = 1
# the model of an account no segment's `when` matches (published in `segment_model`)
DEFAULT_SEGMENT = "default"
# the column that names the segment model of a row (scores, contributions, published health)
SEGMENT_MODEL = "segment_model"
# a segment's `when` may also test the lifecycle stage, derived before scoring from the contract
DERIVED_SEGMENT_FIELDS = ("lifecycle_stage",)
SEGMENT_NAME = r"^[a-z][a-z0-9_]{0,62}$"


class ModelConfigError(ConfigFileError):
    """The model file is invalid; the message names the key path and the problem."""


# --------------------------------------------------------------------------- the file


def _finite(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigProblem(key, f"must be a finite number, got {value!r}")
    return float(value)


class ScoringDecl(ConfigModel):
    function: Literal["linear", "thresholds", "piecewise_linear"]
    worst: Any = None  # linear
    best: Any = None
    cuts: Any = None  # thresholds
    scores: Any = None
    points: Any = None  # piecewise_linear: [[value, score], ...], values ascending

    @model_validator(mode="after")
    def _keys(self) -> "ScoringDecl":
        used = {"linear": ("worst", "best"), "thresholds": ("cuts", "scores"), "piecewise_linear": ("points",)}[
            self.function
        ]
        given = [k for k in ("worst", "best", "cuts", "scores", "points") if getattr(self, k) is not None]
        missing = [k for k in used if k not in given]
        if missing:
            raise ConfigProblem("", f"missing required key(s): {', '.join(missing)}")
        unknown = [k for k in given if k not in used]
        if unknown:
            raise ConfigProblem("", f"unknown key(s): {', '.join(unknown)} (allowed: function, {', '.join(used)})")
        return self


class MissingDecl(ConfigModel):
    policy: Literal["exclude", "score"]
    score: Any = None

    @model_validator(mode="after")
    def _score(self) -> "MissingDecl":
        if self.policy == "exclude" and self.score is not None:
            raise ConfigProblem("", "unknown key(s): score (allowed: policy)")
        if self.policy == "score":
            if self.score is None:
                raise ConfigProblem("", "missing required key(s): score")
            value = _finite("score", self.score)
            if not 0 <= value <= 100:
                raise ConfigProblem("score", f"must be within 0..100, got {value}")
        return self


class IndicatorRuleDecl(ConfigModel):
    subscore: Literal["co", "cx"]
    weight: float = Field(ge=0, allow_inf_nan=False)
    direction: Literal["higher_is_better", "lower_is_better"]
    scoring: ScoringDecl
    missing: MissingDecl
    label: str | None = None


class SubscoreDecl(ConfigModel):
    weight: float = Field(ge=0, allow_inf_nan=False)
    label: str | None = None


class BandDecl(ConfigModel):
    name: str = Field(min_length=1)
    min_score: float = Field(ge=0, allow_inf_nan=False)


class LifecycleDecl(ConfigModel):
    onboarding_days: Any
    renewal_window_days: Any

    @model_validator(mode="after")
    def _days(self) -> "LifecycleDecl":
        for k in ("onboarding_days", "renewal_window_days"):
            v = getattr(self, k)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ConfigProblem(k, f"must be a whole number of days >= 0, got {v!r}")
        return self


class IndicatorOverrideDecl(ConfigModel):
    """What a segment may change of an indicator: its weight, its scoring bounds or cuts, and what
    missing data scores (the sub-score and the direction stay the default's)."""

    weight: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    scoring: ScoringDecl | None = None
    missing: MissingDecl | None = None


SegmentValue = str | int | float | bool


class SegmentDecl(ConfigModel):
    name: str = Field(pattern=SEGMENT_NAME)
    description: str | None = None
    # column -> the values that put an account in this segment (all columns must match); columns
    # are those of account_indicators (any CRM column, tenure_days, ...) and lifecycle_stage
    when: dict[str, SegmentValue | list[SegmentValue]] = Field(min_length=1)
    indicators: dict[str, IndicatorOverrideDecl] = {}
    subscores: dict[Subscore, SubscoreDecl] | None = None
    bands: list[BandDecl] | None = None

    @model_validator(mode="after")
    def _when(self) -> "SegmentDecl":
        for column, values in self.when.items():
            if isinstance(values, list) and not values:
                raise ConfigProblem(f"when.{column}", "must list at least one value")
        if self.name == DEFAULT_SEGMENT:
            raise ConfigProblem("name", f"`{DEFAULT_SEGMENT}` is the model of the accounts no segment matches")
        return self


class ParentsDecl(ConfigModel):
    """Parent accounts: the CRM column naming an account's parent, and what weights a member."""

    column: str = Field(min_length=1)
    # a numeric CRM column (ARR by default), or `equal`
    weight: str = Field(default="arr_usd", min_length=1)


class ModelFile(ConfigModel):
    version: int
    name: str = Field(min_length=1)
    subscores: dict[Subscore, SubscoreDecl]
    indicators: dict[str, IndicatorRuleDecl] = Field(min_length=1)
    bands: list[BandDecl] = Field(min_length=2)
    lifecycle: LifecycleDecl
    triage: dict[str, dict[str, str]]
    # models per segment: the first segment whose `when` matches scores the account
    segments: list[SegmentDecl] = []
    # optional: a rolled-up score per parent account
    parents: ParentsDecl | None = None

    @model_validator(mode="after")
    def _whole(self) -> "ModelFile":
        if self.version != MODEL_FILE_VERSION:
            raise ConfigProblem(
                "version", f"this release reads model file version {MODEL_FILE_VERSION}, got {self.version!r}"
            )
        missing = [s for s in SUBSCORES if s not in self.subscores]
        if missing:
            raise ConfigProblem("subscores", f"missing required key(s): {', '.join(missing)}")
        if sum(s.weight for s in self.subscores.values()) <= 0:
            raise ConfigProblem("subscores", "sub-score weights must not all be zero")
        if self.bands[0].min_score != 0:
            raise ConfigProblem("bands[0].min_score", f"the lowest band must start at 0, got {self.bands[0].min_score}")
        for i in range(1, len(self.bands)):
            low, high = self.bands[i - 1].min_score, self.bands[i].min_score
            if high <= low or high > 100:
                raise ConfigProblem(
                    f"bands[{i}].min_score", f"cut points must rise strictly and stay <= 100, got {high} after {low}"
                )
        names = [b.name for b in self.bands]
        if len(set(names)) != len(names):
            raise ConfigProblem("bands", f"band names must be unique, got {names}")
        for stage in LIFECYCLE_STAGES:
            if stage not in self.triage:
                raise ConfigProblem("triage", f"missing required key(s): {stage}")
        unknown = sorted(set(self.triage) - set(LIFECYCLE_STAGES))
        if unknown:
            raise ConfigProblem(
                "triage", f"unknown key(s): {', '.join(unknown)} (allowed: {', '.join(LIFECYCLE_STAGES)})"
            )
        for stage in LIFECYCLE_STAGES:
            row = self.triage[stage]
            lacking = [b for b in names if b not in row]
            if lacking:
                raise ConfigProblem(f"triage.{stage}", f"missing required key(s): {', '.join(lacking)}")
            extra = sorted(set(row) - set(names))
            if extra:
                raise ConfigProblem(
                    f"triage.{stage}", f"unknown key(s): {', '.join(extra)} (allowed: {', '.join(names)})"
                )
            for band in names:
                if not row[band].strip():
                    raise ConfigProblem(
                        f"triage.{stage}.{band}", f"must be a priority label such as P1, got {row[band]!r}"
                    )
        return self


# --------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class IndicatorRule:
    name: str
    subscore: str
    weight: float
    direction: str
    function: str
    # linear: (worst, best); thresholds: ascending cut points; piecewise_linear: ascending values
    bounds: tuple[float, ...]
    # thresholds: one score per interval (len(bounds) + 1); piecewise_linear: one score per value
    scores: tuple[float, ...]
    missing_policy: str
    missing_score: float | None
    label: str


@dataclass(frozen=True)
class Band:
    name: str
    min_score: float


@dataclass(frozen=True)
class Segment:
    """A segment model: the accounts whose columns match `when` are scored by `model` (the default
    model with the segment's overrides applied)."""

    name: str
    when: tuple[tuple[str, tuple[SegmentValue, ...]], ...]  # (column, allowed values), all must match
    model: "HealthModel"


@dataclass(frozen=True)
class HealthModel:
    name: str
    subscore_weights: dict[str, float]
    indicators: tuple[IndicatorRule, ...]
    bands: tuple[Band, ...]  # ascending by min_score, first at 0
    onboarding_days: int
    renewal_window_days: int
    triage: dict[str, dict[str, str]]  # stage -> band -> priority
    version: str  # content hash of the validated (effective) model, its segments included
    # the effective model file (what `version` hashes, stored with published rows) and what was left out
    document: dict = field(default_factory=dict, compare=False, repr=False)
    left_out: dict[str, str] = field(default_factory=dict, compare=False, repr=False)
    segments: tuple[Segment, ...] = ()  # in the file's order: the first match wins
    # parent roll-up: the CRM column naming the parent, and the weight column (or "equal")
    parent_column: str | None = None
    parent_weight: str = "arr_usd"

    def indicator(self, name: str) -> IndicatorRule:
        return next(i for i in self.indicators if i.name == name)

    def segment_models(self) -> list[tuple[str, "HealthModel"]]:
        """(segment name, model) for the default and then every segment."""
        return [(DEFAULT_SEGMENT, self), *((s.name, s.model) for s in self.segments)]

    def for_segment(self, name: str) -> "HealthModel":
        for segment, model in self.segment_models():
            if segment == name:
                return model
        raise KeyError(f"model {self.version} has no segment {name!r} (segments: {', '.join(self.segment_names)})")

    @property
    def segment_names(self) -> list[str]:
        return [name for name, _ in self.segment_models()]

    def to_json(self) -> str:
        """The effective model as JSON: `parse_model(json.loads(...))` gives it back, same version.

        Keys keep the file's order: the version hashes the indicators in that order.
        """
        return json.dumps(self.document, separators=(",", ":"), default=str)


def _scoring(key: str, rule: IndicatorRuleDecl) -> tuple[tuple[float, ...], tuple[float, ...]]:
    s, direction = rule.scoring, rule.direction
    rising = direction == "higher_is_better"
    if s.function == "linear":
        worst, best = _finite(f"{key}.scoring.worst", s.worst), _finite(f"{key}.scoring.best", s.best)
        if worst == best:
            raise ConfigProblem(f"{key}.scoring", f"worst and best must differ, both are {worst}")
        if rising != (best > worst):
            raise ConfigProblem(f"{key}.scoring", f"direction {direction} contradicts worst={worst}, best={best}")
        return (worst, best), ()
    if s.function == "thresholds":
        if not isinstance(s.cuts, list) or not s.cuts:
            raise ConfigProblem(f"{key}.scoring.cuts", "must be a non-empty list of numbers")
        if not isinstance(s.scores, list):
            raise ConfigProblem(f"{key}.scoring.scores", "must be a list of numbers")
        cuts = tuple(_finite(f"{key}.scoring.cuts[{i}]", c) for i, c in enumerate(s.cuts))
        scores = tuple(_finite(f"{key}.scoring.scores[{i}]", v) for i, v in enumerate(s.scores))
        if any(b >= a for a, b in zip(cuts[1:], cuts[:-1])):
            raise ConfigProblem(f"{key}.scoring.cuts", f"must be strictly ascending, got {list(cuts)}")
        if len(scores) != len(cuts) + 1:
            raise ConfigProblem(
                f"{key}.scoring.scores",
                f"needs one score per interval: {len(cuts) + 1} for {len(cuts)} cuts, got {len(scores)}",
            )
        xs = cuts
    else:
        if not isinstance(s.points, list) or len(s.points) < 2:
            raise ConfigProblem(f"{key}.scoring.points", "must be a list of at least two [value, score] pairs")
        pairs = []
        for i, p in enumerate(s.points):
            if not isinstance(p, list) or len(p) != 2:
                raise ConfigProblem(f"{key}.scoring.points[{i}]", f"must be a [value, score] pair, got {p!r}")
            pairs.append(
                (_finite(f"{key}.scoring.points[{i}][0]", p[0]), _finite(f"{key}.scoring.points[{i}][1]", p[1]))
            )
        xs, scores = tuple(p[0] for p in pairs), tuple(p[1] for p in pairs)
        if any(b <= a for a, b in zip(xs, xs[1:])):
            raise ConfigProblem(f"{key}.scoring.points", f"values must be strictly ascending, got {list(xs)}")
    for i, v in enumerate(scores):
        if not 0 <= v <= 100:
            raise ConfigProblem(f"{key}.scoring.scores[{i}]", f"must be within 0..100, got {v}")
    up = all(b >= a for a, b in zip(scores, scores[1:]))
    down = all(b <= a for a, b in zip(scores, scores[1:]))
    what = "scores" if s.function == "thresholds" else "points"
    if rising and not up:
        raise ConfigProblem(f"{key}.scoring.{what}", f"must not decrease for {direction}, got {list(scores)}")
    if not rising and not down:
        raise ConfigProblem(f"{key}.scoring.{what}", f"must not increase for {direction}, got {list(scores)}")
    return xs, scores


def _known_names(catalogue: "Catalogue") -> list[str]:
    from cs_assets.indicators.catalogue import CONTEXT_FIELDS

    return [*catalogue.indicators, *CONTEXT_FIELDS]


def _effective_document(raw: dict, left_out: set[str], empty_subscores: Iterable[str]) -> dict:
    doc = copy.deepcopy(raw)
    doc["indicators"] = {n: r for n, r in raw["indicators"].items() if n not in left_out}
    for sub in empty_subscores:
        doc["subscores"][sub] = {**doc["subscores"][sub], "weight": 0}
    for segment in doc.get("segments") or []:
        # an override of an indicator left out here has nothing to change
        segment["indicators"] = {n: r for n, r in (segment.get("indicators") or {}).items() if n not in left_out}
    return doc


def _segment_document(raw: dict, segment: dict) -> dict:
    """The default model's file with one segment's overrides applied (and no segments)."""
    doc = {k: copy.deepcopy(v) for k, v in raw.items() if k not in ("segments", "parents")}
    for name, override in (segment.get("indicators") or {}).items():
        doc["indicators"][name] = {**doc["indicators"][name], **copy.deepcopy(override)}
    for sub, decl in (segment.get("subscores") or {}).items():
        doc["subscores"][sub] = {**doc["subscores"][sub], **copy.deepcopy(decl)}
    if segment.get("bands") is not None:
        doc["bands"] = copy.deepcopy(segment["bands"])
    doc["name"] = f"{raw['name']}/{segment['name']}"
    return doc


def _segment_key(index: int, key: str) -> str:
    # a problem found in the merged file is reported where the segment says it
    return f"segments[{index}].{key}" if key and key != "<root>" else f"segments[{index}]"


def _build_segments(parsed: ModelFile, raw: dict, catalogue: "Catalogue | None") -> tuple[Segment, ...]:
    segments = []
    names = [s.name for s in parsed.segments]
    bands = [b.name for b in parsed.bands]
    for i, decl in enumerate(parsed.segments):
        if names.index(decl.name) != i:
            raise ConfigProblem(f"segments[{i}].name", f"segment names must be unique, {decl.name!r} is used twice")
        for name in decl.indicators:
            if name not in parsed.indicators:
                raise ConfigProblem(
                    f"segments[{i}].indicators.{name}",
                    f"not an indicator of the model; a segment can only change the model's indicators "
                    f"({', '.join(parsed.indicators)})",
                )
        if decl.bands is not None and [b.name for b in decl.bands] != bands:
            raise ConfigProblem(
                f"segments[{i}].bands",
                f"must name the model's bands in its order ({', '.join(bands)}), got "
                f"{', '.join(b.name for b in decl.bands)}: a segment moves cut points, triage and rules keep the bands",
            )
        merged = _segment_document(raw, raw["segments"][i])
        try:
            sub_parsed = validate_config(ModelFile, merged, "<segment>", ModelConfigError)
            model = _build(sub_parsed, merged, catalogue)
        except ModelConfigError as error:
            raise ConfigProblem(_segment_key(i, error.key), error.problem) from None
        except ConfigProblem as problem:
            raise ConfigProblem(_segment_key(i, problem.key), problem.problem) from None
        when = tuple((c, tuple(v) if isinstance(v, list) else (v,)) for c, v in decl.when.items())
        segments.append(Segment(decl.name, when, model))
    return tuple(segments)


def parse_model(raw: Any, source: str = "<model>", catalogue: "Catalogue | None" = None) -> HealthModel:
    """Validate a parsed YAML document and return the model it describes.

    With a catalogue, indicator names are checked against it and indicators that cannot be
    computed (their source is not declared) are left out; without one (a stored effective model),
    names are taken as they are.
    """
    parsed = validate_config(ModelFile, raw, source, ModelConfigError)
    try:
        return _build(parsed, raw, catalogue)
    except ConfigProblem as problem:
        raise ModelConfigError(source, problem.key, problem.problem) from None


def _build(parsed: ModelFile, raw: dict, catalogue: "Catalogue | None") -> HealthModel:
    left_out: dict[str, str] = {}
    if catalogue is not None:
        known = _known_names(catalogue)
        for name in parsed.indicators:
            if name in catalogue.unavailable:
                left_out[name] = catalogue.unavailable[name]
            elif name not in known:
                raise ConfigProblem(
                    f"indicators.{name}",
                    f"unknown indicator; known indicators: {', '.join(sorted(known))} (defined in {catalogue.origin})",
                )
    rules = []
    for name, rule in parsed.indicators.items():
        key = f"indicators.{name}"
        bounds, scores = _scoring(key, rule)
        if name in left_out:
            continue
        label = rule.label if rule.label is not None else name.replace("_", " ")
        if not label.strip():
            raise ConfigProblem(f"{key}.label", "must be a non-empty string")
        rules.append(
            IndicatorRule(
                name=name,
                subscore=rule.subscore,
                weight=float(rule.weight),
                direction=rule.direction,
                function=rule.scoring.function,
                bounds=bounds,
                scores=scores,
                missing_policy=rule.missing.policy,
                missing_score=float(rule.missing.score) if rule.missing.policy == "score" else None,
                label=label,
            )
        )
    weights: dict[str, float] = {s: float(parsed.subscores[s].weight) for s in SUBSCORES}
    empty = {s for s in SUBSCORES if weights[s] > 0 and not any(r.weight > 0 for r in rules if r.subscore == s)}
    for s in sorted(empty):
        if not any(parsed.indicators[n].subscore == s and parsed.indicators[n].weight > 0 for n in left_out):
            raise ConfigProblem(f"subscores.{s}", "has weight but no indicator with a positive weight")
        weights[s] = 0.0  # nothing of it can be computed here: its weight goes to the other sub-score
    total = sum(weights.values())
    if total <= 0:
        raise ConfigProblem(
            "indicators",
            "no weighted indicator can be computed with the declared sources"
            + (f" (left out: {', '.join(sorted(left_out))})" if left_out else ""),
        )
    # An account must always get a score: at least one weighted indicator has to score even when
    # its data is missing, otherwise for an account without data the weights have nothing to divide.
    if not any(r.weight > 0 and r.missing_policy == "score" and weights[r.subscore] > 0 for r in rules):
        raise ConfigProblem(
            "indicators",
            "needs at least one weighted indicator with missing.policy `score`, so that an account with no "
            "data still gets a score"
            + (f" (left out for undeclared sources: {', '.join(sorted(left_out))})" if left_out else ""),
        )
    segments = _build_segments(parsed, raw, catalogue) if parsed.segments else ()
    model = HealthModel(
        name=parsed.name,
        subscore_weights={s: w / total for s, w in weights.items()},
        indicators=tuple(rules),
        bands=tuple(Band(b.name, float(b.min_score)) for b in parsed.bands),
        onboarding_days=parsed.lifecycle.onboarding_days,
        renewal_window_days=parsed.lifecycle.renewal_window_days,
        triage={stage: {b.name: parsed.triage[stage][b.name] for b in parsed.bands} for stage in LIFECYCLE_STAGES},
        version="",
        document=_effective_document(raw, set(left_out), empty),
        left_out=left_out,
        segments=segments,
        parent_column=parsed.parents.column if parsed.parents else None,
        parent_weight=parsed.parents.weight if parsed.parents else "arr_usd",
    )
    return HealthModel(**{**model.__dict__, "version": model_version(model)})


def model_version(model: HealthModel) -> str:
    """Hash of the validated model: comments, formatting and the order of the file's top-level
    keys do not change it (the indicators are hashed in the order the file lists them)."""
    canonical = json.dumps(_version_payload(model), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def _version_payload(model: HealthModel) -> dict:
    payload = asdict(model)
    for key in ("version", "document", "left_out", "segments"):
        payload.pop(key)
    if model.parent_column is None:
        # a model without a roll-up keeps the version it had before roll-ups existed
        payload.pop("parent_column")
        payload.pop("parent_weight")
    if model.segments:
        # only a model with segments hashes them: every model without keeps its version
        payload["segments"] = [
            {"name": s.name, "when": [[c, list(v)] for c, v in s.when], "model": _version_payload(s.model)}
            for s in model.segments
        ]
    return payload


def load_model_document(path: str | Path) -> Any:
    """The model file as parsed YAML (not yet validated)."""
    return read_yaml(path, ModelConfigError, "model file")


def load_model(path: str | Path, catalogue: "Catalogue | None" = None) -> HealthModel:
    return parse_model(load_model_document(path), source=str(path), catalogue=catalogue)
