"""Rule evaluation over the published history: pure polars, no Dagster.

An *episode* is a maximal run of snapshots of one account in which a rule's condition holds; a
gap in the history (snapshots missing) neither ends nor starts one, since the state across it is
unknown. A rule fires once per episode, on the first snapshot where the condition has held for
`for_snapshots` consecutive snapshots; episodes that never do never fire. An episode that starts on the account's first published snapshot
is its baseline and does not fire (unless the rule sets `fire_on_first_snapshot`): the first run
on a new customer base does not flood the team with states the accounts were already in. While the condition keeps holding nothing new fires; once it stops
holding for a snapshot, the next episode can fire again. That is the hysteresis, and it is what
makes the action id `rule:account:first_snapshot` stable across recomputations.
"""

import datetime as dt

import polars as pl

from cs_assets.actions.rules import NUMBER, ActionRule, ActionRules, Condition, StageRule
from cs_assets.frames import scalar

ACCOUNT, DATE = "account_id", "snapshot_date"
OPEN, CLEARED, NO_LONGER_SCORED = "open", "cleared", "no_longer_scored"
PRIORITY_ORDER = {"P1": 1, "P2": 2, "P3": 3, "P4": 4}

ACTION_SCHEMA = {
    "action_id": pl.String,
    "account_id": pl.String,
    "rule": pl.String,
    "action": pl.String,
    "priority": pl.String,
    "owner": pl.String,
    "reason": pl.String,
    "first_snapshot": pl.Date,
    "last_snapshot": pl.Date,
    "snapshots_held": pl.Int64,
    "status": pl.String,
    "score_at_trigger": pl.Float64,
    "band_at_trigger": pl.String,
    "latest_score": pl.Float64,
    "latest_band": pl.String,
}

SYMBOLS = {"lt": "<", "lte": "≤", "gt": ">", "gte": "≥", "eq": "=", "ne": "≠"}


def condition_expr(c: Condition) -> pl.Expr:
    """True where the condition holds; a null field holds only with `if_missing`."""
    col = pl.col(c.field)
    if c.op == "is_null":
        return col.is_null()
    if c.op == "not_null":
        return col.is_not_null()
    expr = {
        "lt": lambda: col < c.value,
        "lte": lambda: col <= c.value,
        "gt": lambda: col > c.value,
        "gte": lambda: col >= c.value,
        "eq": lambda: col == c.value,
        "ne": lambda: col != c.value,
        "between": lambda: col.is_between(c.value[0], c.value[1], closed="both"),
        "in": lambda: col.is_in(list(c.value)),
        "not_in": lambda: ~col.is_in(list(c.value)),
    }[c.op]()
    return pl.when(col.is_null()).then(pl.lit(c.if_missing)).otherwise(expr)


def rule_expr(rule: ActionRule | StageRule) -> pl.Expr:
    parts = [condition_expr(c) for c in rule.conditions]
    return pl.all_horizontal(parts) if rule.combine == "all" else pl.any_horizontal(parts)


def _value_text(c: Condition) -> pl.Expr:
    col = pl.col(c.field)
    if c.kind == NUMBER:
        # 21.0 -> "21", 0.333333 -> "0.33": readable, and stable for the same inputs
        text = col.round(2).cast(pl.String).str.replace(r"\.0$", "")
    else:
        text = col.cast(pl.String)
    return pl.when(col.is_null()).then(pl.lit("no data")).otherwise(text)


def _limit_text(c: Condition) -> str:
    if c.op in ("is_null", "not_null"):
        return "no value" if c.op == "is_null" else "has a value"
    if c.op == "between":
        return f"within {c.value[0]:g}..{c.value[1]:g}"
    if c.op in ("in", "not_in"):
        return f"{'in' if c.op == 'in' else 'not in'} {'/'.join(c.value)}"
    value = f"{c.value:g}" if isinstance(c.value, float) else c.value
    return f"{SYMBOLS[c.op]} {value}"


def reason_expr(rule: ActionRule) -> pl.Expr:
    """'Renewal within 60 days and not green: days_to_renewal = 45 (within 0..60), band = yellow (≠ green)'."""
    parts = []
    for c in rule.conditions:
        # "band = red" says it all; otherwise the value and the limit it was held against
        limit = "" if c.op == "eq" else f" ({_limit_text(c)})"
        parts.append(pl.format(f"{c.field} = {{}}{limit}", _value_text(c)))
    reason = pl.concat_str([pl.lit(f"{rule.description}: "), pl.concat_str(parts, separator=", ")])
    if rule.for_snapshots > 1:
        reason = pl.concat_str([reason, pl.lit(f", for {rule.for_snapshots} snapshots in a row")])
    return reason


def rule_episodes(history: pl.DataFrame, rule: ActionRule, step_days: int = 1) -> pl.DataFrame:
    """The actions one rule produced over the history (one row per firing episode)."""
    frame = history.sort(ACCOUNT, DATE).with_columns(
        holds=rule_expr(rule).fill_null(False), first_seen=pl.col(DATE).min().over(ACCOUNT)
    )
    # An episode ends only where the condition is seen to stop holding. Missing snapshots (a gap
    # in the history, an account not scored for a while) are unknown, not a transition: an account
    # red before and after a 60-day gap is in the same episode and is not told again.
    starts = pl.col("holds").ne(pl.col("holds").shift(1).over(ACCOUNT)).fill_null(True)
    frame = frame.with_columns(episode=starts.cast(pl.Int64).cum_sum().over(ACCOUNT)).filter(pl.col("holds"))
    # "for N snapshots in a row" counts consecutive snapshots (days, or weeks with weekly
    # snapshots): a gap restarts the count, and the episode fires the first time it reaches N
    gap = ((pl.col(DATE) - pl.col(DATE).shift(1).over(ACCOUNT, "episode")).dt.total_days() != step_days).fill_null(True)
    frame = frame.with_columns(run=gap.cast(pl.Int64).cum_sum().over(ACCOUNT, "episode"))
    frame = frame.with_columns(
        streak=pl.int_range(1, pl.len() + 1).over(ACCOUNT, "episode", "run"),
        last_snapshot=pl.col(DATE).max().over(ACCOUNT, "episode"),
        snapshots_held=pl.len().over(ACCOUNT, "episode").cast(pl.Int64),
        baseline=pl.col(DATE).min().over(ACCOUNT, "episode") == pl.col("first_seen"),
    )
    fired = frame.filter(pl.col("streak") == rule.for_snapshots)
    fired = fired.filter(pl.col(DATE) == pl.col(DATE).min().over(ACCOUNT, "episode"))
    if not rule.fire_on_first_snapshot:
        # the state an account was in when it was first published is its baseline, not news
        fired = fired.filter(~pl.col("baseline"))
    return fired.select(
        action_id=pl.format("{}:{}:{}", pl.lit(rule.name), pl.col(ACCOUNT), pl.col(DATE)),
        account_id=ACCOUNT,
        rule=pl.lit(rule.name),
        action=pl.lit(rule.action),
        priority=pl.lit(rule.priority),
        owner=pl.col("csm_owner"),
        reason=reason_expr(rule),
        first_snapshot=pl.col(DATE),
        last_snapshot="last_snapshot",
        snapshots_held="snapshots_held",
        score_at_trigger=pl.col("health_score").cast(pl.Float64),
        band_at_trigger="band",
    )


def evaluate_actions(
    history: pl.DataFrame, rules: ActionRules, step_days: int = 1, newest: dt.date | None = None
) -> pl.DataFrame:
    """Every action every rule fired over the history, with its status at the newest snapshot.

    `history` has one row per (account_id, snapshot_date) with every field a rule may use, plus
    `csm_owner`. Status: open (the condition still holds at the newest snapshot), cleared (it
    stopped holding), no_longer_scored (the account has no row in the newest snapshot, e.g. it
    churned). Each account's actions depend on its own rows and on the newest snapshot alone
    (`newest`, default the history's), so a history read in groups of accounts gives the same
    actions group by group (`order_actions` of them all).
    """
    if history.is_empty():
        return pl.DataFrame(schema=ACTION_SCHEMA)
    newest = scalar(history[DATE].max(), dt.date) if newest is None else newest
    latest = history.group_by(ACCOUNT).agg(
        pl.col(DATE).max().alias("account_newest"),
        pl.col("health_score").sort_by(DATE).last().cast(pl.Float64).alias("latest_score"),
        pl.col("band").sort_by(DATE).last().alias("latest_band"),
    )
    episodes = [rule_episodes(history, rule, step_days) for rule in rules.rules]
    actions = pl.concat(episodes, how="vertical") if episodes else pl.DataFrame(schema=ACTION_SCHEMA)
    return order_actions(
        actions.join(latest, on=ACCOUNT, how="left").with_columns(
            status=pl.when(pl.col("account_newest") < newest)
            .then(pl.lit(NO_LONGER_SCORED))
            .when(pl.col("last_snapshot") == newest)
            .then(pl.lit(OPEN))
            .otherwise(pl.lit(CLEARED))
        )
    )


def order_actions(actions: pl.DataFrame) -> pl.DataFrame:
    """The actions table's columns and order: most urgent first, then the newest."""
    return (
        actions.with_columns(_priority=pl.col("priority").replace_strict(PRIORITY_ORDER, return_dtype=pl.Int8))
        .sort("_priority", pl.col("first_snapshot"), ACCOUNT, "rule", descending=[False, True, False, False])
        .select(list(ACTION_SCHEMA))
    )


def action_key(action_id: str) -> tuple[str, str, dt.date]:
    """(rule, account, first snapshot) of `rule:account:YYYY-MM-DD` (an account id may hold ':')."""
    rule, rest = action_id.split(":", 1)
    account, first = rest.rsplit(":", 1)
    return rule, account, dt.date.fromisoformat(first)


def already_told(actions: pl.DataFrame, told: set[str]) -> pl.Series:
    """Per action: its episode was sent already, under this id or under an id it had before an
    older snapshot was backfilled (the same episode, then starting later)."""
    if not told:
        return pl.Series([False] * actions.height)
    sent = pl.DataFrame([action_key(a) for a in sorted(told)], schema=["rule", ACCOUNT, "sent_first"], orient="row")
    hits = (
        actions.select("action_id", "rule", ACCOUNT, "first_snapshot", "last_snapshot")
        .join(sent, on=["rule", ACCOUNT], how="inner")
        .filter(pl.col("sent_first").is_between(pl.col("first_snapshot"), pl.col("last_snapshot")))
    )
    return actions["action_id"].is_in(hits["action_id"].unique())


def actions_to_send(actions: pl.DataFrame, newest: dt.date, max_age_days: int, delivered: set[str]) -> pl.DataFrame:
    """Open actions that started recently and were never delivered on this channel, most urgent first."""
    return (
        actions.filter(
            pl.col("status") == OPEN,
            pl.col("first_snapshot") >= newest - dt.timedelta(days=max_age_days),
            ~already_told(actions, delivered),
        )
        .with_columns(_priority=pl.col("priority").replace_strict(PRIORITY_ORDER, default=9, return_dtype=pl.Int8))
        .sort("_priority", pl.col("first_snapshot"), ACCOUNT, "rule", descending=[False, True, False, False])
        .drop("_priority")
    )


def split_by_cap(pending: pl.DataFrame, max_per_run: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(sent now, held back): at most `max_per_run` messages per run; the rest wait for the next run."""
    return pending.head(max_per_run), pending.slice(max_per_run)


def held_back_summary(held: pl.DataFrame) -> str:
    """'12 held back (P1 3, P3 9)': what the cap kept for the next run."""
    if held.is_empty():
        return "none held back"
    counts = held.group_by("priority").len().sort("priority")
    return f"{held.height} held back (" + ", ".join(f"{p} {n}" for p, n in counts.iter_rows()) + ")"
