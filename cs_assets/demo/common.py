"""What the example-data generators share: the landing directory's manifest, calendar arithmetic
on epoch days, event expansion, and the deliberate real-world mess (ids with stray whitespace,
duplicate rows, timestamps as strings with mixed UTC offsets). Every function is deterministic
given its random generator."""

import json
import os
import pathlib

import numpy as np
import polars as pl

MANIFEST_NAME = "_demo_manifest.json"

Rng = np.random.Generator
Arr = np.ndarray


def begin_landing(landing_dir: pathlib.Path) -> pathlib.Path:
    """Create the landing directory and remove its manifest (returned): a manifest left by an
    earlier run must not vouch for a half-written one."""
    landing_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = landing_dir / MANIFEST_NAME
    manifest_path.unlink(missing_ok=True)
    return manifest_path


def write_manifest(manifest_path: pathlib.Path, manifest: dict) -> None:
    """Written last and atomically: readers see no manifest or a complete one."""
    tmp = manifest_path.with_name(MANIFEST_NAME + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, manifest_path)


def write_parquet(frame: pl.DataFrame, path: pathlib.Path) -> int:
    """Fixed writer settings so that equal frames give equal bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(path, compression="zstd", compression_level=3, statistics=True, row_group_size=500_000)
    return frame.height


def add_years(days: Arr, years: Arr) -> Arr:
    """Epoch days shifted by whole calendar years (29 Feb -> 28 Feb)."""
    frame = pl.DataFrame({"d": days.astype(np.int32), "y": years.astype(np.int64)})
    shifted = frame.select(pl.col("d").cast(pl.Date).dt.offset_by(pl.format("{}y", pl.col("y"))).cast(pl.Int32))
    return shifted.to_series().to_numpy().astype(np.int64)


def next_anniversary(start: Arr, after: Arr) -> Arr:
    """First anniversary of `start` (start + whole years, at least one) strictly after `after`."""
    start_year = pl.Series(start.astype(np.int32)).cast(pl.Date).dt.year().to_numpy()
    after_year = pl.Series(after.astype(np.int32)).cast(pl.Date).dt.year().to_numpy()
    years = np.maximum(after_year - start_year, 1)
    candidate = add_years(start, years)
    years = np.where(candidate <= after, years + 1, years)
    return add_years(start, years)


def expand(counts: Arr) -> tuple[Arr, Arr]:
    """(account index, day index) of every event, given event counts per account-day."""
    flat = counts.ravel()
    cell = np.repeat(np.arange(flat.size, dtype=np.int64), flat)
    return cell // counts.shape[1], cell % counts.shape[1]


def whitespace_codes(rng: Rng, n: int, share: float) -> Arr:
    """0: clean id; 1: leading space; 2: trailing space; 3: two trailing spaces.

    `share` of the rows are messy, and at least one whenever there are rows, so that even a tiny
    run exercises the normalisation.
    """
    codes = rng.integers(1, 4, n).astype(np.int8)
    messy = rng.random(n) < share
    if n and not messy.any():
        messy[rng.integers(0, n)] = True
    return np.where(messy, codes, 0).astype(np.int8)


def duplicate_rows(rng: Rng, n: int, share: float) -> Arr:
    """Row order with `share` of the rows repeated right after themselves (at least one repeat
    when share > 0 and there are rows)."""
    n_dup = max(1, int(round(n * share))) if n and share > 0 else 0
    dup = rng.integers(0, n, n_dup) if n else np.zeros(0, dtype=np.int64)
    return np.sort(np.concatenate([np.arange(n), dup]), kind="stable")


def zfill(col: str, width: int) -> pl.Expr:
    return pl.col(col).cast(pl.String).str.zfill(width)


def account_id_expr(prefix: str, num_col: str, ws_col: str) -> pl.Expr:
    """`<prefix>000042`, with the stray whitespace `whitespace_codes` chose for the row."""
    clean = pl.lit(prefix) + zfill(num_col, 6)
    ws = pl.col(ws_col)
    return (
        pl.when(ws == 1)
        .then(pl.lit(" ") + clean)
        .when(ws == 2)
        .then(clean + pl.lit(" "))
        .when(ws == 3)
        .then(clean + pl.lit("  "))
        .otherwise(clean)
    )


def lookup(col: str, names: tuple[str, ...]) -> pl.Expr:
    return pl.col(col).replace_strict(list(range(len(names))), list(names), return_dtype=pl.String)


def iso_with_offset(col: str, style_col: str, styles: tuple[tuple[str, int], ...], us_per_unit: int) -> pl.Expr:
    """ISO-8601 text with an explicit offset: the UTC instant in `col` (epoch units of
    `us_per_unit` microseconds) shown in the local time of the row's style (suffix, minutes east)."""
    minutes = pl.col(style_col).replace_strict(list(range(len(styles))), [m for _, m in styles], return_dtype=pl.Int64)
    suffix = lookup(style_col, tuple(s for s, _ in styles))
    local = (pl.col(col) * us_per_unit + minutes * 60_000_000).cast(pl.Datetime("us"))
    return local.dt.strftime("%Y-%m-%dT%H:%M:%S") + suffix
