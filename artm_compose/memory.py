"""Memory a plan needs in each Redis node and each executor, known before anything starts.

Derived from the engine's key layout (:mod:`artm_compose.engine.layout`): phi lives in two buffers
(generation parity) of blocks of at most ``MAX_BLOCK_BYTES``, each block in the slot
``block_slot(block)``, so the node serving that slot holds it. During a pass, every executor that
touched rows of a block it does not own writes one contribution key for that block (a bitmap of the
block's rows, then float32 rows); the bound below assumes every non-owner touched every row, the
worst case, which dense corpora approach. Each value costs its jemalloc size class plus a per-key
overhead; an empty cluster node starts from ``EMPTY_NODE_BYTES``. The figures are checked against
``INFO memory`` of a real training in tests/engine/test_memory_estimate.py.

Executors (peak resident set, ``VmHWM``): the process itself (Python, NumPy, the compiled kernel, the
Redis client), then the larger of two moments. Loading the corpus slice passes through int64 and
float64 copies (``np.unique``'s inverse, the weights): 47 bytes per nonzero at that moment (measured
on 50M tokens); afterwards 8 stay (int32 row, float32 weight). At the E-step's peak, per phi row its
documents touch and topic: float32 phi, the replies and the array ``read_rows`` fills for foreign rows,
the float64 n_wt the kernel returns (24 bytes, measured), plus 12 per extra thread (its own n_wt), plus
the float32 phi of the rows it owns. The rows touched are bounded by min(vocabulary, the executor's
nonzeros): the plan knows no more before the batches are read per executor. Figures and the runs
behind them: BENCHMARKS.md (bench_scale.py) and tests/engine/test_memory_estimate.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from artm_compose.engine.layout import FLOAT_BYTES, Layout, block_slot, block_starts
from artm_compose.errors import ConfigError
from artm_compose.plan import Plan

# used_memory of a fresh cluster-enabled redis-server 7.0 with a few clients connected (measured).
EMPTY_NODE_BYTES = 2 * 1024 ** 2
# VmHWM of an executor process with a 1-topic model (measured, local runtime).
EXECUTOR_BASE_BYTES = 205 * 1024 ** 2
ESTEP_BYTES_PER_CELL = 24
EXTRA_THREAD_BYTES_PER_CELL = 12
CORPUS_BYTES_PER_NONZERO = 8
LOADING_BYTES_PER_NONZERO = 47
# Key name, robj, dict entry and cluster slot-to-key links per key, rounded up.
PER_KEY_BYTES = 160
REDIS_SLACK = 1.01


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
        # Peaks measured up to 0.4% above the sum at 2M-50M tokens (bench_scale.py): 1% slack.
        return int((EMPTY_NODE_BYTES + self.phi + self.contributions) * REDIS_SLACK)


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


@dataclass(frozen=True)
class ExecutorMemory:
    """Bytes one executor will need: E-step arrays, owned phi, corpus slice (kept, and while loading)."""

    e_step: int
    owned: int
    corpus: int
    loading: int

    @property
    def total(self) -> int:
        return EXECUTOR_BASE_BYTES + max(self.loading, self.corpus + self.e_step + self.owned)


def executor_memory(plan: Plan) -> list[ExecutorMemory]:
    """Per executor of ``plan`` (empty without data)."""
    if plan.data is None:
        return []
    data, topics = plan.data, plan.config.topics
    total_weight = float(data.batch_weights.sum()) or 1.0
    per_cell = ESTEP_BYTES_PER_CELL + EXTRA_THREAD_BYTES_PER_CELL * (plan.config.threads - 1)
    estimates = []
    for executor in plan.executors:
        (b0, b1), (t0, t1) = executor.batch_range, executor.token_range
        nonzeros = int(round(data.nonzeros * float(data.batch_weights[b0:b1].sum()) / total_weight))
        rows = min(data.vocab_size, nonzeros)
        estimates.append(ExecutorMemory(e_step=rows * topics * per_cell, owned=(t1 - t0) * topics * FLOAT_BYTES,
                                        corpus=nonzeros * CORPUS_BYTES_PER_NONZERO,
                                        loading=nonzeros * LOADING_BYTES_PER_NONZERO))
    return estimates


def describe_executor_memory(needs: ExecutorMemory) -> str:
    return (f"up to {mib(needs.total)} (process {mib(EXECUTOR_BASE_BYTES)} + the larger of loading the corpus "
            f"{mib(needs.loading)} and E-step {mib(needs.e_step)} + owned phi {mib(needs.owned)} + corpus "
            f"{mib(needs.corpus)})")


def docker_bytes(limit: str) -> int:
    """Bytes of a Docker memory size such as ``512m`` or ``2g``."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([bkmg]?)", limit.strip().lower())
    if match is None:
        raise ConfigError(f"memory limit {limit!r} is not a Docker memory size such as 512m or 2g")
    return int(float(match.group(1)) * {"": 1, "b": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}[match.group(2)])


def check_executor_memory(plan: Plan, limit: str | None) -> None:
    """Refuse a plan whose executors would need more than the ``--executor-memory`` container limit."""
    if limit is None:
        return
    allowed = docker_bytes(limit)
    over = [(e, need) for e, need in zip(plan.executors, executor_memory(plan)) if need.total > allowed]
    if over:
        shown = "; ".join(f"{e.name} needs {describe_executor_memory(need)}" for e, need in over[:4])
        more = f"; and {len(over) - 4} more executor(s)" if len(over) > 4 else ""
        raise ConfigError(f"--executor-memory {limit} ({mib(allowed)}) is less than the plan needs: {shown}{more}: "
                          f"raise --executor-memory, add executors or lower the topics")
