"""What every reviewed config file shares: the error shape, reading the YAML, validating it.

Each file has its own error class (a subclass of `ConfigFileError`) so callers can tell which
file is wrong; every message reads `<file>: `<key path>`: <problem>`.

Config files are pydantic models (`ConfigModel`: strict types, unknown keys refused, frozen).
`validate_config` turns pydantic's first error into that one message format, in the words a
reviewer of the YAML file needs ("must be >= 0, got -1", "unknown key(s): wieght (allowed: ...)"),
and `ConfigProblem` lets a validator point at a key below the one it validates.
"""

import types
import typing
from collections.abc import Collection
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import ErrorDetails

FILE_KEY = "<file>"
ROOT_KEY = "<root>"


class ConfigFileError(ValueError):
    """A config file is invalid; the message names the file, the key path and the problem."""

    def __init__(self, source: str, key: str, problem: str):
        self.source, self.key, self.problem = source, key, problem
        super().__init__(f"{source}: `{key}`: {problem}")


class ConfigProblem(ValueError):
    """Raised by a validator: `key` is relative to the validated object ("" = the object itself)."""

    def __init__(self, key: str, problem: str):
        self.key, self.problem = key, problem
        super().__init__(problem)


class ConfigModel(BaseModel):
    """Base of every config file model: YAML types as they are, no unknown key, immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


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


# --------------------------------------------------------------------------- pydantic errors

M = TypeVar("M", bound=BaseModel)


def join_key(*parts: str | int) -> str:
    """('indicators', 'x', 'cuts', 2) -> 'indicators.x.cuts[2]'."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part != "":
            out += f".{part}" if out else str(part)
    return out


def _model_at(model: Any, loc: tuple) -> Any:
    """The annotation found by walking `loc` from `model` (a model class, dict, list, optional)."""
    current = model
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(part) or next(
                (f for f in current.model_fields.values() if f.alias == part), None
            )
            if field is None:
                return None
            current = field.annotation
            continue
        origin = typing.get_origin(current)
        args = typing.get_args(current)
        if origin is dict and len(args) == 2:
            current = args[1]
        elif origin in (list, tuple) and args:
            current = args[0]
        else:
            return None
    return _unwrap(current)


def _unwrap(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        models = [a for a in typing.get_args(annotation) if isinstance(a, type) and issubclass(a, BaseModel)]
        if len(models) == 1:
            return models[0]
        others = [a for a in typing.get_args(annotation) if a is not type(None)]
        return others[0] if len(others) == 1 else annotation
    return annotation


def _field_names(model: Any) -> list[str]:
    if isinstance(model, type) and issubclass(model, BaseModel):
        return [f.alias or name for name, f in model.model_fields.items()]
    return []


def _expected(text: str) -> str:
    # pydantic writes "'a', 'b' or 'c'"; a YAML reader wants "a, b, c"
    return text.replace("' or '", "', '").replace("'", "")


def _problem(error: ErrorDetails) -> tuple[tuple, str]:
    """(location, problem) of one pydantic error, in this project's words."""
    kind, loc, value, ctx = error["type"], tuple(error["loc"]), error.get("input"), error.get("ctx") or {}
    got = f", got {value!r}"
    if kind in ("value_error", "assertion_error") and isinstance(ctx.get("error"), ConfigProblem):
        problem = ctx["error"]
        return (*loc, *([problem.key] if problem.key else [])), problem.problem
    if kind in ("value_error", "assertion_error"):
        return loc, error["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return loc, f"must be a mapping, got {type(value).__name__}"
    if kind in ("list_type", "tuple_type"):
        return loc, f"must be a list, got {type(value).__name__}"
    if kind in ("float_type", "float_parsing", "finite_number"):
        return loc, f"must be a finite number{got}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return loc, f"must be a whole number{got}"
    if kind == "bool_type":
        return loc, f"must be true or false{got}"
    if kind == "string_type":
        return loc, f"must be a string{got}"
    if kind in ("date_type", "date_parsing", "date_from_datetime_inexact"):
        return loc, f"must be a date YYYY-MM-DD{got}"
    if kind == "literal_error":
        return loc, f"must be one of {_expected(ctx.get('expected', ''))}{got}"
    if kind == "enum":
        return loc, f"must be one of {_expected(ctx.get('expected', ''))}{got}"
    bounds = {
        "greater_than_equal": (">=", "ge"),
        "greater_than": (">", "gt"),
        "less_than_equal": ("<=", "le"),
        "less_than": ("<", "lt"),
    }
    if kind in bounds:
        symbol, name = bounds[kind]
        return loc, f"must be {symbol} {ctx.get(name):g}{got}"
    if kind == "string_too_short":
        return loc, "must be a non-empty string"
    if kind == "too_short":
        return loc, f"must have at least {ctx.get('min_length')} item(s){got}"
    if kind == "too_long":
        return loc, f"must have at most {ctx.get('max_length')} item(s)"
    if kind == "string_pattern_mismatch":
        return loc, f"{value!r} is not allowed here (expected the pattern {ctx.get('pattern')})"
    if kind == "union_tag_invalid":
        return loc, f"must be one of {_expected(ctx.get('expected_tags', ''))}, got {ctx.get('tag')!r}"
    return loc, error["msg"]


def validate_config(model: type[M], raw: Any, source: str, error: type[ConfigFileError], prefix: str = "") -> M:
    """`raw` (parsed YAML) as a `model`, or `error(source, key, problem)` for the first problem.

    `prefix` is the key path of `raw` inside its file, when `raw` is a part of it.
    """
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
    first = errors[0]
    loc = tuple(first["loc"])
    if first["type"] in ("missing", "extra_forbidden"):
        parent = loc[:-1]
        same = [e for e in errors if e["type"] == first["type"] and tuple(e["loc"])[:-1] == parent]
        names = [str(e["loc"][-1]) for e in same]
        key = join_key(*([prefix] if prefix else []), *parent) or ROOT_KEY
        if first["type"] == "missing":
            raise error(source, key, f"missing required key(s): {', '.join(names)}")
        allowed = _field_names(_model_at(model, parent))
        hint = f" (allowed: {', '.join(allowed)})" if allowed else ""
        raise error(source, key, f"unknown key(s): {', '.join(sorted(names))}{hint}")
    loc, problem = _problem(first)
    raise error(source, join_key(*([prefix] if prefix else []), *loc) or ROOT_KEY, problem)


def load_config(path: str | Path, model: type[M], error: type[ConfigFileError], what: str) -> M:
    """Read, parse and validate one config file."""
    return validate_config(model, read_yaml(path, error, what), str(path), error)
