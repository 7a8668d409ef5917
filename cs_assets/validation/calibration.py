"""Calibration: a candidate health model fitted from the published history and the outcomes.

Pure functions over polars frames and numpy arrays (scikit-learn is imported where it is used).
From the outcomes, each with the account's indicator values N days before it:

1. **Split.** The newest outcomes are the holdout when outcomes have several dates (nothing on or
   after the split date trains); when they share one date, a seeded stratified sample is.
2. **Scoring functions.** Per scored indicator, the training values are cut into bins of at least
   `min_accounts_per_bin` outcomes, churn per bin is made monotonic in the configured direction
   (isotonic regression), and the bins become a `piecewise_linear` function from 0 (the bin that
   churns most) to 100 (the one that churns least). No data is scored by the churn of the
   accounts without data. When the data shows the opposite direction, the fit says so.
3. **Weights.** An L2 logistic regression of churn on the fitted indicator scores; an indicator
   whose score goes with *more* churn gets no weight and is reported.
4. **Bands.** Cut points on the candidate's training scores that maximise how well the bands
   separate churn (binomial likelihood), with churn falling from each band to the next and every
   band holding at least `min_band_share` of the accounts.
5. **Segments.** With segment models, the default is fitted on every training outcome (every
   account informs the base), then each segment with `min_outcomes_per_class` churned and
   retained training outcomes of its own is fitted again on those alone (steps 2-4) and gets the
   fit as its overrides. A segment with fewer keeps its configured overrides over the fitted
   default, and the report says so.
6. **Report, on the holdout only:** AUC of the candidate, of the current model and of every
   indicator alone, churn per band, and the band migration matrix current -> candidate.

The same history, outcomes, model and settings give the same candidate, byte for byte.
"""

import copy
import datetime as dt
import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from cs_assets.scoring.indicator_scores import score_indicators
from cs_assets.scoring.model_config import DEFAULT_SEGMENT, HealthModel, parse_model
from cs_assets.scoring.segments import SEGMENT_MODEL, segment_band_expression

KEY = "_row"
TIME, STRATIFIED = "time", "stratified"


@dataclass(frozen=True)
class Split:
    method: str  # time | stratified
    split_date: dt.date | None  # time: train before it, holdout from it on
    train: pl.DataFrame
    holdout: pl.DataFrame


def split_outcomes(rows: pl.DataFrame, holdout_share: float, seed: int) -> Split:
    """Hold out the newest outcomes, or a seeded stratified share when all have one date."""
    rows = rows.sort("outcome_date", "account_id")
    dates = rows["outcome_date"]
    if dates.n_unique() >= 2:
        position = min(max(int(round(rows.height * (1 - holdout_share))), 1), rows.height - 1)
        split = dates[position]
        train = rows.filter(pl.col("outcome_date") < split)
        holdout = rows.filter(pl.col("outcome_date") >= split)
        if train.height and holdout.height:
            return Split(TIME, split, train, holdout)
    rng = np.random.default_rng(seed)
    held = np.zeros(rows.height, dtype=bool)
    churned = rows["churned"].to_numpy()
    for value in (True, False):
        members = np.flatnonzero(churned == value)
        take = int(round(len(members) * holdout_share))
        held[rng.permutation(members)[:take]] = True
    mask = pl.Series(held)
    return Split(STRATIFIED, None, rows.filter(~mask), rows.filter(mask))


# --------------------------------------------------------------------------- scoring functions


@dataclass(frozen=True)
class FittedScoring:
    name: str
    direction: str
    points: tuple[tuple[float, float], ...]  # (value, score), values ascending; () = not fitted
    missing_score: float | None  # None: keep the current missing policy
    bins: tuple[tuple[float, float, int, float], ...] = ()  # (low, high, outcomes, churn rate)
    note: str = ""  # why it was not fitted, or that the data contradicts the direction


def _bins(x: np.ndarray, min_per_bin: int, max_bins: int) -> list[np.ndarray]:
    """Index arrays of consecutive value ranges, each with at least `min_per_bin` rows."""
    order = np.argsort(x, kind="stable")
    xs = x[order]
    n = len(xs)
    wanted = min(max_bins, n // min_per_bin)
    if wanted < 2:
        return []
    edges = sorted({float(xs[min(n - 1, (k * n) // wanted)]) for k in range(1, wanted)})
    labels = np.searchsorted(np.array(edges), xs, side="right")
    groups = [order[labels == b] for b in range(len(edges) + 1)]
    groups = [g for g in groups if len(g)]
    merged: list[np.ndarray] = []
    for g in groups:  # a too-small range joins the one before it (or the next, for the first)
        if merged and len(merged[-1]) < min_per_bin:
            merged[-1] = np.concatenate([merged[-1], g])
        else:
            merged.append(g)
    if len(merged) > 1 and len(merged[-1]) < min_per_bin:
        last = merged.pop()
        merged[-1] = np.concatenate([merged[-1], last])
    return merged if len(merged) >= 2 else []


def _isotonic(rates: np.ndarray, weights: np.ndarray, increasing: bool) -> np.ndarray:
    from sklearn.isotonic import IsotonicRegression

    fit = IsotonicRegression(increasing=increasing)
    return fit.fit_transform(np.arange(len(rates), dtype=float), rates, sample_weight=weights)


def _round(value: float, digits: int = 6) -> float:
    if value == 0 or not math.isfinite(value):
        return float(value)
    return float(round(value, digits - 1 - int(math.floor(math.log10(abs(value))))))


def fit_scoring(
    name: str, direction: str, values: np.ndarray, churned: np.ndarray, min_per_bin: int, max_bins: int
) -> FittedScoring:
    """A monotone scoring function for one indicator, from training values (nan = no data)."""
    known = ~np.isnan(values)
    x, y = values[known], churned[known].astype(float)
    groups = _bins(x, min_per_bin, max_bins)
    if not groups:
        if len(x) < 2 * min_per_bin:
            why = f"{len(x)} training value(s), need {2 * min_per_bin} for two bins of {min_per_bin}"
        else:
            common = float(np.unique(x, return_counts=True)[1].max()) / len(x)
            why = f"the values do not split into two ranges of {min_per_bin} outcomes ({common:.0%} share one value)"
        return FittedScoring(name, direction, (), None, note=f"not fitted: {why}; the current scoring is kept")
    counts = np.array([len(g) for g in groups], dtype=float)
    rates = np.array([y[g].mean() for g in groups])
    # higher is better: churn must fall as the value rises
    churn_rises = direction == "lower_is_better"
    fitted = _isotonic(rates, counts, increasing=churn_rises)
    opposite = _isotonic(rates, counts, increasing=not churn_rises)
    bins = tuple((float(x[g].min()), float(x[g].max()), len(g), round(float(r), 4)) for g, r in zip(groups, rates))
    spread = float(fitted.max() - fitted.min())
    sse = float((counts * (rates - fitted) ** 2).sum())
    sse_opposite = float((counts * (rates - opposite) ** 2).sum())
    note = ""
    if sse_opposite < 0.5 * sse and float(opposite.max() - opposite.min()) > 0.02:
        note = f"the data shows the opposite of {direction}: churn per bin {[round(float(r), 3) for r in rates]}"
    if spread <= 1e-9:
        return FittedScoring(
            name,
            direction,
            (),
            None,
            bins,
            note or "not fitted: churn does not change with the value in the configured direction",
        )
    scores = 100.0 * (fitted.max() - fitted) / spread
    points: list[tuple[float, float]] = []
    for g, s in zip(groups, scores):
        value = _round(float(np.median(x[g])))
        if points and value <= points[-1][0]:
            continue
        points.append((value, round(float(s), 2)))
    if len(points) < 2:
        return FittedScoring(name, direction, (), None, bins, "not fitted: the bins collapse to one value")
    missing = None
    if (~known).sum() >= min_per_bin:
        rate = float(churned[~known].mean())
        missing = round(float(np.clip(100.0 * (fitted.max() - rate) / spread, 0.0, 100.0)), 2)
    return FittedScoring(name, direction, tuple(points), missing, bins, note)


# --------------------------------------------------------------------------- weights and bands


def score_matrix(rows: pl.DataFrame, model: HealthModel) -> tuple[list[str], np.ndarray]:
    """Each row's 0-100 indicator scores under `model` (nan where the model excludes missing data)."""
    keyed = rows.with_row_index(KEY).with_columns(account_id=pl.col(KEY).cast(pl.String), is_active=pl.lit(True))
    long = score_indicators(keyed, model).select("account_id", "indicator", "indicator_score")
    names = [i.name for i in model.indicators]
    wide = long.pivot(on="indicator", index="account_id", values="indicator_score")
    wide = wide.with_columns(pl.col("account_id").cast(pl.Int64)).sort("account_id")
    return names, wide.select(names).to_numpy().astype(float)


@dataclass(frozen=True)
class FittedWeights:
    shares: dict[str, float]  # indicator -> share of the composite (sums to 1)
    coefficients: dict[str, float]  # change of churn log-odds per indicator-score point
    notes: dict[str, str] = field(default_factory=dict)


def fit_weights(names: list[str], x: np.ndarray, churned: np.ndarray, c: float) -> FittedWeights:
    """Non-negative composite weights: an L2 logistic regression of churn on the indicator scores,
    refitted without every indicator whose higher score went with more churn, until none does.

    Dropping such an indicator and refitting (rather than zeroing its weight after one fit) keeps
    the remaining weights right: in one joint fit they had compensated for it."""
    from sklearn.linear_model import LogisticRegression

    # an indicator with no value on any training outcome (e.g. a note source newer than the
    # horizon) is filled with 50: it does not vary, so it gets no weight below
    seen = ~np.isnan(x)
    counts = seen.sum(axis=0)
    means = np.where(counts > 0, np.where(seen, x, 0.0).sum(axis=0) / np.maximum(counts, 1), 50.0)
    x = np.where(seen, x, means)
    sd = x.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    z = (x - means) / sd
    kept = [i for i in range(len(names)) if x[:, i].std() > 0]
    per_point = np.zeros(len(names))
    notes = {
        names[i]: "no weight: its score does not vary on the training outcomes"
        for i in range(len(names))
        if i not in kept
    }
    while kept:
        fit = LogisticRegression(C=c, max_iter=5000).fit(z[:, kept], churned)
        coefficients = fit.coef_[0] / sd[kept]
        wrong = [i for i, p in zip(kept, coefficients) if p >= 0]
        if not wrong:
            per_point[kept] = coefficients
            break
        for i, p in zip(kept, coefficients):
            if p >= 0:
                notes[names[i]] = "no weight: a higher score went with more churn once the others were known"
        kept = [i for i in kept if i not in wrong]
    raw = -per_point
    total = raw.sum()
    shares = {n: (float(r / total) if total > 0 else 0.0) for n, r in zip(names, raw)}
    return FittedWeights(shares, {n: float(p) for n, p in zip(names, per_point)}, notes)


def fit_band_cuts(scores: np.ndarray, churned: np.ndarray, n_bands: int, min_share: float) -> tuple[list[float], str]:
    """Cut points (n_bands - 1, ascending) that separate churn best with falling churn and a
    minimum share per band; a quantile fallback when no cut satisfies both (said in the note)."""
    n = len(scores)
    steps = 40 if n_bands <= 4 else 20
    candidates = sorted({round(float(np.quantile(scores, k / steps)), 1) for k in range(1, steps)} - {0.0})
    candidates = [c for c in candidates if 0 < c < 100]
    best, best_ll = None, -math.inf
    k_total = churned.astype(float)
    for cuts in itertools.combinations(candidates, n_bands - 1):
        edges = [-math.inf, *cuts, math.inf]
        rates, ll, ok = [], 0.0, True
        for low, high in zip(edges, edges[1:]):
            inside = (scores >= low) & (scores < high)
            size = int(inside.sum())
            if size < min_share * n:
                ok = False
                break
            k = float(k_total[inside].sum())
            p = k / size
            rates.append(p)
            ll += (k * math.log(p) if k else 0.0) + ((size - k) * math.log(1 - p) if size - k else 0.0)
        if not ok or any(b >= a for a, b in zip(rates, rates[1:])):
            continue
        if ll > best_ll:
            best, best_ll = list(cuts), ll
    if best is not None:
        return best, "cut points separate churn best, with churn falling band by band"
    quantiles = [round(float(np.quantile(scores, k / n_bands)), 1) for k in range(1, n_bands)]
    quantiles = sorted(set(q for q in quantiles if 0 < q < 100))
    return quantiles, "no cut points give falling churn with the minimum band share: equal-share bands instead"


# --------------------------------------------------------------------------- the candidate


@dataclass(frozen=True)
class Calibration:
    document: dict  # the candidate model file
    candidate: HealthModel
    split: Split
    fitted: dict[str, FittedScoring]
    weights: FittedWeights
    band_note: str
    report: dict  # holdout figures (JSON-able)


def candidate_document(
    current: dict,
    fitted: dict[str, FittedScoring],
    weights: FittedWeights,
    cuts: list[float],
    name_suffix: str = "calibrated",
) -> dict:
    doc = copy.deepcopy(current)
    doc["name"] = f"{current['name']}-{name_suffix}"
    indicators = {}
    for name, rule in current["indicators"].items():
        rule = copy.deepcopy(rule)
        f = fitted.get(name)
        if f is not None and f.points:
            rule["scoring"] = {"function": "piecewise_linear", "points": [[x, s] for x, s in f.points]}
            if f.missing_score is not None:
                rule["missing"] = {"policy": "score", "score": f.missing_score}
        rule["weight"] = round(weights.shares.get(name, 0.0) * 100, 2)
        indicators[name] = rule
    subscores = {}
    for sub, decl in current["subscores"].items():
        total = sum(r["weight"] for r in indicators.values() if r["subscore"] == sub)
        subscores[sub] = {**decl, "weight": round(total / 100, 4)}
    # an account with no data anywhere still needs a score: the heaviest indicator scores it
    if not any(r["weight"] > 0 and r["missing"]["policy"] == "score" for r in indicators.values()):
        heaviest = max(indicators, key=lambda n: indicators[n]["weight"])
        indicators[heaviest]["missing"] = {"policy": "score", "score": 0}
    doc["indicators"], doc["subscores"] = indicators, subscores
    doc["bands"] = [{"name": current["bands"][0]["name"], "min_score": 0}] + [
        {"name": b["name"], "min_score": float(c)} for b, c in zip(current["bands"][1:], cuts)
    ]
    return doc


def score_rows(rows: pl.DataFrame, model: HealthModel) -> pl.DataFrame:
    """Score each row's indicator values with `model` (the production scoring path): score, band."""
    from cs_assets.scoring.assets import contributions_for

    rows = rows.drop("score", "band", strict=False)
    keyed = with_known_segments(rows, model).with_row_index(KEY)
    keyed = keyed.with_columns(account_id=pl.col(KEY).cast(pl.String), is_active=pl.lit(True))
    points = contributions_for(keyed, model)
    scores = points.group_by("account_id").agg(
        score=pl.col("points").cast(pl.Float64).sum(), segment=pl.col(SEGMENT_MODEL).first()
    )
    scored = scores.with_columns(band=segment_band_expression(model, pl.col("score"), pl.col("segment"))).drop(
        "segment"
    )
    return (
        rows.with_row_index(KEY)
        .with_columns(pl.col(KEY).cast(pl.Int64))
        .join(scored.with_columns(pl.col("account_id").cast(pl.Int64).alias(KEY)).drop("account_id"), on=KEY)
        .sort(KEY)
        .drop(KEY)
    )


def with_known_segments(rows: pl.DataFrame, model: HealthModel) -> pl.DataFrame:
    """Rows keep the segment model that scored them where `model` still has it; rows of a segment
    it does not have (or of a release before segments) are the default's."""
    if SEGMENT_MODEL not in rows.columns:
        return rows.with_columns(pl.lit(DEFAULT_SEGMENT).alias(SEGMENT_MODEL))
    known = pl.col(SEGMENT_MODEL).is_in(model.segment_names).fill_null(False)
    return rows.with_columns(pl.when(known).then(pl.col(SEGMENT_MODEL)).otherwise(pl.lit(DEFAULT_SEGMENT)))


def migration_matrix(current: pl.DataFrame, candidate: pl.DataFrame, bands: list[str]) -> pl.DataFrame:
    """Rows: current band; columns: candidate band; cells: accounts (same rows in both frames)."""
    pairs = pl.DataFrame({"current": current["band"], "candidate": candidate["band"]})
    counts = pairs.group_by("current", "candidate").len()
    grid = pl.DataFrame({"current": bands}).join(pl.DataFrame({"candidate": bands}), how="cross")
    full = grid.join(counts, on=["current", "candidate"], how="left").with_columns(pl.col("len").fill_null(0))
    wide = full.pivot(on="candidate", index="current", values="len", sort_columns=False)
    order = pl.DataFrame({"current": bands, "_o": list(range(len(bands)))})
    return wide.join(order, on="current").sort("_o").drop("_o").select("current", *bands)


def _auc(scores: np.ndarray, churned: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score

    if churned.all() or not churned.any():
        return None
    return round(float(roc_auc_score(churned, -scores)), 4)


def _band_table(scored: pl.DataFrame, bands: list[str]) -> list[dict]:
    table = scored.group_by("band").agg(accounts=pl.len(), churned=pl.col("churned").sum().cast(pl.Int64))
    by = {r["band"]: r for r in table.iter_rows(named=True)}
    return [
        {
            "band": b,
            "accounts": by.get(b, {}).get("accounts", 0),
            "churned": by.get(b, {}).get("churned", 0),
            "churn_rate": round(by[b]["churned"] / by[b]["accounts"], 4) if b in by and by[b]["accounts"] else None,
        }
        for b in bands
    ]


def _enough(y: np.ndarray, least: int) -> bool:
    churned = int(y.sum())
    return churned >= least and len(y) - churned >= least


def _fit(
    train: pl.DataFrame, model: HealthModel, document: dict, settings, catalogue
) -> tuple[dict, dict[str, FittedScoring], FittedWeights, str]:
    """Steps 2-4 for one model (no segments): the fitted document, scoring, weights, band note."""
    y_train = train["churned"].to_numpy()
    fitted = {}
    for rule in model.indicators:
        values = (
            train[rule.name].cast(pl.Float64).fill_nan(None).to_numpy().astype(float)
            if rule.name in train.columns
            else np.full(train.height, np.nan)
        )
        fitted[rule.name] = fit_scoring(
            rule.name, rule.direction, values, y_train, settings.min_accounts_per_bin, settings.max_bins
        )
    equal = {r.name: 1.0 / len(model.indicators) for r in model.indicators}
    shaped = candidate_document(document, fitted, FittedWeights(equal, {}), [b.min_score for b in model.bands[1:]])
    shaped_model = parse_model(shaped, "<candidate scoring>", catalogue)
    names, x_train = score_matrix(train, shaped_model)
    weights = fit_weights(names, x_train, y_train, settings.regularisation_c)
    weighted = candidate_document(document, fitted, weights, [b.min_score for b in model.bands[1:]])
    weighted_model = parse_model(weighted, "<candidate weights>", catalogue)
    plain = train.drop(SEGMENT_MODEL, strict=False)  # scored by this model alone
    train_scores = score_rows(plain, weighted_model)["score"].to_numpy()
    cuts, band_note = fit_band_cuts(train_scores, y_train, len(model.bands), settings.min_band_share)
    return candidate_document(document, fitted, weights, cuts), fitted, weights, band_note


def _segment_overrides(fitted_document: dict) -> dict:
    """A fitted segment document as a segment's overrides: every indicator's weight, scoring and
    missing-data score, the sub-score weights and the band cut points."""
    keep = ("weight", "scoring", "missing")
    return {
        "indicators": {n: {k: r[k] for k in keep if k in r} for n, r in fitted_document["indicators"].items()},
        "subscores": fitted_document["subscores"],
        "bands": fitted_document["bands"],
    }


def calibrate(
    rows: pl.DataFrame, current: HealthModel, current_document: dict, settings, catalogue=None
) -> Calibration:
    """The candidate model and its holdout report. `rows`: one row per outcome with `churned` and
    every indicator value as it was `horizon_days` before the outcome (and the `segment_model`
    that scored it). `settings`: the `calibration` section of validation.yaml."""
    split = split_outcomes(with_known_segments(rows, current), settings.holdout_share, settings.seed)
    train, holdout = split.train, split.holdout
    y_train = train["churned"].to_numpy()
    least = settings.min_outcomes_per_class
    churned_n = int(y_train.sum())
    if not _enough(y_train, least) or holdout.is_empty():
        raise ValueError(
            f"not calibrated: {rows.height} outcome(s) with indicators {settings.horizon_days} days before; the training "
            f"part has {churned_n} churned and {len(y_train) - churned_n} retained (need {least} of each) and the "
            f"holdout {holdout.height} (backfill more history, or lower calibration.min_outcomes_per_class)"
        )
    base_document = {k: v for k, v in current_document.items() if k != "segments"}
    base = parse_model(base_document, "<current default>", catalogue) if current.segments else current
    document, fitted, weights, band_note = _fit(train, base, base_document, settings, catalogue)
    segment_notes: list[dict[str, Any]] = []
    if current.segments:
        declared = current_document["segments"]
        segments = []
        for decl, segment in zip(declared, current.segments):
            own = train.filter(pl.col(SEGMENT_MODEL) == segment.name)
            y = own["churned"].to_numpy()
            note = {"segment": segment.name, "train_outcomes": own.height, "train_churned": int(y.sum())}
            if _enough(y, least):
                fitted_doc, _, _, seg_band_note = _fit(own, segment.model, segment.model.document, settings, catalogue)
                segments.append(
                    {
                        **{k: decl[k] for k in ("name", "description", "when") if k in decl},
                        **_segment_overrides(fitted_doc),
                    }
                )
                note.update(fitted=True, note=f"fitted on its own outcomes; {seg_band_note}")
            else:
                segments.append(copy.deepcopy(decl))
                note.update(
                    fitted=False,
                    note=f"not fitted: {int(y.sum())} churned and {len(y) - int(y.sum())} retained training outcomes "
                    f"(need {least} of each); keeps its configured overrides over the fitted default",
                )
            segment_notes.append(note)
        document = {**document, "segments": segments}
    candidate = parse_model(document, "<candidate>", catalogue)
    report = holdout_report(split, current, candidate)
    if segment_notes:
        report["segments"] = [
            {**n, **_segment_holdout(split.holdout, current, candidate, str(n["segment"]))} for n in segment_notes
        ]
    return Calibration(document, candidate, split, fitted, weights, band_note, report)


def _segment_holdout(holdout: pl.DataFrame, current: HealthModel, candidate: HealthModel, name: str) -> dict:
    rows = holdout.filter(pl.col(SEGMENT_MODEL) == name)
    y = rows["churned"].to_numpy()
    if rows.is_empty():
        return {"holdout_outcomes": 0, "candidate_auc": None, "current_auc": None}
    return {
        "holdout_outcomes": rows.height,
        "candidate_auc": _auc(score_rows(rows, candidate)["score"].to_numpy(), y),
        "current_auc": _auc(score_rows(rows, current)["score"].to_numpy(), y),
    }


def holdout_report(split: Split, current: HealthModel, candidate: HealthModel) -> dict:
    """Every comparison on the holdout only."""
    holdout = split.holdout
    y = holdout["churned"].to_numpy()
    bands = [b.name for b in candidate.bands]
    scored_current = score_rows(holdout, current)
    scored_candidate = score_rows(holdout, candidate)
    names, x = score_matrix(holdout, candidate)
    # rows of the JSON report: the indicator's name and its AUC (None: one class only)
    singles: list[dict[str, Any]] = []
    for i, name in enumerate(names):
        column = np.where(np.isnan(x[:, i]), 50.0, x[:, i])
        singles.append({"indicator": name, "holdout_auc": _auc(column, y)})
    singles.sort(key=lambda r: (-(r["holdout_auc"] or 0), r["indicator"]))
    best = singles[0] if singles else {"indicator": None, "holdout_auc": None}
    migration = migration_matrix(scored_current, scored_candidate, bands)
    return {
        "split": split.method,
        "split_date": split.split_date.isoformat() if split.split_date else None,
        "train_outcomes": split.train.height,
        "train_churned": int(split.train["churned"].sum()),
        "holdout_outcomes": holdout.height,
        "holdout_churned": int(y.sum()),
        "candidate_auc": _auc(scored_candidate["score"].to_numpy(), y),
        "current_auc": _auc(scored_current["score"].to_numpy(), y),
        "best_single_indicator": best["indicator"],
        "best_single_auc": best["holdout_auc"],
        "single_indicator_auc": singles,
        "candidate_bands": _band_table(scored_candidate.with_columns(churned=pl.Series(y)), bands),
        "current_bands": _band_table(
            scored_current.with_columns(churned=pl.Series(y)), [b.name for b in current.bands]
        ),
        "migration": {"rows_current_columns_candidate": bands, "counts": [list(r[1:]) for r in migration.rows()]},
        "candidate_distinct_scores": int(scored_candidate["score"].n_unique()),
    }
