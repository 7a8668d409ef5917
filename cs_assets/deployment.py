"""A deployment: one company's config directory, loaded and cross-checked once.

A config directory holds the reviewed files that make the platform fit one product:

| file | what it says |
|---|---|
| `sources.yaml` | which sources the company has, their landing layout, columns, vocabulary |
| `indicators.yaml` | the indicator catalogue: what is measured per account, from which source |
| `health_model.yaml` | how indicators become scores, bands and triage |
| `data_quality.yaml` | check severities, blocking, freshness and volume limits |
| `actions.yaml` | what to do for which account |
| `validation.yaml` | validation horizons and calibration settings |
| `crm_writeback.yaml` | which published values go back to which CRM properties, and where (optional) |

The directory is `$CS_HEALTH_CONFIG` (default: the repository's `config/`, the demo product);
each file can be pointed elsewhere on its own with the variable in `FILE_ENVS`. The Dagster
definitions are built from one deployment (`cs_assets.definitions.build_definitions`).
"""

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cs_assets.config_file import ConfigFileError, ConfigProblem, load_config, read_yaml, validate_config
from cs_assets.indicators.catalogue import Catalogue, CatalogueFile, IndicatorConfigError, build_catalogue
from cs_assets.settings import REPO_ROOT
from cs_assets.sources.contract import Contract, SourcesFile, contract_from_file

if TYPE_CHECKING:
    # for the type checker only: checks.dq_config imports this module's neighbours
    from checks.dq_config import DataQualityConfig

CONFIG_ENV = "CS_HEALTH_CONFIG"
DEFAULT_CONFIG_DIR = REPO_ROOT / "config"

FILES = {
    "sources": "sources.yaml",
    "indicators": "indicators.yaml",
    "model": "health_model.yaml",
    "data_quality": "data_quality.yaml",
    "actions": "actions.yaml",
    "validation": "validation.yaml",
    "writeback": "crm_writeback.yaml",
}
FILE_ENVS = {
    "sources": "CS_HEALTH_SOURCES_CONFIG",
    "indicators": "CS_HEALTH_INDICATORS",
    "model": "CS_HEALTH_MODEL",
    "data_quality": "CS_HEALTH_DQ_CONFIG",
    "actions": "CS_HEALTH_ACTIONS",
    "validation": "CS_HEALTH_VALIDATION",
    "writeback": "CS_HEALTH_WRITEBACK",
}


@dataclass(frozen=True)
class ConfigPaths:
    config_dir: Path
    sources: Path
    indicators: Path
    model: Path
    data_quality: Path
    actions: Path
    validation: Path
    writeback: Path  # optional: without the file there is no CRM write-back


def config_dir(explicit: str | Path | None = None) -> Path:
    return Path(explicit or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG_DIR).resolve()


def config_paths(explicit_dir: str | Path | None = None) -> ConfigPaths:
    """Each file: its own environment variable if set, else its name in the config directory."""
    base = config_dir(explicit_dir)
    files = {k: Path(os.environ.get(FILE_ENVS[k]) or base / name).resolve() for k, name in FILES.items()}
    return ConfigPaths(config_dir=base, **files)


@dataclass(frozen=True)
class Deployment:
    """The sources, the indicator catalogue and the data-quality config of one company."""

    paths: ConfigPaths
    contract: Contract
    catalogue: Catalogue
    dq: "DataQualityConfig"


def load_contract(path: Path) -> Contract:
    """The declared sources; their HTTP keys (`kind: http`) are validated too."""
    from cs_assets.sources.source_config import SourceConfigError, http_config

    parsed = load_config(path, SourcesFile, SourceConfigError, "sources config file")
    contract = contract_from_file(parsed, str(path))
    http_config(contract)
    return contract


def parse_catalogue(raw, contract: Contract, origin: str) -> Catalogue:
    """A parsed indicators.yaml checked against the deployment's sources."""
    parsed = validate_config(CatalogueFile, raw, origin, IndicatorConfigError)
    try:
        return build_catalogue(parsed, contract, origin)
    except ConfigProblem as problem:
        raise IndicatorConfigError(origin, problem.key, problem.problem) from None


def load_catalogue(path: Path, contract: Contract) -> Catalogue:
    return parse_catalogue(read_yaml(path, IndicatorConfigError, "indicator catalogue file"), contract, str(path))


def load_deployment(explicit_dir: str | Path | None = None) -> Deployment:
    """Read and cross-check the deployment's sources, catalogue and data-quality files."""
    from checks.dq_config import load_dq_config

    paths = config_paths(explicit_dir)
    if not paths.config_dir.is_dir():
        raise ConfigFileError(
            str(paths.config_dir), "<file>", f"config directory not found (set ${CONFIG_ENV} or --config)"
        )
    contract = load_contract(paths.sources)
    catalogue = load_catalogue(paths.indicators, contract)
    dq = load_dq_config(paths.data_quality, contract)
    return Deployment(paths=paths, contract=contract, catalogue=catalogue, dq=dq)


@functools.cache
def _cached(paths: ConfigPaths, stamps: tuple) -> Deployment:
    return load_deployment(paths.config_dir)


def current_deployment(explicit_dir: str | Path | None = None) -> Deployment:
    """The deployment, read once per process for the same files (re-read when one changes)."""
    paths = config_paths(explicit_dir)
    stamps = tuple(
        (str(p), p.stat().st_mtime_ns if p.is_file() else None)
        for p in (paths.sources, paths.indicators, paths.data_quality)
    )
    return _cached(paths, stamps)
