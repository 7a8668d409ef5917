"""The data-quality config (`config/data_quality.yaml`): check severities, blocking, and limits."""

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg

from cs_assets.config_file import ConfigFileError, read_yaml, require_mapping
from cs_assets.settings import REPO_ROOT
from cs_assets.sources.schemas import SOURCES

DQ_ENV = "CS_HEALTH_DQ_CONFIG"
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


def _keys(origin: str, key: str, value: Any, required: tuple[str, ...]) -> dict:
    return require_mapping(DataQualityConfigError, origin, key, value, required)


def _share(origin: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise DataQualityConfigError(origin, key, f"must be a share between 0 and 1, got {value!r}")
    return float(value)


def parse_dq_config(raw: Any, origin: str = "<data quality>") -> DataQualityConfig:
    raw = _keys(origin, "<root>", raw, ("version", "checks", "sources", "integrity", "scores"))
    if raw["version"] != 1:
        raise DataQualityConfigError(origin, "version", f"this release reads version 1, got {raw['version']!r}")
    checks = {}
    for kind, policy in _keys(origin, "checks", raw["checks"], CHECK_KINDS).items():
        policy = _keys(origin, f"checks.{kind}", policy, ("severity", "blocking"))
        if policy["severity"] not in ("ERROR", "WARN"):
            raise DataQualityConfigError(origin, f"checks.{kind}.severity", f"must be ERROR or WARN, got {policy['severity']!r}")
        if not isinstance(policy["blocking"], bool):
            raise DataQualityConfigError(origin, f"checks.{kind}.blocking", f"must be true or false, got {policy['blocking']!r}")
        checks[kind] = CheckPolicy(dg.AssetCheckSeverity(policy["severity"]), policy["blocking"])
    sources = {}
    for name, limits in _keys(origin, "sources", raw["sources"], tuple(SOURCES)).items():
        limits = _keys(origin, f"sources.{name}", limits, SOURCE_LIMITS)
        age = limits["max_age_hours"]
        if isinstance(age, bool) or not isinstance(age, (int, float)) or age <= 0:
            raise DataQualityConfigError(origin, f"sources.{name}.max_age_hours", f"must be a number of hours > 0, got {age!r}")
        sources[name] = SourceLimits(
            max_age_hours=float(age),
            max_volume_drop_share=_share(origin, f"sources.{name}.max_volume_drop_share", limits["max_volume_drop_share"]),
            max_duplicate_share=_share(origin, f"sources.{name}.max_duplicate_share", limits["max_duplicate_share"]),
        )
    integrity = _keys(origin, "integrity", raw["integrity"], ("max_unknown_account_share", "min_usage_coverage_share"))
    scores = _keys(origin, "scores", raw["scores"], ("max_band_change_share",))
    return DataQualityConfig(
        checks=checks,
        sources=sources,
        max_unknown_account_share=_share(origin, "integrity.max_unknown_account_share", integrity["max_unknown_account_share"]),
        min_usage_coverage_share=_share(origin, "integrity.min_usage_coverage_share", integrity["min_usage_coverage_share"]),
        max_band_change_share=_share(origin, "scores.max_band_change_share", scores["max_band_change_share"]),
    )


def dq_config_path() -> Path:
    return Path(os.environ.get(DQ_ENV) or DEFAULT_DQ_PATH).resolve()


def load_dq_config(path: str | Path | None = None) -> DataQualityConfig:
    path = Path(path) if path else dq_config_path()
    return parse_dq_config(read_yaml(path, DataQualityConfigError, "data-quality config file"), str(path))


@functools.cache
def active_dq_config() -> DataQualityConfig:
    """The config the definitions are built with (loaded once per process)."""
    return load_dq_config()
