"""What runs: the typed record of a cluster (``cluster.json``) and its status, loaded and saved here only.

``render.cluster_description`` writes the document from a plan; ``status``, ``logs``, ``export`` and
``down`` read it back as a :class:`ClusterRecord`, so they need neither the plan nor the data directory.
A runtime keeps its own part of the record (e.g. the Swarm's placement) under its name, as ``extras``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from artm_compose.bootstrap import NodeTarget
from artm_compose.errors import ConfigError
from artm_compose.state import StateDir, write_text_atomic


class Status(StrEnum):
    """A cluster's status: the first seven are recorded by ``up``/``down``, the rest only observed."""

    RENDERED = "rendered"
    STARTING = "starting"
    RUNNING = "running"
    TRAINING = "training"
    FINISHED = "finished"
    FAILED = "failed"
    STOPPED = "stopped"
    # Observed by ``status`` when what is alive contradicts the record.
    DOWN = "down"
    DEGRADED = "degraded"
    TRAINING_STOPPED = "training stopped"


@dataclass(frozen=True)
class NodeRecord:
    """A Redis node as started: index, name, address, inclusive slot range and cluster-bus port."""

    index: int
    name: str
    host: str
    port: int
    slots: tuple[int, int]
    bus_port: int
    replica_of: int | None = None  # a replica: the index of its primary

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def target(self) -> NodeTarget:
        """Bootstrap target: nodes meet each other at their recorded address."""
        return NodeTarget(index=self.index, name=self.name, host=self.host, port=self.port, slots=self.slots,
                          meet_host=self.host, meet_port=self.port, bus_port=self.bus_port,
                          replica_of=self.replica_of)


@dataclass(frozen=True)
class ExecutorRecord:
    """An executor as started: its id, node, the Redis address it talks to, and its half-open ranges."""

    id: int
    node: int
    name: str
    redis: str
    token_range: tuple[int, int]
    batch_range: tuple[int, int]


@dataclass(frozen=True)
class TrainingRecord:
    """The training part of a cluster started with data: the corpus and the master's Redis address."""

    batches_dir: Path
    vocab_path: Path
    master_redis: str


@dataclass(frozen=True)
class ClusterRecord:
    """A cluster as ``up`` (or ``render``) recorded it in the state directory."""

    cluster: str
    runtime: str
    status: Status
    redis_fingerprint: str
    nodes: tuple[NodeRecord, ...]
    executors: tuple[ExecutorRecord, ...]  # empty without training
    training: TrainingRecord | None
    config: dict[str, Any]
    extras: dict[str, Any] = field(default_factory=dict)
    # The whole document as read: saving keeps every key this class does not model.
    document: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> ClusterRecord:
        """The record of a ``cluster.json`` document (also the Swarm's nodes-only document for in-cluster jobs)."""
        runtime = document.get("runtime", "")
        data = document.get("data")
        master = document.get("master") or {}
        nodes = tuple(NodeRecord(index=n["index"], name=n["name"], host=n["host"], port=n["port"],
                                 slots=(n["slots"][0], n["slots"][1]), bus_port=n["bus_port"],
                                 replica_of=n.get("replica_of"))
                      for n in document["nodes"])
        executors = tuple(ExecutorRecord(id=e["id"], node=e["node"], name=e["name"], redis=e["redis"],
                                         token_range=tuple(e["token_range"]), batch_range=tuple(e["batch_range"]))
                          for e in document.get("executors", [])) if data else ()
        training = (TrainingRecord(batches_dir=Path(data["batches_dir"]), vocab_path=Path(data["vocab_path"]),
                                   master_redis=master.get("redis", nodes[0].address)) if data else None)
        return cls(cluster=document["cluster"], runtime=runtime, status=Status(document.get("status", "rendered")),
                   redis_fingerprint=document.get("redis_fingerprint", ""), nodes=nodes, executors=executors,
                   training=training, config=document.get("config") or {},
                   extras=dict(document.get(runtime) or {}) if runtime else {}, document=document)

    @classmethod
    def load(cls, state: StateDir) -> ClusterRecord:
        """The record in ``state``, or a ConfigError saying that there is none there."""
        try:
            document = json.loads(state.cluster_json.read_text())
        except FileNotFoundError:
            raise ConfigError(f"state_dir={str(state.root)!r} holds no cluster (no cluster.json); "
                              f"run `artm-compose up` or `render` with this --state-dir first") from None
        except json.JSONDecodeError as error:
            raise ConfigError(f"{state.cluster_json} is not valid JSON: {error}") from None
        try:
            return cls.from_document(document)
        except (KeyError, TypeError, ValueError, IndexError) as error:
            raise ConfigError(f"{state.cluster_json} is not a cluster record ({type(error).__name__}: "
                              f"{error})") from None

    @classmethod
    def load_if_any(cls, state: StateDir) -> ClusterRecord | None:
        return cls.load(state) if state.exists() else None

    @property
    def targets(self) -> list[NodeTarget]:
        return [node.target() for node in self.nodes]

    @property
    def addresses(self) -> list[tuple[str, int]]:
        return [(node.host, node.port) for node in self.nodes]

    def with_status(self, status: Status) -> ClusterRecord:
        return replace(self, status=status)

    def with_extras(self, extras: dict[str, Any]) -> ClusterRecord:
        return replace(self, extras=dict(extras))

    def to_document(self) -> dict[str, Any]:
        document = {**self.document, "status": str(self.status)}
        if self.extras:
            document[self.runtime] = self.extras
        return document

    def save(self, state: StateDir) -> None:
        write_document(state, self.to_document())


def write_document(state: StateDir, document: dict[str, Any]) -> None:
    """Write a ``cluster.json`` document (made by ``render.cluster_description``) into ``state``."""
    write_text_atomic(state.cluster_json, json.dumps(document, indent=2) + "\n")


def set_status(state: StateDir, status: Status) -> ClusterRecord:
    """Record ``status`` in ``state``'s cluster.json; the updated record."""
    record = ClusterRecord.load(state).with_status(status)
    record.save(state)
    return record
