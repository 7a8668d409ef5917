"""The publish gate, held where data is written rather than in one job's step order.

A blocking check stops the steps after it inside one run, but Dagster does not carry that to
later runs: a downstream-only materialization in the UI, `dagster asset materialize --select`,
a re-execution, a sensor's or the automation daemon's run would read a refused load as if it
were good. So every step that turns staged data into something people or systems act on (the
indicator table, the published tables, the actions, the CRM write-back) asks the instance,
before it reads or writes anything, whether the loads it is built from passed their blocking
checks; `enforce` stops the step with one sentence per refusal otherwise.

What "passed" means, for each asset upstream of the step (transitively) that has blocking checks:
- it has a materialization (for a snapshot-partitioned asset: for each snapshot the step
  writes), and every blocking check of that asset ran in the run that made it;
- none of those evaluations failed with severity ERROR (a failed WARN check never blocks);
- a source was loaded and checked as of the newest snapshot the step writes: freshness
  measured for another day says nothing about this one.

`with_upstream_gate` is the same rule for declarative automation: an automated asset is
requested only while no blocking check anywhere upstream failed or is missing.
"""

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg

# the graph of assets and checks before Definitions resolves it (resources are not needed yet)
from dagster._core.definitions.assets.graph.asset_graph import AssetGraph
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

# metadata of a source's materialization: the snapshot its checks were evaluated for
CHECKED_AS_OF = "checked_as_of"
# definition metadata of every asset: what its gate looks at (`gate_plan`)
GATE_METADATA = "cs_health/gate"

# check executions searched for the one of a given run (a check runs once per run)
HISTORY = 200
EVALUATED = {AssetCheckExecutionRecordStatus.SUCCEEDED, AssetCheckExecutionRecordStatus.FAILED}


class GateError(dg.Failure):
    """A step refused to read or write because an input did not pass its blocking checks."""


@dataclass(frozen=True)
class Refusal:
    """Why one upstream asset keeps the step from running: `check` None when no check is to blame."""

    asset: str
    check: str | None
    reason: str

    def sentence(self) -> str:
        return f"{self.asset}:{self.check}: {self.reason}" if self.check else f"{self.asset}: {self.reason}"


def checks_passed_on(key: dg.AssetKey) -> dg.AutomationCondition:
    """True where every blocking check of `key` passed, or will be requested on this tick with its
    asset (the run then stops at a failed one)."""
    return dg.AutomationCondition.asset_matches(
        key,
        dg.AutomationCondition.all_checks_match(
            dg.AutomationCondition.check_passed() | dg.AutomationCondition.will_be_requested(), blocking_only=True
        ),
    ).with_label(f"{key.to_user_string()}: its blocking checks passed")


def upstream_checks_passed(keys: Iterable[dg.AssetKey]) -> dg.AutomationCondition:
    """True where the blocking checks of every asset in `keys` (an asset's upstream assets that
    have blocking checks, not only its direct parents) passed."""
    parts = [checks_passed_on(key) for key in keys]
    if not parts:
        return dg.AutomationCondition.all_deps_blocking_checks_passed()
    condition: Any = parts[0]
    for part in parts[1:]:
        condition = condition & part
    return condition.with_label("every upstream blocking check passed")


def gate_plan(graph: AssetGraph, key: dg.AssetKey) -> dict:
    """What the gate of `key` looks at, as plain data kept in the asset's metadata (a run of a
    subset sees the other assets of its job only as external, without their checks): the
    asset's own blocking checks, and each upstream asset that has blocking checks."""
    upstream = [
        {"asset": parent.to_user_string(), "partitioned": graph.get(parent).is_partitioned, "checks": names}
        for parent in _upstream(graph, key)
        if (names := [c.name for c in _blocking_checks(graph, parent)])
    ]
    return {"checks": [c.name for c in _blocking_checks(graph, key)], "upstream": upstream}


def with_upstream_gate(
    assets: Sequence[dg.AssetsDefinition], checks: Sequence[dg.AssetChecksDefinition]
) -> list[dg.AssetsDefinition]:
    """`assets` with their gate plans in their metadata (`GATE_METADATA`), and each automated
    one's condition also requiring every blocking check upstream of it to have passed. One
    `asset_matches` per checked upstream asset: nesting Dagster's direct-parent condition as deep
    as the graph cost seconds per tick (it walks every path)."""
    graph = AssetGraph.from_assets([*assets, *checks])

    def gate(spec: dg.AssetSpec) -> dg.AssetSpec:
        plan = gate_plan(graph, spec.key)
        metadata = {**spec.metadata, GATE_METADATA: dg.MetadataValue.json(plan)}
        condition = spec.automation_condition
        if condition is None:
            return spec.replace_attributes(metadata=metadata)
        upstream = [dg.AssetKey.from_user_string(u["asset"]) for u in plan["upstream"]]
        gated = (condition & upstream_checks_passed(upstream)).with_label(
            f"{condition.get_label() or condition.name}, once every upstream blocking check passed"
        )
        return spec.replace_attributes(automation_condition=gated, metadata=metadata)

    return list(dg.map_asset_specs(gate, assets))


def _upstream(graph: AssetGraph, key: dg.AssetKey) -> list[dg.AssetKey]:
    """Every asset `key` is built from, nearest first."""
    seen: list[dg.AssetKey] = []
    frontier = [key]
    while frontier:
        parents = [p for k in frontier for p in sorted(graph.get(k).parent_keys) if p not in seen and p != key]
        parents = list(dict.fromkeys(parents))
        seen.extend(parents)
        frontier = parents
    return seen


def _blocking_checks(graph: AssetGraph, key: dg.AssetKey) -> list[dg.AssetCheckKey]:
    return sorted((c for c in graph.get(key).check_keys if graph.get_check_spec(c).blocking), key=lambda c: c.name)


def _evaluation_in_run(instance: dg.DagsterInstance, check: dg.AssetCheckKey, run_id: str):
    for record in instance.event_log_storage.get_asset_check_execution_history(check, limit=HISTORY):
        if record.run_id == run_id:
            return record
    return None


def _latest_materialization(instance: dg.DagsterInstance, key: dg.AssetKey, partition: str | None):
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition] if partition else None), limit=1
    ).records
    return records[0] if records else None


def load_refusals(
    instance: dg.DagsterInstance,
    key: dg.AssetKey,
    checks: Sequence[str],
    run_id: str,
    what: str,
    missing_refuses: bool = True,
) -> list[Refusal]:
    """Why the materialization of `key` made by run `run_id` (`what` names it) is not an input:
    a blocking check of `checks` that failed with severity ERROR in that run, or (unless
    `missing_refuses` is False) did not run in it."""
    found = []
    name = key.to_user_string()
    for check in checks:
        record = _evaluation_in_run(instance, dg.AssetCheckKey(key, check), run_id)
        # planned but never evaluated (its step was skipped or died): it did not run
        ran = record is not None and record.status in EVALUATED
        evaluation = record.evaluation if ran and record is not None else None
        if evaluation is None:
            if missing_refuses:
                found.append(Refusal(name, check, f"did not run on {what} (run {run_id[:8]})"))
        elif not evaluation.passed and evaluation.severity != dg.AssetCheckSeverity.WARN:
            found.append(Refusal(name, check, evaluation.description or f"failed on {what}"))
    return found


def refusals(instance: dg.DagsterInstance, plan: dict, snapshots: Sequence[dt.date] | None) -> list[Refusal]:
    """Why a step with the gate `plan` may not build on its inputs for `snapshots` ([] when it may).

    `snapshots` None: a step over the whole published history (actions, write-back); the sources'
    latest loads must have passed, and the published snapshots were gated when they were written.
    """
    found: list[Refusal] = []
    newest = max(snapshots) if snapshots else None
    for entry in plan["upstream"]:
        parent, checks, name = dg.AssetKey.from_user_string(entry["asset"]), entry["checks"], entry["asset"]
        if entry["partitioned"]:
            if snapshots is None:
                continue
            runs: dict[str, list[str]] = {}
            for day in snapshots:
                record = _latest_materialization(instance, parent, day.isoformat())
                if record is None:
                    found.append(Refusal(name, None, f"has no materialization for snapshot {day}"))
                else:
                    runs.setdefault(record.run_id, []).append(day.isoformat())
            for run_id, days in runs.items():
                label = f"snapshot {days[0]}" if len(days) == 1 else f"snapshots {days[0]}..{days[-1]}"
                found.extend(load_refusals(instance, parent, checks, run_id, label))
            continue
        record = _latest_materialization(instance, parent, None)
        if record is None:
            found.append(Refusal(name, None, "has never been loaded"))
            continue
        found.extend(load_refusals(instance, parent, checks, record.run_id, "its latest load"))
        metadata = record.asset_materialization.metadata if record.asset_materialization else {}
        checked = metadata.get(CHECKED_AS_OF)
        if newest is not None and checked is not None and checked.value != newest.isoformat():
            found.append(
                Refusal(
                    name,
                    None,
                    f"was last loaded and checked for snapshot {checked.value}, not {newest}: "
                    f"run the sources for {newest} (cs-health run --as-of {newest})",
                )
            )
    return found


def plan_of(context: dg.AssetExecutionContext, key: dg.AssetKey) -> dict:
    """The gate plan the definitions stored on `key` (`with_upstream_gate`)."""
    entry = context.assets_def.metadata_by_key[key].get(GATE_METADATA)
    if entry is None:
        raise GateError(description=f"{key.to_user_string()} has no gate plan: build it with cs_assets.definitions")
    return entry.value if isinstance(entry, dg.MetadataValue) else entry


def refusal_message(found: Iterable[Refusal], outcome: str) -> str:
    """One sentence per refusal, then what did not happen (`outcome`, e.g. 'nothing was published')."""
    lines = [r.sentence() for r in found]
    head = (
        "blocked: " + lines[0]
        if len(lines) == 1
        else f"blocked by {len(lines)} input(s) that did not pass their blocking checks"
    )
    rest = [] if len(lines) == 1 else [f"  - {line}" for line in lines]
    return "\n".join([head, *rest, f"{outcome}; the last published snapshot is unchanged"])


def enforce(context: dg.AssetExecutionContext, snapshots: Sequence[dt.date] | None, outcome: str) -> None:
    """Stop the step (GateError) unless every input it is built from passed its blocking checks."""
    keys = sorted(context.selected_asset_keys)
    found = list(dict.fromkeys(r for key in keys for r in refusals(context.instance, plan_of(context, key), snapshots)))
    if found:
        message = refusal_message(found, outcome)
        raise GateError(
            description=message,
            metadata={"refused_inputs": ", ".join(sorted({r.asset for r in found})), "outcome": outcome},
        )
