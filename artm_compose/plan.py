"""The plan: every name, address, slot range and executor range of a cluster, computed once.

``make_plan`` is pure apart from reading the data directory's batch and token weights
(through :func:`artm_compose.data.summary.summarize`, or a summary passed in). Node addresses come
from the runtime's :class:`~artm_compose.addressing.Addressing`, passed in: the plan never asks which
runtime it is for. Renderers and runtimes only read a :class:`Plan`; they never recompute ranges.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from artm_compose.addressing import Addressing
from artm_compose.config import ClusterConfig
from artm_compose.data.summary import DataSummary, summarize
from artm_compose.errors import ConfigError
from artm_compose.ranges import Balance, Range, balanced_ranges, even_ranges, measure_balance
from artm_compose.slots import split_slots


@dataclass(frozen=True)
class NodePlan:
    """One Redis instance: a virtual node's primary (with the executors that talk to it), or, with
    ``replica_of`` set, a replica of that virtual node placed ``beside`` another one."""

    index: int
    name: str
    host: str
    port: int
    slots: tuple[int, int]  # inclusive, as CLUSTER ADDSLOTSRANGE takes them; a replica's are its primary's
    replica_of: int | None = None
    beside: int | None = None

    @property
    def bus_port(self) -> int:
        return self.port + 10000

    @property
    def is_replica(self) -> bool:
        return self.replica_of is not None

    def to_dict(self) -> dict[str, Any]:
        described: dict[str, Any] = {"index": self.index, "name": self.name, "host": self.host, "port": self.port,
                                     "slots": list(self.slots)}
        if self.replica_of is not None:
            described.update(replica_of=self.replica_of, beside=self.beside)
        return described


@dataclass(frozen=True)
class ReplicaPlacement:
    """Replica ``number`` (1-based) of virtual node ``primary``: Redis instance ``index``, placed beside
    (in the container, on the Swarm node of) virtual node ``beside``."""

    index: int
    primary: int
    number: int
    beside: int


def replica_placement(nodes: int, replicas: int) -> list[ReplicaPlacement]:
    """Where the replicas of ``nodes`` virtual nodes go, ``replicas`` each.

    Replica j of node i sits beside node (i + j) mod nodes: never beside its own primary (j < nodes),
    the R replicas of one node beside R different nodes, and every node hosts exactly R replicas, so a
    lost node (container, host) takes one copy of at most R other nodes with it. Instances are numbered
    after the primaries, replica j of node i being instance j * nodes + i.
    """
    if replicas and not 0 < replicas < nodes:
        raise ValueError(f"{replicas} replica(s) per node cannot sit beside other nodes than their primary's "
                         f"among {nodes} node(s)")
    return [ReplicaPlacement(index=number * nodes + primary, primary=primary, number=number,
                             beside=(primary + number) % nodes)
            for number in range(1, replicas + 1) for primary in range(nodes)]


@dataclass(frozen=True)
class ExecutorPlan:
    """One executor: its id, its node, and its half-open token and batch ranges."""

    id: int
    node: int
    token_range: Range
    batch_range: Range

    @property
    def name(self) -> str:
        return f"executor-{self.id}"

    @property
    def idle(self) -> bool:
        return self.batch_range[0] >= self.batch_range[1]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "node": self.node, "token_range": list(self.token_range),
                "batch_range": list(self.batch_range)}


@dataclass(frozen=True)
class SplitReport:
    """How far the batch and token splits are from perfect balance (``None`` without data)."""

    method: str
    batches: Balance | None
    tokens: Balance | None

    def to_dict(self) -> dict[str, Any]:
        def one(balance: Balance | None) -> dict[str, float] | None:
            if balance is None:
                return None
            return {"total": balance.total, "largest": balance.largest, "smallest": balance.smallest,
                    "imbalance_percent": round(balance.imbalance_percent, 3)}

        return {"method": self.method, "batches": one(self.batches), "tokens": one(self.tokens)}

    def describe(self) -> str:
        parts = [f"split {self.method}"]
        for label, balance in (("batch token weight", self.batches), ("token frequency", self.tokens)):
            if balance is not None:
                parts.append(f"{label}: largest share {balance.imbalance_percent:+.2f}% from perfect")
        return "; ".join(parts)


@dataclass(frozen=True)
class Plan:
    """The immutable plan of one cluster."""

    config: ClusterConfig
    addressing: Addressing
    nodes: tuple[NodePlan, ...]
    executors: tuple[ExecutorPlan, ...]
    split: SplitReport
    data: DataSummary | None
    replicas: tuple[NodePlan, ...] = ()

    @property
    def redis_nodes(self) -> tuple[NodePlan, ...]:
        """Every Redis instance: the primaries, then the replicas."""
        return self.nodes + self.replicas

    @property
    def cluster(self) -> str:
        return self.config.name

    def executors_of(self, node: int) -> tuple[ExecutorPlan, ...]:
        return tuple(e for e in self.executors if e.node == node)

    def to_dict(self) -> dict[str, Any]:
        data = None
        if self.data is not None:
            data = {"batches_dir": str(self.data.batches_dir), "vocab_path": str(self.data.vocab_path),
                    "batches": self.data.batch_count, "vocab_size": self.data.vocab_size,
                    "items": self.data.items, "token_weight": self.data.token_weight}
        training = {key: getattr(self.config, key) for key in (
            "topics", "iterations", "inner_iterations", "threads", "seed", "continue_fitting")}
        described = {
            "cluster": self.cluster,
            "runtime": self.config.runtime,
            "nodes": [n.to_dict() for n in self.nodes],
            "executors": [e.to_dict() for e in self.executors],
            "split": self.split.to_dict(),
            "data": data,
            "training": training,
        }
        if self.replicas:  # absent without replicas: the fingerprints of such clusters stay as they were
            described["replicas"] = [r.to_dict() for r in self.replicas]
        return described


def make_plan(config: ClusterConfig, data: DataSummary | None = None, *, addressing: Addressing) -> Plan:
    """Compute the plan of ``config`` with nodes at ``addressing`` (its runtime's); reads the data
    directory unless ``data`` is given.

    Raises :class:`ConfigError` when the nodes' ports do not fit ``addressing``, or when an executor
    would get no batch and ``allow_idle`` is off.
    """
    addressing.check(config)
    if data is None and config.data_dir is not None:
        vocab_path = config.resolved_vocab_path
        assert vocab_path is not None
        data = summarize(Path(config.data_dir), vocab_path)
    nodes = tuple(
        NodePlan(index=i, name=f"redis-{i}", host=host, port=port, slots=slots)
        for i, slots in enumerate(split_slots(config.nodes))
        for host, port in [addressing.address(i, config.base_port)]
    )
    replicas = tuple(
        NodePlan(index=r.index, name=f"redis-{r.index}", host=host, port=port, slots=nodes[r.primary].slots,
                 replica_of=r.primary, beside=r.beside)
        for r in replica_placement(config.nodes, config.replicas)
        for host, port in [addressing.address(r.index, config.base_port)]
    )
    count = config.executor_count
    if data is None:
        batch_ranges = token_ranges = [(0, 0)] * count
        split = SplitReport(method=config.split, batches=None, tokens=None)
    else:
        if data.vocab_size == 0:
            raise ConfigError(f"vocabulary {data.vocab_path} is empty")
        if config.split == "even":
            batch_ranges = even_ranges(data.batch_count, count)
            token_ranges = even_ranges(data.vocab_size, count)
        else:
            batch_ranges = balanced_ranges(data.batch_weights, count)
            token_ranges = balanced_ranges(data.token_weights, count)
        split = SplitReport(
            method=config.split,
            batches=measure_balance(data.batch_weights, batch_ranges),
            tokens=measure_balance(data.token_weights, token_ranges),
        )
    executors = tuple(
        ExecutorPlan(id=i, node=i // config.executors_per_node,
                     token_range=token_ranges[i], batch_range=batch_ranges[i])
        for i in range(count)
    )
    idle = [e.id for e in executors if e.idle]
    if data is not None and idle and not config.allow_idle:
        raise ConfigError(
            f"{len(idle)} of {count} executors would get no batch (ids {_id_list(idle)}): "
            f"{data.batch_count} batches in {data.batches_dir} for {config.nodes} node(s) x "
            f"{config.executors_per_node} executor(s) with split={config.split}; use fewer executors "
            f"or pass --allow-idle")
    return Plan(config=config, addressing=addressing, nodes=nodes, executors=executors, split=split, data=data,
                replicas=replicas)


def _id_list(ids: list[int], shown: int = 10) -> str:
    text = ", ".join(str(i) for i in ids[:shown])
    return text + (f", ... ({len(ids) - shown} more)" if len(ids) > shown else "")
