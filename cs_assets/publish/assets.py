"""Publishing: the scores people and tools read, in the DuckDB warehouse."""

import datetime as dt
from typing import TypedDict, cast

import dagster as dg
import polars as pl

from checks.dq_config import BAND_SHIFT, CheckPolicy
from checks.score_checks import band_shift_result
from cs_assets.deployment import Deployment
from cs_assets.frames import scalar
from cs_assets.gate import enforce
from cs_assets.indicators.catalogue import CONTEXT_FIELDS
from cs_assets.metadata import table_metadata
from cs_assets.partitions import SINGLE_RUN_BACKFILL, snapshot_dates
from cs_assets.publish.lineage import HEALTH_COLUMN_LINEAGE, lineage_rows
from cs_assets.publish.tables import (
    CONTRIBUTION_COLUMNS,
    CONTRIBUTION_DESCRIPTIONS,
    CONTRIBUTIONS_TABLE,
    HEALTH_COLUMNS,
    HEALTH_DESCRIPTIONS,
    HEALTH_TABLE,
    PublishError,
    build_contribution_rows,
    build_health_rows,
    build_indicator_value_rows,
    build_note_rows,
    build_parent_rows,
    column_schema,
    previous_snapshot,
    publish_snapshots,
    published_bands_of,
)
from resources.model import HealthModelResource
from resources.staging import reads_whole
from resources.warehouse import WAREHOUSE_POOL, WarehouseResource

OWNER = "team:customer-success-analytics"
ACCOUNT_HEALTH = dg.AssetKey(["published", "account_health"])
ACCOUNT_HEALTH_CONTRIBUTIONS = dg.AssetKey(["published", "account_health_contributions"])

# A later automatic tick must not publish what a run's blocking checks refused: "eager" alone
# would request the publish again as soon as its inputs were updated, and Dagster's
# all_deps_blocking_checks_passed() looks at the direct parents only: the definitions add a gate
# on every blocking check upstream (cs_assets.gate.with_upstream_gate).
PUBLISH_CONDITION = dg.AutomationCondition.eager().with_label("eager")


class _SpecArgs(TypedDict):
    group_name: str
    kinds: set[str]
    owners: list[str]
    automation_condition: dg.AutomationCondition


PUBLISHED: _SpecArgs = dict(
    group_name="published",
    kinds={"duckdb"},
    owners=[OWNER],
    automation_condition=PUBLISH_CONDITION,
)

# (changed share, passed, the result, its snapshot date)
_Worst = tuple[float, bool, dg.AssetCheckResult, dt.date]


def worst_band_shift(
    health: pl.DataFrame,
    previous_date: dt.date | None,
    previous: pl.DataFrame,
    dates: list[dt.date],
    max_share: float,
    policy: CheckPolicy,
    published_now: dict[dt.date, pl.DataFrame] | None = None,
) -> dg.AssetCheckResult:
    """Band shift of each snapshot in the run against the one before it, and against its own
    published version when the run scores a date again; the worst one is reported."""
    worst: _Worst | None = None
    published_now = published_now or {}

    def keep(so_far: _Worst | None, result: dg.AssetCheckResult, date: dt.date) -> _Worst:
        # band_shift_result records the share as a float (rounded)
        share = (
            float(cast(float, result.metadata["changed_share"].value)) if "changed_share" in result.metadata else 0.0
        )
        if so_far is None or (not result.passed and so_far[1]) or (result.passed == so_far[1] and share > so_far[0]):
            return (share, result.passed, result, date)
        return so_far

    for date in dates:
        current = health.filter(pl.col("snapshot_date") == date)
        worst = keep(worst, band_shift_result(previous, current, previous_date, max_share, policy.severity), date)
        if date in published_now:
            # a re-run of a published date must not quietly move bands (a half-missing export would)
            worst = keep(
                worst,
                band_shift_result(published_now[date], current, date, max_share, policy.severity, same_date=True),
                date,
            )
        previous_date, previous = date, current.select("account_id", "band")
    if worst is None:
        raise ValueError("no snapshot dates to check the band shift of")
    _, _, result, date = worst
    if len(dates) > 1:
        result = dg.AssetCheckResult(
            asset_key=result.asset_key,
            check_name=result.check_name,
            passed=result.passed,
            severity=result.severity,
            description=f"worst of {len(dates)} snapshots (snapshot {date}): {result.description}",
            metadata={**result.metadata, "snapshot_date": date.isoformat(), "snapshots_checked": len(dates)},
        )
    return result


def build_publish_asset(deployment: Deployment, partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    """The publish step, for the deployment's catalogue and band-shift policy."""
    dq = deployment.dq
    policy = dq.checks[BAND_SHIFT]
    indicator_names = [*deployment.catalogue.indicators, *CONTEXT_FIELDS]
    noted = {i.name: i.note_name for i in deployment.catalogue.indicators.values() if i.note_name is not None}
    upstream = [*deployment.contract.sources]
    warn, fail = dq.published_freshness_hours
    # shown in the catalog next to the checks: a publish that stopped happening turns the tables late
    freshness = dg.FreshnessPolicy.time_window(
        fail_window=dt.timedelta(hours=fail), warn_window=dt.timedelta(hours=warn)
    )
    return _publish_asset(dq.max_band_change_share, policy, indicator_names, noted, upstream, partitions, freshness)


def _publish_asset(
    max_share: float,
    policy: CheckPolicy,
    indicator_names: list[str],
    noted: dict[str, str],
    upstream: list[str],
    partitions: dg.PartitionsDefinition,
    freshness: dg.FreshnessPolicy,
):
    @dg.multi_asset(
        specs=[
            dg.AssetSpec(
                ACCOUNT_HEALTH,
                description="Published customer health: one row per active account per snapshot, with band, stage, triage and top drags.",
                deps=["account_health_scores", "account_segments", "account_indicators"],
                metadata={
                    "dagster/table_name": HEALTH_TABLE,
                    "dagster/column_schema": column_schema(HEALTH_COLUMNS, HEALTH_DESCRIPTIONS),
                },
                freshness_policy=freshness,
                **PUBLISHED,
            ),
            dg.AssetSpec(
                ACCOUNT_HEALTH_CONTRIBUTIONS,
                description="Published per-indicator contributions: raw value, indicator score, weight and points that add up to each health score.",
                deps=["indicator_contributions"],
                metadata={
                    "dagster/table_name": CONTRIBUTIONS_TABLE,
                    "dagster/column_schema": column_schema(
                        CONTRIBUTION_COLUMNS, {**HEALTH_DESCRIPTIONS, **CONTRIBUTION_DESCRIPTIONS}
                    ),
                },
                freshness_policy=freshness,
                **PUBLISHED,
            ),
        ],
        check_specs=[
            dg.AssetCheckSpec(
                BAND_SHIFT,
                asset=ACCOUNT_HEALTH,
                # enforced in the step (it raises before writing); declared so the UI says so
                blocking=policy.blocking and policy.severity == dg.AssetCheckSeverity.ERROR,
                description="The share of accounts changing band since the last published snapshot (or against the "
                "published version of a date scored again) is within the limit.",
            )
        ],
        ins={
            "scores": dg.AssetIn("account_health_scores"),
            "segments": dg.AssetIn("account_segments"),
            "indicators": dg.AssetIn("account_indicators"),
            "contributions": dg.AssetIn("indicator_contributions"),
        },
        partitions_def=partitions,
        backfill_policy=SINGLE_RUN_BACKFILL,
        pool=WAREHOUSE_POOL,
    )
    def published_account_health(
        context: dg.AssetExecutionContext,
        warehouse: WarehouseResource,
        health_model: HealthModelResource,
        scores: pl.DataFrame,
        segments: pl.LazyFrame,
        indicators: pl.LazyFrame,
        contributions: pl.LazyFrame,
    ):
        """Writes every published table for the run's snapshots in one DuckDB transaction."""
        dates = snapshot_dates(context)
        # whatever launched this step (a click on this asset alone, a re-execution, automation)
        enforce(context, dates, "nothing was published")
        model = health_model.for_run(context)
        # one step run scored every date with one model: the first row says which
        first = contributions.select("model_version").head(1).collect()["model_version"]
        model_version = first[0] if first.len() else model.version
        if model_version != model.version:
            # the JSON stored under a version must be the model that scored the rows
            raise PublishError(
                f"not published: the staged scores were computed with model {model_version}, but this run's "
                f"model is {model.version}: materialize the scoring steps of these snapshots in the same run"
            )
        # when the rows were written: bookkeeping, never an input to a score
        computed_at = dt.datetime.now(dt.UTC).replace(microsecond=0)
        # a large run's long tables stay lazy, to be read and written one snapshot date at a time;
        # a small run's are read whole (cutting each date out of the staged files costs more)
        whole = reads_whole(contributions)

        def rows(frame: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame | pl.LazyFrame:
            return frame.collect() if whole and isinstance(frame, pl.LazyFrame) else frame

        health = rows(build_health_rows(scores, segments, indicators, model_version, computed_at))
        banded = health.lazy().select("snapshot_date", "account_id", "band").collect()
        points = rows(build_contribution_rows(contributions, computed_at))
        lineage = lineage_rows(context, dates, computed_at, upstream)
        parents = build_parent_rows(scores, indicators, model, computed_at) if model.parent_column is not None else None
        notes = rows(build_note_rows(indicators, noted, computed_at))
        with warehouse.connect() as con:
            previous_date, previous = previous_snapshot(con, dates[0])
            shift = worst_band_shift(
                banded, previous_date, previous, dates, max_share, policy, published_bands_of(con, dates)
            )
            blocks = policy.blocking and policy.severity == dg.AssetCheckSeverity.ERROR
            if blocks and not shift.passed:
                # evaluated before writing: a blocking shift must leave the published tables untouched
                raise PublishError(f"not published: {shift.description}")
            publish_snapshots(
                con,
                dates,
                health,
                points,
                rows(build_indicator_value_rows(indicators, indicator_names)),
                lineage,
                model_version,
                model.to_json(),
                computed_at,
                parents=parents[0] if parents else None,
                parent_members=parents[1] if parents else None,
                notes=notes,
            )
        latest = health.lazy().filter(pl.col("snapshot_date") == dates[-1]).collect()
        bands = latest.group_by("band").len().sort("band")
        latest_scores = latest["health_score"].cast(pl.Float64)
        # A range run records one materialization per snapshot, all with this metadata: a row
        # count is only a partition's own when the run scored one snapshot.
        per_snapshot = banded.group_by("snapshot_date").len("rows")["rows"]
        counts = (
            {"dagster/row_count": banded.height}
            if len(dates) == 1
            else {
                "rows_per_snapshot_min": int(scalar(per_snapshot.min(), int) or 0),
                "rows_per_snapshot_max": int(scalar(per_snapshot.max(), int) or 0),
            }
        )
        yield dg.MaterializeResult(
            asset_key=ACCOUNT_HEALTH,
            metadata={
                **counts,
                "dagster/column_lineage": HEALTH_COLUMN_LINEAGE,
                "warehouse": dg.MetadataValue.path(warehouse.database),
                "snapshots": len(dates),
                "latest_snapshot": dates[-1].isoformat(),
                "latest_snapshot_accounts": latest.height,
                "model_version": model_version,
                # parent roll-ups of the newest snapshot (published.parent_account_health)
                "parent_accounts": parents[0].filter(pl.col("snapshot_date") == dates[-1]).height if parents else 0,
                # numbers Dagster plots over time on the asset's page
                # a Float64 column with rows: its mean is a float
                "mean_score": round(float(cast(float, latest_scores.mean())), 2) if latest.height else 0.0,
                **{f"share_{b}": round(n / latest.height, 4) for b, n in bands.iter_rows()},
                **{f"band_{b}": n for b, n in bands.iter_rows()},
                "preview": table_metadata(
                    latest.sort("health_score").select(
                        "account_id", "health_score", "band", "lifecycle_stage", "triage_priority", "drag_1_indicator"
                    )
                ),
            },
        )
        yield dg.MaterializeResult(
            asset_key=ACCOUNT_HEALTH_CONTRIBUTIONS,
            metadata={
                **({"dagster/row_count": points.lazy().select(pl.len()).collect().item()} if len(dates) == 1 else {}),
                "warehouse": dg.MetadataValue.path(warehouse.database),
                "snapshots": len(dates),
                "latest_snapshot": dates[-1].isoformat(),
            },
        )
        yield shift

    return published_account_health
