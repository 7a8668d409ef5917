"""The CS team's contribution per tier (the LTV method practitioners use; see DOMAIN.md).

Per size tier, accounts active at a cohort snapshot are split by a "CS supported" condition;
monthly churn = churned / (accounts x months observed), LTV = gross margin x monthly revenue /
monthly churn, and contribution = (LTV supported - LTV not supported) x supported accounts.
It is a comparison, not a causal effect: healthier customers engage more (selection bias).
"""

import datetime as dt

import polars as pl

from cs_assets.actions.evaluate import condition_expr
from cs_assets.actions.rules import Condition

DAYS_PER_MONTH = 365.25 / 12


def cs_contribution(
    history: pl.DataFrame,
    churn_dates: pl.DataFrame,
    engaged_when: tuple[Condition, ...],
    gross_margin: float,
    cohort_date: dt.date,
    end_date: dt.date,
) -> pl.DataFrame:
    """One row per size tier: churn and LTV with and without CS support, and the contribution."""
    months = (end_date - cohort_date).days / DAYS_PER_MONTH
    cohort = (
        history.filter(pl.col("snapshot_date") == cohort_date)
        .with_columns(supported=pl.all_horizontal([condition_expr(c) for c in engaged_when]).fill_null(False))
        .join(churn_dates.select("account_id", "churn_date"), on="account_id", how="left")
        .with_columns(
            churned=pl.col("churn_date").is_between(cohort_date + dt.timedelta(days=1), end_date).fill_null(False)
        )
    )
    groups = cohort.group_by("size_tier", "supported").agg(
        accounts=pl.len().cast(pl.Int64),
        churned=pl.col("churned").sum().cast(pl.Int64),
        monthly_revenue=(pl.col("arr_usd") / 12).mean(),
    )
    groups = groups.with_columns(monthly_churn=pl.col("churned") / (pl.col("accounts") * months)).with_columns(
        ltv=pl.when(pl.col("monthly_churn") > 0).then(
            gross_margin * pl.col("monthly_revenue") / pl.col("monthly_churn")
        )
    )

    def side(flag: bool, suffix: str) -> pl.DataFrame:
        return (
            groups.filter(pl.col("supported") == flag)
            .drop("supported")
            .rename({c: f"{c}_{suffix}" for c in ("accounts", "churned", "monthly_revenue", "monthly_churn", "ltv")})
        )

    table = side(True, "supported").join(side(False, "unsupported"), on="size_tier", how="full", coalesce=True)
    return (
        table.with_columns(
            contribution_usd=((pl.col("ltv_supported") - pl.col("ltv_unsupported")) * pl.col("accounts_supported"))
        )
        .with_columns(pl.col(pl.Float64).round(4))
        .sort("size_tier")
    )
