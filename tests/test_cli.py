"""The command line on a deployment of its own: config check and schema, the second product,
what a run reports, and errors that name the setting before anything runs."""

import json
from pathlib import Path

import pytest

from cs_assets.cli import main
from cs_assets.demo import PRODUCTS
from cs_assets.deployment import FILES
from tests.harness import published

LEDGERLY = PRODUCTS["ledgerly"].config_dir
STARTER = PRODUCTS["ledgerly"].config_dir.parent.parent / "starter" / "config"


def test_config_check_lists_what_a_deployment_computes_and_leaves_out(capsys):
    assert main(["--config", str(LEDGERLY), "config", "check"]) == 0
    out = capsys.readouterr().out
    assert "every file is valid" in out
    assert "subscriptions         accounts" in out and "app_events" in out
    assert "days_since_last_activity" in out and "weight 35 in co" in out
    assert main(["--config", str(STARTER), "config", "check"]) == 0


def test_config_check_names_the_file_key_and_problem(tmp_path, capsys):
    import shutil

    config = tmp_path / "config"
    shutil.copytree(LEDGERLY, config)
    text = (
        (config / "indicators.yaml")
        .read_text()
        .replace("where: {event_name: invoice_sent}", "where: {event_name: invoice_snet}")
    )
    (config / "indicators.yaml").write_text(text)
    assert main(["--config", str(config), "config", "check"]) == 2
    err = capsys.readouterr().err
    assert (
        f"{config / 'indicators.yaml'}: `indicators.invoices_sent_30d.where.event_name`: 'invoice_snet' not in the vocabulary"
        in err
    )


def test_config_schema_writes_one_json_schema_per_file(tmp_path, capsys):
    assert main(["config", "schema", "--out", str(tmp_path)]) == 0
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == sorted(f"{Path(name).stem}.schema.json" for name in FILES.values())
    model = json.loads((tmp_path / "health_model.schema.json").read_text())
    assert model["title"] == "cs-health health_model.yaml" and "indicators" in model["properties"]
    sources = json.loads((tmp_path / "sources.schema.json").read_text())
    assert "from" in json.dumps(sources)  # the alias a user writes, not the field name


def test_a_snapshot_before_the_history_start_is_refused_before_anything_runs(tmp_path, capsys):
    home = tmp_path / "home"
    assert main(["--home", str(home), "run", "--as-of", "2024-06-01", "--accounts", "20"]) == 2
    err = capsys.readouterr().err
    assert "snapshot 2024-06-01 is before the history start 2025-01-01: set CS_HEALTH_HISTORY_START" in err
    assert not (home / "warehouse.duckdb").exists() and not (home / "dagster").exists()


def test_a_snapshot_after_the_landing_datas_last_day_is_refused_naming_where_that_day_is_read(tmp_path, capsys):
    home = tmp_path / "home"
    assert main(["--home", str(home), "demo-data", "--accounts", "20", "--as-of", "2026-09-30"]) == 0
    assert main(["--home", str(home), "run", "--as-of", "2026-10-03"]) == 2
    err = capsys.readouterr().err
    assert "snapshot 2026-10-03 is after 2026-09-30, the last day the landing data serves" in err
    assert "_demo_manifest.json: as_of" in err and "set CS_HEALTH_AS_OF=2026-10-03 to score that day anyway" in err
    assert not (home / "warehouse.duckdb").exists()


def test_an_empty_landing_area_of_a_real_deployment_is_not_filled_with_demo_data(tmp_path, capsys):
    import shutil

    config = tmp_path / "mine"
    shutil.copytree(STARTER, config)
    assert main(["--home", str(tmp_path / "home"), "--config", str(config), "run"]) == 2
    err = capsys.readouterr().err
    assert "landing is empty: put your exports there in the layout of" in err and str(config / "sources.yaml") in err


@pytest.fixture(scope="module")
def ledgerly_cli_home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("cli") / "ledgerly"
    assert main(["--home", str(home), "demo-data", "--product", "ledgerly", "--accounts", "300", "--seed", "4"]) == 0
    return home


def test_the_second_product_through_the_cli(ledgerly_cli_home, capsys):
    home = str(ledgerly_cli_home)
    assert main(["--home", home, "--config", str(LEDGERLY), "run"]) == 0
    out = capsys.readouterr().out
    assert "succeeded: snapshot 2026-10-31" in out and "actions sent by this run: 0" in out
    account = published(ledgerly_cli_home)["account_id"][0]
    assert main(["--home", home, "--config", str(LEDGERLY), "explain", account]) == 0
    assert "days_since_last_activity" in capsys.readouterr().out
    # with one snapshot there are no outcomes 30 days before: calibration says what it needs
    assert main(["--home", home, "--config", str(LEDGERLY), "calibrate"]) == 1
    err = capsys.readouterr().err
    assert "nothing calibrated" in err and "backfill more history" in err


def test_a_failed_run_says_exactly_what_was_published(ledgerly_cli_home, tmp_path, capsys):
    import shutil

    home = tmp_path / "broken"
    shutil.copytree(ledgerly_cli_home, home)
    before = published(home) if (home / "warehouse.duckdb").exists() else None
    (home / "landing" / "subscriptions" / "accounts.csv").unlink()
    assert main(["--home", str(home), "--config", str(LEDGERLY), "run"]) == 1
    err = capsys.readouterr().err
    assert "step subscriptions failed: source subscriptions: no export found at" in err
    assert "published: nothing; the last published scores are unchanged" in err
    if before is not None:
        assert published(home).equals(before)


def test_the_shipped_json_schemas_match_the_config_models(tmp_path):
    """config/schema/ is what `cs-health config schema` writes: regenerate it after changing a model."""
    from cs_assets.config_schema import write_schemas
    from cs_assets.settings import REPO_ROOT

    for path in write_schemas(tmp_path):
        shipped = REPO_ROOT / "config" / "schema" / path.name
        assert shipped.read_text() == path.read_text(), f"{shipped} is out of date: run `cs-health config schema`"


def test_a_backfill_in_runs_of_two_snapshots_publishes_what_one_run_does(tmp_path, capsys):
    one, parts = tmp_path / "one", tmp_path / "parts"
    common = ["backfill", "--days", "3", "--end", "2026-10-31", "--accounts", "30", "--seed", "4"]
    assert main(["--home", str(one), *common]) == 0
    assert main(["--home", str(parts), *common, "--snapshots-per-run", "2"]) == 0
    out = capsys.readouterr().out
    assert "2 snapshot(s) 2026-10-29..2026-10-30" in out and "1 snapshot(s) 2026-10-31..2026-10-31" in out
    for table in ("account_health", "account_health_contributions"):
        assert published(parts, table).drop("computed_at").equals(published(one, table).drop("computed_at")), table
    assert main(["--home", str(parts), *common, "--snapshots-per-run", "0"]) == 2
    assert "--snapshots-per-run must be at least 1, got 0" in capsys.readouterr().err


def test_a_misspelled_field_in_actions_stops_the_run_before_its_first_step(published_demo_home, tmp_path, capsys):
    """The actions are read only after the publish step: their file is checked before anything runs."""
    import shutil

    import yaml

    from cs_assets.deployment import DEFAULT_CONFIG_DIR
    from resources.instance import home_instance
    from tests.harness import copy_home

    home = copy_home(published_demo_home, tmp_path / "home")
    config = tmp_path / "config"
    shutil.copytree(DEFAULT_CONFIG_DIR, config)
    actions = yaml.safe_load((config / "actions.yaml").read_text())
    actions["rules"][0]["priorty"] = actions["rules"][0].pop("priority")
    (config / "actions.yaml").write_text(yaml.safe_dump(actions, sort_keys=False))
    before = published(home)
    instance = home_instance(home)
    runs = len(instance.get_runs())
    instance.dispose()

    assert main(["--home", str(home), "--config", str(config), "run"]) == 2
    err = capsys.readouterr().err
    assert str(config / "actions.yaml") in err and "`rules[0]`: missing required key(s): priority" in err, err
    assert published(home).equals(before)  # computed_at too: the publish step never ran
    instance = home_instance(home)
    assert len(instance.get_runs()) == runs  # no run was even started
    instance.dispose()
