"""What the lifecycle reports, whatever the runtime: members, cluster status, the outcome of ``up``.

Pure: the runtimes observe, :mod:`artm_compose.runtimes.lifecycle` assembles with these.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from artm_compose.errors import ConfigError
from artm_compose.record import ClusterRecord, Status, TrainingRecord
from artm_compose.render import MASTER
from artm_compose.slots import SLOT_COUNT
from artm_compose.state import StateDir

ROLES = ("redis", "executor", "master")

Echo = Callable[[str], None]


@dataclass(frozen=True)
class MemberStatus:
    """One member of the cluster: its role, name, address and whether it is alive."""

    role: str
    name: str
    alive: bool
    address: str | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ClusterStatus:
    """Members by role with liveness, the Redis Cluster state, and training progress if any."""

    cluster: str
    runtime: str
    state_dir: str
    status: Status
    cluster_state: str
    slots_assigned: int
    members: tuple[MemberStatus, ...]
    problems: tuple[str, ...] = ()
    training: dict[str, Any] | None = None

    def of_role(self, role: str) -> list[MemberStatus]:
        return [m for m in self.members if m.role == role]

    def count(self, role: str) -> tuple[int, int]:
        """(alive, total) members of ``role``."""
        members = self.of_role(role)
        return sum(1 for m in members if m.alive), len(members)

    @property
    def healthy(self) -> bool:
        alive, total = self.count("redis")
        return total > 0 and alive == total and self.cluster_state == "ok" and self.slots_assigned == SLOT_COUNT

    def to_dict(self) -> dict[str, Any]:
        counts = {role: dict(zip(("alive", "total"), self.count(role))) for role in ROLES}
        return {"cluster": self.cluster, "runtime": self.runtime, "state_dir": self.state_dir,
                "status": str(self.status), "cluster_state": self.cluster_state,
                "slots_assigned": self.slots_assigned, "healthy": self.healthy, "counts": counts,
                "members": [m.to_dict() for m in self.members], "problems": list(self.problems),
                "training": self.training}

    def _liveness(self, member: MemberStatus) -> str:
        # A training process that exited because its run finished did its job: "DOWN" would alarm.
        if member.alive:
            return "up"
        return "done" if member.role != "redis" and self.status == Status.FINISHED else "DOWN"

    def describe(self) -> str:
        """Human summary: one line per role, then one per member."""
        redis_alive, redis_total = self.count("redis")
        executors_alive, executors_total = self.count("executor")
        masters = self.of_role("master")
        master = ("not started" if not masters else
                  f"{'running' if masters[0].alive else 'not running'}"
                  + (f" ({masters[0].detail})" if masters[0].detail else ""))
        lines = [
            f"cluster {self.cluster} ({self.runtime}, {self.state_dir}): {self.status}",
            f"redis nodes {redis_alive}/{redis_total} up, slots {self.slots_assigned}/{SLOT_COUNT}, "
            f"cluster_state {self.cluster_state}",
            f"executors {executors_alive}/{executors_total} alive, master {master}",
        ]
        if self.training:
            lines.append("training: " + ", ".join(f"{k} {v}" for k, v in self.training.items()))
        for member in self.members:
            lines.append(f"  {member.role:<8} {member.name:<14} {self._liveness(member):<4} "
                         f"{member.address or '':<22} {member.detail}".rstrip())
        lines.extend(f"problem: {problem}" for problem in self.problems)
        return "\n".join(lines)


@dataclass(frozen=True)
class UpResult:
    """What ``up`` did: the actions taken (empty when everything was already up) and the training outcome."""

    actions: tuple[str, ...] = ()
    bootstrap_seconds: float | None = None
    seconds: float = 0.0
    training: str | None = None  # None, "started" (detached), "finished" or "failed"
    already_up: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def training_summary(progress: dict[str, Any] | None, scores_path: Path) -> dict[str, Any] | None:
    """State, pass and last perplexity of the run: from the master's record in Redis (``progress``)
    while it is there, else from ``scores.json``; None if neither exists."""
    try:
        scores = json.loads(scores_path.read_text())
    except (OSError, ValueError):
        scores = None
    if progress is None:
        if scores is None:
            return None
        progress = {"state": "done", "pass": len(scores.get("perplexity") or []),
                    "perplexity": scores.get("perplexity") or []}
    perplexity = progress.get("perplexity") or []
    checkpoints = (scores or {}).get("checkpoints") or []
    summary = {"state": progress.get("state"), "pass": progress.get("pass"), "passes": progress.get("passes"),
               "perplexity": perplexity[-1] if perplexity else None, "error": progress.get("error"),
               "checkpoint": f"pass {checkpoints[-1]['pass']}" if checkpoints else None,
               "failovers": len((scores or {}).get("failovers") or []) or None}
    return {key: value for key, value in summary.items() if value is not None}


def require_training(record: ClusterRecord, state: StateDir) -> TrainingRecord:
    """The record's training part; a ConfigError for a cluster started without data (no model to export)."""
    if record.training is None:
        raise ConfigError(f"cluster {record.cluster!r} in {state.root} was started without "
                          f"--data: there is no model to export")
    return record.training


def effective_status(stored: Status, members: list[MemberStatus], training: dict[str, Any] | None) -> Status:
    """The recorded status, corrected by what is actually alive (and, for an ended master, by how it ended)."""
    redis_alive = [m.alive for m in members if m.role == "redis"]
    if not any(redis_alive):
        return stored if stored in (Status.STOPPED, Status.RENDERED, Status.FAILED) else Status.DOWN
    if not all(redis_alive):
        return Status.DEGRADED
    if stored == Status.TRAINING and not any(m.alive for m in members if m.role == "master"):
        return Status.FINISHED if (training or {}).get("state") == "done" else Status.TRAINING_STOPPED
    return stored


@dataclass(frozen=True)
class TransformJob:
    """What the ``transform`` in-cluster job needs besides paths: the shares, document passes, parallelism."""

    shares: tuple[tuple[int, int], ...]
    inner: int
    parallel: int

    def arguments(self, data_path: str | Path, vocab_path: str | Path, out: str | Path) -> list[str]:
        """The job's command-line arguments, with paths as the job's machine or container sees them."""
        return ["--data-path", str(data_path), "--vocab-path", str(vocab_path), "--out", str(out),
                "--shares", ",".join(f"{a}:{b}" for a, b in self.shares), "--inner", str(self.inner),
                "--parallel", str(self.parallel)]


@dataclass(frozen=True)
class MemberState:
    """What a runtime sees of one member: alive or not, its state for people, and where it runs if known."""

    alive: bool
    state: str = ""
    address: str | None = None


@dataclass(frozen=True)
class Probe:
    """The Redis Cluster as the ``probe`` job saw it, and the training's progress record (if any)."""

    cluster_state: str
    slots_assigned: int
    problems: tuple[str, ...] = ()
    progress: dict[str, Any] | None = None
    roles: dict[str, str] = field(default_factory=dict)  # Redis instance name -> primary / replica of <name>


@dataclass(frozen=True)
class Bootstrapped:
    """What starting Redis did: the bootstrap's actions (none: already healthy) and its time, if it ran."""

    actions: tuple[str, ...] = ()
    seconds: float | None = None


def members_of(record: ClusterRecord, seen: dict[str, MemberState], training: dict[str, Any] | None,
               missing: str, roles: dict[str, str] | None = None) -> list[MemberStatus]:
    """Every member the record names, by role, with what the runtime saw of it (``missing``: never seen) and,
    for Redis instances, their ``roles`` (primary or replica) where known."""
    roles = roles or {}
    planned = [("redis", node.name, node.address,
                ", ".join(part for part in (roles.get(node.name), f"slots {node.slots[0]}-{node.slots[1]}") if part))
               for node in record.nodes]
    if record.training is not None:
        planned += [("executor", e.name, e.redis, f"batches [{e.batch_range[0]}, {e.batch_range[1]}) "
                                                  f"tokens [{e.token_range[0]}, {e.token_range[1]})")
                    for e in record.executors]
        planned.append(("master", MASTER, record.training.master_redis, _training_phrase(training)))
    members = []
    for role, name, address, detail in planned:
        state = seen.get(name, MemberState(alive=False, state=missing))
        members.append(MemberStatus(role=role, name=name, alive=state.alive, address=state.address or address,
                                    detail="; ".join(part for part in (state.state, detail) if part)))
    return members


def _training_phrase(training: dict[str, Any] | None) -> str:
    """How the training stands, for the master's line: its pass, or how it ended."""
    training = training or {}
    if training.get("state") == "done":
        return "finished"
    if training.get("state") == "failed":
        return f"failed: {training.get('error', 'see its log')}"
    if training.get("passes") is not None:
        return f"{training.get('state', 'training')}, pass {training.get('pass', 0)}/{training['passes']}"
    return ""
