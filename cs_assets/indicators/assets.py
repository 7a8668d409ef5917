"""The cleaned indicator table: one row per account and snapshot date, from every declared source."""

import dagster as dg
import polars as pl

from cs_assets.deployment import Deployment
from cs_assets.gate import enforce
from cs_assets.indicators.compiler import presence_column
from cs_assets.indicators.compute import compute_account_indicators
from cs_assets.metadata import table_metadata
from cs_assets.partitions import SINGLE_RUN_BACKFILL, snapshot_dates
from resources.indicator_engine import IndicatorEngineResource

OWNER = "team:customer-success-analytics"
GROUP = "indicators"
ACCOUNT_INDICATORS = "account_indicators"


def build_indicator_asset(deployment: Deployment, partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    contract, catalogue = deployment.contract, deployment.catalogue
    sources = list(contract.sources)
    preview_columns = ["account_id", "size_tier", *list(catalogue.indicators)[:6]]

    @dg.asset(
        name=ACCOUNT_INDICATORS,
        group_name=GROUP,
        kinds={"polars"},
        owners=[OWNER],
        partitions_def=partitions,
        backfill_policy=SINGLE_RUN_BACKFILL,
        # and never past a failed blocking check upstream (cs_assets.gate.with_upstream_gate)
        automation_condition=dg.AutomationCondition.eager(),
        # lazy: the compiler reads only the columns its indicators need
        ins={name: dg.AssetIn(name) for name in sources},
        metadata={
            "indicators": table_metadata(
                pl.DataFrame(
                    {
                        "indicator": list(catalogue.indicators),
                        "source": [i.source or "(ratio)" for i in catalogue.indicators.values()],
                        "description": [i.description for i in catalogue.indicators.values()],
                    }
                ),
                rows=len(catalogue.indicators),
            ),
            "catalogue": catalogue.origin,
        },
    )
    def account_indicators(
        context: dg.AssetExecutionContext, indicator_engine: IndicatorEngineResource, **frames: pl.LazyFrame
    ) -> pl.DataFrame:
        """Cleaned indicator table: one row per account with every catalogued indicator as of the snapshot."""
        dates = snapshot_dates(context)
        # a load its checks refused is never read, whatever launched this step
        enforce(context, dates, "no indicators were computed, nothing was published")
        with indicator_engine.open() as engine:
            frame = compute_account_indicators(frames, contract, catalogue, dates, engine=engine)
        latest = frame.filter(pl.col("snapshot_date") == dates[-1])
        active = latest.filter(pl.col("is_active"))
        context.add_output_metadata(
            {
                "snapshots": len(dates),
                "engine": indicator_engine.engine,
                "latest_snapshot": dates[-1].isoformat(),
                "accounts": latest.height,
                "active_accounts": active.height,
                **{
                    f"active_without_{name}_data": active.filter(~pl.col(presence_column(name))).height
                    for name in contract.event_sources
                },
                "preview": table_metadata(active.select(preview_columns)),
            }
        )
        return frame

    return account_indicators
