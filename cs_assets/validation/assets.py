"""Proving the score: validation against churn, a calibrated candidate model, the CS contribution.

These assets read the whole published history, so they run on demand (`cs-health validate`,
`cs-health calibrate`, `validation_job`, or materialize the `validation` group in the UI), not
with every daily snapshot.
"""

import datetime as dt
import json
from pathlib import Path
from typing import TypedDict

import dagster as dg
import duckdb
import polars as pl
import yaml

from cs_assets.actions.rules import STAGE_FIELD
from cs_assets.actions.store import read_history
from cs_assets.deployment import Deployment
from cs_assets.frames import scalar
from cs_assets.metadata import table_metadata
from cs_assets.partitions import snapshot_on_or_before, step_days
from cs_assets.publish.assets import ACCOUNT_HEALTH
from cs_assets.publish.tables import SCHEMA
from cs_assets.scoring.charts import figure_markdown
from cs_assets.scoring.model_config import HealthModel
from cs_assets.sources.normalise import latest_accounts
from cs_assets.validation.calibration import calibrate
from cs_assets.validation.charts import churn_per_band_chart, score_by_tenure_boxplot
from cs_assets.validation.config import ValidationConfig
from cs_assets.validation.contribution import cs_contribution
from cs_assets.validation.metrics import churn_by, horizon_metrics
from cs_assets.validation.outcomes import outcomes_from_crm, read_outcomes_file, scores_before_outcomes
from cs_assets.validation.tiers import target_tiers as rank_tiers
from cs_assets.validation.tiers import window_text
from resources.landing import LandingZoneResource
from resources.model import HealthModelResource
from resources.validation import ValidationConfigResource
from resources.warehouse import WAREHOUSE_POOL, WarehouseResource

OWNER = "team:customer-success-analytics"
GROUP = "validation"
SCORE_PREDICTS_CHURN = "score_predicts_churn"
MODEL_CALIBRATION = "model_calibration"
SUMMARY_TABLE = f"{SCHEMA}.score_validation"
GROUPS_TABLE = f"{SCHEMA}.score_validation_groups"
REPORT_FILE = "calibration_report.json"
TARGET_TIERS = "target_tiers"
TIERS_TABLE = f"{SCHEMA}.target_tiers"
# each outcome of the main horizon with the score it had then: what the report's plots draw
ROWS_TABLE = f"{SCHEMA}.score_validation_rows"
VALIDATION_ROW_SCHEMA = {
    "account_id": pl.String,
    "snapshot_date": pl.Date,
    "outcome_date": pl.Date,
    "health_score": pl.Float64,
    "band": pl.String,
    "tenure_days": pl.Int64,
    "churned": pl.Boolean,
    "horizon_days": pl.Int64,
}


class _AssetArgs(TypedDict):
    group_name: str
    owners: list[str]
    ins: dict[str, dg.AssetIn]
    pool: str


def _inputs(
    warehouse: WarehouseResource, landing: LandingZoneResource, crm: pl.DataFrame, cfg: ValidationConfig
) -> tuple[pl.DataFrame, pl.DataFrame, dt.date, str, int]:
    """The published history, the outcomes it can be compared with, and what was left out.

    `crm` is each account's newest version (outcomes are the accounts' current state)."""
    with warehouse.reader() as con:
        history = read_history(con)
    if history.is_empty():
        raise LookupError("no published snapshots: backfill history first (cs-health backfill --days 365)")
    newest = scalar(history["snapshot_date"].max(), dt.date)
    if newest is None:
        raise ValueError("the published history has rows but no snapshot date")
    external = Path(landing.landing_dir) / cfg.outcomes_file
    source = str(external) if external.is_file() else "CRM (churn_date, renewal_date)"
    outcomes = read_outcomes_file(external) if external.is_file() else outcomes_from_crm(crm, newest)
    later = outcomes.filter(pl.col("outcome_date") > newest)
    return history, outcomes.filter(pl.col("outcome_date") <= newest), newest, source, later.height


def _band_names(model: HealthModel) -> tuple[list[str], str]:
    # the model validates its bands as ascending from 0: the first is the riskiest ("red")
    names = [b.name for b in model.bands]
    return names, names[0]


def _write_tables(con: duckdb.DuckDBPyConnection, tables: dict[str, pl.DataFrame]) -> None:
    """Replace each table with its frame, all in one transaction."""
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        for table, frame in tables.items():
            con.register("incoming", frame.to_arrow())
            try:
                con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM incoming")
            finally:
                con.unregister("incoming")
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


def _later_note(context, later: int, newest: dt.date) -> None:
    if later:
        context.log.warning(
            f"{later} outcome(s) dated after the newest published snapshot {newest} are left out: "
            "backfill up to their dates to include them"
        )


def _not_materialized(context: dg.AssetExecutionContext, reason: str) -> dg.AssetObservation:
    """Why the step materialized nothing, on the asset's own page (not only in a run's log)."""
    context.log.warning(reason)
    return dg.AssetObservation(asset_key=context.asset_key, metadata={"not_materialized_because": reason})


def build_validation_assets(deployment: Deployment) -> list[dg.AssetsDefinition]:
    accounts_spec = deployment.contract.accounts
    crm_name = accounts_spec.name
    common: _AssetArgs = dict(group_name=GROUP, owners=[OWNER], ins={"crm": dg.AssetIn(crm_name)}, pool=WAREHOUSE_POOL)

    @dg.asset(
        deps=[ACCOUNT_HEALTH],
        kinds={"duckdb", "scikitlearn"},
        check_specs=[
            dg.AssetCheckSpec(
                SCORE_PREDICTS_CHURN,
                asset="score_validation",
                description="ROC AUC at every horizon is at least the configured floor, and churn per band is monotonic.",
            )
        ],
        **common,
    )
    def score_validation(
        context: dg.AssetExecutionContext,
        warehouse: WarehouseResource,
        landing: LandingZoneResource,
        health_model: HealthModelResource,
        validation: ValidationConfigResource,
        crm: pl.DataFrame,
    ):
        """Does the score predict churn? AUC, churn per band and decile, lift, red precision/recall, N days before outcomes."""
        cfg = validation.load()
        crm = latest_accounts(crm.lazy(), accounts_spec).collect()
        bands, red = _band_names(health_model.for_run(context))
        history, outcomes, newest, source, later = _inputs(warehouse, landing, crm, cfg)
        _later_note(context, later, newest)
        summary_rows, group_frames, metadata, problems = [], [], {}, []
        validated_rows = pl.DataFrame(schema=VALIDATION_ROW_SCHEMA)
        for days in cfg.horizons_days:
            rows = scores_before_outcomes(history, outcomes, days, step_days())
            m = horizon_metrics(rows, bands, red)
            summary_rows.append(
                {
                    "horizon_days": days,
                    "outcomes": m["accounts"],
                    "churned": m["churned"],
                    "churn_rate": m["churn_rate"],
                    "auc": None if m["auc"] is None else round(m["auc"], 4),
                    "top_decile_lift": m["top_decile_lift"],
                    "red_precision": round(m["red_precision"], 4) if m["red_precision"] is not None else None,
                    "red_recall": round(m["red_recall"], 4) if m["red_recall"] is not None else None,
                    "band_monotonic": m["band_verdict"].monotonic,
                    "decile_monotonic": m["decile_verdict"].monotonic,
                }
            )
            # churn per health stage (action rules `stages`), where the history has them
            staged = rows.filter(pl.col(STAGE_FIELD).is_not_null()) if STAGE_FIELD in rows.columns else rows.clear()
            per_stage = (
                churn_by(staged, STAGE_FIELD, sorted(staged[STAGE_FIELD].unique().to_list())) if staged.height else None
            )
            if per_stage is not None:
                metadata[f"stages_{days}d"] = table_metadata(per_stage)
            tables = [("band", m["per_band"]), ("decile", m["per_decile"])]
            for kind, table in [*tables, *([(STAGE_FIELD, per_stage)] if per_stage is not None else [])]:
                group_frames.append(
                    table.rename({kind: "segment"})
                    .with_columns(
                        pl.col("segment").cast(pl.String),
                        horizon_days=pl.lit(days),
                        kind=pl.lit("stage" if kind == STAGE_FIELD else kind),
                    )
                    .select("horizon_days", "kind", "segment", "accounts", "churned", "churn_rate")
                )
            if m["auc"] is None:
                problems.append(
                    f"{days} d: no AUC ({m['accounts']} outcome(s) with a score {days} days before, need both churned and renewed)"
                )
            elif m["auc"] < cfg.auc_floor:
                problems.append(f"{days} d: AUC {m['auc']:.3f} < floor {cfg.auc_floor:g}")
            if not m["band_verdict"].monotonic:
                problems.append(f"{days} d: band churn {m['band_verdict'].text}")
            metadata[f"bands_{days}d"] = table_metadata(m["per_band"])
            metadata[f"bands_{days}d_verdict"] = m["band_verdict"].text
            metadata[f"deciles_{days}d"] = table_metadata(m["per_decile"], rows=10)
            metadata[f"deciles_{days}d_verdict"] = m["decile_verdict"].text
            if days == cfg.horizon_days and rows.height:
                metadata["score_by_tenure"] = dg.MetadataValue.md(
                    figure_markdown(
                        score_by_tenure_boxplot(rows, f"score {days} days before the outcome, by tenure"),
                        "score by tenure, retained vs churned",
                    )
                )
                metadata["churn_per_band"] = dg.MetadataValue.md(
                    figure_markdown(
                        churn_per_band_chart(m["per_band"], f"churn per band, score {days} days before"),
                        "churn rate per band",
                    )
                )
                validated_rows = rows.with_columns(horizon_days=pl.lit(days)).select(
                    [pl.col(c).cast(t) for c, t in VALIDATION_ROW_SCHEMA.items()]
                )
        summary = pl.DataFrame(summary_rows)
        groups = pl.concat(group_frames) if group_frames else pl.DataFrame()
        with warehouse.connect() as con:
            _write_tables(con, {SUMMARY_TABLE: summary, GROUPS_TABLE: groups, ROWS_TABLE: validated_rows})
        yield dg.MaterializeResult(
            metadata={
                "outcomes_source": source,
                "outcomes": outcomes.height,
                "outcomes_after_newest_snapshot": later,
                "newest_snapshot": newest.isoformat(),
                "summary": table_metadata(summary),
                **{f"auc_{r['horizon_days']}d": r["auc"] if r["auc"] is not None else "n/a" for r in summary_rows},
                **metadata,
            }
        )
        yield dg.AssetCheckResult(
            check_name=SCORE_PREDICTS_CHURN,
            passed=not problems,
            severity=dg.AssetCheckSeverity.WARN,
            description="; ".join(problems)
            if problems
            else f"AUC >= {cfg.auc_floor:g} at every horizon and churn per band is monotonic",
            metadata={f"auc_{r['horizon_days']}d": r["auc"] if r["auc"] is not None else "n/a" for r in summary_rows},
        )

    # output_required=False: with too little history the step says why and materializes nothing,
    # so "materialize all" on a fresh instance does not fail on it.
    # After the report, which writes the warehouse; this step only reads it.
    @dg.asset(
        name=MODEL_CALIBRATION,
        deps=["score_validation"],
        kinds={"scikitlearn", "yaml"},
        output_required=False,
        **common,
    )
    def model_calibration(
        context: dg.AssetExecutionContext,
        warehouse: WarehouseResource,
        landing: LandingZoneResource,
        health_model: HealthModelResource,
        validation: ValidationConfigResource,
        crm: pl.DataFrame,
    ):
        """A candidate model (scoring functions, weights, band cuts) fitted on older outcomes and compared on newer ones; never promoted automatically."""
        cfg = validation.load()
        crm = latest_accounts(crm.lazy(), accounts_spec).collect()
        settings = cfg.calibration
        current = health_model.for_run(context)
        history, outcomes, newest, source, later = _inputs(warehouse, landing, crm, cfg)
        _later_note(context, later, newest)
        rows = scores_before_outcomes(history, outcomes, settings.horizon_days, step_days())
        try:
            result = calibrate(rows, current, current.document, settings, health_model.deployment().catalogue)
        except ValueError as exc:
            yield _not_materialized(context, f"no candidate model: {exc}")
            return
        out = Path(validation.models_dir)
        out.mkdir(parents=True, exist_ok=True)
        path = out / settings.candidate_file
        report = {
            "current_model": current.version,
            "candidate_model": result.candidate.version,
            "candidate_file": str(path),
            "outcomes_source": source,
            "horizon_days": settings.horizon_days,
            "newest_snapshot": newest.isoformat(),
            "bands": result.band_note,
            "indicators": [
                {
                    "indicator": name,
                    "direction": f.direction,
                    "fitted": bool(f.points),
                    "weight_share": round(result.weights.shares.get(name, 0.0), 4),
                    "note": "; ".join(x for x in (f.note, result.weights.notes.get(name, "")) if x),
                }
                for name, f in result.fitted.items()
            ],
            **result.report,
        }
        r = result.report
        header = (
            f"# Candidate model from `cs-health calibrate` (model_calibration asset), fitted on {r['train_outcomes']} outcomes\n"
            f"# ({'before ' + r['split_date'] if r['split_date'] else 'a seeded stratified sample'}), indicators "
            f"{settings.horizon_days} days before each; compared on {r['holdout_outcomes']} held-out outcomes:\n"
            f"#   holdout AUC candidate {r['candidate_auc']}, current {r['current_auc']}, "
            f"best single indicator {r['best_single_indicator']} {r['best_single_auc']}.\n"
            f"# NOT promoted: review {REPORT_FILE} next to this file, then copy this file over the model to adopt it.\n"
        )
        path.write_text(header + yaml.safe_dump(result.document, sort_keys=False), encoding="utf-8")
        (out / REPORT_FILE).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        context.log.info(
            f"candidate written to {path}; holdout AUC candidate {r['candidate_auc']} vs current {r['current_auc']} "
            f"vs best single indicator ({r['best_single_indicator']}) {r['best_single_auc']}"
        )
        bands = [b.name for b in result.candidate.bands]
        migration = pl.DataFrame(
            {"current": bands, **{b: [row[i] for row in r["migration"]["counts"]] for i, b in enumerate(bands)}}
        )
        yield dg.MaterializeResult(
            metadata={
                "candidate_file": dg.MetadataValue.path(str(path)),
                "report_file": dg.MetadataValue.path(str(out / REPORT_FILE)),
                "split": r["split"],
                "split_date": r["split_date"] or "none (stratified)",
                "train_outcomes": r["train_outcomes"],
                "holdout_outcomes": r["holdout_outcomes"],
                "candidate_holdout_auc": r["candidate_auc"],
                "current_holdout_auc": r["current_auc"],
                "best_single_indicator": r["best_single_indicator"] or "none",
                "best_single_holdout_auc": r["best_single_auc"],
                "candidate_bands": table_metadata(pl.DataFrame(r["candidate_bands"])),
                "current_bands": table_metadata(pl.DataFrame(r["current_bands"])),
                # rows: the current model's band; columns: the candidate's
                "band_migration_current_to_candidate": table_metadata(migration),
                "indicators": table_metadata(pl.DataFrame(report["indicators"]), rows=60),
                "single_indicators": table_metadata(pl.DataFrame(r["single_indicator_auc"]), rows=60),
            }
        )

    @dg.asset(deps=["score_validation"], kinds={"polars"}, output_required=False, **common)
    def cs_contribution_estimate(
        context: dg.AssetExecutionContext,
        warehouse: WarehouseResource,
        landing: LandingZoneResource,
        validation: ValidationConfigResource,
        crm: pl.DataFrame,
    ):
        """Per size tier: churn and LTV of CS-supported vs other accounts, and the LTV difference times supported accounts."""
        cfg = validation.load()
        crm = latest_accounts(crm.lazy(), accounts_spec).collect()
        # both come from the `contribution` section, so both are set or neither is
        if cfg.observation_days is None or cfg.gross_margin is None:
            yield _not_materialized(context, "not estimated: validation.yaml has no `contribution` section")
            return
        history, _, newest, _, _ = _inputs(warehouse, landing, crm, cfg)
        # weekly snapshots: the Sunday on or before that day
        cohort_date = snapshot_on_or_before(newest - dt.timedelta(days=cfg.observation_days))
        if history.filter(pl.col("snapshot_date") == cohort_date).is_empty():
            yield _not_materialized(
                context,
                f"not estimated: no published snapshot on {cohort_date} ({cfg.observation_days} days before the newest, "
                f"{newest}); backfill at least {cfg.observation_days + 1} days or lower contribution.observation_days",
            )
            return
        table = cs_contribution(history, crm, cfg.engaged_when, cfg.gross_margin, cohort_date, newest)
        yield dg.MaterializeResult(
            metadata={
                "cohort_snapshot": cohort_date.isoformat(),
                "end_snapshot": newest.isoformat(),
                "gross_margin": cfg.gross_margin,
                "total_contribution_usd": float(table["contribution_usd"].fill_null(0).sum()),
                "per_tier": table_metadata(table),
                "caveat": "a comparison, not a causal effect: healthier customers engage more (selection bias)",
            }
        )

    @dg.asset(
        name=TARGET_TIERS,
        deps=["score_validation"],
        kinds={"duckdb", "polars"},
        output_required=False,
        metadata={"dagster/table_name": TIERS_TABLE},
        **common,
    )
    def target_tiers(
        context: dg.AssetExecutionContext,
        warehouse: WarehouseResource,
        landing: LandingZoneResource,
        validation: ValidationConfigResource,
        crm: pl.DataFrame,
    ):
        """Segments of the base (e.g. industry x size tier) ranked by their retention and ARR growth, with counts and confidence."""
        cfg = validation.load()
        if cfg.target_tiers is None:
            yield _not_materialized(context, "not ranked: validation.yaml has no `target_tiers` section")
            return
        tiers_cfg = cfg.target_tiers
        crm = latest_accounts(crm.lazy(), accounts_spec).collect()
        history, _, _, _, _ = _inputs(warehouse, landing, crm, cfg)
        table, first, newest = rank_tiers(history, crm, tiers_cfg.by, tiers_cfg.window_days, tiers_cfg.min_accounts)
        with warehouse.connect() as con:
            _write_tables(con, {TIERS_TABLE: table})
        ranked = table.filter(pl.col("rank").is_not_null())
        yield dg.MaterializeResult(
            metadata={
                "dagster/row_count": table.height,
                "window": window_text(first, newest, tiers_cfg.window_days),
                "tiers_ranked": ranked.height,
                "tiers_too_small": table.height - ranked.height,
                "best_tier": " x ".join(str(ranked.row(0, named=True)[c]) for c in tiers_cfg.by)
                if ranked.height
                else "none",
                "tiers": table_metadata(table, rows=30),
            }
        )

    return [score_validation, model_calibration, cs_contribution_estimate, target_tiers]
