"""Code versions: how Dagster tells a changed computation from a re-run of the same one.

Without one, Dagster takes each run's id as an asset's code version, so every run makes a new
data version and "unchanged" or "stale" cannot be followed in the UI. An asset's code version
here is a digest of the project's Python code and of the config files that asset's step reads;
the data it read is in its input data versions. Config is read when the code location loads:
after editing a file, reload it (UI: Reload; the CLI loads it on every command).
"""

import functools
import hashlib
from pathlib import Path

import dagster as dg

from cs_assets.deployment import ConfigPaths
from cs_assets.settings import REPO_ROOT

PACKAGES = ("cs_assets", "resources", "checks")

# Per asset group, the config files its steps read (fields of ConfigPaths).
CONFIG_READ_BY_GROUP = {
    "sources": ("sources",),
    "indicators": ("indicators",),
    "scoring": ("model",),
    "published": ("model",),
    "actions": ("actions",),
    "validation": ("model", "validation"),
}


@functools.cache
def code_digest() -> str:
    digest = hashlib.sha256()
    for package in PACKAGES:
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            digest.update(path.relative_to(REPO_ROOT).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def code_version(paths: ConfigPaths, group: str | None) -> str:
    if group not in CONFIG_READ_BY_GROUP:
        raise KeyError(f"asset group {group!r} has no entry in CONFIG_READ_BY_GROUP (cs_assets/code_version.py)")
    digest = hashlib.sha256(code_digest().encode())
    for field in CONFIG_READ_BY_GROUP[group]:
        path = Path(getattr(paths, field))
        digest.update(field.encode())
        digest.update(path.read_bytes() if path.is_file() else b"")
    return digest.hexdigest()[:16]


def with_code_versions(assets: list[dg.AssetsDefinition], paths: ConfigPaths) -> list[dg.AssetsDefinition]:
    return [
        asset.map_asset_specs(lambda spec: spec.replace_attributes(code_version=code_version(paths, spec.group_name)))
        for asset in assets
    ]
