"""The shared reading and key checking of every reviewed config file."""

import dataclasses
import datetime as dt
from pathlib import Path

import dagster as dg
import pytest

from checks.dq_config import DataQualityConfigError, load_dq_config
from cs_assets.actions.rules import ActionRulesError, load_action_rules
from cs_assets.config_file import ConfigFileError, read_yaml, require_mapping
from cs_assets.scoring.model_config import ModelConfigError, load_model
from cs_assets.settings import REPO_ROOT
from cs_assets.sources.source_config import SourceConfigError, load_sources_config
from cs_assets.validation.config import ValidationConfigError, load_validation_config


class DemoError(ConfigFileError):
    pass


def test_error_names_file_key_and_problem():
    error = DemoError("config/x.yaml", "rules[2].when", "must be a list")
    assert str(error) == "config/x.yaml: `rules[2].when`: must be a list"
    assert (error.source, error.key, error.problem) == ("config/x.yaml", "rules[2].when", "must be a list")


def test_require_mapping_rejects_a_non_mapping():
    with pytest.raises(DemoError, match=r"^f: `k`: must be a mapping, got list$"):
        require_mapping(DemoError, "f", "k", [1, 2], ("a",))


def test_require_mapping_missing_keys_follow_the_given_order():
    with pytest.raises(DemoError, match=r"missing required key\(s\): zeta, alpha$"):
        require_mapping(DemoError, "f", "k", {}, ("zeta", "alpha"))


def test_require_mapping_orders_sets_so_messages_are_stable():
    with pytest.raises(DemoError, match=r"missing required key\(s\): a, b, c$"):
        require_mapping(DemoError, "f", "k", {}, {"c", "a", "b"})
    with pytest.raises(DemoError, match=r"unknown key\(s\): 7, x \(allowed: a, b, opt\)$"):
        require_mapping(DemoError, "f", "k", {"a": 1, "b": 2, "x": 0, 7: 0}, {"b", "a"}, {"opt"})


def test_require_mapping_accepts_optional_keys_and_returns_the_value():
    value = {"a": 1, "opt": 2}
    assert require_mapping(DemoError, "f", "k", value, ("a",), ("opt", "other")) is value


def test_read_yaml_missing_and_broken_files(tmp_path: Path):
    with pytest.raises(DemoError, match=r"nope.yaml: `<file>`: demo file not found$"):
        read_yaml(tmp_path / "nope.yaml", DemoError, "demo file")
    broken = tmp_path / "broken.yaml"
    broken.write_text("a: [1, 2\n", encoding="utf-8")
    with pytest.raises(DemoError, match=r"broken.yaml: `<file>`: not valid YAML: "):
        read_yaml(broken, DemoError, "demo file")
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(DemoError, match=r"latin.yaml: `<file>`: cannot read the file: "):
        read_yaml(latin, DemoError, "demo file")


@pytest.mark.parametrize(
    ("load", "error", "what"),
    [
        (load_model, ModelConfigError, "model file"),
        (load_dq_config, DataQualityConfigError, "data-quality config file"),
        (load_action_rules, ActionRulesError, "action rules file"),
        (load_validation_config, ValidationConfigError, "validation config file"),
        (load_sources_config, SourceConfigError, "sources config file"),
    ],
)
def test_every_config_file_reports_the_same_way(tmp_path: Path, load, error, what):
    with pytest.raises(error, match=rf"missing.yaml: `<file>`: {what} not found$") as missing:
        load(tmp_path / "missing.yaml")
    assert isinstance(missing.value, ConfigFileError)
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: 1\n  bad indent: [\n", encoding="utf-8")
    with pytest.raises(error, match=r"broken.yaml: `<file>`: not valid YAML: "):
        load(broken)
    listed = tmp_path / "listed.yaml"
    listed.write_text("- 1\n- 2\n", encoding="utf-8")
    with pytest.raises(error, match=r"listed.yaml: `<root>`: must be a mapping, got list$"):
        load(listed)


def test_the_published_tables_freshness_comes_from_the_data_quality_file(tmp_path: Path):
    from cs_assets.deployment import load_deployment
    from cs_assets.publish.assets import ACCOUNT_HEALTH, build_publish_asset

    shipped = (REPO_ROOT / "config" / "data_quality.yaml").read_text(encoding="utf-8")
    edited = tmp_path / "data_quality.yaml"
    edited.write_text(
        shipped.replace("published_warn_after_hours: 26", "published_warn_after_hours: 30").replace(
            "published_fail_after_hours: 50", "published_fail_after_hours: 72"
        ),
        encoding="utf-8",
    )
    config = load_dq_config(edited)
    assert config.published_freshness_hours == (30.0, 72.0)
    deployment = load_deployment()
    deployment = dataclasses.replace(deployment, dq=config)
    publish = build_publish_asset(deployment, dg.DailyPartitionsDefinition(start_date="2026-01-01"))
    policy = publish.specs_by_key[ACCOUNT_HEALTH].freshness_policy
    assert policy is not None
    assert (policy.warn_window.to_timedelta(), policy.fail_window.to_timedelta()) == (
        dt.timedelta(hours=30),
        dt.timedelta(hours=72),
    )
    edited.write_text(shipped.replace("published_fail_after_hours: 50", "published_fail_after_hours: 20"))
    with pytest.raises(
        DataQualityConfigError,
        match=r"`scores.published_warn_after_hours`: must be below published_fail_after_hours \(20\), got 26$",
    ):
        load_dq_config(edited)
