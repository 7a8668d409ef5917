"""How a run was launched, from its tags: what `cs-health status` says of the newest published
snapshot, so "why did this account turn red?" starts from the run and the path that wrote it."""

from collections.abc import Mapping

from dagster._core.storage.tags import (
    AUTOMATION_CONDITION_TAG,
    BACKFILL_ID_TAG,
    PARENT_RUN_ID_TAG,
    SCHEDULE_NAME_TAG,
    SENSOR_NAME_TAG,
)

# set by the command line on the runs it launches: the command's name (`run`, `backfill`)
LAUNCHED_BY_TAG = "cs_health/launched_by"


def launched_by(tags: Mapping[str, str]) -> str:
    """One phrase naming the path a run came from (most specific first)."""
    if PARENT_RUN_ID_TAG in tags:
        return f"a re-execution of run {tags[PARENT_RUN_ID_TAG][:8]}"
    if LAUNCHED_BY_TAG in tags:
        return f"`cs-health {tags[LAUNCHED_BY_TAG]}`"
    if BACKFILL_ID_TAG in tags:
        return f"the backfill {tags[BACKFILL_ID_TAG]}"
    if SCHEDULE_NAME_TAG in tags:
        return f"the schedule {tags[SCHEDULE_NAME_TAG]}"
    if AUTOMATION_CONDITION_TAG in tags:
        return f"declarative automation (the sensor {tags.get(SENSOR_NAME_TAG, 'default_automation_condition_sensor')})"
    if SENSOR_NAME_TAG in tags:
        return f"the sensor {tags[SENSOR_NAME_TAG]}"
    return "a run launched from the UI or the API (Materialize, `dagster asset materialize`, `dg launch`)"
