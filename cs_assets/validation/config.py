"""`validation.yaml`: horizons, the AUC floor, calibration and contribution settings (pydantic)."""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator

from cs_assets.actions.rules import ActionRulesError, Condition, ConditionDecl, check_condition, history_fields
from cs_assets.config_file import ConfigFileError, ConfigModel, ConfigProblem, read_yaml, validate_config
from cs_assets.settings import REPO_ROOT

if TYPE_CHECKING:
    from cs_assets.indicators.catalogue import Catalogue

DEFAULT_VALIDATION_PATH = REPO_ROOT / "config" / "validation.yaml"


class ValidationConfigError(ConfigFileError):
    pass


def between(low: float, high: float) -> Callable[[float], float]:
    """A check that a number is strictly between `low` and `high`, with the message reviewers read."""

    def check(value: float) -> float:
        if not low < value < high:
            raise ConfigProblem("", f"must be a number between {low:g} and {high:g}, got {value!r}")
        return value

    return check


class CalibrationDecl(ConfigModel):
    # indicators and the current score are taken this many days before each outcome
    horizon_days: int = Field(ge=1)
    # share of outcomes held out: the newest ones (time split) when outcomes have several dates,
    # else a seeded stratified sample
    holdout_share: Annotated[float, AfterValidator(between(0.0, 1.0))]
    seed: int = 7
    # a scoring function's bins hold at least this many training outcomes (at most max_bins bins)
    min_accounts_per_bin: int = Field(ge=5)
    max_bins: int = Field(ge=2, le=50)
    # each band holds at least this share of the training accounts
    min_band_share: Annotated[float, AfterValidator(between(0.0, 0.5))]
    # inverse L2 regularisation strength of the logistic regression for the weights (smaller = stronger)
    regularisation_c: float = Field(gt=0, le=1e6)
    # fewer churned (or retained) training outcomes than this: nothing is fitted, and it says why
    min_outcomes_per_class: int = Field(ge=1)
    # written under $CS_HEALTH_HOME/models/, never into the repository; never promoted automatically
    candidate_file: str

    @field_validator("candidate_file")
    @classmethod
    def _file(cls, v: str) -> str:
        if not v.endswith((".yaml", ".yml")) or "/" in v or v.startswith("."):
            raise ConfigProblem("", f"must be a plain .yaml file name, got {v!r}")
        return v


class ContributionDecl(ConfigModel):
    gross_margin: Annotated[float, AfterValidator(between(0.0, 1.0 + 1e-9))]
    engaged_when: list[Any] = Field(min_length=1)
    observation_days: int = Field(ge=1)


class TargetTiersDecl(ConfigModel):
    # CRM columns whose combinations are the tiers (e.g. industry x size tier)
    by: list[str] = Field(min_length=1)
    # retention and ARR growth of the accounts scored this many days before the newest snapshot
    window_days: int = Field(ge=1)
    # a tier with fewer accounts is listed but not ranked
    min_accounts: int = Field(ge=1)

    @field_validator("by")
    @classmethod
    def _distinct(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ConfigProblem("", f"must name each column once, got {v}")
        return v


class ValidationFile(ConfigModel):
    version: Literal[1]
    horizons_days: list[int] = Field(min_length=1)
    auc_floor: Annotated[float, AfterValidator(between(0.0, 1.0))]
    calibration: CalibrationDecl
    # optional: without it, no contribution estimate (a product with no CS-supported segment)
    contribution: ContributionDecl | None = None
    # optional: without it, no target tiers
    target_tiers: TargetTiersDecl | None = None
    outcomes_file: str

    @field_validator("horizons_days")
    @classmethod
    def _horizons(cls, v: list[int]) -> list[int]:
        for h in v:
            if h < 1:
                raise ConfigProblem("", f"must be whole numbers of days >= 1, got {h!r}")
        return sorted(set(v))

    @field_validator("outcomes_file")
    @classmethod
    def _outcomes(cls, v: str) -> str:
        if not v.endswith(".csv") or ".." in v or v.startswith("/"):
            raise ConfigProblem("", f"must be a .csv path inside the landing directory, got {v!r}")
        return v


@dataclass(frozen=True)
class ValidationConfig:
    horizons_days: tuple[int, ...]
    auc_floor: float
    calibration: CalibrationDecl
    gross_margin: float | None
    engaged_when: tuple[Condition, ...]
    observation_days: int | None
    outcomes_file: str
    target_tiers: TargetTiersDecl | None = None

    @property
    def horizon_days(self) -> int:
        """The horizon the calibration fits, and the box plot by tenure shows."""
        return self.calibration.horizon_days


def parse_validation_config(
    raw: Any, source: str = "<validation>", catalogue: "Catalogue | None" = None
) -> ValidationConfig:
    from cs_assets.actions.rules import _catalogue_or_current

    parsed = validate_config(ValidationFile, raw, source, ValidationConfigError)
    fields = history_fields(_catalogue_or_current(catalogue))
    conditions = []
    contribution = parsed.contribution
    for i, c in enumerate(contribution.engaged_when if contribution else []):
        key = f"contribution.engaged_when[{i}]"
        try:
            # the same condition language as the action rules, checked by the same code
            decl = validate_config(ConditionDecl, c, source, ActionRulesError, key)
            conditions.append(check_condition(source, key, decl, fields, None))
        except ActionRulesError as exc:
            raise ValidationConfigError(exc.source, exc.key, exc.problem) from None
    return ValidationConfig(
        horizons_days=tuple(parsed.horizons_days),
        auc_floor=float(parsed.auc_floor),
        calibration=parsed.calibration,
        gross_margin=float(contribution.gross_margin) if contribution else None,
        engaged_when=tuple(conditions),
        observation_days=contribution.observation_days if contribution else None,
        outcomes_file=parsed.outcomes_file,
        target_tiers=parsed.target_tiers,
    )


def load_validation_config(path: str | Path, catalogue: "Catalogue | None" = None) -> ValidationConfig:
    return parse_validation_config(
        read_yaml(path, ValidationConfigError, "validation config file"), str(path), catalogue
    )
