"""One-shot Swarm services: run a command once as a task (on the overlay network, or on a chosen node),
wait for it within a time limit, collect its output, and remove the service again.

A task reaches what the manager cannot (overlay addresses, another node's file system), and its output
comes back through the Swarm's log broker, from whichever node ran it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import docker
from docker.errors import NotFound
from docker.types import RestartPolicy

from artm_compose.errors import RuntimeUnavailable
from artm_compose.swarm.tasks import TaskView, latest

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
    labels, container_labels). Raises RuntimeUnavailable naming the task's state if it does not end in time.
    """
    service = client.services.create(image, command=command, name=f"{name}-{uuid.uuid4().hex[:8]}",
                                     restart_policy=RestartPolicy(condition="none"), **options)
    try:
        deadline = time.monotonic() + timeout
        while True:
            task = latest(service.tasks())
            if task is not None and task.terminal:
                return Outcome(task, task_logs(task.id))
            if time.monotonic() > deadline:
                state = task.describe(hostnames(client)) if task is not None else "not scheduled"
                raise RuntimeUnavailable(f"{name} did not finish within {timeout:g} s ({state})")
            time.sleep(POLL)
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


def task_logs(task_id: str) -> str:
    """Output of one task, from whichever node ran it."""
    return "".join(docker_lines(["service", "logs", "--raw", task_id]))


def docker_lines(arguments: list[str], timeout: float = 60) -> Iterator[str]:
    """Output lines of ``docker ARGUMENTS`` (stdout, then stderr)."""
    result = subprocess.run([docker_command(), *arguments], capture_output=True, text=True, errors="replace",
                            timeout=timeout, check=False)
    yield from (result.stdout + result.stderr).splitlines(keepends=True)


def docker_command() -> str:
    found = shutil.which("docker")
    if found is None:
        raise RuntimeUnavailable("the docker command is not installed: start Docker, or use --runtime local")
    return found


def hostnames(client: docker.DockerClient) -> dict[str, str]:
    """Swarm node id -> hostname."""
    return {node.id: node.attrs["Description"]["Hostname"] for node in client.nodes.list()}


def tail(text: str, lines: int = TAIL_LINES) -> str:
    return "\n".join(text.splitlines()[-lines:]) or "(no output)"
