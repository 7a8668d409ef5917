"""Bookkeeping in groups: written after `every` items or `seconds`, and whatever is left at the end."""

from cs_assets.grouped_writes import GroupedWrites


def test_a_group_is_written_when_full_or_late_and_the_rest_on_flush():
    now = [0.0]
    written: list[list[int]] = []
    groups = GroupedWrites(written.append, every=3, seconds=1.0, clock=lambda: now[0])
    for item in (1, 2, 3, 4):
        groups.add(item)
    assert written == [[1, 2, 3]]  # full
    now[0] = 2.0
    groups.add(5)
    assert written == [[1, 2, 3], [4, 5]]  # more than a second since the last write
    groups.add(6)
    groups.flush()
    groups.flush()  # nothing left: nothing written
    assert written == [[1, 2, 3], [4, 5], [6]]
