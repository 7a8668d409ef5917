"""Proving the score: validation against churn, a fitted challenger model, the CS contribution.

These assets read the whole published history, so they run on demand (`validation_job`, or
materialize the `validation` group in the UI), not with every daily snapshot.
"""

import datetime as dt
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import yaml

from cs_assets.actions.assets import ACTION_NOTIFICATIONS
from cs_assets.actions.store import read_history
from cs_assets.metadata import markdown_table
from cs_assets.publish.assets import ACCOUNT_HEALTH
from cs_assets.publish.tables import SCHEMA
from cs_assets.scoring.model_config import HealthModel, load_model_document, parse_model
from cs_assets.validation.charts import churn_per_band_chart, score_by_tenure_boxplot
from cs_assets.validation.config import ValidationConfig
from cs_assets.validation.contribution import cs_contribution
from cs_assets.validation.metrics import horizon_metrics
from cs_assets.validation.outcomes import outcomes_from_crm, read_outcomes_file, scores_before_outcomes
from cs_assets.validation.tuning import challenger_document, fit_weights, migration_matrix, score_rows, time_split
from resources.landing import LandingZoneResource
from resources.model import HealthModelResource
from resources.validation import ValidationConfigResource
from resources.warehouse import WarehouseResource

OWNER = "team:customer-success-analytics"
GROUP = "validation"
SCORE_PREDICTS_CHURN = "score_predicts_churn"
SUMMARY_TABLE = f"{SCHEMA}.score_validation"
GROUPS_TABLE = f"{SCHEMA}.score_validation_groups"

# After the action steps, not only after the publish: under the multiprocess executor
# ("materialize all") no two steps may hold the DuckDB file at once, and the action steps write it.
COMMON = dict(group_name=GROUP, owners=[OWNER], ins={"crm": dg.AssetIn("crm_accounts")})
AFTER_ACTIONS = [ACCOUNT_HEALTH, ACTION_NOTIFICATIONS]


def _inputs(warehouse: WarehouseResource, landing: LandingZoneResource, crm: pl.DataFrame, cfg: ValidationConfig):
    with warehouse.reader() as con:
        history = read_history(con)
    if history.is_empty():
        raise LookupError("no published snapshots: backfill history first (cs-health backfill --days 365)")
    newest = history["snapshot_date"].max()
    external = Path(landing.landing_dir) / cfg.outcomes_file
    outcomes = read_outcomes_file(external) if external.is_file() else outcomes_from_crm(crm, newest)
    source = str(external) if external.is_file() else "CRM (churn_date, renewal_date)"
    return history, outcomes.filter(pl.col("outcome_date") <= newest), newest, source


def _band_names(model: HealthModel) -> tuple[list[str], str]:
    # the model validates its bands as ascending from 0: the first is the riskiest ("red")
    names = [b.name for b in model.bands]
    return names, names[0]


def _write_tables(con: duckdb.DuckDBPyConnection, summary: pl.DataFrame, groups: pl.DataFrame) -> None:
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        for table, frame in ((SUMMARY_TABLE, summary), (GROUPS_TABLE, groups)):
            con.register("incoming", frame.to_arrow())
            try:
                con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM incoming")
            finally:
                con.unregister("incoming")
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


@dg.asset(
    deps=AFTER_ACTIONS,
    kinds={"duckdb", "scikitlearn"},
    check_specs=[
        dg.AssetCheckSpec(
            SCORE_PREDICTS_CHURN,
            asset="score_validation",
            description="ROC AUC at every horizon is at least the configured floor, and churn per band is monotonic",
        )
    ],
    **COMMON,
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
    bands, red = _band_names(health_model.load())
    history, outcomes, newest, source = _inputs(warehouse, landing, crm, cfg)
    summary_rows, group_frames, metadata, problems = [], [], {}, []
    for days in cfg.horizons_days:
        rows = scores_before_outcomes(history, outcomes, days)
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
        for kind, table in (("band", m["per_band"]), ("decile", m["per_decile"])):
            group_frames.append(
                table.rename({kind: "segment"})
                .with_columns(pl.col("segment").cast(pl.String), horizon_days=pl.lit(days), kind=pl.lit(kind))
                .select("horizon_days", "kind", "segment", "accounts", "churned", "churn_rate")
            )
        if m["auc"] is None:
            problems.append(f"{days} d: no AUC ({m['accounts']} outcome(s) with a score {days} days before, need both churned and renewed)")
        elif m["auc"] < cfg.auc_floor:
            problems.append(f"{days} d: AUC {m['auc']:.3f} < floor {cfg.auc_floor:g}")
        if not m["band_verdict"].monotonic:
            problems.append(f"{days} d: band churn {m['band_verdict'].text}")
        metadata[f"bands_{days}d"] = dg.MetadataValue.md(markdown_table(m["per_band"]) + f"\n\n{m['band_verdict'].text}")
        metadata[f"deciles_{days}d"] = dg.MetadataValue.md(markdown_table(m["per_decile"], rows=10) + f"\n\n{m['decile_verdict'].text}")
        if days == cfg.tuning_horizon_days and rows.height:
            metadata["score_by_tenure"] = dg.MetadataValue.md(
                score_by_tenure_boxplot(rows, f"score {days} days before the outcome, by tenure")
            )
            metadata["churn_per_band"] = dg.MetadataValue.md(churn_per_band_chart(m["per_band"], f"churn per band, score {days} days before"))
    summary = pl.DataFrame(summary_rows)
    groups = pl.concat(group_frames) if group_frames else pl.DataFrame()
    with warehouse.connect() as con:
        _write_tables(con, summary, groups)
    yield dg.MaterializeResult(
        metadata={
            "outcomes_source": source,
            "outcomes": outcomes.height,
            "newest_snapshot": newest.isoformat(),
            "summary": dg.MetadataValue.md(markdown_table(summary)),
            **{f"auc_{r['horizon_days']}d": r["auc"] if r["auc"] is not None else "n/a" for r in summary_rows},
            **metadata,
        }
    )
    yield dg.AssetCheckResult(
        check_name=SCORE_PREDICTS_CHURN,
        passed=not problems,
        severity=dg.AssetCheckSeverity.WARN,
        description="; ".join(problems) if problems else f"AUC >= {cfg.auc_floor:g} at every horizon and churn per band is monotonic",
        metadata={f"auc_{r['horizon_days']}d": r["auc"] if r["auc"] is not None else "n/a" for r in summary_rows},
    )


# output_required=False: with too little history the step says why and materializes nothing,
# so "materialize all" on a fresh instance does not fail on it
# after the report, which writes the warehouse; these two only read it
@dg.asset(deps=["score_validation"], kinds={"scikitlearn", "yaml"}, output_required=False, **COMMON)
def challenger_model(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    landing: LandingZoneResource,
    health_model: HealthModelResource,
    validation: ValidationConfigResource,
    crm: pl.DataFrame,
):
    """Suggested weights fitted on older outcomes, compared with the current model on newer ones; never promoted automatically."""
    cfg = validation.load()
    champion = health_model.load()
    champion_doc = load_model_document(health_model.path)
    bands, red = _band_names(champion)
    history, outcomes, newest, _ = _inputs(warehouse, landing, crm, cfg)
    rows = scores_before_outcomes(history, outcomes, cfg.tuning_horizon_days)
    split = time_split(rows, cfg.train_share) if rows.height >= 2 else None
    churned = int(split.train["churned"].sum()) if split else 0
    least = cfg.min_outcomes_per_class
    if split is None or churned < least or split.train.height - churned < least or split.holdout.is_empty():
        context.log.warning(
            f"not fitted: {rows.height} outcome(s) have a score {cfg.tuning_horizon_days} days before, "
            f"{churned} churned in the training part; need {least} churned and {least} renewed to train, "
            "and a holdout (backfill more history, or lower tuning.min_outcomes_per_class)"
        )
        return
    weights = fit_weights(split.train, champion, cfg.regularisation_c)
    doc = challenger_document(champion_doc, weights)
    challenger = parse_model(doc, source="<challenger>")
    path = Path(health_model.path).parent / cfg.challenger_file
    header = (
        f"# Challenger model fitted by the challenger_model asset: logistic regression (C={cfg.regularisation_c:g}) on\n"
        f"# {split.train.height} outcomes before {split.split_date} (scores {cfg.tuning_horizon_days} days before each),\n"
        f"# compared on {split.holdout.height} outcomes from {split.split_date} on. NOT promoted automatically:\n"
        f"# review the comparison in the asset's metadata, then copy over the current model to adopt it.\n"
    )
    path.write_text(header + yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    held_champion = score_rows(split.holdout, champion).with_columns(health_score=pl.col("score"))
    held_challenger = score_rows(split.holdout, challenger).with_columns(health_score=pl.col("score"))
    results = {name: horizon_metrics(frame, bands, red) for name, frame in (("champion", held_champion), ("challenger", held_challenger))}
    comparison = pl.DataFrame(
        {
            "model": ["champion", "challenger"],
            "version": [champion.version, challenger.version],
            "holdout_auc": [None if r["auc"] is None else round(r["auc"], 4) for r in results.values()],
            **{f"churn_{b}": [float(r["per_band"].filter(pl.col("band") == b)["churn_rate"].sum()) for r in results.values()] for b in bands},
            "band_monotonic": [r["band_verdict"].monotonic for r in results.values()],
        }
    )
    migration = migration_matrix(held_champion, held_challenger, bands)
    context.log.info(f"challenger written to {path}; holdout AUC champion {comparison['holdout_auc'][0]} vs challenger {comparison['holdout_auc'][1]}")
    yield dg.MaterializeResult(
        metadata={
            "challenger_file": str(path),
            "split_date": split.split_date.isoformat(),
            "train_outcomes": split.train.height,
            "holdout_outcomes": split.holdout.height,
            "champion_holdout_auc": comparison["holdout_auc"][0],
            "challenger_holdout_auc": comparison["holdout_auc"][1],
            "comparison": dg.MetadataValue.md(markdown_table(comparison)),
            "band_migration": dg.MetadataValue.md("rows: champion band, columns: challenger band\n\n" + markdown_table(migration)),
            "weights": dg.MetadataValue.md(markdown_table(weights.sort("suggested_share", descending=True), rows=40)),
        }
    )


@dg.asset(deps=["score_validation"], kinds={"polars"}, output_required=False, **COMMON)
def cs_contribution_estimate(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    landing: LandingZoneResource,
    validation: ValidationConfigResource,
    crm: pl.DataFrame,
):
    """Per size tier: churn and LTV of CS-supported vs other accounts, and the LTV difference times supported accounts."""
    cfg = validation.load()
    history, _, newest, _ = _inputs(warehouse, landing, crm, cfg)
    cohort_date = newest - dt.timedelta(days=cfg.observation_days)
    if history.filter(pl.col("snapshot_date") == cohort_date).is_empty():
        context.log.warning(
            f"not estimated: no published snapshot on {cohort_date} ({cfg.observation_days} days before the newest, "
            f"{newest}); backfill at least {cfg.observation_days + 1} days or lower contribution.observation_days"
        )
        return
    table = cs_contribution(history, crm, cfg.engaged_when, cfg.gross_margin, cohort_date, newest)
    yield dg.MaterializeResult(
        metadata={
            "cohort_snapshot": cohort_date.isoformat(),
            "end_snapshot": newest.isoformat(),
            "gross_margin": cfg.gross_margin,
            "total_contribution_usd": float(table["contribution_usd"].fill_null(0).sum()),
            "per_tier": dg.MetadataValue.md(markdown_table(table)),
            "caveat": "a comparison, not a causal effect: healthier customers engage more (selection bias)",
        }
    )


validation_assets = [score_validation, challenger_model, cs_contribution_estimate]
