"""Cross-source integrity: rows for accounts the CRM does not know, and usage coverage.

One check step per event source reads only the account_id column of that source and of the
accounts source, so it is cheap even for tens of millions of usage rows, and a run of one source
builds on its own. Every declared event source is checked for unknown accounts; the coverage
check runs on the source `integrity.coverage_source` names.
"""

import dagster as dg
import polars as pl

from checks.dq_config import UNKNOWN_ACCOUNTS, USAGE_COVERAGE, DataQualityConfig
from cs_assets.deployment import Deployment
from cs_assets.indicators.compute import active_accounts, as_of_end
from cs_assets.sources.normalise import accounts_as_of
from resources.landing import LandingZoneResource
from resources.model import SnapshotResource

COVERAGE_DAYS = 365


def unknown_account_result(
    source: str, frame: pl.LazyFrame, known: pl.LazyFrame, max_share: float, dq: DataQualityConfig
) -> dg.AssetCheckResult:
    unknown = frame.select("account_id").join(known, on="account_id", how="anti")
    stats = pl.concat(
        [
            frame.select(n=pl.len().cast(pl.Int64), accounts=pl.lit(None, dtype=pl.List(pl.String))),
            unknown.select(
                n=pl.len().cast(pl.Int64),
                accounts=pl.col("account_id").unique().sort().head(5).implode(),
            ),
        ]
    ).collect()
    rows, bad = int(stats["n"][0]), int(stats["n"][1])
    sample = stats["accounts"][1].to_list() if bad else []
    share = bad / rows if rows else 0.0
    policy = dq.checks[UNKNOWN_ACCOUNTS]
    return dg.AssetCheckResult(
        asset_key=source,
        check_name=UNKNOWN_ACCOUNTS,
        passed=share <= max_share,
        severity=policy.severity,
        description=(
            f"{source}.account_id: {bad:,} of {rows:,} row(s) name accounts unknown to the CRM, e.g. {', '.join(sample)}"
            if bad
            else f"{source}.account_id: every row names a CRM account"
        ),
        metadata={
            "rows": rows,
            "unknown_rows": bad,
            "unknown_share": round(share, 6),
            "sample_account_ids": ", ".join(sample),
        },
    )


def integrity_check_name(source: str) -> str:
    """The check step of one event source's integrity checks, e.g. `usage_events_integrity`."""
    return f"{source}_integrity"


def build_integrity_checks(deployment: Deployment) -> list[dg.AssetChecksDefinition]:
    """One check step per event source: its unknown-account check (and the coverage check on the
    source `integrity.coverage_source` names), reading that source and the accounts source only,
    so a run of one source builds and checks that source alone."""
    return [build_integrity_check(deployment, source) for source in deployment.contract.event_sources]


def build_integrity_check(deployment: Deployment, source: str) -> dg.AssetChecksDefinition:
    dq = deployment.dq
    accounts = deployment.contract.accounts.name
    coverage = dq.coverage_source == source
    specs = [
        dg.AssetCheckSpec(
            UNKNOWN_ACCOUNTS,
            asset=source,
            blocking=dq.checks[UNKNOWN_ACCOUNTS].blocking,
            additional_deps=[accounts],
            description=f"Every row's account_id exists in {accounts}.",
        )
    ]
    if coverage:
        specs.append(
            dg.AssetCheckSpec(
                USAGE_COVERAGE,
                asset=source,
                blocking=dq.checks[USAGE_COVERAGE].blocking,
                additional_deps=[accounts],
                description=f"Enough active accounts have {source} records in the last {COVERAGE_DAYS} days.",
            )
        )

    @dg.multi_asset_check(
        specs=specs,
        name=integrity_check_name(source),
        # the staged accounts export is read as it stands when only this source runs
        ins={"frame": dg.AssetIn(key=source), "crm": dg.AssetIn(key=accounts)},
    )
    def _integrity(
        context: dg.AssetCheckExecutionContext,
        snapshot: SnapshotResource,
        landing: LandingZoneResource,
        frame: pl.LazyFrame,
        crm: pl.LazyFrame,
    ):
        known = crm.select("account_id").unique()
        yield unknown_account_result(source, frame, known, dq.max_unknown_account_share, dq)
        if not coverage:
            return
        spec = deployment.contract[source]
        as_of = snapshot.as_of_date(landing.landing_dir, context.run.tags)
        end = as_of_end(as_of)
        active = active_accounts(accounts_as_of(crm, deployment.contract.accounts, end), as_of).select("account_id")
        stamp = pl.col(spec.event_time)
        with_records = (
            frame.filter((stamp < end) & (stamp >= end - pl.duration(days=COVERAGE_DAYS))).select("account_id").unique()
        )
        counts = pl.concat(
            [active.select(n=pl.len()), active.join(with_records, on="account_id", how="semi").select(n=pl.len())]
        ).collect()["n"]
        total, covered = int(counts[0]), int(counts[1])
        share = covered / total if total else 1.0
        policy = dq.checks[USAGE_COVERAGE]
        yield dg.AssetCheckResult(
            asset_key=source,
            check_name=USAGE_COVERAGE,
            passed=share >= dq.min_usage_coverage_share,
            severity=policy.severity,
            description=f"{source}: {covered:,} of {total:,} active accounts ({share:.1%}) have records "
            f"in the last {COVERAGE_DAYS} days (minimum {dq.min_usage_coverage_share:.0%})",
            metadata={"active_accounts": total, "with_records": covered, "coverage_share": round(share, 4)},
        )

    return _integrity
