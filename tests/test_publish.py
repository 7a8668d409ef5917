"""Writing the published tables: a failed insert reports its own error and changes nothing."""

import datetime as dt

import duckdb
import polars as pl
import pytest

from cs_assets.publish.tables import registered


def test_a_failed_insert_in_the_transaction_raises_its_own_error_and_changes_nothing(tmp_path):
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("CREATE TABLE scores (account_id VARCHAR NOT NULL, snapshot_date DATE NOT NULL, band VARCHAR NOT NULL)")
    con.execute("INSERT INTO scores VALUES ('A-1', DATE '2026-10-30', 'green')")
    # the second row has no band: the insert fails inside the transaction
    rows = pl.DataFrame(
        {"account_id": ["A-1", "A-2"], "snapshot_date": [dt.date(2026, 10, 31)] * 2, "band": ["red", None]}
    )
    con.execute("BEGIN TRANSACTION")
    with pytest.raises(duckdb.ConstraintException, match="NOT NULL constraint failed: scores.band"):
        with registered(con, "incoming", rows.to_arrow()):
            con.execute("DELETE FROM scores")
            con.execute("INSERT INTO scores BY NAME SELECT * FROM incoming")
    con.execute("ROLLBACK")
    assert con.sql("SELECT * FROM scores").fetchall() == [("A-1", dt.date(2026, 10, 30), "green")]
    # and the name is free again for the next attempt
    with registered(con, "incoming", rows.head(1).to_arrow()):
        con.execute("INSERT INTO scores BY NAME SELECT * FROM incoming")
    assert con.sql("SELECT count(*) FROM scores").fetchall() == [(2,)]
    with pytest.raises(duckdb.CatalogException):
        con.sql("SELECT * FROM incoming")
