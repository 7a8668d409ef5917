"""Target tiers: which segments of the customer base (industry x size tier, or any CRM columns)
kept their accounts and grew their revenue, from the published history, so CS leaders can decide
where to put effort.

The cohort of a tier is the accounts scored on the window's first snapshot; an account is
retained when it is scored on the newest snapshot too. Retention comes with a 95% Wilson
interval; tiers are ranked by the interval's lower bound (a small tier with a lucky rate does
not outrank a large one), then by ARR growth. A tier with fewer accounts than the minimum is
listed, unranked, and says so.
"""

import datetime as dt

import polars as pl

ACCOUNT, DATE = "account_id", "snapshot_date"
Z95 = 1.959963984540054
UNKNOWN = "(unknown)"


def wilson_interval(retained: pl.Expr, accounts: pl.Expr, z: float = Z95) -> tuple[pl.Expr, pl.Expr]:
    """The 95% Wilson score interval of retained / accounts (stays within 0..1 for small counts)."""
    n = accounts.cast(pl.Float64)
    p = retained.cast(pl.Float64) / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * ((p * (1 - p) / n + z * z / (4 * n * n)).sqrt()) / (1 + z * z / n)
    return (centre - half).clip(0.0, 1.0), (centre + half).clip(0.0, 1.0)


def target_tiers(
    history: pl.DataFrame, accounts: pl.DataFrame, by: list[str], window_days: int, min_accounts: int
) -> tuple[pl.DataFrame, dt.date, dt.date]:
    """One row per tier, ranked; and the window's first and last snapshot.

    `history`: account_id, snapshot_date, arr_usd per published snapshot. `accounts`: one row per
    account with the `by` columns (the CRM's newest version)."""
    missing = [c for c in by if c not in accounts.columns]
    if missing:
        raise ValueError(
            f"target tiers: column(s) {', '.join(missing)} are not CRM columns "
            f"(columns: {', '.join(sorted(c for c in accounts.columns if c != ACCOUNT))})"
        )
    newest = history[DATE].max()
    if not isinstance(newest, dt.date):
        raise ValueError("target tiers: no published snapshot")
    wanted = newest - dt.timedelta(days=window_days)
    earliest = history[DATE].min()
    assert isinstance(earliest, dt.date)
    # the window's first snapshot: the one `window_days` before the newest, or the oldest there is
    first = max(wanted, earliest)
    first_day = history.filter(pl.col(DATE) <= first)[DATE].max()
    assert isinstance(first_day, dt.date)
    start = history.filter(pl.col(DATE) == first_day).select(ACCOUNT, arr_start=pl.col("arr_usd").cast(pl.Float64))
    end = history.filter(pl.col(DATE) == newest).select(ACCOUNT, arr_now=pl.col("arr_usd").cast(pl.Float64))
    tiers = accounts.select(ACCOUNT, *[pl.col(c).cast(pl.String).fill_null(UNKNOWN) for c in by])
    cohort = (
        start.join(end, on=ACCOUNT, how="left")
        .join(tiers, on=ACCOUNT, how="left")
        .with_columns(pl.col(c).fill_null(UNKNOWN) for c in by)
        .with_columns(retained=pl.col("arr_now").is_not_null(), arr_now=pl.col("arr_now").fill_null(0.0))
    )
    table = cohort.group_by(by).agg(
        accounts=pl.len().cast(pl.Int64),
        retained=pl.col("retained").sum().cast(pl.Int64),
        arr_start=pl.col("arr_start").fill_null(0.0).sum(),
        arr_now=pl.col("arr_now").sum(),
    )
    low, high = wilson_interval(pl.col("retained"), pl.col("accounts"))
    table = table.with_columns(
        churned=pl.col("accounts") - pl.col("retained"),
        retention_rate=(pl.col("retained") / pl.col("accounts")).round(4),
        retention_low=low.round(4),
        retention_high=high.round(4),
        # net ARR retention minus one: expansion of the retained, net of the churned ARR
        arr_growth=pl.when(pl.col("arr_start") > 0).then((pl.col("arr_now") / pl.col("arr_start") - 1).round(4)),
        enough=pl.col("accounts") >= min_accounts,
    )
    ranked = (
        table.filter(pl.col("enough"))
        .sort(["retention_low", "arr_growth", *by], descending=[True, True, *([False] * len(by))], nulls_last=True)
        .with_columns(rank=pl.int_range(1, pl.len() + 1).cast(pl.Int64))
    )
    unranked = table.filter(~pl.col("enough")).sort(by).with_columns(rank=pl.lit(None, dtype=pl.Int64))
    note = (
        pl.when(pl.col("enough"))
        .then(
            pl.format(
                "{} of {} kept ({}% to {}% at 95%)",
                pl.col("retained"),
                pl.col("accounts"),
                (pl.col("retention_low") * 100).round(1),
                (pl.col("retention_high") * 100).round(1),
            )
        )
        .otherwise(pl.format("too few accounts to rank ({} < {})", pl.col("accounts"), pl.lit(min_accounts)))
    )
    columns = [
        "rank", *by, "accounts", "retained", "churned", "retention_rate", "retention_low", "retention_high",
        "arr_start", "arr_now", "arr_growth", "note",
    ]  # fmt: skip
    result = pl.concat([ranked, unranked], how="vertical").with_columns(note=note).select(columns)
    return result, first_day, newest


def window_text(first: dt.date, newest: dt.date, window_days: int) -> str:
    days = (newest - first).days
    if days >= window_days:
        return f"{first} to {newest} ({days} days)"
    return f"{first} to {newest} ({days} days: the published history is shorter than {window_days})"
