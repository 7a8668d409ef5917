"""One indicator spec, several engines: polars, DuckDB SQL and Spark SQL give the same indicator
values on both example products (floats to 1e-9, counts exactly)."""

import datetime as dt
import os
import shutil
from pathlib import Path

import polars as pl
import pytest

from cs_assets import settings
from cs_assets.demo.generator import DEMO_AS_OF, generate_demo_data
from cs_assets.demo.ledgerly import generate_ledgerly_data
from cs_assets.deployment import load_deployment
from cs_assets.indicators.compute import compute_account_indicators
from cs_assets.indicators.engines import DuckDBEngine, SparkEngine
from cs_assets.indicators.sql_compiler import source_sql, transpile
from cs_assets.sources.normalise import clean
from resources.indicator_engine import IndicatorEngineResource
from resources.landing import LandingZoneResource
from tests.harness import published, run_graph

REPO = Path(__file__).resolve().parent.parent
# a month of snapshots: windows, trends against the previous window, notes expiring
DATES = [DEMO_AS_OF - dt.timedelta(days=d) for d in (30, 7, 1, 0)]
PRODUCTS = {
    "demo": (None, lambda landing: generate_demo_data(landing, accounts=150, seed=5)),
    "ledgerly": (
        REPO / "examples/ledgerly/config",
        lambda landing: generate_ledgerly_data(landing, accounts=150, seed=5),
    ),
}


def sources(config: Path | None, landing: Path):
    deployment = load_deployment(config)
    zone = LandingZoneResource(landing_dir=str(landing))
    frames = {name: clean(spec, zone.read(spec), name) for name, spec in deployment.contract.sources.items()}
    return deployment, frames


@pytest.fixture(scope="module", params=list(PRODUCTS))
def product(request, tmp_path_factory):
    config, generate = PRODUCTS[request.param]
    landing = settings.landing_dir(tmp_path_factory.mktemp(request.param))
    generate(landing)
    deployment, frames = sources(config, landing)
    polars_values = compute_account_indicators(frames, deployment.contract, deployment.catalogue, DATES)
    return deployment, frames, polars_values


def assert_same_values(expected: pl.DataFrame, got: pl.DataFrame) -> None:
    assert got.columns == expected.columns and got.dtypes == expected.dtypes
    assert got.height == expected.height
    for column, dtype in expected.schema.items():
        if dtype == pl.Float64:
            diff = (got[column] - expected[column]).abs()
            assert got[column].is_null().to_list() == expected[column].is_null().to_list(), column
            assert diff.max() is None or diff.max() <= 1e-9, (column, diff.max())
        else:
            assert got[column].to_list() == expected[column].to_list(), column


def test_duckdb_sql_gives_the_polars_values(product):
    deployment, frames, expected = product
    engine = DuckDBEngine()
    try:
        got = compute_account_indicators(frames, deployment.contract, deployment.catalogue, DATES, engine=engine)
    finally:
        engine.close()
    assert_same_values(expected, got)
    # the comparison sees real data: every indicator has values on the newest snapshot
    newest = expected.filter(pl.col("snapshot_date") == DATES[-1])
    assert all(newest[i].drop_nulls().len() > 0 for i in deployment.catalogue.names)


def _spark_available() -> str | None:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark is not installed"
    if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
        return "no Java runtime (apt: openjdk-17-jre-headless)"
    return None


@pytest.fixture(scope="module")
def spark():
    missing = _spark_available()
    if missing and os.environ.get("CS_HEALTH_REQUIRE_SPARK"):
        pytest.fail(f"Spark is required here: {missing}")
    if missing:
        pytest.skip(missing)
    # one session for both products: it takes seconds to start. Its JVM only JIT-compiles with C1:
    # these 40 small queries end before C2's optimised code would pay back its compile time
    # (JVM CPU about 43 s -> 25 s); the SQL Spark runs, and so the values compared, are the same.
    jvm = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
    engine = SparkEngine(
        "local[1]",
        driver_memory="1g",
        spark_conf={"spark.driver.extraJavaOptions": jvm, "spark.ui.showConsoleProgress": "false"},
    )
    yield engine
    engine.close()


@pytest.mark.slow
def test_spark_sql_gives_the_polars_values(product, spark):
    deployment, frames, expected = product
    got = compute_account_indicators(frames, deployment.contract, deployment.catalogue, DATES, engine=spark)
    assert_same_values(expected, got)


def test_a_run_on_duckdb_publishes_the_scores_of_the_polars_run(published_demo_home, tmp_path):
    home = tmp_path / "duckdb"
    shutil.copytree(settings.landing_dir(published_demo_home), settings.landing_dir(home))
    result = run_graph(home, DEMO_AS_OF, indicator_engine="duckdb")
    assert result.success
    meta = next(iter(result.asset_materializations_for_node("account_indicators"))).metadata
    assert meta["engine"].value == "duckdb"
    for table in ("account_indicator_values", "account_health"):
        expected, got = published(published_demo_home, table), published(home, table)
        assert_same_values(expected.drop("computed_at", strict=False), got.drop("computed_at", strict=False))


def test_an_unknown_engine_is_named():
    with pytest.raises(ValueError, match="indicator engine 'snowflake'.*expected one of polars, duckdb, spark"):
        with IndicatorEngineResource(engine="snowflake").open():
            pass


def test_the_sql_transpiles_for_the_documented_warehouses():
    deployment = load_deployment()
    spec = deployment.contract.sources["usage_events"]
    sql = source_sql(spec, deployment.catalogue.for_source("usage_events"), DEMO_AS_OF, 90, "events_usage_events")
    for dialect in ("spark", "bigquery", "snowflake"):
        text = transpile(sql, dialect)
        assert "events_usage_events" in text and "GROUP BY" in text
