"""One-shot Swarm services: run a command once as a task (on the overlay network, or on a chosen node),
wait for it within a time limit, collect its output, and remove the service again.

A task reaches what the manager cannot (overlay addresses, another node's file system), and its output
comes back through the Swarm's log broker, from whichever node ran it (:func:`docker_access.log_lines`).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import docker
from docker.types import Mount as DockerMount
from docker.types import RestartPolicy

from artm_compose.containers import TMP_BYTES, TMP_DIR
from artm_compose.docker_access import NotFound, TaskView, log_lines, node_hostnames, tasks
from artm_compose.errors import RuntimeTimeout
from artm_compose.runtimes.swarm.tasks import latest
from artm_compose.waiting import wait_until

POLL = 0.5
TAIL_LINES = 20


@dataclass(frozen=True)
class Outcome:
    """How a one-shot task ended and what it printed (stdout and stderr)."""

    task: TaskView
    output: str

    @property
    def ok(self) -> bool:
        return self.task.state == "complete"


def run_once(client: docker.DockerClient, image: str, command: list[str], *, name: str, timeout: float,
             **options: Any) -> Outcome:
    """Create service ``<name>-<random>`` running ``command`` once (no restart), wait for its task to end.

    ``options`` go to ``client.services.create`` (networks, mounts, constraints, secrets, configs, user,
    labels, container_labels). The task runs hardened as the stack's services do: no capabilities, a
    read-only root file system and a tmpfs at /tmp. Raises RuntimeTimeout (a RuntimeUnavailable) naming the
    task's state if it does not end in time.
    """
    mounts = [*options.pop("mounts", []), DockerMount(TMP_DIR, None, type="tmpfs", tmpfs_size=TMP_BYTES)]
    # As arguments, not as the command: a service's command replaces the image's entrypoint.
    service = client.services.create(image, args=command, name=f"{name}-{uuid.uuid4().hex[:8]}",
                                     restart_policy=RestartPolicy(condition="none"), cap_drop=["ALL"],
                                     read_only=True, mounts=mounts, **options)
    task: TaskView | None = None

    def ended() -> TaskView | None:
        nonlocal task
        task = latest(tasks(client, service.id))
        return task if task is not None and task.terminal else None

    def state() -> str:
        return task.describe(node_hostnames(client)) if task is not None else "not scheduled"

    try:
        done = wait_until(ended, timeout, f"{name} to finish", interval=POLL, describe=state, error=RuntimeTimeout)
        return Outcome(done, task_logs(client, done.id))
    finally:
        try:
            service.remove()
        except NotFound:
            pass


def json_result(output: str) -> dict[str, Any] | None:
    """The last JSON document a task printed on a line of its own (stderr may follow on the same line)."""
    decoder = json.JSONDecoder()
    for line in reversed(output.splitlines()):
        if line.startswith("{"):
            try:
                return decoder.raw_decode(line)[0]
            except ValueError:
                continue
    return None


def task_logs(client: docker.DockerClient, task_id: str) -> str:
    """Output of one task, from whichever node ran it."""
    return "".join(log_lines(client, task=task_id))


def tail(text: str, lines: int = TAIL_LINES) -> str:
    return "\n".join(text.splitlines()[-lines:]) or "(no output)"
