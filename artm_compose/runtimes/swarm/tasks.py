"""What the tasks of a Swarm service say about it (pure functions over Docker API task documents).

A service's tasks include old ones (restarts, earlier runs of a one-shot service); these helpers pick the task that
matters and describe it, so that waits and ``status`` speak in one vocabulary.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

Task = Mapping[str, Any]

# Task states after which a task never runs again (https://docs.docker.com/engine/swarm/how-swarm-mode-works/swarm-task-states/).
TERMINAL = frozenset({"complete", "failed", "shutdown", "rejected", "orphaned", "remove"})


@dataclass(frozen=True)
class TaskView:
    """One task, reduced to what people and waits need."""

    id: str
    state: str
    desired: str
    node_id: str | None
    error: str
    exit_code: int | None

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
    return TaskView(id=str(task.get("ID", "")), state=str(status.get("State", "unknown")),
                    desired=str(task.get("DesiredState", "")), node_id=task.get("NodeID") or None,
                    error=str(status.get("Err") or ""), exit_code=container.get("ExitCode"))


def created(task: Task) -> datetime:
    """When the task was created (Docker gives nanoseconds with trailing zeros trimmed: not sortable as text)."""
    text = str(task.get("CreatedAt") or "1970-01-01T00:00:00Z").rstrip("Z")
    whole, _, fraction = text.partition(".")
    return datetime.fromisoformat(f"{whole}.{(fraction + '000000')[:6]}+00:00")


def latest(tasks: Iterable[Task]) -> TaskView | None:
    """The most recently created task."""
    chosen = list(tasks)
    if not chosen:
        return None
    return view(max(chosen, key=created))


def run_state(runs: Iterable[Task], max_attempts: int) -> str:
    """``complete``, ``failed`` (all attempts used) or ``pending`` for the tasks of one run of a one-shot service.

    A one-shot service restarts on failure up to ``max_attempts`` times after its first attempt.
    """
    views = [view(t) for t in runs]
    if any(v.state == "complete" for v in views):
        return "complete"
    failed = [v for v in views if v.state in ("failed", "rejected")]
    if len(failed) > max_attempts and all(v.terminal for v in views):
        return "failed"
    return "pending"


def last_failure(tasks: Iterable[Task]) -> TaskView | None:
    """The most recent task that failed or was rejected (what a restart loop hides behind "starting")."""
    failed = [t for t in tasks if (t.get("Status") or {}).get("State") in ("failed", "rejected")]
    return latest(failed)
