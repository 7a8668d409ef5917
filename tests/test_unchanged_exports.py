"""A source whose export has not changed since its last load keeps its staged copy: the export is
not read, cleaned or written again, and its checks still report the same counts."""

import dataclasses
import datetime as dt
import json
import os
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from cs_assets import settings
from cs_assets.demo.generator import DEMO_AS_OF
from cs_assets.deployment import load_deployment
from cs_assets.partitions import run_tags_for
from cs_assets.sources.assets import MADE_FROM, load_digest
from resources.landing import LandingZoneResource
from resources.staging import MadeFrom, StagingParquetIOManager, made_from
from tests.harness import definitions, make_home

SOURCE = "support_tickets"  # a JSON lines export: reading it parses every row


@pytest.fixture()
def home(tmp_path) -> Path:
    return make_home(tmp_path, "home")


def _load(home: Path, instance: dg.DagsterInstance, as_of: dt.date = DEMO_AS_OF) -> dg.ExecuteInProcessResult:
    defs = definitions(home)
    return dg.materialize(
        [defs.get_assets_def(SOURCE)],
        resources=defs.resources,
        instance=instance,
        tags=run_tags_for([as_of]),
        raise_on_error=False,
    )


def _staged(home: Path) -> Path:
    return settings.staging_dir(home) / f"{SOURCE}.parquet"


def _metadata(result: dg.ExecuteInProcessResult) -> dict:
    return {k: v.value for k, v in result.asset_materializations_for_node(SOURCE)[0].metadata.items()}


def _checks(result: dg.ExecuteInProcessResult) -> list[tuple[str, bool, str | None]]:
    return sorted((e.check_name, e.passed, e.description) for e in result.get_asset_check_evaluations())


def _stat(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_ino, stat.st_mtime_ns


def test_an_unchanged_export_is_not_read_again_and_a_changed_one_is(home, monkeypatch):
    instance = dg.DagsterInstance.ephemeral()
    first = _load(home, instance)
    assert first.success
    loaded = pl.read_parquet(_staged(home))
    assert _metadata(first)["staged_copy_kept"] is False
    written = _stat(_staged(home))

    reads: list[str] = []
    real_read = LandingZoneResource.read

    def counted_read(self, spec):
        reads.append(spec.name)
        return real_read(self, spec)

    monkeypatch.setattr(LandingZoneResource, "read", counted_read)
    again = _load(home, instance)
    assert again.success
    assert reads == []  # not read, not cleaned
    assert _stat(_staged(home)) == written  # not written either
    assert _metadata(again)["staged_copy_kept"] is True
    # the checks say what they said on the same rows, from the counts the first load recorded
    checks, before = _checks(again), _checks(first)
    assert [c for c in checks if c[0] != "volume"] == [c for c in before if c[0] != "volume"]
    assert ("volume", True, f"{SOURCE}: {loaded.height} rows against {loaded.height} in the previous load") == (
        checks[2][0],
        checks[2][1],
        checks[2][2].split(" (")[0],
    )
    for name in ("rows_in_export", "rows_removed", "newest_timestamp", "dagster/row_count", MADE_FROM):
        assert _metadata(again)[name] == _metadata(first)[name]

    # a later day on the same export: still not read, but its freshness is this day's
    later = _load(home, instance, DEMO_AS_OF + dt.timedelta(days=5))
    assert not later.success and reads == [] and _stat(_staged(home)) == written
    freshness = next(e for e in later.get_asset_check_evaluations() if e.check_name == "freshness")
    assert not freshness.passed and "at the end of the as-of day 2026-11-05" in (freshness.description or "")

    # the staged copy is gone (a cleaned-up home): made again from the export, the same rows
    _staged(home).unlink()
    rebuilt = _load(home, instance)
    assert rebuilt.success and reads == [SOURCE]
    assert pl.read_parquet(_staged(home)).equals(loaded)

    # a new ticket in the export: read, and the staged copy has it
    export = settings.landing_dir(home) / "support/tickets.jsonl"
    last = json.loads(export.read_text().splitlines()[-1])
    export.write_text(export.read_text() + json.dumps({**last, "ticket_id": 99999}) + "\n")
    changed = _load(home, instance)
    assert changed.success and reads == [SOURCE, SOURCE]
    assert _metadata(changed)["staged_copy_kept"] is False
    assert _metadata(changed)[MADE_FROM] != _metadata(first)[MADE_FROM]
    assert pl.read_parquet(_staged(home)).height == loaded.height + 1


def test_a_changed_contract_or_export_makes_another_digest():
    spec = load_deployment().contract[SOURCE]
    digest = load_digest(spec, "f1")
    assert load_digest(spec, "f1") == digest
    assert load_digest(spec, "f2") != digest  # other bytes
    renamed = dataclasses.replace(spec, renames={"id": "ticket_id"})
    assert load_digest(renamed, "f1") != digest  # sources.yaml maps another column
    rekeyed = dataclasses.replace(spec, key=("ticket_id", "account_id"))
    assert load_digest(rekeyed, "f1") != digest  # another de-duplication


def test_a_staged_file_of_other_inputs_or_unreadable_is_made_again(tmp_path):
    manager = StagingParquetIOManager(base_dir=str(tmp_path))
    path = tmp_path / "rows.parquet"
    built: list[str] = []

    def store(digest: str, value: int) -> None:
        def build() -> pl.DataFrame:
            built.append(digest)
            return pl.DataFrame({"value": [value]})

        manager.handle_output(dg.build_output_context(asset_key=dg.AssetKey("rows")), MadeFrom(digest, build))

    store("a", 1)
    store("a", 2)  # same inputs: kept, not built
    assert built == ["a"] and pl.read_parquet(path)["value"].to_list() == [1]
    store("b", 3)
    assert built == ["a", "b"] and made_from(path) == "b"
    path.write_bytes(b"not parquet")  # a torn or foreign file is never trusted
    store("b", 4)
    assert built == ["a", "b", "b"] and pl.read_parquet(path)["value"].to_list() == [4]
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]  # no temporary file left behind
