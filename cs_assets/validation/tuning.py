"""Data-driven weights: fit on older outcomes, compare champion and challenger on newer ones.

The fit is a regularised logistic regression (scikit-learn) of churn on the model's indicator
scores (0-100) as they were N days before each outcome. Its per-point coefficients become
suggested composite weights (an indicator whose higher score goes with *more* churn gets 0 and
is reported). The challenger is a copy of the current model file with those weights; it is
validated like any model file and never promoted automatically.
"""

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl
from sklearn.linear_model import LogisticRegression

from cs_assets.scoring.model_config import SUBSCORES, HealthModel, parse_model
from cs_assets.scoring.segments import band_expression

KEY = "_row"


@dataclass(frozen=True)
class TimeSplit:
    split_date: dt.date  # train: outcome_date < split_date; holdout: outcome_date >= split_date
    train: pl.DataFrame
    holdout: pl.DataFrame


def time_split(rows: pl.DataFrame, train_share: float) -> TimeSplit:
    """Oldest outcomes train, newest are held out; no outcome on or after the split date trains."""
    dates = rows["outcome_date"].sort()
    if dates.len() < 2:
        raise ValueError(f"need at least two outcomes to split, got {dates.len()}")
    split = dates[min(int(dates.len() * train_share), dates.len() - 1)]
    train = rows.filter(pl.col("outcome_date") < split)
    holdout = rows.filter(pl.col("outcome_date") >= split)
    return TimeSplit(split, train, holdout)


def score_rows(rows: pl.DataFrame, model: HealthModel) -> pl.DataFrame:
    """Score each row's indicator values with `model` (the production scoring path): score, band.

    Rows are keyed by their position, so one account with several outcomes is scored per row.
    """
    from cs_assets.scoring.assets import contributions_for

    rows = rows.drop("score", "band", strict=False)  # the published ones: replaced by this model's
    keyed = rows.with_row_index(KEY).with_columns(account_id=pl.col(KEY).cast(pl.String), is_active=pl.lit(True))
    points = contributions_for(keyed, model)
    scores = points.group_by("account_id").agg(score=pl.col("points").cast(pl.Float64).sum())
    scored = scores.with_columns(band=band_expression(model, pl.col("score")))
    return (
        rows.with_row_index(KEY)
        .with_columns(pl.col(KEY).cast(pl.Int64))
        .join(scored.with_columns(pl.col("account_id").cast(pl.Int64).alias(KEY)).drop("account_id"), on=KEY)
        .sort(KEY)
        .drop(KEY)
    )


def indicator_score_matrix(rows: pl.DataFrame, model: HealthModel) -> tuple[list[str], np.ndarray]:
    """Each row's 0-100 indicator scores (null where the model excludes missing data)."""
    from cs_assets.scoring.indicator_scores import score_indicators

    keyed = rows.with_row_index(KEY).with_columns(account_id=pl.col(KEY).cast(pl.String), is_active=pl.lit(True))
    long = score_indicators(keyed, model).select("account_id", "indicator", "indicator_score")
    names = [i.name for i in model.indicators]
    wide = long.pivot(on="indicator", index="account_id", values="indicator_score")
    wide = wide.with_columns(pl.col("account_id").cast(pl.Int64)).sort("account_id")
    return names, wide.select(names).to_numpy().astype(float)


def fit_weights(train: pl.DataFrame, model: HealthModel, c: float) -> pl.DataFrame:
    """Suggested composite weight per indicator (sums to 1), with the fitted coefficient."""
    names, x = indicator_score_matrix(train, model)
    y = train["churned"].to_numpy()
    if y.all() or not y.any():
        raise ValueError("the training outcomes are all churned or all renewed: nothing to fit")
    means = np.nanmean(np.where(np.isnan(x), np.nan, x), axis=0)
    means = np.where(np.isnan(means), 50.0, means)
    x = np.where(np.isnan(x), means, x)
    sd = x.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    fit = LogisticRegression(C=c, max_iter=2000).fit((x - means) / sd, y)
    per_point = fit.coef_[0] / sd  # change in churn log-odds per indicator-score point
    raw = np.clip(-per_point, 0, None)
    total = raw.sum()
    return pl.DataFrame(
        {
            "indicator": names,
            "subscore": [model.indicator(n).subscore for n in names],
            "coefficient_per_point": np.round(per_point, 6),
            "current_share": [_current_share(model, n) for n in names],
            "suggested_share": np.round(raw / total, 4) if total > 0 else np.zeros(len(names)),
        }
    )


def _current_share(model: HealthModel, name: str) -> float:
    rule = model.indicator(name)
    in_sub = sum(i.weight for i in model.indicators if i.subscore == rule.subscore)
    return round(model.subscore_weights[rule.subscore] * rule.weight / in_sub, 4) if in_sub else 0.0


def challenger_document(champion: dict, weights: pl.DataFrame, name_suffix: str = "challenger") -> dict:
    """The champion's model document with fitted weights: sub-score weights are the sums of their
    indicators' shares, indicator weights are their share in percent of the composite."""
    doc = {**champion, "name": f"{champion['name']}-{name_suffix}"}
    shares = dict(zip(weights["indicator"], weights["suggested_share"]))
    indicators = {}
    for name, rule in champion["indicators"].items():
        indicators[name] = {**rule, "weight": round(float(shares.get(name, 0.0)) * 100, 2)}
    subscores = {}
    for sub in SUBSCORES:
        members = [n for n, r in indicators.items() if r["subscore"] == sub]
        total = sum(indicators[n]["weight"] for n in members)
        # a weighted sub-score needs an indicator that still scores when data is missing
        scoring = [n for n in members if champion["indicators"][n]["missing"]["policy"] == "score"]
        if total > 0 and scoring and not any(indicators[n]["weight"] > 0 for n in scoring):
            indicators[scoring[0]]["weight"] = 0.5
            total += 0.5
        subscores[sub] = {**champion["subscores"][sub], "weight": round(total / 100, 4)}
    doc["indicators"], doc["subscores"] = indicators, subscores
    parse_model(doc, source="<challenger>")  # a challenger that does not validate is a bug here
    return doc


def migration_matrix(champion: pl.DataFrame, challenger: pl.DataFrame, bands: list[str]) -> pl.DataFrame:
    """Rows: champion band; columns: challenger band; cells: accounts (same rows in both frames)."""
    pairs = pl.DataFrame({"champion": champion["band"], "challenger": challenger["band"]})
    counts = pairs.group_by("champion", "challenger").len()
    grid = pl.DataFrame({"champion": bands}).join(pl.DataFrame({"challenger": bands}), how="cross")
    full = grid.join(counts, on=["champion", "challenger"], how="left").with_columns(pl.col("len").fill_null(0))
    wide = full.pivot(on="challenger", index="champion", values="len", sort_columns=False)
    order = pl.DataFrame({"champion": bands, "_o": list(range(len(bands)))})
    return wide.join(order, on="champion").sort("_o").drop("_o").select("champion", *bands)
