"""What the tasks of a Swarm service say about it (pure functions over the layer's task views).

A service's tasks include old ones (restarts, earlier runs of a one-shot service); these helpers pick the task that
matters, so that waits and ``status`` speak in one vocabulary (:class:`~artm_compose.docker_access.TaskView`).
"""

from __future__ import annotations

from collections.abc import Iterable

from artm_compose.docker_access import TaskView


def latest(tasks: Iterable[TaskView]) -> TaskView | None:
    """The most recently created task."""
    return max(tasks, key=lambda task: task.created, default=None)


def run_state(runs: Iterable[TaskView], max_attempts: int) -> str:
    """``complete``, ``failed`` (all attempts used) or ``pending`` for the tasks of one run of a one-shot service.

    A one-shot service restarts on failure up to ``max_attempts`` times after its first attempt.
    """
    views = list(runs)
    if any(v.state == "complete" for v in views):
        return "complete"
    failed = [v for v in views if v.failed]
    if len(failed) > max_attempts and all(v.terminal for v in views):
        return "failed"
    return "pending"


def last_failure(tasks: Iterable[TaskView]) -> TaskView | None:
    """The most recent task that failed or was rejected (what a restart loop hides behind "starting")."""
    return latest(t for t in tasks if t.failed)
