"""The action rules file (`actions.yaml`): validated on load (pydantic) into plain dataclasses.

Errors name the file, the key path (`rules[2] (name).when[0].value`) and what is wrong, so a
reviewer fixes the file without reading this module. Field names are checked against the
published history's columns (scores, trend, and the deployment's indicator catalogue), and band
/ stage values against the health model, so a typo cannot make a rule silently never fire.
"""

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from cs_assets.config_file import ConfigFileError, ConfigModel, read_yaml, validate_config
from cs_assets.scoring.model_config import LIFECYCLE_STAGES, HealthModel
from cs_assets.settings import REPO_ROOT

if TYPE_CHECKING:
    from cs_assets.indicators.catalogue import Catalogue

DEFAULT_ACTIONS_PATH = REPO_ROOT / "config" / "actions.yaml"
RULES_FILE_VERSION = 1

NUMBER, TEXT = "number", "text"
# field -> kind: the published health columns and the trend view (indicators come from the catalogue)
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
    "segment_model": TEXT,
}
# the account's health stage (the `stages` of the file), for action rules
STAGE_FIELD = "health_stage"
# a parent account's roll-up of its family (health_model.yaml `parents`); null on other accounts
PARENT_FIELDS = {"rollup_score": NUMBER, "rollup_band": TEXT}
TREND_FIELDS = {
    "change_7d": NUMBER,
    "change_30d": NUMBER,
    # four weeks: a trend weekly snapshots have too (they have no snapshot 30 days back)
    "change_4w": NUMBER,
    "change_since_previous": NUMBER,
    "previous_band": TEXT,
    "band_transition": TEXT,
}

NUMBER_OPS = ("lt", "lte", "gt", "gte", "eq", "ne", "between")
TEXT_OPS = ("eq", "ne", "in", "not_in")
NULL_OPS = ("is_null", "not_null")
PRIORITIES = ("P1", "P2", "P3", "P4")
NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class ActionRulesError(ConfigFileError):
    pass


def indicator_fields(catalogue: "Catalogue") -> list[str]:
    """The indicator columns of the published history: the catalogue's, and the context fields."""
    from cs_assets.indicators.catalogue import CONTEXT_FIELDS

    return [*catalogue.indicators, *[c for c in CONTEXT_FIELDS if c not in SCORE_FIELDS]]


def history_fields(catalogue: "Catalogue") -> dict[str, str]:
    """Every field a rule may read, with its kind."""
    return {**{name: NUMBER for name in indicator_fields(catalogue)}, **SCORE_FIELDS, **TREND_FIELDS, **PARENT_FIELDS}


# --------------------------------------------------------------------------- the file


class ConditionDecl(ConfigModel):
    field: str
    op: str
    value: Any = None
    if_missing: bool = False


class RuleDecl(ConfigModel):
    name: str
    description: str | None = None
    action: str
    priority: Literal["P1", "P2", "P3", "P4"]
    for_snapshots: int = Field(default=1, ge=1)
    # a state the account was already in on its first published snapshot is its baseline: the
    # rule fires only once it starts to hold later, unless this is true
    fire_on_first_snapshot: bool = False
    # a list of conditions that must all hold, or {all: [...]} / {any: [...]}
    when: Any = Field(
        json_schema_extra={
            "anyOf": [
                {"type": "array", "items": ConditionDecl.model_json_schema()},
                {"type": "object", "properties": {"all": {"type": "array"}, "any": {"type": "array"}}},
            ]
        }
    )


class StageRuleDecl(ConfigModel):
    name: str
    description: str | None = None
    # consecutive snapshots the conditions must hold before an account moves into the stage
    enter_after: int = Field(default=1, ge=1)
    when: Any = Field(json_schema_extra=RuleDecl.model_fields["when"].json_schema_extra)


class StagesDecl(ConfigModel):
    # the stage of an account no rule points to
    default: str
    # first match wins, in this order
    rules: list[StageRuleDecl] = Field(min_length=1)


class DeliveryDecl(ConfigModel):
    # only open actions that started within this many days of the newest snapshot are sent
    max_age_days: int = Field(default=3, ge=0)
    # at most this many messages per run, most urgent first; the rest wait for the next run
    max_per_run: int = Field(default=100, ge=1)


class ActionsFile(ConfigModel):
    version: int
    delivery: DeliveryDecl = DeliveryDecl()
    # account health stages (Success, Growth, Rescue, Sunk, ...), published per snapshot; action
    # rules can read them as `health_stage`
    stages: StagesDecl | None = None
    rules: list[RuleDecl]


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    value: Any  # float | str | tuple[float, float] | tuple[str, ...] | None
    if_missing: bool
    kind: str = NUMBER  # number | text: how the value is written in a reason


@dataclass(frozen=True)
class ActionRule:
    name: str
    description: str
    action: str
    priority: str
    combine: str  # "all" | "any"
    conditions: tuple[Condition, ...]
    for_snapshots: int
    fire_on_first_snapshot: bool = False


@dataclass(frozen=True)
class StageRule:
    name: str
    description: str
    combine: str  # "all" | "any"
    conditions: tuple[Condition, ...]
    enter_after: int


@dataclass(frozen=True)
class StageRules:
    default: str
    rules: tuple[StageRule, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys([*(r.name for r in self.rules), self.default]))


@dataclass(frozen=True)
class ActionRules:
    rules: tuple[ActionRule, ...]
    max_age_days: int
    version: str  # content hash of the validated rules
    max_per_run: int = 100
    stages: StageRules | None = None

    @property
    def indicators_read(self) -> list[str]:
        """The indicator columns the stage and action rules read: the only ones of the published
        history they need (the history is every snapshot of every account, its width costs)."""
        conditions = [c for rule in self.rules for c in rule.conditions]
        if self.stages is not None:
            conditions += [c for rule in self.stages.rules for c in rule.conditions]
        fields = dict.fromkeys(c.field for c in conditions)
        known = {*SCORE_FIELDS, *TREND_FIELDS, *PARENT_FIELDS, STAGE_FIELD}
        return [f for f in fields if f not in known]


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
    if field in ("band", "previous_band", "rollup_band"):
        return bands
    if field == "lifecycle_stage":
        return (*LIFECYCLE_STAGES,)
    if field == "band_transition":
        return tuple(f"{a}->{b}" for a in bands for b in bands if a != b)
    return None


def check_condition(
    source: str,
    key: str,
    c: ConditionDecl,
    fields: dict[str, str],
    model: HealthModel | None,
    allowed_values: dict[str, tuple[str, ...]] | None = None,
) -> Condition:
    """One condition checked against the fields a rule can read (and the model's band names)."""
    field, op = c.field, c.op
    if field not in fields:
        raise ActionRulesError(
            source, f"{key}.field", f"unknown field {field!r}; known fields: {', '.join(sorted(fields))}"
        )
    kind = fields[field]
    ops = (NUMBER_OPS if kind == NUMBER else TEXT_OPS) + NULL_OPS
    if op not in ops:
        raise ActionRulesError(
            source, f"{key}.op", f"{field} is {kind}: op must be one of {', '.join(ops)}, got {op!r}"
        )
    if op in NULL_OPS:
        if c.value is not None:
            raise ActionRulesError(source, f"{key}.value", f"op {op} takes no value")
        return Condition(field, op, None, False, kind)
    if c.value is None:
        raise ActionRulesError(source, f"{key}.value", f"op {op} needs a value")
    value, vkey = c.value, f"{key}.value"
    if op == "between":
        if not isinstance(value, list) or len(value) != 2:
            raise ActionRulesError(source, vkey, f"between needs [low, high], got {value!r}")
        low, high = _number(source, vkey, value[0]), _number(source, vkey, value[1])
        if low > high:
            raise ActionRulesError(source, vkey, f"low {low:g} is above high {high:g}")
        return Condition(field, op, (low, high), c.if_missing, kind)
    if kind == NUMBER:
        return Condition(field, op, _number(source, vkey, value), c.if_missing, kind)
    if op in ("in", "not_in") and (not isinstance(value, list) or not value):
        raise ActionRulesError(source, vkey, f"{op} needs a non-empty list, got {value!r}")
    values = tuple(_text(source, vkey, v) for v in (value if op in ("in", "not_in") else [value]))
    allowed = (allowed_values or {}).get(field) or _allowed_values(field, model)
    if allowed is not None:
        wrong = [v for v in values if v not in allowed]
        if wrong:
            raise ActionRulesError(
                source, vkey, f"{field} is never {', '.join(map(repr, wrong))}; it is one of {', '.join(allowed)}"
            )
    return Condition(field, op, values if op in ("in", "not_in") else values[0], c.if_missing, kind)


def _conditions(
    source: str,
    key: str,
    raw_when: Any,
    fields: dict[str, str],
    model: HealthModel | None,
    allowed_values: dict[str, tuple[str, ...]] | None = None,
) -> tuple[str, tuple[Condition, ...]]:
    """A `when`: a list of conditions that must all hold, or {all: [...]} / {any: [...]}."""
    combine, when = "all", raw_when
    if isinstance(when, dict):
        if len(when) != 1 or next(iter(when)) not in ("all", "any"):
            raise ActionRulesError(
                source, f"{key}.when", "must be a list of conditions, or {all: [...]} or {any: [...]}"
            )
        combine, when = next(iter(when.items()))
    if not isinstance(when, list) or not when:
        raise ActionRulesError(source, f"{key}.when", f"must be a non-empty list of conditions, got {when!r}")
    conditions = tuple(
        check_condition(
            source,
            f"{key}.when[{i}]",
            validate_config(ConditionDecl, c, source, ActionRulesError, f"{key}.when[{i}]"),
            fields,
            model,
            allowed_values,
        )
        for i, c in enumerate(when)
    )
    return combine, conditions


def _name(source: str, key: str, name: str) -> None:
    if not NAME.match(name):
        raise ActionRulesError(source, key, f"must be lower_snake_case (a-z, 0-9, _), got {name!r}")


def _rule(
    source: str,
    index: int,
    raw: RuleDecl,
    fields: dict[str, str],
    model: HealthModel | None,
    allowed_values: dict[str, tuple[str, ...]] | None = None,
) -> ActionRule:
    _name(source, f"rules[{index}].name", raw.name)
    key = f"rules[{index}] ({raw.name})"
    combine, conditions = _conditions(source, key, raw.when, fields, model, allowed_values)
    return ActionRule(
        name=raw.name,
        description=_text(
            source, f"{key}.description", raw.description if raw.description is not None else raw.name.replace("_", " ")
        ),
        action=_text(source, f"{key}.action", raw.action),
        priority=raw.priority,
        combine=combine,
        conditions=conditions,
        for_snapshots=raw.for_snapshots,
        fire_on_first_snapshot=raw.fire_on_first_snapshot,
    )


def _catalogue_or_current(catalogue: "Catalogue | None") -> "Catalogue":
    if catalogue is not None:
        return catalogue
    from cs_assets.deployment import current_deployment

    return current_deployment().catalogue


def parse_action_rules(
    raw: Any, source: str = "<actions>", model: HealthModel | None = None, catalogue: "Catalogue | None" = None
) -> ActionRules:
    """The validated rules; fields are checked against `catalogue` (default: the current deployment's)."""
    parsed = validate_config(ActionsFile, raw, source, ActionRulesError)
    if parsed.version != RULES_FILE_VERSION:
        raise ActionRulesError(
            source, "version", f"this release reads version {RULES_FILE_VERSION}, got {parsed.version!r}"
        )
    fields = history_fields(_catalogue_or_current(catalogue))
    stages = _stages(source, parsed.stages, fields, model) if parsed.stages is not None else None
    allowed: dict[str, tuple[str, ...]] = {}
    if stages is not None:
        # action rules may act on the stage ("stage x health -> action"); stage rules never read it
        fields = {**fields, STAGE_FIELD: TEXT}
        allowed[STAGE_FIELD] = stages.names
    rules = tuple(_rule(source, i, r, fields, model, allowed) for i, r in enumerate(parsed.rules))
    seen: set[str] = set()
    for i, rule in enumerate(rules):
        if rule.name in seen:
            raise ActionRulesError(source, f"rules[{i}].name", f"duplicate rule name {rule.name!r}")
        seen.add(rule.name)
    canonical = json.dumps(raw, sort_keys=True, separators=(",", ":"), default=str)
    version = hashlib.sha256(canonical.encode()).hexdigest()[:12]
    return ActionRules(
        rules=rules,
        max_age_days=parsed.delivery.max_age_days,
        version=version,
        max_per_run=parsed.delivery.max_per_run,
        stages=stages,
    )


def _stages(source: str, decl: StagesDecl, fields: dict[str, str], model: HealthModel | None) -> StageRules:
    _name(source, "stages.default", decl.default)
    rules: list[StageRule] = []
    for i, raw in enumerate(decl.rules):
        _name(source, f"stages.rules[{i}].name", raw.name)
        if raw.name in [r.name for r in rules]:
            raise ActionRulesError(source, f"stages.rules[{i}].name", f"duplicate stage {raw.name!r}")
        if raw.name == decl.default:
            raise ActionRulesError(
                source,
                f"stages.rules[{i}].name",
                f"{raw.name!r} is the default stage (where no rule points): a rule must name another stage",
            )
        key = f"stages.rules[{i}] ({raw.name})"
        combine, conditions = _conditions(source, key, raw.when, fields, model)
        description = raw.description if raw.description is not None else raw.name.replace("_", " ")
        rules.append(
            StageRule(raw.name, _text(source, f"{key}.description", description), combine, conditions, raw.enter_after)
        )
    return StageRules(default=decl.default, rules=tuple(rules))


def load_action_rules(
    path: str | Path, model: HealthModel | None = None, catalogue: "Catalogue | None" = None
) -> ActionRules:
    raw = read_yaml(path, ActionRulesError, "action rules file")
    return parse_action_rules(raw, source=str(path), model=model, catalogue=catalogue)
