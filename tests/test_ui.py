"""What the Dagster UI shows, checked on the definitions and on real runs (the browser test is
tests/test_ui_browser.py): code versions that follow code and config, data versions that stay
put on a re-run, described columns, and the UI command's environment."""

import shutil
from pathlib import Path

import dagster as dg
import yaml
from dagster._core.run_coordinator import QueuedRunCoordinator

from cs_assets import settings
from cs_assets.cli import Context, _instance, ui_environment
from cs_assets.code_version import CONFIG_READ_BY_GROUP
from cs_assets.demo.generator import DEMO_AS_OF
from cs_assets.deployment import DEFAULT_CONFIG_DIR
from cs_assets.publish.tables import CONTRIBUTION_COLUMNS, HEALTH_COLUMNS
from tests.harness import definitions, make_home, run_graph

SCORES = dg.AssetKey("account_health_scores")
PUBLISHED = dg.AssetKey(["published", "account_health"])


def _code_versions(home: Path, config_dir: Path) -> dict[str, str]:
    graph = definitions(home, config_dir).resolve_asset_graph()
    return {key.to_user_string(): graph.get(key).code_version for key in graph.get_all_asset_keys()}


def test_code_versions_change_with_the_config_each_step_reads_and_only_then(tmp_path):
    config = tmp_path / "config"
    shutil.copytree(DEFAULT_CONFIG_DIR, config, ignore=shutil.ignore_patterns("schema"))
    before = _code_versions(tmp_path, config)
    assert all(before.values()) and before == _code_versions(tmp_path, config)

    model = yaml.safe_load((config / "health_model.yaml").read_text())
    model["subscore_weights"] = {"co": 0.5, "cx": 0.5}
    (config / "health_model.yaml").write_text(yaml.safe_dump(model, sort_keys=False))
    after = _code_versions(tmp_path, config)
    graph = definitions(tmp_path, config).resolve_asset_graph()
    groups = {key.to_user_string(): graph.get(key).group_name for key in graph.get_all_asset_keys()}
    changed = {name for name in before if before[name] != after[name]}
    model_readers = {g for g, files in CONFIG_READ_BY_GROUP.items() if "model" in files}
    assert changed == {name for name, group in groups.items() if group in model_readers}
    assert {"account_health_scores", "published/account_health", "score_validation"} <= changed
    assert not changed & {"crm_accounts", "account_indicators", "published/account_actions"}


def test_a_rerun_on_the_same_inputs_keeps_every_data_version(tmp_path):
    home = make_home(tmp_path, "home")
    instance = dg.DagsterInstance.ephemeral()
    versions = []
    for _ in range(2):
        result = run_graph(home, DEMO_AS_OF, instance=instance)
        assert result.success
        versions.append(
            {
                e.asset_key.to_user_string(): e.event_specific_data.materialization.tags["dagster/data_version"]
                for e in result.get_asset_materialization_events()
            }
        )
    assert versions[0].keys() >= {
        "crm_accounts",
        "account_indicators",
        "account_health_scores",
        "published/account_health",
    }
    assert versions[0] == versions[1]


def test_every_published_column_has_a_description_and_the_table_its_name(tmp_path):
    graph = definitions(tmp_path).resolve_asset_graph()
    for key, columns in (
        (PUBLISHED, HEALTH_COLUMNS),
        (dg.AssetKey(["published", "account_health_contributions"]), CONTRIBUTION_COLUMNS),
    ):
        metadata = graph.get(key).metadata
        schema = metadata["dagster/column_schema"]
        assert [c.name for c in schema.columns] == list(columns)
        assert all(c.description for c in schema.columns), [c.name for c in schema.columns if not c.description]
        assert metadata["dagster/table_name"] == f"published.{key.path[-1]}"


def test_the_ui_command_points_dagster_at_this_homes_instance_and_deployment(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", "/somewhere/else")
    monkeypatch.delenv("CS_HEALTH_CONFIG", raising=False)
    home = tmp_path / "home"
    env = ui_environment(Context(home=home, config=str(tmp_path / "mine")))
    assert env[settings.HOME_ENV] == str(home)
    assert env["DAGSTER_HOME"] == str(settings.dagster_home(home))
    assert env["CS_HEALTH_CONFIG"] == str((tmp_path / "mine").resolve())
    assert "CS_HEALTH_CONFIG" not in ui_environment(Context(home=home))
    # the instance it starts on runs one run at a time: the UI's, the sensors' and the schedule's queue
    instance = _instance(home)
    assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
    assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 1
