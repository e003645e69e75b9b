"""Key layout: blocks tile the vocabulary per owner, keys spread over all slots of all nodes."""

from __future__ import annotations

import numpy as np
import pytest

from artm_compose.engine.layout import Layout, block_starts, key_slot, rows_per_block, slot_tag
from artm_compose.engine.model_store import decode_contribution, encode_contribution, minimum_pass_bytes, sum_block
from artm_compose.ranges import even_ranges
from artm_compose.slots import SLOT_COUNT, split_slots


def test_every_slot_has_a_tag_that_hashes_to_it():
    for slot in (0, 1, 777, 8191, 16383):
        assert key_slot(f"ac:x:phi:0:3:{{{slot_tag(slot)}}}".encode()) == slot
    assert len({slot_tag(s) for s in range(SLOT_COUNT)}) == SLOT_COUNT


def test_key_slot_is_redis_crc16():
    # Values from the Redis Cluster specification and CLUSTER KEYSLOT.
    assert key_slot(b"123456789") == 0x31C3 % SLOT_COUNT
    assert key_slot(b"foo") == 12182
    assert key_slot(b"{user1000}.following") == key_slot(b"user1000")


@pytest.mark.parametrize("vocab_size,topics,owners", [(17800, 50, 2), (1509, 10, 8), (100, 20, 3), (7, 4, 2)])
def test_blocks_tile_the_vocabulary_and_never_cross_an_owner(vocab_size, topics, owners):
    ranges = even_ranges(vocab_size, owners)
    starts = block_starts(ranges, vocab_size, topics)
    assert starts[0] == 0 and starts[-1] == vocab_size and all(a < b for a, b in zip(starts, starts[1:]))
    for begin, end in ranges:
        assert begin in starts and end in starts
    assert max(b - a for a, b in zip(starts, starts[1:])) <= rows_per_block(vocab_size, topics)
    assert max(b - a for a, b in zip(starts, starts[1:])) * topics * 4 <= 1 << 16


@pytest.mark.parametrize("nodes", [1, 2, 3, 4, 8])
def test_blocks_spread_evenly_over_nodes_and_each_owner_reaches_every_node(nodes):
    vocab_size, topics, owners = 17800, 50, 8
    layout = Layout("c", topics, tuple(block_starts(even_ranges(vocab_size, owners), vocab_size, topics)))
    node_of = np.zeros(SLOT_COUNT, dtype=int)
    for index, (first, last) in enumerate(split_slots(nodes)):
        node_of[first:last + 1] = index
    slots = [key_slot(layout.phi_key(0, b).encode()) for b in range(layout.blocks)]
    per_node = np.bincount(node_of[slots], minlength=nodes)
    assert per_node.max() - per_node.min() <= 2, per_node
    assert len(set(slots)) == layout.blocks  # no two blocks share a slot
    for begin, end in even_ranges(vocab_size, owners):
        owned = layout.blocks_of(begin, end)
        if len(owned) >= 2 * nodes:
            assert set(node_of[[slots[b] for b in owned]]) == set(range(nodes))
    # Contributions of a block live in its slot, whatever the executor and pass.
    assert key_slot(layout.contribution_key("r", 3, 5, 7).encode()) == slots[5]
    # The two phi buffers of a block share its slot too.
    assert key_slot(layout.phi_key(1, 5).encode()) == slots[5]


def test_blocks_of_finds_overlapping_blocks():
    layout = Layout("c", 2, (0, 3, 6, 10))
    assert list(layout.blocks_of(0, 10)) == [0, 1, 2]
    assert list(layout.blocks_of(3, 6)) == [1]
    assert list(layout.blocks_of(4, 7)) == [1, 2]
    assert list(layout.blocks_of(5, 5)) == []


def test_contribution_roundtrip_and_ordered_sum():
    rng = np.random.default_rng(0)
    rows = np.array([0, 3, 4, 9])
    values = rng.random((4, 3)).astype(np.float32)
    data = encode_contribution(10, rows, values)
    assert len(data) == 2 + 4 * 3 * 4
    got_rows, got_values = decode_contribution(10, 3, data)
    assert np.array_equal(got_rows, rows) and np.array_equal(got_values, values)
    layout = Layout("c", 3, (0, 10))
    other = rng.random((2, 3)).astype(np.float32)
    parts = [(5, np.array([3, 9]), other), (1, rows, values)]
    total = sum_block(layout, 0, parts)
    expected = np.zeros((10, 3))
    expected[rows] += values
    expected[[3, 9]] += other
    assert np.array_equal(total, expected)
    assert np.array_equal(sum_block(layout, 0, parts[::-1]), total)


def test_minimum_counts_phi_once_and_foreign_rows_three_times():
    assert minimum_pass_bytes(100, 10, [0]) == 100 * 10 * 4
    assert minimum_pass_bytes(100, 10, [30, 20]) == (100 + 3 * 50) * 10 * 4


def test_export_row_chunks_are_whole_blocks_within_the_bound():
    from artm_compose.engine.export import row_chunks
    layout = Layout(cluster="c", topics=10, starts=(0, 3, 7, 8, 20, 21))  # row bytes 40
    assert list(row_chunks(layout, 40 * 8)) == [(0, 8), (8, 20), (20, 21)]  # block 8-20 alone exceeds it
    assert list(row_chunks(layout, 1)) == [(0, 3), (3, 7), (7, 8), (8, 20), (20, 21)]
    assert list(row_chunks(layout, 10 ** 9)) == [(0, 21)]
