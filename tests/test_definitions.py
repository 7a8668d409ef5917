"""The resolved Dagster definitions: everything loads, and a snapshot of the asset graph (keys,
groups, dependencies, checks, partitions, automation, pools, freshness, jobs, schedules, sensors), so that a
change of lineage or of a gate shows up in review as a change of
`tests/__snapshots__/test_definitions.ambr`. After an intended change:
`uv run pytest tests/test_definitions.py --snapshot-update`, and review the diff."""

import dagster as dg

from tests.harness import default_definitions


def _partitions(definition) -> str | None:
    if definition is None:
        return None
    # the end follows the landing data and the clock: the snapshot keeps the kind and the start
    start = getattr(definition, "start", None)
    return f"{type(definition).__name__} from {start.date().isoformat()}" if start else type(definition).__name__


def _freshness(policy) -> str | None:
    if policy is None:
        return None
    hours = [w.to_timedelta().total_seconds() / 3600 for w in (policy.warn_window, policy.fail_window)]
    return f"late: warn after {hours[0]:g} h, fail after {hours[1]:g} h"


def graph_outline(defs: dg.Definitions) -> dict:
    graph = defs.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        condition = node.automation_condition
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "kinds": sorted(node.kinds),
            "owners": sorted(node.owners),
            "deps": sorted(p.to_user_string() for p in node.parent_keys),
            "partitions": _partitions(node.partitions_def),
            "backfill_policy": str(node.backfill_policy.policy_type.value) if node.backfill_policy else None,
            "automation": (condition.get_label() or type(condition).__name__) if condition else None,
            "pools": sorted(node.pools or ()),
            "freshness": _freshness(node.freshness_policy),
            "checks": sorted(f"{c.name}{' (blocking)' if graph.get(c).blocking else ''}" for c in node.check_keys),
        }
    repo = defs.get_repository_def()
    return {
        "assets": assets,
        "jobs": {
            job.name: sorted(k.to_user_string() for k in job.asset_layer.selected_asset_keys)
            for job in sorted(repo.get_all_jobs(), key=lambda j: j.name)
            if not job.name.startswith("__")
        },
        "schedules": {s.name: [s.cron_schedule, s.job_name, s.default_status.value] for s in repo.schedule_defs},
        "sensors": {s.name: s.default_status.value for s in repo.sensor_defs},
    }


def test_the_definitions_load_and_the_asset_graph_is_the_reviewed_one(snapshot):
    defs = default_definitions()
    dg.Definitions.validate_loadable(defs)
    assert graph_outline(defs) == snapshot
