"""Great Expectations validity checks: one Dagster asset check per expectation, blocking the publish."""

import datetime as dt
import json
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from checks.dq_config import VALIDITY
from checks.gx_checks import GX_INDICATOR_VALIDATION, check_names, latest_allowed, source_validation_name
from checks.gx_suites import INDICATORS, between, build_suites, in_set, not_future, not_null, unique
from checks.gx_validation import validate_frame, validate_tables
from cs_assets import settings
from cs_assets.demo.generator import DEMO_AS_OF
from cs_assets.deployment import load_deployment
from cs_assets.indicators.compute import as_of_end
from cs_assets.publish.assets import ACCOUNT_HEALTH, ACCOUNT_HEALTH_CONTRIBUTIONS
from tests.harness import default_definitions, make_home, published, run_graph

DEPLOYMENT = load_deployment()
CHECK_NAMES = check_names(DEPLOYMENT)
SUITES = build_suites(DEPLOYMENT)
defs = default_definitions()

REPO = Path(__file__).resolve().parent.parent
UTC = dt.UTC


def gx_evaluations(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    return {
        (e.asset_key.to_user_string(), e.check_name): e
        for e in result.get_asset_check_evaluations()
        if e.check_name.startswith("gx_")
    }


@pytest.fixture(scope="module")
def good_run(tmp_path_factory) -> tuple[Path, dict]:
    home = make_home(tmp_path_factory.mktemp("gx"), "good")
    result = run_graph(home, DEMO_AS_OF, shared_gx_record=False)  # what GX saw is asserted here
    assert result.success
    return home, gx_evaluations(result)


@pytest.fixture()
def home(good_run, tmp_path) -> Path:
    """A copy of a home with one good published snapshot, to break on purpose."""
    copy = tmp_path / "home"
    shutil.copytree(good_run[0], copy)
    return copy


def test_a_clean_run_passes_every_gx_check_and_publishes(good_run):
    good_home, evaluations = good_run
    expected = {(table, name) for table, names in CHECK_NAMES.items() for name in names}
    assert set(evaluations) == expected
    failed = [f"{k}: {e.description}" for k, e in evaluations.items() if not e.passed]
    assert not failed, failed
    nps = evaluations[("survey_responses", "gx_nps_score_in_range")]
    assert nps.severity == DEPLOYMENT.dq.checks[VALIDITY].severity
    assert nps.metadata["unexpected_count"].value == 0
    assert nps.metadata["rows_checked"].value > 0
    assert {"observed_value", "unexpected_percent", "sample_values", "column"} <= set(nps.metadata)
    assert published(good_home).height > 0


def test_every_rule_is_a_check_spec_with_the_validity_policy():
    # which checks exist is in the reviewed graph snapshot (tests/test_definitions.py); here, that
    # each follows the validity policy of data_quality.yaml
    policy = DEPLOYMENT.dq.checks[VALIDITY]
    specs = [
        checks_def.get_spec_for_check_key(key)
        for checks_def in defs.asset_checks
        if checks_def.node_def.name
        in (GX_INDICATOR_VALIDATION, *(source_validation_name(s) for s in DEPLOYMENT.contract.sources))
        for key in checks_def.check_keys
    ]
    assert specs and all(spec.blocking == policy.blocking for spec in specs)


def test_loading_the_definitions_does_not_import_great_expectations():
    code = (
        "import sys; import cs_assets.definitions, checks.gx_checks, checks.gx_validation; cs_assets.definitions.defs(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'great_expectations'))"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]"


def test_latest_allowed_is_the_end_of_the_as_of_day_or_now_if_later():
    as_of = dt.date(2026, 10, 31)
    early = dt.datetime(2026, 10, 31, 12, 0, tzinfo=UTC)
    late = dt.datetime(2026, 11, 2, 2, 0, 30, 123, tzinfo=UTC)
    assert latest_allowed(as_of, early) == as_of_end(as_of)
    assert latest_allowed(as_of, late) == dt.datetime(2026, 11, 2, 2, 0, 30, tzinfo=UTC)


# --- the glue on small frames, no Dagster --------------------------------------------------------


def test_glue_turns_each_expectation_into_a_plain_outcome():
    bound = dt.datetime(2026, 11, 1, tzinfo=UTC)
    frame = pl.DataFrame(
        {
            "snapshot_date": [dt.date(2026, 10, 31)] * 4,
            "account_id": ["A", "B", "B", None],
            "kind": ["nps", "csat", "nps", "csat"],
            "score": [10, 7, 11, 3],
            "tier": ["core", "gold", "addon", None],
            "at": [
                dt.datetime(2026, 10, 1, tzinfo=UTC),
                None,
                dt.datetime(2027, 1, 1, tzinfo=UTC),
                dt.datetime(2026, 10, 31, 23, tzinfo=UTC),
            ],
            "unused": list(range(4)),
        }
    )
    rules = (
        not_null("account_id"),
        unique("snapshot_date", "account_id", name="snapshot_account_unique"),
        unique("kind"),
        in_set("tier", ("core", "addon")),
        between("score", 0, 10, name="nps_score_in_range", where=("kind", "nps")),
        between("score", 1, 5, name="csat_score_in_range", where=("kind", "csat")),
        not_future("at"),
        not_null("missing_column"),
    )
    outcomes = {o.name: o for o in validate_frame("t", frame, rules, latest_allowed=bound, row_ids=("unused",))}
    assert list(outcomes) == [r.name for r in rules]  # in the rules' order, whatever GX's order

    nulls = outcomes["account_id_not_null"]
    assert not nulls.success and nulls.unexpected_count == 1 and nulls.column == "account_id"
    assert nulls.unexpected_percent == pytest.approx(25.0)
    assert "t.account_id: 1 of 4 row(s)" in nulls.description
    assert nulls.sample == [] and nulls.sample_rows == ["null (unused=3)"]  # the row id says where

    compound = outcomes["snapshot_account_unique"]
    assert not compound.success and compound.unexpected_count == 2
    assert compound.sample == ["(2026-10-31, 'B')"]
    assert compound.column == "snapshot_date+account_id"

    assert not outcomes["kind_unique"].success

    tier = outcomes["tier_allowed"]
    assert not tier.success and tier.unexpected_count == 1 and tier.sample == ["'gold'"]
    assert "e.g. 'gold' (unused=1)" in tier.description and "t.tier" in tier.description

    nps, csat = outcomes["nps_score_in_range"], outcomes["csat_score_in_range"]
    assert not nps.success and nps.sample == ["11"] and nps.rows == 2  # only the nps rows
    assert not csat.success and csat.sample == ["7"] and csat.rows == 2

    future = outcomes["at_not_future"]
    assert not future.success and future.unexpected_count == 1
    assert future.sample == ["2027-01-01T00:00:00+00:00"]
    assert "not after 2026-11-01T00:00:00+00:00" in future.description

    missing = outcomes["missing_column_not_null"]
    assert not missing.success and missing.error and "could not be validated" in missing.description

    # a long table is validated in chunks (uniqueness on the whole key): the same outcomes
    chunked = validate_tables({"t": (frame.lazy(), rules)}, bound, {"t": ("unused",)}, chunk_rows=1)["t"].outcomes
    assert [
        (o.name, o.success, o.rows, o.unexpected_count, o.unexpected_percent, o.sample, o.sample_rows) for o in chunked
    ] == [
        (o.name, o.success, o.rows, o.unexpected_count, o.unexpected_percent, o.sample, o.sample_rows)
        for o in outcomes.values()
    ]


def test_glue_passes_clean_frames_and_validates_several_tables_in_one_context():
    good = pl.DataFrame({"id": ["a", "b"], "n": [0, 3]}).lazy()
    validated = validate_tables(
        {"one": (good, (not_null("id"), unique("id"))), "two": (good, (between("n", 0, None, name="n_ok"),))}
    )
    assert [o.success for o in validated["one"].outcomes] == [True, True]
    assert validated["two"].outcomes[0].success and validated["two"].rows == 2
    assert validated["one"].outcomes[0].description == "one.id: id is never null: ok (2 row(s))"


def test_a_rerun_on_unchanged_exports_validates_no_source_row_again_and_still_passes(home):
    result = run_graph(home, DEMO_AS_OF, shared_gx_record=False)
    assert result.success
    sources = [e for (table, _), e in gx_evaluations(result).items() if table != INDICATORS]
    assert sources and all(e.passed for e in sources)
    for evaluation in sources:
        meta = {k: v.value for k, v in evaluation.metadata.items()}
        assert meta["rows_checked"] == 0 and meta["rows_unchanged_since_passed"] == meta["table_rows"] > 0


# --- real runs with broken inputs -----------------------------------------------------------------


def _landing(home: Path) -> Path:
    return settings.landing_dir(home)


def _edit_surveys(home: Path, edit) -> None:
    path = _landing(home) / "surveys/responses.csv"
    edit(pl.read_csv(path, infer_schema=False)).write_csv(path)


def _edit_jsonl(home: Path, relative: str, edit) -> None:
    path = _landing(home) / relative
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    records = edit(records)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def break_survey_type(home):
    _edit_surveys(
        home,
        lambda f: f.with_columns(
            survey_type=pl.when(pl.col("response_id") == f["response_id"][0])
            .then(pl.lit("promoter"))
            .otherwise("survey_type")
        ),
    )
    return "survey_responses", "gx_survey_type_allowed", "'promoter'"


def break_nps_out_of_range(home):
    def edit(f):
        first = f.filter(pl.col("survey_type") == "nps")["response_id"][0]
        return f.with_columns(score=pl.when(pl.col("response_id") == first).then(pl.lit("11")).otherwise("score"))

    _edit_surveys(home, edit)
    return "survey_responses", "gx_nps_score_in_range", "11"


def break_null_account_id(home):
    def edit(records):
        records[5]["account_id"] = None
        return records

    _edit_jsonl(home, "support/tickets.jsonl", edit)
    return "support_tickets", "gx_account_id_not_null", "1 of"


def break_duplicate_survey_answer(home):
    # the same answer re-sent under a new response id: the load's key de-duplication keeps both
    first = pl.read_csv(_landing(home) / "surveys/responses.csv", infer_schema=False).row(0, named=True)
    _edit_surveys(home, lambda f: pl.concat([f, f.head(1).with_columns(response_id=pl.lit("R-9999999"))]))
    return "survey_responses", "gx_natural_key_unique", f"'{first['user_id']}'"


FUTURE = max(as_of_end(DEMO_AS_OF), dt.datetime.now(UTC)) + dt.timedelta(days=400)


def break_future_timestamp(home):
    def edit(records):
        records[3]["occurred_at"] = FUTURE.strftime("%Y-%m-%dT%H:%M:%SZ")
        return records

    _edit_jsonl(home, "engagement/activities.jsonl", edit)
    return "engagement_events", "gx_occurred_at_not_future", FUTURE.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def break_resolution_before_creation(home):
    """Tickets 'solved' before they were created pass every source rule, but make the account's
    median resolution time negative: the indicator suite catches it."""
    end = as_of_end(DEMO_AS_OF)

    def edit(records):
        ts = lambda s: dt.datetime.fromisoformat(s.replace("Z", "+00:00"))  # noqa: E731
        solved = [
            r
            for r in records
            if r["solved_at"] and end - dt.timedelta(days=80) <= ts(r["solved_at"]) < end - dt.timedelta(days=2)
        ]
        account = solved[0]["account_id"]
        for r in records:
            if r["account_id"] == account and r["solved_at"] and ts(r["solved_at"]) + dt.timedelta(hours=1) < end:
                r["created_at"] = (ts(r["solved_at"]) + dt.timedelta(hours=1)).isoformat()
        return records

    _edit_jsonl(home, "support/tickets.jsonl", edit)
    return INDICATORS, "gx_median_resolution_hours_90d_non_negative", "-1.0"


@pytest.mark.parametrize(
    "breaker",
    [
        break_survey_type,
        break_nps_out_of_range,
        break_null_account_id,
        break_duplicate_survey_answer,
        break_future_timestamp,
        break_resolution_before_creation,
    ],
)
def test_an_invalid_value_fails_its_gx_check_and_blocks_the_publish(home, breaker):
    from cs_assets.cli import failure_reasons

    table, check, bad_value = breaker(home)
    before = (published(home), published(home, "account_health_contributions"))
    result = run_graph(home, DEMO_AS_OF, shared_gx_record=False)

    assert not result.success
    evaluation = gx_evaluations(result)[(table, check)]
    assert not evaluation.passed
    assert evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert evaluation.description.startswith(f"{table}.")
    assert bad_value in evaluation.description
    meta = {k: v.value for k, v in evaluation.metadata.items()}
    assert meta["unexpected_count"] >= 1 and meta["unexpected_percent"] > 0
    if check != "gx_account_id_not_null":  # a null's sample is the count itself
        assert bad_value in meta["sample_values"]
    if table != INDICATORS:  # GX saw the edited days again, not the whole export
        assert 0 < meta["rows_checked"] < meta["table_rows"] and meta["rows_unchanged_since_passed"] > 0
    lines = "\n".join(failure_reasons(result.all_events))
    assert f"check {table}:{check} [ERROR]: {table}." in lines

    # nothing was published: the previous snapshot is still there, to the byte
    mats = {e.asset_key for e in result.get_asset_materialization_events()}
    assert ACCOUNT_HEALTH not in mats and ACCOUNT_HEALTH_CONTRIBUTIONS not in mats
    assert published(home).equals(before[0])
    assert published(home, "account_health_contributions").equals(before[1])
