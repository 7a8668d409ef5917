"""Helpers for the asset metadata people read in the UI."""

import polars as pl


def markdown_table(frame: pl.DataFrame, rows: int = 10) -> str:
    """A small markdown table of the first rows (values as text, nulls as blanks)."""
    head = frame.head(rows)
    lines = ["| " + " | ".join(head.columns) + " |", "|" + "---|" * len(head.columns)]
    for row in head.iter_rows():
        lines.append("| " + " | ".join("" if v is None else str(v) for v in row) + " |")
    return "\n".join(lines)
