"""Does the score predict churn? Metrics over (score, band, churned) rows; pure functions.

The statistics come from scikit-learn; this module only arranges the rows and reads the verdicts.
Higher scores mean healthier accounts, so the churn "risk" handed to scikit-learn is -score.
"""

from dataclasses import dataclass

import polars as pl

DECILES = 10


@dataclass(frozen=True)
class Verdict:
    monotonic: bool
    text: str


def auc(frame: pl.DataFrame, score: str = "health_score") -> float | None:
    """ROC AUC of -score for churn; None when only one class is present."""
    # scikit-learn takes seconds to import: only validation steps pay for it, never definitions loading
    from sklearn.metrics import roc_auc_score

    churned = frame["churned"].to_numpy()
    if churned.all() or not churned.any():
        return None
    return float(roc_auc_score(churned, -frame[score].cast(pl.Float64).to_numpy()))


def with_deciles(frame: pl.DataFrame, score: str = "health_score") -> pl.DataFrame:
    """Decile 1 holds the lowest scores (riskiest); ties broken by account id, so it is reproducible."""
    n = frame.height
    return (
        frame.sort(score, "account_id")
        .with_row_index("_rank")
        .with_columns(decile=(pl.col("_rank") * DECILES // max(n, 1) + 1).cast(pl.Int32))
        .drop("_rank")
    )


def churn_by(frame: pl.DataFrame, group: str, order: list) -> pl.DataFrame:
    """Accounts, churned and churn rate per group, in the given order (groups with no rows omitted)."""
    table = frame.group_by(group).agg(accounts=pl.len(), churned=pl.col("churned").sum().cast(pl.Int64))
    table = table.with_columns(churn_rate=(pl.col("churned") / pl.col("accounts")).round(4))
    ranks = pl.DataFrame(
        {group: order, "_order": list(range(len(order)))}, schema={group: table.schema[group], "_order": pl.Int64}
    )
    return table.join(ranks, on=group, how="inner").sort("_order").drop("_order")


def monotonic_verdict(table: pl.DataFrame, group: str) -> Verdict:
    """Churn must not rise from a riskier group to a healthier one (ties allowed)."""
    rates, names = table["churn_rate"].to_list(), table[group].to_list()
    for i in range(1, len(rates)):
        if rates[i] > rates[i - 1]:
            return Verdict(
                False, f"not monotonic: {names[i]} churns {rates[i]:.1%} > {names[i - 1]} {rates[i - 1]:.1%}"
            )
    return Verdict(True, "monotonic: churn falls (or stays) from each group to the next healthier one")


def horizon_metrics(frame: pl.DataFrame, bands: list[str], red: str, score: str = "health_score") -> dict:
    """Every figure of the validation report for one horizon. `bands` lowest first."""
    from sklearn.metrics import precision_score, recall_score

    n = frame.height
    churned = int(frame["churned"].sum()) if n else 0
    base_rate = churned / n if n else None
    per_band = churn_by(frame, "band", bands)
    deciled = with_deciles(frame, score)
    per_decile = churn_by(deciled, "decile", list(range(1, DECILES + 1)))
    top = per_decile.filter(pl.col("decile") == 1)
    lift = float(top["churn_rate"][0]) / base_rate if base_rate and top.height else None
    predicted = (frame["band"] == red).to_numpy()
    actual = frame["churned"].to_numpy()
    return {
        "accounts": n,
        "churned": churned,
        "churn_rate": round(base_rate, 4) if base_rate is not None else None,
        "auc": auc(frame, score),
        "per_band": per_band,
        "band_verdict": monotonic_verdict(per_band, "band"),
        "per_decile": per_decile,
        "decile_verdict": monotonic_verdict(per_decile, "decile"),
        "top_decile_lift": round(lift, 3) if lift is not None else None,
        "red_precision": float(precision_score(actual, predicted, zero_division=0)) if n else None,
        "red_recall": float(recall_score(actual, predicted, zero_division=0)) if n else None,
    }
