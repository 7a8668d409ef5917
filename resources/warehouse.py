"""The DuckDB warehouse that holds the published tables."""

from collections.abc import Iterator
from contextlib import contextmanager

import duckdb
from dagster_duckdb import DuckDBResource


class WarehouseResource(DuckDBResource):
    """DuckDBResource whose connection is closed even when the body raises.

    `DuckDBResource.get_connection` has no try/finally: an exception inside its `with` keeps the
    file lock for as long as the traceback lives, and the next reader in the process fails.
    """

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self.get_connection() as con:
            try:
                yield con
            finally:
                con.close()

    @contextmanager
    def reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only connection: several processes may read at once (never beside a writer)."""
        con = duckdb.connect(self.database, read_only=True)
        try:
            yield con
        finally:
            con.close()
