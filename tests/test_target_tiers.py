"""Target tiers: retention and ARR growth per segment of the base, from a known history, with
counts and confidence; and the asset that publishes them from a real run."""

import datetime as dt

import polars as pl
import pytest

from cs_assets.validation.tiers import target_tiers, wilson_interval

D0, D1 = dt.date(2026, 1, 1), dt.date(2026, 7, 1)


def known_history() -> tuple[pl.DataFrame, pl.DataFrame]:
    """Fintech: 40 accounts, 36 kept, ARR of the kept grew 10%; Retail: 40 accounts, 20 kept, ARR
    flat; Media: 5 accounts, all kept (too few to rank)."""
    rows, crm = [], []
    for industry, n, kept, growth in (("Fintech", 40, 36, 0.10), ("Retail", 40, 20, 0.0), ("Media", 5, 5, 0.0)):
        for i in range(n):
            account = f"{industry[:2].upper()}-{i:03d}"
            crm.append({"account_id": account, "industry": industry, "size_tier": "Mid"})
            rows.append({"account_id": account, "snapshot_date": D0, "arr_usd": 1000.0})
            if i < kept:
                rows.append({"account_id": account, "snapshot_date": D1, "arr_usd": 1000.0 * (1 + growth)})
    # a late joiner is not in the cohort: it was not scored on the window's first snapshot
    rows.append({"account_id": "FI-NEW", "snapshot_date": D1, "arr_usd": 5000.0})
    crm.append({"account_id": "FI-NEW", "industry": "Fintech", "size_tier": "Mid"})
    return pl.DataFrame(rows), pl.DataFrame(crm)


def test_tiers_rank_by_the_lower_bound_of_retention_and_say_which_are_too_small():
    history, crm = known_history()
    table, first, newest = target_tiers(history, crm, ["industry"], window_days=365, min_accounts=20)
    assert (first, newest) == (D0, D1)  # the history is shorter than the window: its oldest snapshot
    rows = {r["industry"]: r for r in table.iter_rows(named=True)}
    assert table["industry"].to_list() == ["Fintech", "Retail", "Media"]
    fin, ret, media = rows["Fintech"], rows["Retail"], rows["Media"]
    assert (fin["rank"], fin["accounts"], fin["retained"], fin["churned"]) == (1, 40, 36, 4)
    assert fin["retention_rate"] == 0.9 and ret["retention_rate"] == 0.5
    # kept 36 of 40 at +10%: 39,600 of 40,000 ARR, net of the churned
    assert fin["arr_start"] == 40_000 and fin["arr_now"] == pytest.approx(39_600) and fin["arr_growth"] == -0.01
    assert ret["arr_growth"] == -0.5
    assert fin["retention_low"] < 0.9 < fin["retention_high"] and fin["note"].startswith("36 of 40 kept (")
    assert media["rank"] is None and media["note"] == "too few accounts to rank (5 < 20)"
    assert media["retention_rate"] == 1.0  # shown, never ranked above a large tier


def test_the_wilson_interval_matches_the_textbook_values():
    frame = pl.DataFrame({"k": [36, 0, 5], "n": [40, 10, 5]})
    low, high = wilson_interval(pl.col("k"), pl.col("n"))
    got = frame.select(low.alias("low"), high.alias("high")).rows()
    assert got[0] == pytest.approx((0.7695, 0.9604), abs=1e-4)
    assert got[1][0] == 0.0 and got[1][1] == pytest.approx(0.2775, abs=1e-4)
    assert got[2][1] == 1.0 and got[2][0] == pytest.approx(0.5655, abs=1e-4)


def test_tiers_by_two_columns_and_an_unknown_column_is_named():
    history, crm = known_history()
    crm = crm.with_columns(
        size_tier=pl.when(pl.col("account_id").str.ends_with("1")).then(pl.lit("SMB")).otherwise(pl.lit("Mid"))
    )
    table, _, _ = target_tiers(history, crm, ["industry", "size_tier"], window_days=365, min_accounts=1)
    assert table.height == 6 and table["accounts"].sum() == 85
    with pytest.raises(ValueError, match=r"target tiers: column\(s\) region are not CRM columns \(columns: "):
        target_tiers(history, crm, ["region"], window_days=365, min_accounts=1)
