"""Account health stages (for example Success, Growth, Rescue, Sunk) over the published history.

Stages are assigned by the `stages` rules of the action rules file, with hysteresis: each snapshot
the first rule whose conditions hold names the stage the account is heading for; the account
moves there only once that rule has held for the stage's `enter_after` consecutive snapshots,
and stays in its stage until another one qualifies. On its first published snapshot an account
starts in the stage that snapshot names. No rule holding names the `default` stage.

Pure polars over the history frame (one row per account and snapshot), no loop over rows: a
stage at snapshot t is the candidate of the last snapshot on or before t that qualified.
"""

from typing import TYPE_CHECKING

import polars as pl

from cs_assets.actions.evaluate import rule_expr
from cs_assets.actions.rules import StageRules

ACCOUNT, DATE = "account_id", "snapshot_date"
STAGE, SINCE, HEADING = "health_stage", "stage_since", "heading_for"
if TYPE_CHECKING:
    from polars.expr.whenthen import ChainedThen, Then

STAGE_SCHEMA = {ACCOUNT: pl.String, DATE: pl.Date, STAGE: pl.String, SINCE: pl.Date, HEADING: pl.String}


def candidate_expr(stages: StageRules) -> pl.Expr:
    """The stage each snapshot's fields point to: the first rule that holds, else the default."""
    chain: Then | ChainedThen | None = None
    for rule in stages.rules:
        holds = rule_expr(rule).fill_null(False)
        chain = pl.when(holds).then(pl.lit(rule.name)) if chain is None else chain.when(holds).then(pl.lit(rule.name))
    return pl.lit(stages.default) if chain is None else chain.otherwise(pl.lit(stages.default))


def assign_stages(history: pl.DataFrame, stages: StageRules, step_days: int = 1) -> pl.DataFrame:
    """One row per account and snapshot: its stage, since when, and the stage it is heading for."""
    if history.is_empty():
        return pl.DataFrame(schema=STAGE_SCHEMA)
    enter_after = {rule.name: rule.enter_after for rule in stages.rules}
    frame = history.sort(ACCOUNT, DATE).with_columns(candidate_expr(stages).alias(HEADING))
    # a run is consecutive days heading for the same stage: a missing snapshot ends it, as for actions
    gap = (pl.col(DATE) - pl.col(DATE).shift(1).over(ACCOUNT)).dt.total_days() != step_days
    starts = (pl.col(HEADING).ne(pl.col(HEADING).shift(1).over(ACCOUNT)) | gap).fill_null(True)
    frame = frame.with_columns(_run=starts.cast(pl.Int64).cum_sum().over(ACCOUNT))
    frame = frame.with_columns(_streak=pl.int_range(1, pl.len() + 1).over(ACCOUNT, "_run"))
    needed = pl.col(HEADING).replace_strict(enter_after, default=1, return_dtype=pl.Int64)
    first = pl.col(DATE) == pl.col(DATE).min().over(ACCOUNT)
    qualifies = first | (pl.col("_streak") >= needed)
    frame = frame.with_columns(
        pl.when(qualifies).then(pl.col(HEADING)).otherwise(None).forward_fill().over(ACCOUNT).alias(STAGE)
    )
    moved = (pl.col(STAGE) != pl.col(STAGE).shift(1).over(ACCOUNT)).fill_null(True)
    frame = frame.with_columns(
        pl.when(moved).then(pl.col(DATE)).otherwise(None).forward_fill().over(ACCOUNT).alias(SINCE)
    )
    return frame.select(list(STAGE_SCHEMA)).sort(ACCOUNT, DATE)
