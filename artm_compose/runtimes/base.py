"""What every runtime (local processes, Docker Compose, Docker Swarm) provides, and the registry.

A runtime is a module ``artm_compose.runtimes.<name>`` exposing ``RUNTIME``, a :class:`Runtime`
subclass. Runtimes are imported only when chosen, so a runtime whose module or prerequisites are
missing does not break the others.
"""

from __future__ import annotations

import importlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from artm_compose.errors import ConfigError, RuntimeUnavailable
from artm_compose.plan import Plan
from artm_compose.record import ClusterRecord, Status, TrainingRecord, set_status
from artm_compose.render import render_all
from artm_compose.slots import SLOT_COUNT
from artm_compose.state import StateDir

RUNTIME_MODULES = {
    "local": "artm_compose.runtimes.local",
    "compose": "artm_compose.runtimes.compose",
    "swarm": "artm_compose.runtimes.swarm",
}
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
            lines.append(f"  {member.role:<8} {member.name:<14} {'up' if member.alive else 'DOWN':<4} "
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


class Runtime(ABC):
    """Brings a plan up as running members and reports on, logs and stops them.

    ``up`` takes the plan; ``status``, ``logs`` and ``down`` work from the state directory alone
    (its ``cluster.json`` says what was started), so they need no data directory.
    """

    name: ClassVar[str]

    def __init__(self, state: StateDir):
        self.state = state

    @abstractmethod
    def up(self, plan: Plan, *, detach: bool = True, echo: Echo = print) -> UpResult:
        """Start what is missing of ``plan`` (validating everything first); follow training unless ``detach``."""

    @abstractmethod
    def status(self) -> ClusterStatus:
        """Members by role with liveness, and the cluster state."""

    @abstractmethod
    def logs(self, component: str | None = None, *, follow: bool = False) -> Iterator[str]:
        """Log lines of ``component`` (all components if None); with ``follow``, keep yielding new lines."""

    @abstractmethod
    def down(self, echo: Echo = print, *, volumes: bool = False) -> list[str]:
        """Stop exactly what this runtime started for the state directory; idempotent.

        ``volumes`` also removes the data volumes the runtime created (runtimes without any ignore it).
        """

    def state_record(self) -> ClusterRecord:
        return ClusterRecord.load(self.state)

    def set_status(self, status: Status) -> None:
        set_status(self.state, status)

    def render(self, plan: Plan) -> list[Path]:
        """Write the state directory's files for ``plan`` without starting anything."""
        return render_all(plan, self.state)

    def export(self, out: Path) -> Path:
        """Write the trained model to ``out`` (.npz or .csv), reading Redis through ``addresses.txt``.

        Runtimes whose Redis nodes this process cannot reach override this.
        """
        from artm_compose.engine.export import export_model
        from artm_compose.redis_client import cluster_client_from_files

        record = self.state_record()
        training = require_training(record, self.state)
        client = cluster_client_from_files(self.state.addresses, self.state.password_file)
        try:
            return export_model(client, record.cluster, training.vocab_path, out)
        finally:
            client.close()


def training_summary(progress: dict[str, Any] | None, scores_path: Path) -> dict[str, Any] | None:
    """State, pass and last perplexity of the run: from the master's record in Redis (``progress``)
    while it is there, else from ``scores.json``; None if neither exists."""
    if progress is None:
        try:
            scores = json.loads(scores_path.read_text())
        except (OSError, ValueError):
            return None
        progress = {"state": "done", "pass": len(scores.get("perplexity") or []),
                    "perplexity": scores.get("perplexity") or []}
    perplexity = progress.get("perplexity") or []
    summary = {"state": progress.get("state"), "pass": progress.get("pass"), "passes": progress.get("passes"),
               "perplexity": perplexity[-1] if perplexity else None, "error": progress.get("error")}
    return {key: value for key, value in summary.items() if value is not None}


def require_training(record: ClusterRecord, state: StateDir) -> TrainingRecord:
    """The record's training part; a ConfigError for a cluster started without data (no model to export)."""
    if record.training is None:
        raise ConfigError(f"cluster {record.cluster!r} in {state.root} was started without "
                          f"--data: there is no model to export")
    return record.training


def effective_status(stored: Status, members: list[MemberStatus]) -> Status:
    """The stored status of a container runtime, corrected by what is actually alive."""
    redis_alive = [m.alive for m in members if m.role == "redis"]
    if not any(redis_alive):
        return Status.DOWN if stored not in (Status.STOPPED, Status.RENDERED) else stored
    if not all(redis_alive):
        return Status.DEGRADED
    if stored == Status.TRAINING and not any(m.alive for m in members if m.role == "master"):
        return Status.TRAINING_STOPPED
    return stored


def runtime_class(name: str) -> type[Runtime]:
    """The runtime class registered under ``name``, imported on first use."""
    module_name = RUNTIME_MODULES.get(name)
    if module_name is None:
        raise RuntimeUnavailable(f"runtime={name!r} is unknown; choose one of {', '.join(RUNTIME_MODULES)}")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name != module_name:
            raise
        raise RuntimeUnavailable(f"runtime {name!r} is not available yet in this version of artm-compose; "
                                 f"use --runtime local") from None
    return module.RUNTIME


def get_runtime(name: str, state: StateDir) -> Runtime:
    return runtime_class(name)(state)
