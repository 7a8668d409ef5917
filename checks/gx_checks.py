"""Validity checks (Great Expectations suites) as Dagster asset checks.

One check step per source, `gx_<source>_validation`, validates that source's suite (so a run of
one source, a sensor's or a click in the UI, builds and validates that source alone), and
`gx_indicator_validation` the indicator table's (the snapshots of the run). Every rule of
`checks/gx_suites.py` is its own asset check, named `gx_<rule name>`, so the UI, the run's
failure lines and `cs-health status` show which rule failed, on which column, with which values.
Severity and blocking for all of them are the `validity` policy of `config/data_quality.yaml`.

Great Expectations is imported by `checks/gx_validation.py` only when a step runs: loading the
definitions never imports it.
"""

import datetime as dt

import dagster as dg
import polars as pl

from checks.dq_config import VALIDITY, CheckPolicy
from checks.gx_suites import INDICATORS, Expect, build_suites, row_ids

# gx_validation imports Great Expectations only inside its functions, when a check step runs
from checks.gx_validation import Outcome, TableValidation, validate_tables
from cs_assets.deployment import Deployment
from cs_assets.indicators.compiler import as_of_end
from resources.gx_record import GxRecordResource
from resources.landing import LandingZoneResource
from resources.model import SnapshotResource
from resources.staging import SNAPSHOT_COLUMN

GX_PREFIX = "gx_"
GX_INDICATOR_VALIDATION = "gx_indicator_validation"


def check_name(rule: Expect) -> str:
    return f"{GX_PREFIX}{rule.name}"


def check_names(deployment: Deployment) -> dict[str, tuple[str, ...]]:
    """Every gx check name per checked asset, e.g. ["survey_responses"] has "gx_nps_score_in_range"."""
    return {table: tuple(check_name(r) for r in rules) for table, rules in build_suites(deployment).items()}


def latest_allowed(as_of: dt.date, now: dt.datetime | None = None) -> dt.datetime:
    """The newest timestamp a source may hold: the end of the as-of day, or now if that is later.

    A daily run at 02:00 already sees records of the new day, and a past snapshot re-scored from
    today's export sees everything since: neither is "in the future". The scoring windows cut
    the data at the as-of day anyway.
    """
    now = now or dt.datetime.now(dt.UTC)
    return max(as_of_end(as_of), now).replace(microsecond=0)


def _specs(table: str, rules: tuple[Expect, ...], policy: CheckPolicy) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            check_name(rule),
            asset=table,
            blocking=policy.blocking,
            description=f"Great Expectations: {rule.description[0].upper()}{rule.description[1:]}.",
        )
        for rule in rules
    ]


def check_result(table: str, outcome: Outcome, policy: CheckPolicy, validation: TableValidation) -> dg.AssetCheckResult:
    """One rule's outcome (`gx_validation.Outcome`) as the asset check result of `gx_<name>`."""
    observed = outcome.observed_value
    if observed is None:
        observed = f"{outcome.unexpected_count:,} unexpected of {outcome.rows:,}"
    metadata: dict[str, str | int | float] = {
        "column": outcome.column,
        "rule": outcome.rule,
        "observed_value": observed,
        "rows_checked": outcome.rows,
        "unexpected_count": outcome.unexpected_count,
        "unexpected_percent": outcome.unexpected_percent,
        "sample_values": ", ".join(outcome.sample),
        "sample_rows": "; ".join(outcome.sample_rows),
        "rows_unchanged_since_passed": outcome.rows_reused,
        "rows_key_of_their_own": outcome.rows_key_of_their_own,  # uniqueness: rows no duplicate can involve
        "table_rows": validation.rows,
        "validation_seconds": validation.seconds,
    }
    if outcome.error:
        metadata["error"] = outcome.error
    return dg.AssetCheckResult(
        asset_key=table,
        check_name=f"{GX_PREFIX}{outcome.name}",
        passed=outcome.success,
        severity=policy.severity,
        description=outcome.description,
        metadata=metadata,
    )


def _results(
    context,
    tables: dict[str, pl.LazyFrame],
    suites,
    ids,
    bound: dt.datetime | None,
    policy: CheckPolicy,
    gx_record: GxRecordResource,
    day_columns: dict[str, str],
):
    validated = validate_tables(
        {t: (frame, suites[t]) for t, frame in tables.items()},
        bound,
        ids,
        record=gx_record.record(),
        day_columns=day_columns,
    )
    for table, validation in validated.items():
        failed = [o.name for o in validation.outcomes if not o.success]
        reused = sum(1 for o in validation.outcomes if o.success and o.rows == 0 and o.rows_reused)
        context.log.info(
            f"gx {table}: {validation.rows:,} rows, {len(validation.outcomes)} rules in {validation.seconds:.2f} s"
            + (f" ({reused} rule(s) had no new rows to validate)" if reused else "")
            + (f"; failed: {', '.join(failed)}" if failed else "")
        )
        for outcome in validation.outcomes:
            yield check_result(table, outcome, policy, validation)


def source_validation_name(source: str) -> str:
    """The check step validating one source's suite, e.g. `gx_usage_events_validation`."""
    return f"{GX_PREFIX}{source}_validation"


def build_gx_source_check(deployment: Deployment, source: str) -> dg.AssetChecksDefinition:
    """The validity suite of one source: its own step, bound to that source only."""
    policy = deployment.dq.checks[VALIDITY]
    suites, ids = build_suites(deployment), row_ids(deployment)
    # unchanged days of an export are not validated again (`checks.gx_incremental`)
    day_columns = {source: deployment.contract[source].event_time}

    @dg.multi_asset_check(
        specs=_specs(source, suites[source], policy),
        name=source_validation_name(source),
        description=f"Great Expectations validity suite of {source} (nulls, keys, vocabularies, ranges, no future timestamps).",
        ins={"frame": dg.AssetIn(key=source)},
    )
    def _validation(
        context: dg.AssetCheckExecutionContext,
        snapshot: SnapshotResource,
        landing: LandingZoneResource,
        gx_record: GxRecordResource,
        frame: pl.LazyFrame,
    ):
        bound = latest_allowed(snapshot.as_of_date(landing.landing_dir, context.run.tags))
        yield from _results(context, {source: frame}, suites, ids, bound, policy, gx_record, day_columns)

    return _validation


def build_gx_indicator_check(deployment: Deployment) -> dg.AssetChecksDefinition:
    policy = deployment.dq.checks[VALIDITY]
    suites, ids = build_suites(deployment), row_ids(deployment)

    @dg.multi_asset_check(
        specs=_specs(INDICATORS, suites[INDICATORS], policy),
        name=GX_INDICATOR_VALIDATION,
        description="Great Expectations validity suite of the indicator table (keys, shares, counts, rating scales), for the run's snapshots.",
        ins={INDICATORS: dg.AssetIn(key=INDICATORS)},
    )
    def gx_indicator_validation(
        context: dg.AssetCheckExecutionContext, gx_record: GxRecordResource, account_indicators: pl.LazyFrame
    ):
        yield from _results(
            context,
            {INDICATORS: account_indicators},
            suites,
            ids,
            None,
            policy,
            gx_record,
            {INDICATORS: SNAPSHOT_COLUMN},
        )

    return gx_indicator_validation


def build_gx_checks(deployment: Deployment) -> list[dg.AssetChecksDefinition]:
    return [
        *(build_gx_source_check(deployment, source) for source in deployment.contract.sources),
        build_gx_indicator_check(deployment),
    ]
