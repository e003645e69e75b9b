"""Row blocks for arithmetic over an owner's whole token range, so that temporaries stay small.

A NumPy expression over all own rows (the M-step, the n_t sums, the phi scores) makes temporaries of
the range's size, in float64: at 10,000 rows x 400 topics each is 32 MB. Together the M-step and the
kernel scores raised an executor's peak resident set ~150 MB above the E-step's, and how much of it
stayed resident depended on the allocator's timing (measured per command with VmHWM while
tests/engine/test_memory_estimate.py trained: 1.03-1.19 of the plan's estimate before, see
BENCHMARKS.md). In blocks of a few MiB the temporaries are that size and the E-step is the peak again.
"""

from __future__ import annotations

from collections.abc import Iterator

BLOCK_BYTES = 4 << 20


def row_blocks(rows: int, columns: int, item_bytes: int = 8) -> Iterator[slice]:
    """Consecutive slices of ``rows`` rows, each about ``BLOCK_BYTES`` of ``columns`` items."""
    step = max(1, BLOCK_BYTES // max(1, columns * item_bytes))
    for begin in range(0, rows, step):
        yield slice(begin, min(begin + step, rows))
