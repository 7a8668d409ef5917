"""Known outcomes (churned, or renewed) and the scores accounts had N days before them."""

import datetime as dt
from pathlib import Path

import polars as pl

CHURNED, RENEWED = "churned", "renewed"
OUTCOME_SCHEMA = {"account_id": pl.String, "outcome_date": pl.Date, "outcome": pl.String}


class OutcomesError(ValueError):
    pass


def outcomes_from_crm(crm: pl.DataFrame, as_of: dt.date) -> pl.DataFrame:
    """Churned: the churn date. Renewed: the last contract anniversary on or before `as_of` that a
    live account passed (the current renewal date minus one year, if the contract had started a
    year before it). Accounts still in their first term have no outcome yet."""
    previous_renewal = pl.col("renewal_date").dt.offset_by("-1y")
    return (
        crm.select(
            "account_id",
            outcome_date=pl.when(pl.col("churn_date").is_not_null())
            .then(pl.col("churn_date"))
            .when((previous_renewal <= as_of) & (previous_renewal >= pl.col("contract_start_date").dt.offset_by("1y")))
            .then(previous_renewal),
            outcome=pl.when(pl.col("churn_date").is_not_null()).then(pl.lit(CHURNED)).otherwise(pl.lit(RENEWED)),
        )
        .filter(pl.col("outcome_date").is_not_null(), pl.col("outcome_date") <= as_of)
        .sort("account_id")
    )


def read_outcomes_file(path: Path) -> pl.DataFrame:
    """An external outcomes table (CSV: account_id, outcome_date YYYY-MM-DD, outcome churned|renewed)."""
    try:
        raw = pl.read_csv(path, infer_schema=False)
    except pl.exceptions.PolarsError as exc:
        raise OutcomesError(f"outcomes file {path}: cannot parse CSV: {exc}") from None
    missing = [c for c in OUTCOME_SCHEMA if c not in raw.columns]
    if missing:
        raise OutcomesError(
            f"outcomes file {path}: missing column(s) {', '.join(missing)} (expected {', '.join(OUTCOME_SCHEMA)})"
        )
    frame = raw.with_row_index("row", offset=2).with_columns(
        account_id=pl.col("account_id").str.strip_chars(),
        parsed_date=pl.col("outcome_date").str.strip_chars().str.to_date("%Y-%m-%d", strict=False),
        outcome=pl.col("outcome").str.strip_chars().str.to_lowercase(),
    )
    bad_date = frame.filter(pl.col("parsed_date").is_null())
    if bad_date.height:
        row = bad_date.row(0, named=True)
        raise OutcomesError(
            f"outcomes file {path}: column 'outcome_date' line {row['row']}: cannot read {row['outcome_date']!r} as YYYY-MM-DD"
        )
    bad = frame.filter(~pl.col("outcome").is_in([CHURNED, RENEWED]) | pl.col("outcome").is_null())
    if bad.height:
        row = bad.row(0, named=True)
        raise OutcomesError(
            f"outcomes file {path}: column 'outcome' line {row['row']}: {row['outcome']!r} is not churned or renewed"
        )
    empty_id = frame.filter(pl.col("account_id").is_null() | (pl.col("account_id") == ""))
    if empty_id.height:
        raise OutcomesError(f"outcomes file {path}: column 'account_id' line {empty_id['row'][0]}: empty account id")
    return (
        frame.select("account_id", outcome_date="parsed_date", outcome="outcome")
        .unique(maintain_order=True)
        .sort("account_id", "outcome_date")
    )


def scores_before_outcomes(
    history: pl.DataFrame, outcomes: pl.DataFrame, days: int, step_days: int = 1
) -> pl.DataFrame:
    """Each outcome joined to the account's published snapshot `days` before it: exactly that day
    with daily snapshots; with weekly ones (`step_days` 7), the newest snapshot on or up to six days
    before that day, so every outcome meets one snapshot of its week.

    Outcomes whose account has no snapshot then (history too short, account not yet active)
    are left out; the caller reports how many were evaluable.
    """
    wanted = outcomes.with_columns(_target=pl.col("outcome_date") - pl.duration(days=days))
    snapshots = history.with_columns(_target=pl.col("snapshot_date"))
    joined = (
        wanted.sort("_target")
        .join_asof(
            snapshots.sort("_target"),
            on="_target",
            by="account_id",
            strategy="backward",
            tolerance=dt.timedelta(days=step_days - 1),
        )
        .filter(pl.col("snapshot_date").is_not_null())
        .drop("_target")
    )
    return joined.with_columns(churned=pl.col("outcome") == CHURNED).sort("account_id", "outcome_date")
