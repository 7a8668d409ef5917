"""Dagster's SQLite event log, with its database engines kept between events.

Dagster's `SqliteEventLogStorage` builds a new SQLAlchemy engine, and so a new SQLite connection
and dialect set-up, for every event it stores (twice for an asset event: the run's shard and the
index). A `cs-health run` stores about 600 events; on this project's 2-core machine that was 14.5 s
of a 23 s re-run of the 40-account demo, and keeping the engines brought the run to 14.6 s. The
files, tables and locking are Dagster's own: a home written by this class is read by the default
storage, and the other way round.

A long-lived process (the webserver) reads many runs, so only the engines of the most recently
used shards are kept; the others are disposed of, which closes their files.
"""

import os
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SQLITE_BUSY_TIMEOUT_SECONDS, SqliteEventLogStorage
from dagster._serdes import ConfigurableClassData
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine

# the index shard and the shards of the runs a process is writing or showing
ENGINES_KEPT = 8


def _durable_enough(dbapi_connection: Any, _record: Any) -> None:
    # Dagster puts the shards in WAL mode; there NORMAL survives a killed process (what the home
    # must survive) and leaves out an fsync per event; a power cut may lose the newest events
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    """`SqliteEventLogStorage` that keeps one engine per recently used shard (see the module)."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None, engines_kept: int = ENGINES_KEPT):
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._engines_kept = max(1, engines_kept)
        super().__init__(base_dir, inst_data=inst_data)

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {
            "base_dir": dg.StringSource,
            "engines_kept": dg.Field(int, is_required=False, default_value=ENGINES_KEPT),
        }

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Any
    ) -> "PooledSqliteEventLogStorage":
        values = dict(config_value)
        # a home's instance file names its event log relative to the instance directory, so the
        # home can be copied or moved (resources/instance.py); Dagster's own loader knows that
        # directory only as DAGSTER_HOME
        base_dir = Path(values["base_dir"])
        if not base_dir.is_absolute():
            dagster_home = os.environ.get("DAGSTER_HOME")
            if not dagster_home:
                raise dg.DagsterInvariantViolationError(
                    f"event_log_storage.base_dir {str(base_dir)!r} is relative to the instance directory, "
                    "and DAGSTER_HOME is not set: set DAGSTER_HOME to the directory of this dagster.yaml"
                )
            values["base_dir"] = str(Path(dagster_home) / base_dir)
        return cls(inst_data=inst_data, **values)

    def _engine(self, shard: str) -> Engine:
        engine = self._engines.pop(shard, None)
        if engine is None:
            engine = create_engine(
                self.conn_string_for_shard(shard), connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS}
            )
            event.listen(engine, "connect", _durable_enough)
        self._engines[shard] = engine  # now the most recently used
        while len(self._engines) > self._engines_kept:
            _, oldest = self._engines.popitem(last=False)
            oldest.dispose()
        return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        # as Dagster's own: one shard at a time per process (the lock), created on first use
        with self._db_lock:
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def kept_shards(self) -> list[str]:
        """The shards whose engines are kept, oldest use first."""
        return list(self._engines)

    def dispose(self) -> None:
        with self._db_lock:
            while self._engines:
                self._engines.popitem()[1].dispose()
        super().dispose()
