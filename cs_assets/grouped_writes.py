"""Bookkeeping written in small groups: after every `every` items or `seconds`, whichever first.

The deliveries (notifications, CRM batches) record what the other side accepted as they go. One
warehouse connection per item is slow (about 120 ms each) and holding one for a whole run makes
readers wait; a group per few items or per second keeps both short, and a crash loses at most
the last group, whose items are then sent again with the same key.
"""

import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class GroupedWrites(Generic[T]):
    def __init__(
        self,
        write: Callable[[list[T]], None],
        every: int,
        seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._write, self._every, self._seconds, self._clock = write, every, seconds, clock
        self._items: list[T] = []
        self._last = clock()

    def add(self, item: T) -> None:
        self._items.append(item)
        if len(self._items) >= self._every or self._clock() - self._last > self._seconds:
            self.flush()

    def flush(self) -> None:
        """Write what is kept (nothing when empty)."""
        if self._items:
            self._write(list(self._items))
            self._items.clear()
        self._last = self._clock()
