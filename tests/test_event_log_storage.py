"""The home's Dagster instance keeps its SQLite engines between events (resources/event_log_storage.py),
in Dagster's own files: what it writes, Dagster's default storage reads."""

import shutil
from pathlib import Path

import dagster as dg
import pytest

from cs_assets.settings import dagster_home
from resources.event_log_storage import PooledSqliteEventLogStorage
from resources.instance import HomeInstanceError, home_instance, instance_yaml


@dg.asset(partitions_def=dg.StaticPartitionsDefinition(["a", "b", "c"]))
def tiny(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"partition": context.partition_key})


def materialize_each_partition(instance: dg.DagsterInstance) -> list[str]:
    runs = []
    for key in ("a", "b", "c"):
        result = dg.materialize([tiny], instance=instance, partition_key=key)
        assert result.success
        runs.append(result.run_id)
    return runs


def test_a_new_home_stores_its_events_pooled_and_dagster_reads_them(tmp_path):
    home = tmp_path / "home"
    instance = home_instance(home)
    assert isinstance(instance.event_log_storage, PooledSqliteEventLogStorage)
    runs = materialize_each_partition(instance)
    instance.dispose()

    # the same directory under Dagster's default instance config: same runs, same materializations
    plain = tmp_path / "plain"
    shutil.copytree(dagster_home(home), plain)
    (plain / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    default = dg.DagsterInstance.from_config(str(plain))
    assert type(default.event_log_storage).__name__ == "SqliteEventLogStorage"
    assert sorted(r.run_id for r in default.get_runs()) == sorted(runs)
    for run_id, key in zip(runs, ("a", "b", "c"), strict=True):
        events = default.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
        assert [e.asset_materialization.metadata["partition"].value for e in events] == [key]
    assert default.get_materialized_partitions(dg.AssetKey("tiny")) == {"a", "b", "c"}
    default.dispose()


def test_only_the_recently_used_shards_keep_an_engine(tmp_path, monkeypatch):
    dagster_dir = tmp_path / "dagster"
    dagster_dir.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_dir))  # how `dagster dev` finds the instance
    config = instance_yaml().replace("\n  config:\n", "\n  config:\n    engines_kept: 2\n")
    (dagster_dir / "dagster.yaml").write_text(config)
    instance = dg.DagsterInstance.from_config(str(dagster_dir))
    storage = instance.event_log_storage
    assert isinstance(storage, PooledSqliteEventLogStorage)
    runs = materialize_each_partition(instance)
    kept = storage.kept_shards()
    assert len(kept) == 2 and kept[-1] in (runs[-1], "index")
    # an evicted shard is opened again when it is read
    assert len(instance.all_logs(runs[0], of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)) == 1
    assert runs[0] in storage.kept_shards() and len(storage.kept_shards()) == 2
    instance.dispose()
    assert storage.kept_shards() == []


def test_the_home_instance_config_points_the_event_log_at_dagsters_usual_place(tmp_path):
    text = instance_yaml()
    assert text.startswith(Path(__file__).resolve().parent.parent.joinpath("deploy/dagster.yaml").read_text())
    assert "base_dir: history/runs\n" in text  # relative: the home can be copied or moved
    instance = home_instance(tmp_path / "home")
    assert Path(instance.event_log_storage._base_dir) == dagster_home(tmp_path / "home") / "history" / "runs"
    instance.dispose()


def _run_ids(home: Path) -> set[str]:
    instance = home_instance(home)
    try:
        return {r.run_id for r in instance.get_runs()}
    finally:
        instance.dispose()


def test_a_copied_home_records_its_runs_in_itself_not_in_the_original(tmp_path):
    original = tmp_path / "original"
    instance = home_instance(original)
    first = materialize_each_partition(instance)
    instance.dispose()
    copy = tmp_path / "copy"
    shutil.copytree(original, copy)
    instance = home_instance(copy)
    later = materialize_each_partition(instance)
    instance.dispose()
    assert _run_ids(original) == set(first)
    assert _run_ids(copy) == set(first) | set(later)
    # moved: the history goes with it
    moved = tmp_path / "moved"
    shutil.move(copy, moved)
    assert _run_ids(moved) == set(first) | set(later)


def test_a_home_whose_instance_points_outside_it_is_refused_naming_the_path(tmp_path):
    original = tmp_path / "original"
    runs = original / "dagster" / "history" / "runs"
    home_instance(original).dispose()
    # what an older cs-health wrote: the absolute path of the event log
    config = dagster_home(original) / "dagster.yaml"
    config.write_text(config.read_text().replace("base_dir: history/runs", f'base_dir: "{runs}"'))
    assert _run_ids(original) == set()  # inside its own home: still fine
    copy = tmp_path / "copy"
    shutil.copytree(original, copy)
    with pytest.raises(HomeInstanceError) as refused:
        home_instance(copy)
    message = str(refused.value)
    assert str(dagster_home(copy) / "dagster.yaml") in message
    assert f"event_log_storage.config.base_dir: {runs}" in message and "copied or moved" in message
    assert "base_dir: history/runs" in message
