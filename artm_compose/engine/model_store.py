"""The model in Redis: phi blocks, per-executor n_wt contributions, the committed-model record.

Key layout and slot spreading: see :mod:`artm_compose.engine.layout`. All reads and writes of a
phase go through one cluster pipeline, which redis-py splits per node and sends node by node in
one round trip each, never one round trip per token or row.

Combining n_wt without lost updates, deterministically: in pass ``i`` executor ``e`` writes, for
every block ``b`` holding rows it touched but does not own, one key
``nwt:<run>:<i>:<b>:<e>`` (a bitmap of the block's rows it touched, then those rows' float32
increments). Nobody else writes that key, so nothing can be lost. The owner of block ``b`` reads
the keys of the executors the master lists for ``b``, and adds them, its own increments
included (rounded to float32 like the others), in executor-id order, in float64. The sum does
not depend on timing; it depends on the topology only through float rounding.

Bytes: :func:`net_bytes` reads ``total_net_input_bytes + total_net_output_bytes`` of every
node (client traffic only; the cluster bus is not counted), so the master measures what a pass
really moved, keys, RESP framing, heartbeats and control messages included. The minimum a pass
requires is defined in :func:`minimum_pass_bytes`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from redis.cluster import RedisCluster

from artm_compose.engine.layout import FLOAT_BYTES, Layout
from artm_compose.errors import TrainingError

# Contribution keys expire on their own if a run dies before the owner reads and deletes them.
CONTRIBUTION_TTL_SECONDS = 3600
# Unneeded rows between two needed runs of a block are read through when they are this small.
GAP_BYTES = 1024


class LostContribution(TrainingError):
    """A contribution written this pass is gone: a failover lost the write (replication is asynchronous)."""


def model_key(cluster: str) -> str:
    """The record of the last committed model (JSON): generation, pass, layout, n_t."""
    return f"ac:{cluster}:model"


Assignment = dict[int, tuple[tuple[int, int], tuple[int, int]]]  # executor id -> (token range, batch range)


@dataclass(frozen=True)
class ModelRecord:
    """What ``ac:<cluster>:model`` says about the committed model."""

    generation: int
    pass_number: int
    layout: Layout
    run: str
    n_t: list[float] | None
    # The executors that train it: id -> (token range, batch range), after take-overs and scales; a
    # restarted master waits for these and hands them these ranges. None: not recorded (a restored checkpoint's).
    executors: Assignment | None = None

    def to_json(self) -> str:
        return json.dumps({"generation": self.generation, "pass": self.pass_number, "run": self.run,
                           "layout": self.layout.to_dict(), "n_t": self.n_t,
                           "executors": executors_to_dict(self.executors)})

    @classmethod
    def from_json(cls, cluster: str, text: str | bytes) -> ModelRecord:
        data = json.loads(text)
        return cls(generation=int(data["generation"]), pass_number=int(data["pass"]), run=str(data["run"]),
                   layout=Layout.from_dict(cluster, data["layout"]), n_t=data.get("n_t"),
                   executors=executors_from_dict(data.get("executors")))


def executors_to_dict(executors: Assignment | None) -> dict[str, dict[str, list[int]]] | None:
    """An assignment as JSON data (the model record's, a checkpoint's)."""
    return None if executors is None else {
        str(e): {"token_range": list(tokens), "batch_range": list(batches)}
        for e, (tokens, batches) in sorted(executors.items())}


def executors_from_dict(data: dict[str, dict[str, list[int]]] | None) -> Assignment | None:
    return None if data is None else {int(e): (tuple(r["token_range"]), tuple(r["batch_range"]))
                                      for e, r in data.items()}


def read_model_record(client: RedisCluster, cluster: str) -> ModelRecord | None:
    """The committed model's record, or None when the cluster holds no model."""
    text = client.get(model_key(cluster))
    return None if text is None else ModelRecord.from_json(cluster, text)


def commit_model(client: RedisCluster, record: ModelRecord) -> None:
    """Make ``record`` the committed model (one SET: readers see the old or the new one)."""
    client.set(model_key(record.layout.cluster), record.to_json())


def read_rows(client: RedisCluster, layout: Layout, generation: int, rows: np.ndarray) -> np.ndarray:
    """Phi rows ``rows`` (sorted, unique, global) of ``generation`` as float32 ``len(rows) x T``.

    Rows are read as runs with one GETRANGE each, all in one pipeline. A run never crosses a
    block; two runs in a block merge when the rows between them cost fewer bytes than
    ``GAP_BYTES`` (an extra command costs more than that in client time), so dense needs
    read nearly whole blocks and sparse ones read little more than the rows asked for.
    """
    rows = np.asarray(rows, dtype=np.int64)
    out = np.empty((len(rows), layout.topics), dtype=np.float32)
    if len(rows) == 0:
        return out
    starts = np.asarray(layout.starts)
    block_of = np.searchsorted(starts, rows, side="right") - 1
    new_run = np.ones(len(rows), dtype=bool)
    new_run[1:] = ((np.diff(rows) - 1) * layout.row_bytes > GAP_BYTES) | (np.diff(block_of) != 0)
    run_begin = np.flatnonzero(new_run)
    run_end = np.append(run_begin[1:], len(rows))
    pipe = client.pipeline()
    for first, stop in zip(run_begin.tolist(), run_end.tolist()):
        block = int(block_of[first])
        offset = (int(rows[first]) - layout.starts[block]) * layout.row_bytes
        length = (int(rows[stop - 1]) - int(rows[first]) + 1) * layout.row_bytes
        pipe.getrange(layout.phi_key(generation, block), offset, offset + length - 1)
    for first, stop, value in zip(run_begin.tolist(), run_end.tolist(), pipe.execute()):
        span = int(rows[stop - 1]) - int(rows[first]) + 1
        if value is None or len(value) != span * layout.row_bytes:
            raise TrainingError(
                f"phi block {int(block_of[first])} of generation {generation} is missing or short in Redis "
                f"(rows {rows[first]}..{rows[stop - 1]}: got {0 if value is None else len(value)} of "
                f"{span * layout.row_bytes} bytes)")
        fetched = np.frombuffer(value, dtype="<f4").reshape(span, layout.topics)
        out[first:stop] = fetched[rows[first:stop] - rows[first]]
    return out


def read_range(client: RedisCluster, layout: Layout, generation: int, begin: int, end: int) -> np.ndarray:
    """All phi rows ``[begin, end)`` of ``generation``."""
    return read_rows(client, layout, generation, np.arange(begin, end, dtype=np.int64))


def write_range(client: RedisCluster, layout: Layout, generation: int, begin: int, phi: np.ndarray) -> None:
    """Write rows ``[begin, begin + len(phi))``, which must be whole blocks, as ``generation``."""
    end = begin + len(phi)
    blocks = layout.blocks_of(begin, end)
    if not blocks or layout.starts[blocks[0]] != begin or layout.starts[blocks[-1] + 1] != end:
        raise TrainingError(f"rows {begin}..{end} are not whole blocks of the layout")
    data = np.ascontiguousarray(phi, dtype="<f4")
    pipe = client.pipeline()
    for block in blocks:
        first, stop = layout.block_rows(block)
        pipe.set(layout.phi_key(generation, block), data[first - begin:stop - begin].tobytes())
    pipe.execute()


def encode_contribution(block_size: int, local_rows: np.ndarray, values: np.ndarray) -> bytes:
    """Bitmap of the block's touched rows (little bit order) followed by their float32 rows."""
    mask = np.zeros(block_size, dtype=bool)
    mask[local_rows] = True
    return np.packbits(mask, bitorder="little").tobytes() + np.ascontiguousarray(values, dtype="<f4").tobytes()


def decode_contribution(block_size: int, topics: int, data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`encode_contribution`: (local rows, float32 values)."""
    head = (block_size + 7) // 8
    mask = np.unpackbits(np.frombuffer(data[:head], dtype=np.uint8), count=block_size, bitorder="little")
    local_rows = np.flatnonzero(mask)
    values = np.frombuffer(data[head:], dtype="<f4")
    if values.size != local_rows.size * topics:
        raise TrainingError(f"n_wt contribution of {len(data)} bytes does not match its bitmap "
                            f"({local_rows.size} rows x {topics} topics)")
    return local_rows, values.reshape(local_rows.size, topics)


def write_contributions(client: RedisCluster, layout: Layout, run: str, pass_number: int, executor: int,
                        rows: np.ndarray, values: np.ndarray) -> list[int]:
    """Write one executor's increments for ``rows`` (sorted, global, none of its own); the blocks written."""
    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) == 0:
        return []
    starts = np.asarray(layout.starts)
    block_of = np.searchsorted(starts, rows, side="right") - 1
    cuts = np.flatnonzero(np.diff(block_of)) + 1
    pipe = client.pipeline()
    written = []
    for first, stop in zip(np.concatenate(([0], cuts)).tolist(), np.append(cuts, len(rows)).tolist()):
        block = int(block_of[first])
        begin, end = layout.block_rows(block)
        payload = encode_contribution(end - begin, rows[first:stop] - begin, values[first:stop])
        pipe.set(layout.contribution_key(run, pass_number, block, executor), payload, ex=CONTRIBUTION_TTL_SECONDS)
        written.append(block)
    pipe.execute()
    return written


def read_contributions(client: RedisCluster, layout: Layout, run: str, pass_number: int,
                       wanted: Iterable[tuple[int, int]]) -> dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]:
    """Read and delete the contributions ``(block, executor)``; a missing one is an error."""
    wanted = list(wanted)
    pipe = client.pipeline()
    for block, executor in wanted:
        key = layout.contribution_key(run, pass_number, block, executor)
        pipe.get(key)
        pipe.unlink(key)
    replies = pipe.execute()
    out = {}
    for (block, executor), data in zip(wanted, replies[0::2]):
        if data is None:
            raise LostContribution(f"n_wt contribution of executor {executor} for block {block} in pass "
                                   f"{pass_number} is missing from Redis")
        begin, end = layout.block_rows(block)
        out[(block, executor)] = decode_contribution(end - begin, layout.topics, data)
    return out


def sum_block(layout: Layout, block: int, parts: Sequence[tuple[int, np.ndarray, np.ndarray]]) -> np.ndarray:
    """n_wt of a block: the ``(executor, local rows, values)`` parts added in executor-id order (float64)."""
    begin, end = layout.block_rows(block)
    total = np.zeros((end - begin, layout.topics), dtype=np.float64)
    for _, local_rows, values in sorted(parts, key=lambda part: part[0]):
        total[local_rows] += values
    return total


def net_bytes(client: RedisCluster) -> int:
    """Bytes all nodes have read from and written to clients since they started."""
    stats = client.info("stats", target_nodes=RedisCluster.ALL_NODES)
    nodes = stats.values() if isinstance(stats, dict) and "total_net_input_bytes" not in stats else [stats]
    return sum(int(s["total_net_input_bytes"]) + int(s["total_net_output_bytes"]) for s in nodes)


def minimum_pass_bytes(vocab_size: int, topics: int, foreign_rows: Sequence[int]) -> int:
    """The fewest bytes a pass can move through Redis while the model lives there.

    With ``foreign_rows[e]`` = |R_e minus O_e| (rows executor e's batches touch that it does not
    own; it keeps its own rows in memory), each float32 (the model's precision):

    * the owners write the new phi, every row once: ``V * T * 4``;
    * each executor reads the phi rows it needs and does not own: ``sum_e foreign_e * T * 4``;
    * each executor's increments for rows it does not own go to Redis and from there to their
      owner: ``2 * sum_e foreign_e * T * 4``.

    Control traffic (states, heartbeats, per-topic n_t: O(executors x T) bytes) is left out; the
    measured figure includes it.
    """
    return FLOAT_BYTES * topics * (vocab_size + 3 * int(sum(foreign_rows)))
