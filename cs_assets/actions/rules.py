"""The action rules file (`config/actions.yaml`): validated on load into plain dataclasses.

Errors name the file, the key path (`rules[2].when[0].value`) and what is wrong, so a reviewer
fixes the file without reading this module. Field names are checked against the published
history's columns, and band / stage values against the health model, so a typo cannot make a
rule silently never fire.
"""

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cs_assets.config_file import ConfigFileError, read_yaml, require_mapping
from cs_assets.indicators.definitions import INDICATOR_COLUMNS
from cs_assets.scoring.model_config import LIFECYCLE_STAGES, HealthModel
from cs_assets.settings import REPO_ROOT

ACTIONS_ENV = "CS_HEALTH_ACTIONS"
DEFAULT_ACTIONS_PATH = REPO_ROOT / "config" / "actions.yaml"
RULES_FILE_VERSION = 1

NUMBER, TEXT = "number", "text"
# field -> kind; the history frame the rules run over has exactly these columns
SCORE_FIELDS = {
    "health_score": NUMBER,
    "co_score": NUMBER,
    "cx_score": NUMBER,
    "band": TEXT,
    "lifecycle_stage": TEXT,
    "size_tier": TEXT,
    "triage_priority": TEXT,
    "arr_usd": NUMBER,
    "days_to_renewal": NUMBER,
}
TREND_FIELDS = {
    "change_7d": NUMBER,
    "change_30d": NUMBER,
    "change_since_previous": NUMBER,
    "previous_band": TEXT,
    "band_transition": TEXT,
}
FIELDS: dict[str, str] = {**{name: NUMBER for name in INDICATOR_COLUMNS}, **SCORE_FIELDS, **TREND_FIELDS}

NUMBER_OPS = ("lt", "lte", "gt", "gte", "eq", "ne", "between")
TEXT_OPS = ("eq", "ne", "in", "not_in")
NULL_OPS = ("is_null", "not_null")
PRIORITIES = ("P1", "P2", "P3", "P4")
NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class ActionRulesError(ConfigFileError):
    pass


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    value: Any  # float | str | tuple[float, float] | tuple[str, ...] | None
    if_missing: bool


@dataclass(frozen=True)
class ActionRule:
    name: str
    description: str
    action: str
    priority: str
    combine: str  # "all" | "any"
    conditions: tuple[Condition, ...]
    for_snapshots: int


@dataclass(frozen=True)
class ActionRules:
    rules: tuple[ActionRule, ...]
    max_age_days: int
    version: str  # content hash of the validated rules


def _mapping(source: str, key: str, value: Any, required: set[str], optional: set[str] = frozenset()) -> dict:
    return require_mapping(ActionRulesError, source, key, value, required, optional)


def _text(source: str, key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ActionRulesError(source, key, f"must be non-empty text, got {value!r}")
    return value.strip()


def _number(source: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise ActionRulesError(source, key, f"must be a number, got {value!r}")
    return float(value)


def _allowed_values(field: str, model: HealthModel | None) -> tuple[str, ...] | None:
    if model is None:
        return None
    bands = tuple(b.name for b in model.bands)
    if field in ("band", "previous_band"):
        return bands
    if field == "lifecycle_stage":
        return (*LIFECYCLE_STAGES,)
    if field == "band_transition":
        return tuple(f"{a}->{b}" for a in bands for b in bands if a != b)
    return None


def _condition(source: str, key: str, raw: Any, model: HealthModel | None) -> Condition:
    raw = _mapping(source, key, raw, {"field", "op"}, {"value", "if_missing"})
    field = raw["field"]
    if field not in FIELDS:
        raise ActionRulesError(
            source, f"{key}.field", f"unknown field {field!r}; known fields: {', '.join(sorted(FIELDS))}"
        )
    kind, op = FIELDS[field], raw["op"]
    ops = (NUMBER_OPS if kind == NUMBER else TEXT_OPS) + NULL_OPS
    if op not in ops:
        raise ActionRulesError(source, f"{key}.op", f"{field} is {kind}: op must be one of {', '.join(ops)}, got {op!r}")
    if_missing = raw.get("if_missing", False)
    if not isinstance(if_missing, bool):
        raise ActionRulesError(source, f"{key}.if_missing", f"must be true or false, got {if_missing!r}")
    if op in NULL_OPS:
        if "value" in raw:
            raise ActionRulesError(source, f"{key}.value", f"op {op} takes no value")
        return Condition(field, op, None, False)
    if "value" not in raw:
        raise ActionRulesError(source, f"{key}.value", f"op {op} needs a value")
    value = raw["value"]
    vkey = f"{key}.value"
    if op == "between":
        if not isinstance(value, list) or len(value) != 2:
            raise ActionRulesError(source, vkey, f"between needs [low, high], got {value!r}")
        low, high = _number(source, vkey, value[0]), _number(source, vkey, value[1])
        if low > high:
            raise ActionRulesError(source, vkey, f"low {low:g} is above high {high:g}")
        return Condition(field, op, (low, high), if_missing)
    if kind == NUMBER:
        return Condition(field, op, _number(source, vkey, value), if_missing)
    values = value if op in ("in", "not_in") else [value]
    if op in ("in", "not_in") and (not isinstance(value, list) or not value):
        raise ActionRulesError(source, vkey, f"{op} needs a non-empty list, got {value!r}")
    values = tuple(_text(source, vkey, v) for v in values)
    allowed = _allowed_values(field, model)
    if allowed is not None:
        wrong = [v for v in values if v not in allowed]
        if wrong:
            raise ActionRulesError(
                source, vkey, f"{field} is never {', '.join(map(repr, wrong))}; it is one of {', '.join(allowed)}"
            )
    return Condition(field, op, values if op in ("in", "not_in") else values[0], if_missing)


def _rule(source: str, index: int, raw: Any, model: HealthModel | None) -> ActionRule:
    key = f"rules[{index}]"
    raw = _mapping(source, key, raw, {"name", "action", "priority", "when"}, {"description", "for_snapshots"})
    name = raw["name"]
    if not isinstance(name, str) or not NAME.match(name):
        raise ActionRulesError(source, f"{key}.name", f"must be lower_snake_case (a-z, 0-9, _), got {name!r}")
    key = f"rules[{index}] ({name})"
    priority = raw["priority"]
    if priority not in PRIORITIES:
        raise ActionRulesError(source, f"{key}.priority", f"must be one of {', '.join(PRIORITIES)}, got {priority!r}")
    runs = raw.get("for_snapshots", 1)
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
        raise ActionRulesError(source, f"{key}.for_snapshots", f"must be a whole number >= 1, got {runs!r}")
    when = raw["when"]
    combine = "all"
    if isinstance(when, dict):
        if len(when) != 1 or next(iter(when)) not in ("all", "any"):
            raise ActionRulesError(source, f"{key}.when", "must be a list of conditions, or {all: [...]} or {any: [...]}")
        combine, when = next(iter(when.items()))
    if not isinstance(when, list) or not when:
        raise ActionRulesError(source, f"{key}.when", f"must be a non-empty list of conditions, got {when!r}")
    conditions = tuple(_condition(source, f"{key}.when[{i}]", c, model) for i, c in enumerate(when))
    return ActionRule(
        name=name,
        description=_text(source, f"{key}.description", raw.get("description", name.replace("_", " "))),
        action=_text(source, f"{key}.action", raw["action"]),
        priority=priority,
        combine=combine,
        conditions=conditions,
        for_snapshots=runs,
    )


def parse_action_rules(raw: Any, source: str = "<actions>", model: HealthModel | None = None) -> ActionRules:
    raw = _mapping(source, "<root>", raw, {"version", "rules"}, {"delivery"})
    if raw["version"] != RULES_FILE_VERSION:
        raise ActionRulesError(source, "version", f"this release reads version {RULES_FILE_VERSION}, got {raw['version']!r}")
    delivery = _mapping(source, "delivery", raw.get("delivery", {"max_age_days": 3}), {"max_age_days"})
    max_age = delivery["max_age_days"]
    if isinstance(max_age, bool) or not isinstance(max_age, int) or max_age < 0:
        raise ActionRulesError(source, "delivery.max_age_days", f"must be a whole number >= 0, got {max_age!r}")
    if not isinstance(raw["rules"], list):
        raise ActionRulesError(source, "rules", f"must be a list of rules, got {type(raw['rules']).__name__}")
    rules = tuple(_rule(source, i, r, model) for i, r in enumerate(raw["rules"]))
    seen: set[str] = set()
    for i, rule in enumerate(rules):
        if rule.name in seen:
            raise ActionRulesError(source, f"rules[{i}].name", f"duplicate rule name {rule.name!r}")
        seen.add(rule.name)
    canonical = json.dumps(raw, sort_keys=True, separators=(",", ":"), default=str)
    version = hashlib.sha256(canonical.encode()).hexdigest()[:12]
    return ActionRules(rules=rules, max_age_days=max_age, version=version)


def actions_path() -> Path:
    return Path(os.environ.get(ACTIONS_ENV) or DEFAULT_ACTIONS_PATH).resolve()


def load_action_rules(path: str | Path, model: HealthModel | None = None) -> ActionRules:
    raw = read_yaml(path, ActionRulesError, "action rules file")
    return parse_action_rules(raw, source=str(path), model=model)
