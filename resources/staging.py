"""Parquet staging for intermediate assets, one file per asset under `$CS_HEALTH_HOME/staging`.

Intermediate steps never open the DuckDB warehouse, so the multiprocess executor's parallel
steps cannot fight over its single-writer lock; only the publish step writes DuckDB. Files are
written to a temporary name and renamed, so a failed step leaves the previous file intact.
"""

import os
from pathlib import Path

import dagster as dg
import polars as pl


def table_schema(schema: pl.Schema) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(name, str(dtype)) for name, dtype in schema.items()])


class StagingParquetIOManager(dg.ConfigurableIOManager):
    """Stores polars DataFrames and LazyFrames as Parquet; hands back whichever the input asks for."""

    base_dir: str

    def _path(self, key: dg.AssetKey) -> Path:
        return Path(self.base_dir, *key.path).with_suffix(".parquet")

    def handle_output(self, context: dg.OutputContext, obj: pl.DataFrame | pl.LazyFrame | None) -> None:
        if obj is None:
            return
        path = self._path(context.asset_key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        try:
            if isinstance(obj, pl.LazyFrame):
                obj.sink_parquet(tmp)
            else:
                obj.write_parquet(tmp)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        stored = pl.scan_parquet(path)
        rows = stored.select(pl.len()).collect().item()
        context.add_output_metadata(
            {
                "dagster/row_count": rows,
                "dagster/column_schema": table_schema(stored.collect_schema()),
                "staging_path": dg.MetadataValue.path(str(path)),
            }
        )

    def load_input(self, context: dg.InputContext) -> pl.DataFrame | pl.LazyFrame:
        path = self._path(context.asset_key)
        if not path.is_file():
            raise FileNotFoundError(
                f"staged data for asset {context.asset_key.to_user_string()} not found at {path}; "
                "materialize that asset first"
            )
        if context.dagster_type.typing_type is pl.LazyFrame:
            return pl.scan_parquet(path)
        return pl.read_parquet(path)
