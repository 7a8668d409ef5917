"""Typed values out of polars frames.

Polars types a reduction of a column (`max()`, `min()`, ...) as any Python scalar; the column's
dtype says which one it is. `scalar` says so to the type checker, and fails loudly if it is not.
"""

from typing import TypeVar

T = TypeVar("T")


def scalar(value: object, kind: type[T]) -> T | None:
    """`value`, a reduction of a column, as the `kind` its dtype gives (None: the column had no value)."""
    if value is None or isinstance(value, kind):
        return value
    raise TypeError(f"expected a {kind.__name__} (or nothing) from the column, got {type(value).__name__}: {value!r}")
