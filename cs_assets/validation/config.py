"""`config/validation.yaml`: horizons, the AUC floor, tuning and contribution settings."""

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cs_assets.actions.rules import ActionRulesError, Condition, _condition
from cs_assets.config_file import ConfigFileError, read_yaml, require_mapping
from cs_assets.settings import REPO_ROOT

VALIDATION_ENV = "CS_HEALTH_VALIDATION"
DEFAULT_VALIDATION_PATH = REPO_ROOT / "config" / "validation.yaml"


class ValidationConfigError(ConfigFileError):
    pass


@dataclass(frozen=True)
class ValidationConfig:
    horizons_days: tuple[int, ...]
    auc_floor: float
    tuning_horizon_days: int
    train_share: float
    regularisation_c: float
    challenger_file: str
    min_outcomes_per_class: int
    gross_margin: float
    engaged_when: tuple[Condition, ...]
    observation_days: int
    outcomes_file: str


def _days(source: str, key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationConfigError(source, key, f"must be a whole number of days >= 1, got {value!r}")
    return value


def _share(source: str, key: str, value: Any, low: float = 0.0, high: float = 1.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low < value < high:
        raise ValidationConfigError(source, key, f"must be a number between {low:g} and {high:g}, got {value!r}")
    return float(value)


def _mapping(source: str, key: str, value: Any, required: set[str]) -> dict:
    return require_mapping(ValidationConfigError, source, key, value, required)


def parse_validation_config(raw: Any, source: str = "<validation>") -> ValidationConfig:
    raw = _mapping(source, "<root>", raw, {"version", "horizons_days", "auc_floor", "tuning", "contribution", "outcomes_file"})
    tuning = _mapping(source, "tuning", raw["tuning"], {"horizon_days", "train_share", "regularisation_c", "challenger_file", "min_outcomes_per_class"})
    contribution = _mapping(source, "contribution", raw["contribution"], {"gross_margin", "engaged_when", "observation_days"})
    engaged = contribution["engaged_when"]
    if not isinstance(engaged, list) or not engaged:
        raise ValidationConfigError(source, "contribution.engaged_when", "must be a non-empty list of conditions")
    try:
        # the same condition language as the action rules, checked by the same code
        conditions = tuple(_condition(source, f"contribution.engaged_when[{i}]", c, None) for i, c in enumerate(engaged))
    except ActionRulesError as exc:
        raise ValidationConfigError(exc.source, exc.key, exc.problem) from None
    if raw["version"] != 1:
        raise ValidationConfigError(source, "version", f"this release reads version 1, got {raw['version']!r}")
    horizons = raw["horizons_days"]
    if not isinstance(horizons, list) or not horizons:
        raise ValidationConfigError(source, "horizons_days", f"must be a non-empty list of days, got {horizons!r}")
    horizons = tuple(sorted({_days(source, "horizons_days", h) for h in horizons}))
    name = tuning["challenger_file"]
    if not isinstance(name, str) or not name.endswith((".yaml", ".yml")) or "/" in name or name.startswith("."):
        raise ValidationConfigError(source, "tuning.challenger_file", f"must be a plain .yaml file name, got {name!r}")
    outcomes = raw["outcomes_file"]
    if not isinstance(outcomes, str) or not outcomes.endswith(".csv") or ".." in outcomes or outcomes.startswith("/"):
        raise ValidationConfigError(source, "outcomes_file", f"must be a .csv path inside the landing directory, got {outcomes!r}")
    return ValidationConfig(
        horizons_days=horizons,
        auc_floor=_share(source, "auc_floor", raw["auc_floor"]),
        tuning_horizon_days=_days(source, "tuning.horizon_days", tuning["horizon_days"]),
        train_share=_share(source, "tuning.train_share", tuning["train_share"]),
        regularisation_c=_share(source, "tuning.regularisation_c", tuning["regularisation_c"], 0.0, 1e6),
        challenger_file=name,
        min_outcomes_per_class=_days(source, "tuning.min_outcomes_per_class", tuning["min_outcomes_per_class"]),
        gross_margin=_share(source, "contribution.gross_margin", contribution["gross_margin"], 0.0, 1.0 + 1e-9),
        engaged_when=conditions,
        observation_days=_days(source, "contribution.observation_days", contribution["observation_days"]),
        outcomes_file=outcomes,
    )


def validation_path() -> Path:
    return Path(os.environ.get(VALIDATION_ENV) or DEFAULT_VALIDATION_PATH).resolve()


def load_validation_config(path: str | Path) -> ValidationConfig:
    return parse_validation_config(read_yaml(path, ValidationConfigError, "validation config file"), str(path))
