"""Helpers for the asset metadata people read in the UI."""

import datetime as dt
from decimal import Decimal

import dagster as dg
import polars as pl

_TYPES: dict[pl.DataType | type[pl.DataType], str] = {pl.Boolean: "bool", pl.String: "string", pl.Date: "date"}


def _value(value):
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, (list, dict)):
        return str(value)
    return value


def _type(dtype: pl.DataType) -> str:
    if dtype.is_integer():
        return "int"
    if dtype.is_numeric():
        return "float"
    return _TYPES.get(dtype, "string")


def table_metadata(frame: pl.DataFrame, rows: int = 10) -> dg.MetadataValue:
    """The first rows of a frame as a Dagster table (the UI draws it with its column types)."""
    head = frame.head(rows)
    schema = dg.TableSchema(columns=[dg.TableColumn(name, _type(dtype)) for name, dtype in head.schema.items()])
    records = [dg.TableRecord({k: _value(v) for k, v in row.items()}) for row in head.iter_rows(named=True)]
    return dg.MetadataValue.table(records=records, schema=schema)


def markdown_table(frame: pl.DataFrame, rows: int = 10) -> str:
    """A small markdown table of the first rows (values as text, nulls as blanks)."""
    head = frame.head(rows)
    lines = ["| " + " | ".join(head.columns) + " |", "|" + "---|" * len(head.columns)]
    for row in head.iter_rows():
        lines.append("| " + " | ".join("" if v is None else str(v) for v in row) + " |")
    return "\n".join(lines)
