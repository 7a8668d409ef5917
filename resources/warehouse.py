"""The DuckDB warehouse that holds the published tables."""

from collections.abc import Iterator
from contextlib import contextmanager

import duckdb
from dagster_duckdb import DuckDBResource
from pydantic import Field

from resources.home_lock import home_lock, open_duckdb

# The Dagster pool of every step that opens the DuckDB file: DuckDB admits one writing process,
# so an instance can limit the pool to one step at a time (deploy/dagster.yaml does).
WAREHOUSE_POOL = "duckdb_warehouse"


class WarehouseResource(DuckDBResource):
    """DuckDBResource whose connections respect the home's one writer and wait for the file.

    `connect()` (read-write) holds the home's writer lock while it is open, so two runs never
    write at once, and waits up to `write_wait_seconds` for the lock and for readers to let go of
    the file; `reader()` (read-only) waits up to `read_wait_seconds` while a writer holds it.
    Unlike `DuckDBResource.get_connection`, the connection is closed even when the body raises
    (otherwise the file lock lives as long as the traceback).
    """

    write_wait_seconds: float = 600.0
    read_wait_seconds: float = 60.0
    # the stage and action steps read the published history in groups of accounts of about this
    # many rows (account x snapshot) each: what bounds their memory as the history grows
    history_rows_per_group: int = Field(default=2_000_000, ge=1)

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with home_lock(self.database, "a step writing the warehouse", wait_seconds=self.write_wait_seconds):
            con = open_duckdb(self.database, read_only=False, wait_seconds=self.write_wait_seconds, on_wait=self._say)
            try:
                yield con
            finally:
                con.close()

    @contextmanager
    def reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only connection: several processes may read at once (never beside a writer)."""
        con = open_duckdb(self.database, read_only=True, wait_seconds=self.read_wait_seconds, on_wait=self._say)
        try:
            yield con
        finally:
            con.close()

    @staticmethod
    def _say(message: str) -> None:
        import dagster as dg

        dg.get_dagster_logger().info(message)
