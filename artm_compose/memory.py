"""Memory a plan needs in each Redis node, known before anything starts.

Derived from the engine's key layout (:mod:`artm_compose.engine.layout`): phi lives in two buffers
(generation parity) of blocks of at most ``MAX_BLOCK_BYTES``, each block in the slot
``block_slot(block)``, so the node serving that slot holds it. During a pass, every executor that
touched rows of a block it does not own writes one contribution key for that block (a bitmap of the
block's rows, then float32 rows); the bound below assumes every non-owner touched every row, the
worst case, which dense corpora approach. Each value costs its jemalloc size class plus a per-key
overhead; an empty cluster node starts from ``EMPTY_NODE_BYTES``. The figures are checked against
``INFO memory`` of a real training in tests/engine/test_memory_estimate.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from artm_compose.engine.layout import FLOAT_BYTES, Layout, block_slot, block_starts
from artm_compose.errors import ConfigError
from artm_compose.plan import Plan

# used_memory of a fresh cluster-enabled redis-server 7.0 with a few clients connected (measured).
EMPTY_NODE_BYTES = 2 * 1024 ** 2
# Key name, robj, dict entry and cluster slot-to-key links per key, rounded up.
PER_KEY_BYTES = 160


def allocation_bytes(size: int) -> int:
    """jemalloc's size class for ``size`` bytes: four classes per power of two above 64 bytes."""
    if size <= 64:
        return max(8, (size + 15) // 16 * 16)
    step = 1 << ((size - 1).bit_length() - 3)
    return (size + step - 1) // step * step


@dataclass(frozen=True)
class NodeMemory:
    """Bytes one Redis node will need: phi (both generations), contributions at their peak, total."""

    phi: int
    contributions: int

    @property
    def total(self) -> int:
        return EMPTY_NODE_BYTES + self.phi + self.contributions


def plan_layout(plan: Plan) -> Layout:
    """The layout the master will build for ``plan`` (the executors' token ranges, in id order)."""
    assert plan.data is not None
    ranges = [e.token_range for e in plan.executors]
    return Layout(cluster=plan.cluster, topics=plan.config.topics,
                  starts=tuple(block_starts(ranges, plan.data.vocab_size, plan.config.topics)))


def redis_node_memory(plan: Plan) -> list[NodeMemory]:
    """Per node of ``plan`` (None without data: nothing but an empty cluster)."""
    if plan.data is None:
        return [NodeMemory(0, 0) for _ in plan.nodes]
    layout = plan_layout(plan)
    node_of_slot = {}
    for node in plan.nodes:
        node_of_slot.update({slot: node.index for slot in range(node.slots[0], node.slots[1] + 1)})
    phi = [0] * len(plan.nodes)
    contributions = [0] * len(plan.nodes)
    # Executors with batches write contributions; the block's owner keeps its own increments.
    others = max(0, sum(1 for e in plan.executors if not e.idle) - 1)
    for block in range(layout.blocks):
        first, stop = layout.block_rows(block)
        rows = stop - first
        node = node_of_slot[block_slot(block)]
        phi[node] += 2 * (allocation_bytes(rows * layout.topics * FLOAT_BYTES) + PER_KEY_BYTES)
        contribution = (rows + 7) // 8 + rows * layout.topics * FLOAT_BYTES
        contributions[node] += others * (allocation_bytes(contribution) + PER_KEY_BYTES)
    return [NodeMemory(p, c) for p, c in zip(phi, contributions)]


def mib(size: int) -> str:
    return f"{size / 1024 ** 2:.1f} MiB"


def describe_node_memory(needs: NodeMemory) -> str:
    return (f"up to {mib(needs.total)} (phi, 2 generations: {mib(needs.phi)}; contributions at most "
            f"{mib(needs.contributions)}; empty node {mib(EMPTY_NODE_BYTES)})")


def check_redis_memory(plan: Plan, maxmemory: int | None, limit: str | None) -> None:
    """Refuse a plan whose Redis nodes would need more than ``maxmemory`` (from the ``limit`` it sets)."""
    if maxmemory is None:
        return
    needs = redis_node_memory(plan)
    over = [(node, need) for node, need in zip(plan.nodes, needs) if need.total > maxmemory]
    if over:
        shown = "; ".join(f"{node.name} needs {describe_node_memory(need)}" for node, need in over[:4])
        more = f"; and {len(over) - 4} more node(s)" if len(over) > 4 else ""
        raise ConfigError(f"--redis-memory {limit} gives each Redis node maxmemory {mib(maxmemory)}, but {shown}"
                          f"{more}: raise --redis-memory, add nodes or lower the topics")
