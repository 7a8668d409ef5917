"""The home's Dagster instance keeps its SQLite engines between events (resources/event_log_storage.py),
in Dagster's own files: what it writes, Dagster's default storage reads."""

import shutil
from pathlib import Path

import dagster as dg

from cs_assets.cli import _instance, instance_yaml
from cs_assets.settings import dagster_home
from resources.event_log_storage import PooledSqliteEventLogStorage


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
    instance = _instance(home)
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


def test_only_the_recently_used_shards_keep_an_engine(tmp_path):
    dagster_dir = tmp_path / "dagster"
    dagster_dir.mkdir()
    config = instance_yaml(dagster_dir).replace("\n  config:\n", "\n  config:\n    engines_kept: 2\n")
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
    text = instance_yaml(tmp_path / "dagster")
    assert text.startswith(Path(__file__).resolve().parent.parent.joinpath("deploy/dagster.yaml").read_text())
    assert f'base_dir: "{tmp_path / "dagster" / "history" / "runs"}"' in text
