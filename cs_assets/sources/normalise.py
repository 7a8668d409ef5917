"""Turn a raw export into the typed frame the landing contract promises, or say precisely why not.

Text formats (CSV, JSON lines) are read as strings and parsed here, so that a value that does
not parse is reported with its source, column, row and value instead of a bare cast error.
"""

import polars as pl

from cs_assets.sources.contract import SourceSpec

ROW = "__row"


class SourceDataError(ValueError):
    """An export does not match the landing contract; the message says where and how."""


def _parse(column: str, dtype: pl.DataType) -> pl.Expr:
    raw = pl.col(column)
    if dtype == pl.String:
        return raw.cast(pl.String)
    text = raw.cast(pl.String).str.strip_chars()
    text = pl.when(text == "").then(None).otherwise(text)
    if isinstance(dtype, pl.Datetime):
        # 'Z' is ISO-8601 for UTC; polars' %z wants a numeric offset
        return text.str.replace(r"Z$", "+00:00").str.to_datetime(
            "%Y-%m-%dT%H:%M:%S%.f%z", time_zone="UTC", time_unit="us", strict=False
        )
    if dtype == pl.Date:
        return text.str.to_date("%Y-%m-%d", strict=False)
    return text.cast(dtype, strict=False)


def _expected(dtype: pl.DataType) -> str:
    if isinstance(dtype, pl.Datetime):
        return "an ISO-8601 timestamp with a UTC offset, e.g. 2026-10-31T08:00:00+00:00"
    if dtype == pl.Date:
        return "a date as YYYY-MM-DD"
    return f"a value of type {dtype}"


def check_columns(spec: SourceSpec, columns: dict[str, pl.DataType], origin: str) -> None:
    missing = [c for c in spec.columns if c not in columns]
    if missing:
        exported = {v: k for k, v in spec.renames.items()}
        expected = ", ".join(
            f"{exported[c]} (for {c}, {spec.columns[c]})" if c in exported else f"{c} ({spec.columns[c]})" for c in missing
        )
        raise SourceDataError(f"source {spec.name} ({origin}): missing column(s) {expected}")


def rename_exported(spec: SourceSpec, frame: pl.LazyFrame) -> pl.LazyFrame:
    """Export column names -> contract names (`from:` in sources.yaml)."""
    if not spec.renames:
        return frame
    present = frame.collect_schema().names()
    return frame.rename({k: v for k, v in spec.renames.items() if k in present})


def normalise_text_source(spec: SourceSpec, raw: pl.LazyFrame, origin: str) -> pl.LazyFrame:
    """Parse a string-typed frame (CSV/JSON lines) into the contract's types."""
    check_columns(spec, raw.collect_schema(), origin)
    indexed = raw.with_row_index(ROW, offset=1)
    parsed = indexed.select(ROW, *[_parse(c, t).alias(c) for c, t in spec.columns.items()],
                            *[pl.col(c).cast(pl.String).alias(f"{c}__raw") for c in spec.columns])
    for column, dtype in spec.columns.items():
        if dtype == pl.String:
            continue
        raw_text = pl.col(f"{column}__raw").str.strip_chars()
        bad = parsed.filter(pl.col(column).is_null() & raw_text.is_not_null() & (raw_text != ""))
        first = bad.select(ROW, f"{column}__raw").head(1).collect()
        if first.height:
            row, value = first.row(0)
            raise SourceDataError(
                f"source {spec.name} ({origin}): column {column!r} row {row}: "
                f"cannot read {value!r} as {_expected(dtype)}"
            )
    return parsed.select(list(spec.columns))


def normalise_typed_source(spec: SourceSpec, raw: pl.LazyFrame, origin: str) -> pl.LazyFrame:
    """Check a typed export (Parquet) against the contract's types; cast only lossless widenings."""
    schema = raw.collect_schema()
    check_columns(spec, schema, origin)
    casts = []
    for column, expected in spec.columns.items():
        actual = schema[column]
        if actual == expected:
            casts.append(pl.col(column))
        elif isinstance(expected, pl.Datetime) and isinstance(actual, pl.Datetime) and actual.time_zone:
            casts.append(pl.col(column).dt.convert_time_zone("UTC").dt.cast_time_unit("us"))
        elif expected == pl.Int64 and actual.is_integer():
            casts.append(pl.col(column).cast(pl.Int64))
        elif actual == pl.Null:
            casts.append(pl.col(column).cast(expected))
        else:
            raise SourceDataError(
                f"source {spec.name} ({origin}): column {column!r} has type {actual}, expected {expected}"
            )
    return raw.select(casts)


def clean(spec: SourceSpec, frame: pl.LazyFrame) -> pl.LazyFrame:
    """Trim stray whitespace from ids and drop duplicate rows on the source key.

    Exact duplicates are the common case (re-sent exports). For accounts (CRM) rows with the same
    key the most recently updated one wins, so a re-sync that changed a contract is honoured.
    """
    frame = frame.with_columns(
        [pl.col(c).str.strip_chars() for c in spec.columns if c.endswith("_id") and spec.columns[c] == pl.String]
    )
    frame = frame.filter(pl.all_horizontal([pl.col(k).is_not_null() for k in spec.key]))
    if spec.is_accounts:
        frame = frame.sort([*spec.key, spec.timestamp_column], nulls_last=False, maintain_order=True)
        return frame.unique(subset=list(spec.key), keep="last", maintain_order=True).sort(list(spec.key))
    return frame.unique(subset=list(spec.key), keep="first", maintain_order=True)
