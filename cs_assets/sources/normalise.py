"""Turn a raw export into the typed frame the landing contract promises, or say precisely why not.

Text formats (CSV, JSON lines) are read as strings and parsed here, so that a value that does
not parse is reported with its source, column, row and value instead of a bare cast error.
"""

import polars as pl

from cs_assets.sources.contract import IMMUTABLE, DType, SourceSpec

ROW = "__row"
HASH = "__hash"


class SourceDataError(ValueError):
    """An export does not match the landing contract; the message says where and how."""


def _parse(column: str, dtype: DType) -> pl.Expr:
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


def _expected(dtype: DType) -> str:
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
            f"{exported[c]} (for {c}, {spec.columns[c]})" if c in exported else f"{c} ({spec.columns[c]})"
            for c in missing
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
    parsed = indexed.select(
        ROW,
        *[_parse(c, t).alias(c) for c, t in spec.columns.items()],
        *[pl.col(c).cast(pl.String).alias(f"{c}__raw") for c in spec.columns],
    )
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


def _show(value) -> str:
    return "null" if value is None else repr(value) if isinstance(value, str) else str(value)


def conflict_error(
    spec: SourceSpec,
    frame: pl.DataFrame,
    identity: list[str],
    origin: str,
    rule: str = "exact duplicates are dropped, but conflicting rows are not guessed between",
) -> SourceDataError | None:
    """Rows that share the key (and timestamp) but differ elsewhere: which key, which columns."""
    clashing = frame.filter(pl.len().over(identity) > 1)
    if clashing.is_empty():
        return None
    keys = clashing.select(identity).unique(maintain_order=True)
    first = clashing.join(keys.head(1), on=identity, how="semi")
    differ = [c for c in frame.columns if c not in identity and first[c].n_unique() > 1]
    where = ", ".join(f"{c} = {_show(first[c][0])}" for c in identity)
    values = "; ".join(
        f"{c}: {' vs '.join(_show(v) for v in first[c].unique(maintain_order=True).to_list())}" for c in differ
    )
    more = f" ({keys.height - 1:,} more key(s) like it)" if keys.height > 1 else ""
    return SourceDataError(
        f"source {spec.name} ({origin}): {first.height} rows with {where} differ in {', '.join(differ)} ({values}){more}; "
        f"{rule}: fix the export"
    )


def repeated_hashes(frame: pl.LazyFrame, columns: list[str]) -> pl.LazyFrame:
    """The 64-bit hashes of `columns` that more than one row has (`HASH`): a superset of the
    repeated values, small, found without holding the values themselves (streaming)."""
    hashed = frame.select(pl.struct(columns).hash().alias(HASH))
    return hashed.group_by(HASH).agg(pl.len().alias("__n")).filter(pl.col("__n") > 1).select(HASH)


def _drop_exact_duplicates(frame: pl.LazyFrame, identity: list[str]) -> tuple[pl.LazyFrame, pl.DataFrame]:
    """The frame without repeats of an earlier identical row, in its order (lazy); and the rows
    left that still share an identity (they differ elsewhere: a conflict).

    Identical rows share their identity (key and timestamp), so only the rows whose identity
    repeats are compared whole. Repeats are found by a streaming group-by of the identity's
    hash; a hash collision only adds a row to the comparison, never removes one from the data.
    """
    indexed = frame.with_row_index(ROW)
    repeated = repeated_hashes(indexed, identity).collect(engine="streaming")
    if repeated.is_empty():
        return frame, frame.clear().collect()
    candidates = (
        indexed.with_columns(pl.struct(identity).hash().alias(HASH))
        .join(repeated.lazy(), on=HASH, how="semi")
        .drop(HASH)
        .collect(engine="streaming")
        .sort(ROW)
    )
    columns = [c for c in candidates.columns if c != ROW]
    first = pl.struct(columns).is_first_distinct()
    repeats = candidates.filter(~first)[ROW]
    kept = candidates.filter(first).drop(ROW)
    return indexed.filter(~pl.col(ROW).is_in(repeats.implode())).drop(ROW), kept


def clean_lazy(spec: SourceSpec, frame: pl.LazyFrame, origin: str = "") -> pl.LazyFrame:
    """`clean` as a lazy frame, to stream into staging; the checks that can fail run here, now."""
    frame = frame.with_columns(
        [pl.col(c).str.strip_chars() for c in spec.columns if c.endswith("_id") and spec.columns[c] == pl.String]
    )
    frame = frame.filter(pl.all_horizontal([pl.col(k).is_not_null() for k in spec.key]))
    identity = [*spec.key, spec.timestamp_column]
    exact, repeated = _drop_exact_duplicates(frame, identity)
    error = conflict_error(spec, repeated, identity, origin or spec.path)
    if error is not None:
        raise error
    if spec.is_accounts:
        return exact.sort(identity, nulls_last=False)
    key = list(spec.key)
    if repeated_hashes(exact, key).head(1).collect(engine="streaming").is_empty():
        return exact
    if spec.records == IMMUTABLE:
        # an event does not change after it happened: the same id with other content is not a version
        resent = exact.filter(pl.len().over(key) > 1).collect(engine="streaming")
        rule = "its records are immutable (`records: immutable` in sources.yaml): an id sent again must be identical"
        error = conflict_error(spec, resent, key, origin or spec.path, rule)
        if error is not None:
            raise error
    # several versions of a record (a re-synced ticket): the newest is the record
    return exact.sort([*key, spec.timestamp_column], nulls_last=False, maintain_order=True).unique(
        subset=key, keep="last", maintain_order=True
    )


def clean(spec: SourceSpec, frame: pl.LazyFrame, origin: str = "") -> pl.DataFrame:
    """Trim stray whitespace from ids, drop rows without a key and exact duplicate rows, and keep
    one row per key: the newest by the source's timestamp. The accounts source keeps every
    version of an account (one per `updated_at`): each snapshot uses the version of its day.

    Rows that share the key and the timestamp but differ in another column are an error that
    names the key and the columns: no row silently wins.
    """
    return clean_lazy(spec, frame, origin).collect()


def accounts_as_of(accounts: pl.LazyFrame, spec: SourceSpec, end) -> pl.LazyFrame:
    """One row per account: the newest version updated before `end` (the end of a snapshot's day),
    or, for an account whose every version is later, its oldest (the export holds no earlier
    state of it). An export with one version per account gives that version for every day."""
    stamp = spec.timestamp_column
    flagged = accounts.with_columns(_known=pl.col(stamp).is_not_null() & (pl.col(stamp) < end))
    newest_known = flagged.filter("_known").sort("account_id", stamp).unique(subset=["account_id"], keep="last")
    oldest = flagged.sort("account_id", stamp, nulls_last=False).unique(subset=["account_id"], keep="first")
    later_only = oldest.join(newest_known.select("account_id"), on="account_id", how="anti")
    return pl.concat([newest_known, later_only], how="vertical").drop("_known").sort("account_id")


def latest_accounts(accounts: pl.LazyFrame, spec: SourceSpec) -> pl.LazyFrame:
    """One row per account: its newest version (the current state)."""
    return accounts.sort("account_id", spec.timestamp_column, nulls_last=False).unique(
        subset=["account_id"], keep="last", maintain_order=True
    )
