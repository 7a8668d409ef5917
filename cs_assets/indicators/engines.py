"""Engines that run the per-source aggregation of the indicators as SQL (`sql_compiler.py`).

polars (the embedded default) needs no engine: `compiler.aggregate_source` runs in-process. A
SQL engine receives each source's prepared records once (`load`), then one query per source and
snapshot (`query`); results come back as polars frames, cast to the types polars would give.

- `DuckDBEngine`: an in-memory DuckDB (never the warehouse file: intermediate steps must not
  hold its single-writer lock); prepared frames are registered through Arrow, without a copy.
- `SparkEngine`: a Spark session (local mode by default, or any master URL); prepared frames are
  written to Parquet in a temporary directory and read by Spark, as it would read a lake table.
  pyspark and a Java runtime must be installed; the import happens only when it is chosen.

Both set the session time zone to UTC: the compiled SQL reads days and windows in UTC.
"""

import shutil
import tempfile
from pathlib import Path
from typing import Protocol

import polars as pl

POLARS, DUCKDB, SPARK = "polars", "duckdb", "spark"
ENGINES = (POLARS, DUCKDB, SPARK)


class SqlEngine(Protocol):
    name: str
    dialect: str  # sqlglot dialect of the SQL it runs

    def load(self, relation: str, frame: pl.DataFrame) -> None: ...

    def query(self, sql: str) -> pl.DataFrame: ...

    def close(self) -> None: ...


class DuckDBEngine:
    name = DUCKDB
    dialect = "duckdb"

    def __init__(self, threads: int | None = None):
        import duckdb

        self.con = duckdb.connect(":memory:")
        self.con.execute("SET TimeZone = 'UTC'")
        if threads:
            self.con.execute(f"SET threads = {int(threads)}")
        self._frames: dict[str, object] = {}

    def load(self, relation: str, frame: pl.DataFrame) -> None:
        table = frame.to_arrow()
        self._frames[relation] = table  # the connection reads it in place: keep it alive
        self.con.register(relation, table)

    def query(self, sql: str) -> pl.DataFrame:
        return self.con.sql(sql).pl()

    def close(self) -> None:
        self.con.close()
        self._frames.clear()


class SparkEngine:
    name = SPARK
    dialect = "spark"

    def __init__(self, master: str = "local[2]", driver_memory: str = "4g", spark_conf: dict[str, str] | None = None):
        from pyspark.sql import SparkSession

        builder = (
            SparkSession.builder.master(master)
            # local mode runs every task in the driver's JVM: its default 1 GB heap is too small
            # for the 43M events of 100,000 accounts (applies when this starts the JVM)
            .config("spark.driver.memory", driver_memory)
            .appName("cs-health indicators")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.shuffle.partitions", "4")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        )
        for key, value in (spark_conf or {}).items():
            builder = builder.config(key, value)
        self.spark = builder.getOrCreate()
        self._dir = Path(tempfile.mkdtemp(prefix="cs_health_spark_"))

    def load(self, relation: str, frame: pl.DataFrame) -> None:
        path = self._dir / f"{relation}.parquet"
        frame.write_parquet(path)
        self.spark.read.parquet(str(path)).createOrReplaceTempView(relation)

    def query(self, sql: str) -> pl.DataFrame:
        result = self.spark.sql(sql)
        rows = result.toArrow() if hasattr(result, "toArrow") else None
        if rows is not None:
            return pl.from_arrow(rows)  # type: ignore[return-value]
        return pl.from_pandas(result.toPandas())

    def close(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)


def open_engine(name: str, spark_master: str = "local[2]", spark_driver_memory: str = "4g") -> SqlEngine | None:
    """The engine for `name` (None for polars, which needs none)."""
    if name == POLARS:
        return None
    if name == DUCKDB:
        return DuckDBEngine()
    if name == SPARK:
        return SparkEngine(spark_master, spark_driver_memory)
    raise ValueError(f"indicator engine {name!r}: expected one of {', '.join(ENGINES)}")
