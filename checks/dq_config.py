"""The data-quality config (`data_quality.yaml`): check severities, blocking, and limits.

Limits are per declared source (`sources.<name>`), with `source_defaults` for a declared source
the file does not list. An entry for a source the deployment does not declare is ignored (so one
file serves deployments with fewer sources) and reported by `cs-health config check`.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import dagster as dg
from pydantic import Field, model_validator

from cs_assets.config_file import ConfigFileError, ConfigModel, ConfigProblem, load_config, validate_config
from cs_assets.settings import REPO_ROOT
from cs_assets.sources.contract import Contract

DEFAULT_DQ_PATH = REPO_ROOT / "config" / "data_quality.yaml"

FRESHNESS = "freshness"
VOLUME = "volume"
DUPLICATES = "duplicates"
UNKNOWN_ACCOUNTS = "unknown_accounts"
USAGE_COVERAGE = "usage_coverage"
VALIDITY = "validity"
BAND_SHIFT = "band_shift"
CHECK_KINDS = (FRESHNESS, VOLUME, DUPLICATES, UNKNOWN_ACCOUNTS, USAGE_COVERAGE, VALIDITY, BAND_SHIFT)
SOURCE_LIMITS = ("max_age_hours", "max_volume_drop_share", "max_duplicate_share")


class DataQualityConfigError(ConfigFileError):
    pass


class PolicyDecl(ConfigModel):
    severity: Literal["ERROR", "WARN"]
    blocking: bool


class LimitsDecl(ConfigModel):
    max_age_hours: float = Field(gt=0, allow_inf_nan=False)
    max_volume_drop_share: float = Field(ge=0, le=1)
    max_duplicate_share: float = Field(ge=0, le=1)


class ChecksDecl(ConfigModel):
    freshness: PolicyDecl
    volume: PolicyDecl
    duplicates: PolicyDecl
    unknown_accounts: PolicyDecl
    usage_coverage: PolicyDecl
    validity: PolicyDecl
    band_shift: PolicyDecl


class IntegrityDecl(ConfigModel):
    max_unknown_account_share: float = Field(ge=0, le=1)
    min_usage_coverage_share: float = Field(ge=0, le=1)
    # the event source every active account is expected to appear in (null: no coverage check)
    coverage_source: str | None = None


class ScoresDecl(ConfigModel):
    max_band_change_share: float = Field(ge=0, le=1)
    # hours since the last publish after which the UI shows the published tables as late
    # (a Dagster freshness policy); the defaults suit a daily publish with a little slack
    published_warn_after_hours: float = Field(default=26, gt=0)
    published_fail_after_hours: float = Field(default=50, gt=0)

    @model_validator(mode="after")
    def _warn_before_fail(self) -> "ScoresDecl":
        if self.published_warn_after_hours >= self.published_fail_after_hours:
            raise ConfigProblem(
                "published_warn_after_hours",
                f"must be below published_fail_after_hours ({self.published_fail_after_hours:g}), "
                f"got {self.published_warn_after_hours:g}",
            )
        return self


class DataQualityFile(ConfigModel):
    version: Literal[1]
    checks: ChecksDecl
    source_defaults: LimitsDecl | None = None
    sources: dict[str, LimitsDecl] = {}
    integrity: IntegrityDecl
    scores: ScoresDecl


@dataclass(frozen=True)
class CheckPolicy:
    severity: dg.AssetCheckSeverity
    blocking: bool


@dataclass(frozen=True)
class SourceLimits:
    max_age_hours: float
    max_volume_drop_share: float
    max_duplicate_share: float


@dataclass(frozen=True)
class DataQualityConfig:
    checks: dict[str, CheckPolicy]
    sources: dict[str, SourceLimits]
    max_unknown_account_share: float
    min_usage_coverage_share: float
    max_band_change_share: float
    # (warn, fail) hours since the last publish
    published_freshness_hours: tuple[float, float] = (26.0, 50.0)
    coverage_source: str | None = None
    ignored_sources: tuple[str, ...] = field(default=())  # listed in the file, not declared


def _limits(decl: LimitsDecl) -> SourceLimits:
    return SourceLimits(float(decl.max_age_hours), float(decl.max_volume_drop_share), float(decl.max_duplicate_share))


def build_dq_config(parsed: DataQualityFile, contract: Contract, origin: str) -> DataQualityConfig:
    sources = {}
    for name in contract.sources:
        if name in parsed.sources:
            sources[name] = _limits(parsed.sources[name])
        elif parsed.source_defaults is not None:
            sources[name] = _limits(parsed.source_defaults)
        else:
            raise DataQualityConfigError(
                origin,
                f"sources.{name}",
                f"no limits for the declared source {name}: add them here or give `source_defaults`",
            )
    coverage = parsed.integrity.coverage_source
    if coverage is not None and coverage not in contract.event_sources:
        raise DataQualityConfigError(
            origin,
            "integrity.coverage_source",
            f"must name a declared event source ({', '.join(contract.event_sources) or 'none declared'}), got {coverage!r}",
        )
    return DataQualityConfig(
        checks={
            k: CheckPolicy(
                dg.AssetCheckSeverity(getattr(parsed.checks, k).severity), getattr(parsed.checks, k).blocking
            )
            for k in CHECK_KINDS
        },
        sources=sources,
        max_unknown_account_share=float(parsed.integrity.max_unknown_account_share),
        min_usage_coverage_share=float(parsed.integrity.min_usage_coverage_share),
        max_band_change_share=float(parsed.scores.max_band_change_share),
        published_freshness_hours=(
            float(parsed.scores.published_warn_after_hours),
            float(parsed.scores.published_fail_after_hours),
        ),
        coverage_source=coverage,
        ignored_sources=tuple(sorted(set(parsed.sources) - set(contract.sources))),
    )


def _contract(contract: Contract | None) -> Contract:
    from cs_assets.deployment import config_paths, load_contract

    return contract if contract is not None else load_contract(config_paths().sources)


def parse_dq_config(raw, origin: str = "<data quality>", contract: Contract | None = None) -> DataQualityConfig:
    """A parsed YAML document validated against the deployment's sources (default: the current ones)."""
    parsed = validate_config(DataQualityFile, raw, origin, DataQualityConfigError)
    return build_dq_config(parsed, _contract(contract), origin)


def load_dq_config(path: str | Path, contract: Contract | None = None) -> DataQualityConfig:
    """The validated config; `contract` (the deployment's sources) defaults to the current one."""
    parsed = load_config(path, DataQualityFile, DataQualityConfigError, "data-quality config file")
    return build_dq_config(parsed, _contract(contract), str(path))
