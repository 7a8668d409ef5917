"""Where the indicators' per-source aggregation runs: polars in-process (default), DuckDB or Spark."""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from cs_assets.indicators.engines import ENGINES, SqlEngine, open_engine


class IndicatorEngineResource(dg.ConfigurableResource):
    """The engine of `account_indicators` (`cs_assets.indicators.engines`): "polars", "duckdb" or
    "spark"; all three give the same values. Set by $CS_HEALTH_INDICATOR_ENGINE (default polars)."""

    engine: str = "polars"
    # Spark only: the master URL ("local[2]": Spark in this process' machine, 2 cores)
    spark_master: str = "local[2]"
    # Spark only: the driver JVM's heap (in local mode every task runs in it)
    spark_driver_memory: str = "4g"

    @contextmanager
    def open(self) -> Iterator[SqlEngine | None]:
        if self.engine not in ENGINES:
            raise ValueError(
                f"indicator engine {self.engine!r} ($CS_HEALTH_INDICATOR_ENGINE): expected one of {', '.join(ENGINES)}"
            )
        engine = open_engine(self.engine, self.spark_master, self.spark_driver_memory)
        try:
            yield engine
        finally:
            if engine is not None:
                engine.close()
