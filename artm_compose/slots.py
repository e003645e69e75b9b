"""Redis Cluster hash-slot arithmetic."""

from __future__ import annotations

SLOT_COUNT = 16384


def split_slots(parts: int, slot_count: int = SLOT_COUNT) -> list[tuple[int, int]]:
    """Split slots 0..slot_count-1 into ``parts`` contiguous inclusive ranges, as even as possible.

    The first ``slot_count % parts`` ranges get one slot more, so sizes differ by at most one.
    """
    if not 1 <= parts <= slot_count:
        raise ValueError(f"cannot split {slot_count} slots into {parts} ranges")
    base, extra = divmod(slot_count, parts)
    ranges = []
    first = 0
    for index in range(parts):
        size = base + (1 if index < extra else 0)
        ranges.append((first, first + size - 1))
        first += size
    return ranges
