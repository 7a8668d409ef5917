"""Why a score changed between two snapshots: per-indicator parts plus a model-change part.

Points are exact decimals that add up to each score, so the parts add up to the change
exactly. When the two snapshots were scored with different models, the later snapshot is
re-scored with the earlier model: indicator parts are the change under the earlier model (the
data moved), and the rest is the model change (`MODEL_CHANGE`).
"""

import polars as pl

from cs_assets.scoring.composite import DECIMAL

MODEL_CHANGE = "(model change)"
KEY = ["account_id", "indicator"]


def attribute_change(
    before: pl.DataFrame, after: pl.DataFrame, after_under_before_model: pl.DataFrame | None = None
) -> pl.DataFrame:
    """Per account: one row per indicator with `change`, plus a `MODEL_CHANGE` row when relevant.

    `before`, `after` and `after_under_before_model` have columns account_id, indicator, points
    (Decimal). Pass `after_under_before_model` (the later snapshot's indicators scored with the
    earlier model) when the model versions differ; without it the whole change is data.
    """
    reference = after if after_under_before_model is None else after_under_before_model
    parts = (
        before.select(*KEY, points_before=pl.col("points").cast(DECIMAL))
        .join(reference.select(*KEY, points_after=pl.col("points").cast(DECIMAL)), on=KEY, how="full", coalesce=True)
        .with_columns(pl.col("points_before", "points_after").fill_null(pl.lit(0, dtype=DECIMAL)))
        .with_columns(change=(pl.col("points_after") - pl.col("points_before")).cast(DECIMAL))
    )
    frames = [parts]
    if after_under_before_model is not None:
        totals = (
            after.group_by("account_id")
            .agg(new_model=pl.col("points").cast(DECIMAL).sum())
            .join(
                after_under_before_model.group_by("account_id").agg(old_model=pl.col("points").cast(DECIMAL).sum()),
                on="account_id",
                how="full",
                coalesce=True,
            )
            .with_columns(pl.col("new_model", "old_model").fill_null(pl.lit(0, dtype=DECIMAL)))
        )
        frames.append(
            totals.select(
                "account_id",
                indicator=pl.lit(MODEL_CHANGE),
                points_before=pl.col("old_model").cast(DECIMAL),
                points_after=pl.col("new_model").cast(DECIMAL),
                change=(pl.col("new_model") - pl.col("old_model")).cast(DECIMAL),
            )
        )
    return (
        pl.concat(frames, how="vertical")
        .with_columns(magnitude=pl.col("change").abs())
        .sort("account_id", "magnitude", "indicator", descending=[False, True, False])
        .drop("magnitude")
    )
