"""What every reviewed config file shares: the error shape, reading the YAML, checking a mapping's keys.

Each file has its own error class (a subclass of `ConfigFileError`) so callers can tell which
file is wrong; every message reads `<file>: `<key path>`: <problem>`.
"""

from collections.abc import Collection
from pathlib import Path
from typing import Any

import yaml

FILE_KEY = "<file>"


class ConfigFileError(ValueError):
    """A config file is invalid; the message names the file, the key path and the problem."""

    def __init__(self, source: str, key: str, problem: str):
        self.source, self.key, self.problem = source, key, problem
        super().__init__(f"{source}: `{key}`: {problem}")


def read_config_text(path: Path, error: type[ConfigFileError], what: str) -> str:
    if not path.is_file():
        raise error(str(path), FILE_KEY, f"{what} not found")
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise error(str(path), FILE_KEY, f"cannot read the file: {exc}") from None


def parse_yaml(text: str, source: str, error: type[ConfigFileError]) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise error(source, FILE_KEY, f"not valid YAML: {exc}") from None


def read_yaml(path: str | Path, error: type[ConfigFileError], what: str) -> Any:
    """The parsed file, not yet validated; `what` names the file in the not-found message."""
    path = Path(path)
    return parse_yaml(read_config_text(path, error, what), str(path), error)


def _in_order(names: Collection[str]) -> list[str]:
    # a set has no order of its own: sort it so the message is the same on every run
    return sorted(names) if isinstance(names, (set, frozenset)) else list(names)


def require_mapping(
    error: type[ConfigFileError],
    source: str,
    key: str,
    value: Any,
    required: Collection[str],
    optional: Collection[str] = (),
) -> dict:
    """`value` as a mapping that has every required key and no key outside required + optional."""
    if not isinstance(value, dict):
        raise error(source, key, f"must be a mapping, got {type(value).__name__}")
    missing = [k for k in _in_order(required) if k not in value]
    if missing:
        raise error(source, key, f"missing required key(s): {', '.join(missing)}")
    allowed = list(dict.fromkeys([*_in_order(required), *_in_order(optional)]))
    unknown = sorted(str(k) for k in value if k not in allowed)
    if unknown:
        shown = sorted(allowed) if isinstance(required, (set, frozenset)) else allowed
        raise error(source, key, f"unknown key(s): {', '.join(unknown)} (allowed: {', '.join(shown)})")
    return value
