"""Where the model lives in Redis: blocks of phi rows, their keys, and the slots they hash to.

Pure functions only (no Redis calls). Every key of a cluster starts with ``ac:<cluster>:``.

Blocks: the vocabulary rows ``[0, V)`` are cut into blocks that never cross a token-range
boundary, so every block has exactly one owner (the executor that normalises those rows). A
block holds ``rows x topics`` float32 values, row-major, little-endian: one Redis string.

Slots: block ``b`` carries the hash tag of slot ``floor(frac((b + 1) * g) * 16384)``
with ``g = (sqrt(5) - 1) / 2``. This golden-ratio sequence spreads any run of consecutive blocks
(one owner's range) and all of them evenly over the whole slot space, so each node, whatever
contiguous slot range it serves, holds its share of every owner's blocks to within a block or two.
The tag of a slot is the first six-digit decimal string hashing to it (one vectorised search per process).
"""

from __future__ import annotations

import binascii
import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

SLOT_COUNT = 16384
FLOAT_BYTES = 4
_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0
# Blocks of at most this many bytes keep single Redis replies small enough not to stall a node.
MAX_BLOCK_BYTES = 1 << 16
# At least this many blocks in all (when the vocabulary allows), so small models still spread.
MIN_BLOCKS = 64
# Hash tags are fixed-width decimal strings; a million of them reach every slot.
TAG_DIGITS = 6


def key_slot(key: bytes) -> int:
    """The Redis Cluster hash slot of ``key`` (CRC16/XMODEM of the hash tag or the whole key)."""
    start = key.find(b"{")
    if start >= 0:
        end = key.find(b"}", start + 1)
        if end > start + 1:
            key = key[start + 1:end]
    return binascii.crc_hqx(key, 0) % SLOT_COUNT


def _crc16_table() -> np.ndarray:
    table = np.zeros(256, dtype=np.uint32)
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table[byte] = crc & 0xFFFF
    return table


@functools.cache
def _slot_tags() -> tuple[str, ...]:
    """For every slot the smallest six-digit decimal string hashing to it (CRC16 vectorised)."""
    table = _crc16_table()
    candidates = np.arange(10**TAG_DIGITS, dtype=np.uint32)
    crc = np.zeros(len(candidates), dtype=np.uint32)
    for position in range(TAG_DIGITS - 1, -1, -1):
        digit = (candidates // 10**position) % 10 + ord("0")
        crc = table[((crc >> 8) ^ digit) & 0xFF] ^ ((crc << 8) & 0xFFFF)
    slots = crc % SLOT_COUNT
    first = np.full(SLOT_COUNT, -1, dtype=np.int64)
    order = np.argsort(slots, kind="stable")
    sorted_slots = slots[order]
    starts = np.searchsorted(sorted_slots, np.arange(SLOT_COUNT))
    found = starts < len(sorted_slots)
    found[found] = sorted_slots[starts[found]] == np.arange(SLOT_COUNT)[found]
    first[found] = order[starts[found]]
    if not found.all():
        raise RuntimeError(f"{int((~found).sum())} slots have no {TAG_DIGITS}-digit tag")
    return tuple(f"{value:0{TAG_DIGITS}d}" for value in first.tolist())


def prepare_slot_tags() -> None:
    """Build the slot-tag table now (a fraction of a second), not in the middle of a timed phase."""
    _slot_tags()


def slot_tag(slot: int) -> str:
    """A hash tag (without braces) whose keys land in ``slot``."""
    return _slot_tags()[slot]


def block_slot(block: int) -> int:
    """The slot of block ``block``: the golden-ratio sequence scaled to the slot space."""
    return int(((block + 1) * _GOLDEN) % 1.0 * SLOT_COUNT)


def rows_per_block(vocab_size: int, topics: int) -> int:
    """Rows in a block: at most MAX_BLOCK_BYTES per block, and about MIN_BLOCKS blocks or more."""
    by_bytes = max(1, MAX_BLOCK_BYTES // (topics * FLOAT_BYTES))
    by_count = max(1, math.ceil(vocab_size / MIN_BLOCKS))
    return min(by_bytes, by_count)


def block_starts(token_ranges: Sequence[tuple[int, int]], vocab_size: int, topics: int) -> list[int]:
    """Block boundaries ``[0, ..., V]``: each owner's range cut into near-equal blocks."""
    size = rows_per_block(vocab_size, topics)
    starts = [0]
    for begin, end in token_ranges:
        if end <= begin:
            continue
        pieces = math.ceil((end - begin) / size)
        starts.extend(begin + (end - begin) * k // pieces for k in range(1, pieces + 1))
    if starts[-1] != vocab_size:
        raise ValueError(f"token ranges end at {starts[-1]}, not at the vocabulary size {vocab_size}")
    return starts


@dataclass(frozen=True)
class Layout:
    """The block structure of one model: ``starts[b]:starts[b + 1]`` are the rows of block b."""

    cluster: str
    topics: int
    starts: tuple[int, ...]

    @property
    def vocab_size(self) -> int:
        return self.starts[-1]

    @property
    def blocks(self) -> int:
        return len(self.starts) - 1

    @property
    def row_bytes(self) -> int:
        return self.topics * FLOAT_BYTES

    def block_rows(self, block: int) -> tuple[int, int]:
        return self.starts[block], self.starts[block + 1]

    def tag(self, block: int) -> str:
        return "{" + slot_tag(block_slot(block)) + "}"

    def phi_key(self, generation: int, block: int) -> str:
        """Phi of a committed generation; two buffers (by parity) so the last commit stays intact."""
        return f"ac:{self.cluster}:phi:{generation % 2}:{block}:{self.tag(block)}"

    def contribution_key(self, run: str, pass_number: int, block: int, executor: int) -> str:
        """One executor's n_wt increments for one block in one pass (same slot as the block)."""
        return f"ac:{self.cluster}:nwt:{run}:{pass_number}:{block}:{executor}:{self.tag(block)}"

    def blocks_of(self, begin: int, end: int) -> range:
        """Blocks overlapping rows ``[begin, end)``."""
        if end <= begin:
            return range(0)
        first = int(np.searchsorted(self.starts, begin, side="right")) - 1
        last = int(np.searchsorted(self.starts, end, side="left"))
        return range(first, last)

    def to_dict(self) -> dict:
        return {"topics": self.topics, "starts": list(self.starts)}

    @classmethod
    def from_dict(cls, cluster: str, data: dict) -> Layout:
        return cls(cluster=cluster, topics=int(data["topics"]), starts=tuple(int(s) for s in data["starts"]))
