"""What the tasks of a Swarm service say about it (pure functions over Docker API task documents).

A service's tasks include old ones (restarts, earlier job runs); these helpers pick the task that
matters and describe it, so that waits and ``status`` speak in one vocabulary.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

Task = Mapping[str, Any]

# Task states after which a task never runs again (https://docs.docker.com/engine/swarm/how-swarm-mode-works/swarm-task-states/).
TERMINAL = frozenset({"complete", "failed", "shutdown", "rejected", "orphaned", "remove"})
NOT_YET = frozenset({"new", "allocated", "pending", "assigned", "accepted", "preparing", "ready", "starting"})


@dataclass(frozen=True)
class TaskView:
    """One task, reduced to what people and waits need."""

    id: str
    state: str
    desired: str
    node_id: str | None
    error: str
    exit_code: int | None
    iteration: int | None

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL

    def describe(self, hostnames: Mapping[str, str] | None = None) -> str:
        where = (hostnames or {}).get(self.node_id or "", self.node_id or "no node yet")
        text = f"{self.state} on {where}"
        if self.exit_code not in (None, 0):
            text += f", exit code {self.exit_code}"
        if self.error:
            text += f": {self.error}"
        return text


def view(task: Task) -> TaskView:
    status = task.get("Status") or {}
    container = status.get("ContainerStatus") or {}
    iteration = (task.get("JobIteration") or {}).get("Index")
    return TaskView(id=str(task.get("ID", "")), state=str(status.get("State", "unknown")),
                    desired=str(task.get("DesiredState", "")), node_id=task.get("NodeID") or None,
                    error=str(status.get("Err") or ""), exit_code=container.get("ExitCode"),
                    iteration=iteration)


def latest(tasks: Iterable[Task], iteration: int | None = None) -> TaskView | None:
    """The most recently created task (of job iteration ``iteration`` if given)."""
    chosen = [t for t in tasks if iteration is None or (t.get("JobIteration") or {}).get("Index") == iteration]
    if not chosen:
        return None
    return view(max(chosen, key=lambda t: (str(t.get("CreatedAt", "")), (t.get("Version") or {}).get("Index", 0))))


def job_iteration(service: Mapping[str, Any]) -> int | None:
    """The current iteration of a job service (each deploy of a job runs it again)."""
    return ((service.get("JobStatus") or {}).get("JobIteration") or {}).get("Index")


def job_state(service: Mapping[str, Any], tasks: Iterable[Task], max_attempts: int) -> str:
    """``complete``, ``failed`` (no attempt left) or ``pending`` for the job's current iteration."""
    iteration = job_iteration(service)
    runs = [view(t) for t in tasks if iteration is None or (t.get("JobIteration") or {}).get("Index") == iteration]
    if any(r.state == "complete" for r in runs):
        return "complete"
    failed = [r for r in runs if r.terminal]
    if failed and len(failed) >= max_attempts and not any(not r.terminal for r in runs):
        return "failed"
    return "pending"
