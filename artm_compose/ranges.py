"""Ranges of responsibility: which tokens and batches each executor owns.

All ranges are half-open ``(begin, end)``, contiguous, in executor order, starting at 0 and
ending at the size, as in the reference launcher.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

Range = tuple[int, int]


def even_ranges(size: int, parts: int) -> list[Range]:
    """The reference formula: ``step = ceil(size / parts)``, range i = ``[step*i, min(step*(i+1), size))``.

    Where the reference would produce a range starting past the end (more parts than
    ``ceil`` steps fit), the range is clamped to the empty ``[size, size)``.
    """
    if parts < 1:
        raise ValueError(f"parts must be >= 1, got {parts}")
    step = math.ceil(size / parts) if size else 0
    return [(min(step * i, size), min(step * (i + 1), size)) for i in range(parts)]


def balanced_ranges(weights: np.ndarray, parts: int) -> list[Range]:
    """Contiguous ranges whose total weights are as close as possible to ``total / parts``.

    Boundary k is put at the prefix position whose cumulative weight is nearest to
    ``k * total / parts``, then nudged so that every range is non-empty (zero-weight items
    still count as items). With fewer items than parts, each of the first parts gets one item
    and the rest are empty, which is the best possible largest share.
    """
    if parts < 1:
        raise ValueError(f"parts must be >= 1, got {parts}")
    weights = np.asarray(weights, dtype=np.float64)
    size = len(weights)
    if size <= parts:
        return [(min(i, size), min(i + 1, size)) for i in range(parts)]
    cumulative = np.concatenate(([0.0], np.cumsum(weights)))
    total = cumulative[-1]
    if total <= 0:
        return even_ranges(size, parts)
    targets = total * np.arange(1, parts) / parts
    right = np.searchsorted(cumulative, targets, side="left").clip(1, size)
    left = right - 1
    nearer_left = (targets - cumulative[left]) <= (cumulative[right] - targets)
    cuts = np.where(nearer_left, left, right).tolist()
    # Keep cuts strictly increasing with room for every later range to be non-empty.
    bounds = [0]
    for k, cut in enumerate(cuts, start=1):
        bounds.append(int(min(max(cut, bounds[-1] + 1), size - (parts - k))))
    bounds.append(size)
    return [(bounds[i], bounds[i + 1]) for i in range(parts)]


@dataclass(frozen=True)
class Balance:
    """How far a split is from perfect balance: ``max_over_mean - 1`` is 0 for a perfect split."""

    total: float
    largest: float
    smallest: float
    max_over_mean: float

    @property
    def imbalance_percent(self) -> float:
        return (self.max_over_mean - 1.0) * 100.0


def measure_balance(weights: np.ndarray, ranges: list[Range]) -> Balance:
    """Per-range total weight compared with the mean over all ranges."""
    weights = np.asarray(weights, dtype=np.float64)
    cumulative = np.concatenate(([0.0], np.cumsum(weights)))
    sums = [cumulative[end] - cumulative[begin] for begin, end in ranges]
    total = float(cumulative[-1])
    mean = total / len(ranges) if ranges else 0.0
    return Balance(
        total=total,
        largest=float(max(sums)),
        smallest=float(min(sums)),
        max_over_mean=float(max(sums) / mean) if mean > 0 else 1.0,
    )
