"""Generated outcomes with a known truth, and the calibration settings the tests fit with."""

import datetime as dt

import numpy as np
import polars as pl
import yaml

from cs_assets.validation.config import DEFAULT_VALIDATION_PATH

D = dt.date(2026, 6, 1)

TRUTH_MODEL = {
    "version": 1,
    "name": "truth",
    "subscores": {"co": {"weight": 1}, "cx": {"weight": 1}},
    "indicators": {
        # the current model's cut points are badly placed on purpose: everything above 100 ties
        "active_days": {
            "subscore": "co",
            "weight": 1,
            "direction": "higher_is_better",
            "scoring": {"function": "linear", "worst": 100, "best": 200},
            "missing": {"policy": "score", "score": 0},
        },
        "days_idle": {
            "subscore": "co",
            "weight": 1,
            "direction": "lower_is_better",
            "scoring": {"function": "thresholds", "cuts": [3], "scores": [100, 0]},
            "missing": {"policy": "exclude"},
        },
        "noise": {
            "subscore": "cx",
            "weight": 5,
            "direction": "higher_is_better",
            "scoring": {"function": "linear", "worst": 0, "best": 1},
            "missing": {"policy": "score", "score": 50},
        },
    },
    "bands": [{"name": "red", "min_score": 0}, {"name": "yellow", "min_score": 40}, {"name": "green", "min_score": 70}],
    "lifecycle": {"onboarding_days": 90, "renewal_window_days": 60},
    "triage": {s: {"red": "P1", "yellow": "P2", "green": "P3"} for s in ("onboarding", "adoption", "renewal_window")},
}


def truth_rows(n: int = 2400, seed: int = 5) -> pl.DataFrame:
    """Churn driven by a hidden health h that two indicators see with noise; a third is pure noise."""
    rng = np.random.default_rng(seed)
    h = rng.beta(2, 2, n)
    churned = rng.random(n) < 1 / (1 + np.exp(8 * (h - 0.35)))
    active = np.clip(np.round(30 * h + rng.normal(0, 5, n)), 0, 30)
    idle = np.clip(np.round(rng.exponential(1 + 60 * (1 - h) ** 3)), 0, 365)
    idle = np.where(rng.random(n) < 0.08, np.nan, idle)  # some accounts with no data at all
    return pl.DataFrame(
        {
            "account_id": [f"A{i:05d}" for i in range(n)],
            "outcome_date": [D + dt.timedelta(days=int(d)) for d in rng.integers(0, 180, n)],
            "churned": churned,
            "active_days": active,
            "days_idle": idle,
            "noise": rng.random(n),
        }
    )


def calibration_settings(**overrides):
    raw = yaml.safe_load(DEFAULT_VALIDATION_PATH.read_text())["calibration"]
    raw.update(overrides)
    from cs_assets.validation.config import CalibrationDecl

    return CalibrationDecl.model_validate(raw)
