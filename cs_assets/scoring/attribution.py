"""Why a score changed between two snapshots: per-indicator parts, plus a model-change and a
segment-change part.

Points are exact decimals that add up to each score, so the parts add up to the change
exactly. When the two snapshots were scored differently (another model version, or the account
moved to another segment model), the later snapshot is re-scored the earlier way: indicator parts
are the change under the earlier model and segment (the data moved), and the rest is split into
the model change (`MODEL_CHANGE`) and the segment change (`SEGMENT_CHANGE`).
"""

import polars as pl

from cs_assets.scoring.composite import DECIMAL

MODEL_CHANGE = "(model change)"
SEGMENT_CHANGE = "(segment change)"
KEY = ["account_id", "indicator"]


def _totals(frame: pl.DataFrame, name: str) -> pl.DataFrame:
    return frame.group_by("account_id").agg(pl.col("points").cast(DECIMAL).sum().alias(name))


def attribute_change(
    before: pl.DataFrame,
    after: pl.DataFrame,
    after_under_before_model: pl.DataFrame | None = None,
    *,
    steps: list[tuple[str, pl.DataFrame]] | None = None,
) -> pl.DataFrame:
    """Per account: one row per indicator with `change`, plus a row per way of scoring that changed.

    `before`, `after` and the re-scored frames have columns account_id, indicator, points
    (Decimal). `steps` re-score the later snapshot's indicators, from the earlier way of scoring
    towards the later one: `[(label, frame), ...]`. Indicator parts are measured against the first
    frame; each label gets the difference between its frame's total and the next one's (the last
    one's against `after`). `after_under_before_model` is `steps=[(MODEL_CHANGE, frame)]`.
    Without a re-scored frame the whole change is data.
    """
    if after_under_before_model is not None:
        if steps:
            raise ValueError("give the re-scored snapshot either as after_under_before_model or as steps")
        steps = [(MODEL_CHANGE, after_under_before_model)]
    steps = steps or []
    reference = steps[0][1] if steps else after
    parts = (
        before.select(*KEY, points_before=pl.col("points").cast(DECIMAL))
        .join(reference.select(*KEY, points_after=pl.col("points").cast(DECIMAL)), on=KEY, how="full", coalesce=True)
        .with_columns(pl.col("points_before", "points_after").fill_null(pl.lit(0, dtype=DECIMAL)))
        .with_columns(change=(pl.col("points_after") - pl.col("points_before")).cast(DECIMAL))
    )
    frames = [parts]
    zero = pl.lit(0, dtype=DECIMAL)
    for i, (label, frame) in enumerate(steps):
        following = steps[i + 1][1] if i + 1 < len(steps) else after
        totals = (
            _totals(following, "new")
            .join(_totals(frame, "old"), on="account_id", how="full", coalesce=True)
            .with_columns(pl.col("new", "old").fill_null(zero))
        )
        frames.append(
            totals.select(
                "account_id",
                indicator=pl.lit(label),
                points_before=pl.col("old").cast(DECIMAL),
                points_after=pl.col("new").cast(DECIMAL),
                change=(pl.col("new") - pl.col("old")).cast(DECIMAL),
            )
        )
    return (
        pl.concat(frames, how="vertical")
        .with_columns(magnitude=pl.col("change").abs())
        .sort("account_id", "magnitude", "indicator", descending=[False, True, False])
        .drop("magnitude")
    )
