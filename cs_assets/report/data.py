"""What the health report shows, read from the warehouse for one published snapshot, and the
summaries it is made of (plain functions over polars frames)."""

import datetime as dt
from dataclasses import dataclass

import duckdb
import polars as pl

from cs_assets.actions.evaluate import PRIORITY_ORDER
from cs_assets.actions.store import ACTIONS_TABLE
from cs_assets.publish.tables import CONTRIBUTIONS_TABLE, HEALTH_TABLE, table_exists
from cs_assets.validation.assets import GROUPS_TABLE, ROWS_TABLE
from cs_assets.validation.metrics import churn_by

NEW = "(new)"  # an account with no snapshot a week before
UNASSIGNED = "unassigned"


@dataclass(frozen=True)
class ReportData:
    snapshot: dt.date
    previous: dt.date | None  # the newest published snapshot at least a week before
    bands: list[tuple[str, float]]  # (name, lowest score), riskiest first
    accounts: pl.DataFrame  # account_id, health_score, band, csm_owner, arr_usd, drag_1_indicator
    previous_bands: pl.DataFrame  # account_id, band on `previous`
    drags: pl.DataFrame  # indicator, points_lost, accounts_top_drag
    actions: pl.DataFrame  # the actions that hold on the snapshot
    validation: pl.DataFrame | None  # each outcome of the main horizon with its score then
    validation_horizon: int | None

    @property
    def band_names(self) -> list[str]:
        return [name for name, _ in self.bands]


def published_snapshots(con: duckdb.DuckDBPyConnection) -> list[dt.date]:
    if not table_exists(con, HEALTH_TABLE):
        return []
    return [r[0] for r in con.execute(f"SELECT DISTINCT snapshot_date FROM {HEALTH_TABLE} ORDER BY 1").fetchall()]


def read_report_data(
    con: duckdb.DuckDBPyConnection, bands: list[tuple[str, float]], snapshot: dt.date | None = None
) -> ReportData:
    """The report's inputs for `snapshot` (default: the newest published one)."""
    snapshots = published_snapshots(con)
    if not snapshots:
        raise LookupError(f"{HEALTH_TABLE} has not been published yet: publish a snapshot first (cs-health run)")
    day = snapshot or snapshots[-1]
    if day not in snapshots:
        raise LookupError(
            f"no published snapshot {day}: published are {snapshots[0]}..{snapshots[-1]} "
            f"({len(snapshots)} snapshot(s)); run `cs-health run --as-of {day}` first"
        )
    earlier = [d for d in snapshots if d <= day - dt.timedelta(days=7)]
    previous = earlier[-1] if earlier else None
    params = {"day": day}
    accounts = con.sql(
        f"SELECT account_id, CAST(health_score AS DOUBLE) AS health_score, band, csm_owner, arr_usd, "
        f"drag_1_indicator FROM {HEALTH_TABLE} WHERE snapshot_date = $day ORDER BY account_id",
        params=params,
    ).pl()
    previous_bands = (
        con.sql(
            f"SELECT account_id, band FROM {HEALTH_TABLE} WHERE snapshot_date = $day ORDER BY account_id",
            params={"day": previous},
        ).pl()
        if previous
        else pl.DataFrame(schema={"account_id": pl.String, "band": pl.String})
    )
    drags = con.sql(
        f"""
        SELECT c.indicator, CAST(sum(c.max_points - c.points) AS DOUBLE) AS points_lost,
               count(*) FILTER (WHERE h.drag_1_indicator = c.indicator) AS accounts_top_drag
        FROM {CONTRIBUTIONS_TABLE} c
        JOIN {HEALTH_TABLE} h USING (account_id, snapshot_date)
        WHERE c.snapshot_date = $day
        GROUP BY c.indicator
        ORDER BY points_lost DESC, c.indicator
        """,
        params=params,
    ).pl()
    actions = (
        con.sql(
            f"""
            SELECT a.priority, a.account_id, coalesce(a.owner, '{UNASSIGNED}') AS owner, a.rule, a.action,
                   a.reason, a.first_snapshot, CAST(h.health_score AS DOUBLE) AS health_score, h.band
            FROM {ACTIONS_TABLE} a
            LEFT JOIN {HEALTH_TABLE} h ON h.account_id = a.account_id AND h.snapshot_date = $day
            WHERE a.first_snapshot <= $day AND a.last_snapshot >= $day
            """,
            params=params,
        ).pl()  # in the order actions_by_owner gives them
        if table_exists(con, ACTIONS_TABLE)
        else pl.DataFrame()
    )
    validation, horizon = None, None
    if table_exists(con, ROWS_TABLE) and table_exists(con, GROUPS_TABLE):
        rows = con.sql(f"SELECT * FROM {ROWS_TABLE} ORDER BY account_id, outcome_date").pl()
        if rows.height:
            validation, horizon = rows, int(rows["horizon_days"][0])
    return ReportData(day, previous, bands, accounts, previous_bands, drags, actions, validation, horizon)


def band_summary(data: ReportData) -> pl.DataFrame:
    """Accounts, share and ARR per band, riskiest first (every band, also an empty one)."""
    counts = data.accounts.group_by("band").agg(accounts=pl.len(), arr_usd=pl.col("arr_usd").sum())
    # a band of an older model (the snapshot was scored before a rename) follows the model's own
    names = [*data.band_names, *sorted(set(counts["band"].to_list()) - set(data.band_names))]
    order = pl.DataFrame({"band": names, "_o": range(len(names))})
    total = max(data.accounts.height, 1)
    return (
        order.join(counts, on="band", how="left")
        .with_columns(pl.col("accounts").fill_null(0), pl.col("arr_usd").fill_null(0.0))
        .with_columns(share=pl.col("accounts") / total)
        .sort("_o")
        .drop("_o")
    )


def band_movements(data: ReportData) -> pl.DataFrame:
    """Accounts per (band a week before, band now); `(new)` for accounts not scored then."""
    moved = data.accounts.select("account_id", "band").join(
        data.previous_bands.rename({"band": "from_band"}), on="account_id", how="left"
    )
    return (
        moved.with_columns(pl.col("from_band").fill_null(NEW))
        .group_by("from_band", pl.col("band").alias("to_band"))
        .len("accounts")
        .sort("from_band", "to_band")
    )


def actions_by_owner(data: ReportData) -> list[tuple[str, pl.DataFrame]]:
    """(owner, their actions most urgent first), owners with a P1 first, then by name."""
    if data.actions.is_empty():
        return []
    ranked = data.actions.with_columns(
        _p=pl.col("priority").replace_strict(PRIORITY_ORDER, default=9, return_dtype=pl.Int8)
    )
    owners = ranked.group_by("owner").agg(_best=pl.col("_p").min()).sort("_best", "owner")["owner"].to_list()
    ordered = ranked.sort("_p", "account_id", "rule", maintain_order=True).drop("_p")
    parts = ordered.partition_by("owner", as_dict=True, maintain_order=True)
    return [(owner, parts[(owner,)]) for owner in owners]


def churn_per_band(data: ReportData) -> pl.DataFrame | None:
    if data.validation is None:
        return None
    return churn_by(data.validation, "band", data.band_names)
