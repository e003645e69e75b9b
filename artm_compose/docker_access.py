"""The one way artm-compose reaches Docker: clients, typed read-only views, logs, and Docker's errors in our words.

Two libraries, each where it is the better tool: the Docker SDK (docker-py) for everything the Engine API
offers (containers, services, tasks, nodes, networks, logs), and python-on-whales for what only the docker CLI
does (``docker compose``, ``docker stack deploy/rm``, node labels). Runtimes get both clients here, read
Docker's objects through the frozen views below instead of indexing ``attrs`` dicts, and turn a failed call
into an :class:`ArtmComposeError` with :func:`failing_as`, so that every message says what failed and the one
line of Docker's answer that says why.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import docker
import python_on_whales
import requests
from docker.errors import APIError, DockerException, NotFound, create_api_error_from_http_exception
from docker.types import CancellableStream
from python_on_whales.exceptions import DockerException as WhalesError

from artm_compose.errors import ArtmComposeError, RuntimeUnavailable

LOCAL_HINT = "start Docker, or run without containers: --runtime local"
# Both libraries' failures: what a call through this layer may raise.
DOCKER_ERRORS = (DockerException, WhalesError)
COMPOSE_SERVICE = "com.docker.compose.service"
COMPOSE_ONEOFF = "com.docker.compose.oneoff"
# Task states after which a task never runs again (https://docs.docker.com/engine/swarm/how-swarm-mode-works/swarm-task-states/).
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
TERMINAL = frozenset({"complete", "failed", "shutdown", "rejected", "orphaned", "remove"})

# -- clients ------------------------------------------------------------------------------------------------

def docker_client(timeout: int = 120) -> docker.DockerClient:
    """A Docker SDK client that answered a ping; RuntimeUnavailable (naming the cause) otherwise.

    The generous ``timeout`` (seconds per API call) is for a daemon busy starting many containers.
    """
    _require_docker_command()
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except DockerException as error:
        raise RuntimeUnavailable(f"Docker is not running or not reachable ({_first_line(error)}): "
                                 f"{LOCAL_HINT}") from None
    return client


def cli() -> python_on_whales.DockerClient:
    """The docker CLI through python-on-whales, for what the Engine API lacks (stacks, node labels)."""
    _require_docker_command()
    return python_on_whales.DockerClient()


def compose_cli(compose_file: Path, project: str, directory: Path) -> python_on_whales.DockerClient:
    """The docker CLI bound to one Compose project (``docker compose -f FILE -p PROJECT``)."""
    _require_docker_command()
    return python_on_whales.DockerClient(compose_files=[compose_file], compose_project_name=project,
                                         compose_project_directory=directory)


def _require_docker_command() -> None:
    if shutil.which("docker") is None:
        raise RuntimeUnavailable(f"the docker command is not installed: {LOCAL_HINT}")


# -- errors -------------------------------------------------------------------------------------------------

def error_reason(error: BaseException) -> str:
    """The line of a Docker error that says why: the docker CLI's last stderr line for python-on-whales,
    the daemon's explanation for the SDK, else the error's first line."""
    if isinstance(error, WhalesError):
        text = (error.stderr or str(error)).strip()
        return text.splitlines()[-1] if text else type(error).__name__
    if isinstance(error, APIError) and error.explanation:
        return str(error.explanation).strip()
    return _first_line(error)


@contextmanager
def failing_as(what: str, error: type[ArtmComposeError] = RuntimeUnavailable) -> Iterator[None]:
    """Raise a Docker failure inside the block as ``error("<what> failed: <reason>")``, without Docker's
    traceback: people read which step failed and why; ``error`` picks the exit code."""
    try:
        yield
    except DOCKER_ERRORS as failure:
        raise error(f"{what} failed: {error_reason(failure)}") from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


# -- containers ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ContainerView:
    """A container as the runtimes read it, from an inspection or from a listing (``docker ps``).

    A listing is one API call for many containers (inspecting one by one races with their removal by
    others) but lacks the restart count, start time and image: those are then 0, "" and "".
    """

    id: str
    name: str
    labels: Mapping[str, str]
    status: str  # created, running, restarting, paused, exited, dead
    running: bool  # also while Docker restarts it
    restarting: bool = False
    exit_code: int | None = None
    health: str | None = None  # starting, healthy, unhealthy; None without a health check
    restart_count: int = 0
    started_at: str = ""
    image: str = ""
    host_ports: tuple[int, ...] = ()
    created: datetime = EPOCH

    @classmethod
    def inspected(cls, attrs: Mapping[str, Any]) -> ContainerView:
        """From ``docker inspect`` (``Container.attrs``)."""
        state = attrs.get("State") or {}
        ports = (attrs.get("NetworkSettings") or {}).get("Ports") or {}
        host_ports = tuple(int(b["HostPort"]) for bindings in ports.values() for b in bindings or []
                           if b.get("HostPort"))
        return cls(id=attrs["Id"], name=str(attrs.get("Name", "")).lstrip("/"),
                   labels=(attrs.get("Config") or {}).get("Labels") or {}, status=str(state.get("Status", "")),
                   running=bool(state.get("Running")), restarting=bool(state.get("Restarting")),
                   exit_code=state.get("ExitCode"), health=(state.get("Health") or {}).get("Status"),
                   restart_count=int(attrs.get("RestartCount") or 0), started_at=str(state.get("StartedAt", "")),
                   image=str((attrs.get("Config") or {}).get("Image", "")), host_ports=host_ports,
                   created=_timestamp(attrs.get("Created")))

    @classmethod
    def listed(cls, summary: Mapping[str, Any]) -> ContainerView:
        """From a listing (``client.api.containers``): published ports are listed for running ones."""
        status = str(summary.get("State", ""))
        return cls(id=summary["Id"], name=summary["Names"][0].lstrip("/"), labels=summary.get("Labels") or {},
                   status=status, running=status in ("running", "restarting"), restarting=status == "restarting",
                   host_ports=tuple(p["PublicPort"] for p in summary.get("Ports") or [] if p.get("PublicPort")),
                   created=datetime.fromtimestamp(summary.get("Created") or 0, timezone.utc))

    @property
    def service(self) -> str | None:
        """The Compose service it runs, if Compose made it (one-off ``run`` containers excluded)."""
        if self.labels.get(COMPOSE_ONEOFF) == "True":
            return None
        return self.labels.get(COMPOSE_SERVICE)

    def describe(self) -> str:
        """Its state for people: ``running (healthy)``, ``exited, exit code 1``."""
        shown = self.status + (f" ({self.health})" if self.health else "")
        if not self.running:
            shown += f", exit code {self.exit_code}"
        return shown


def container(client: docker.DockerClient, name: str) -> ContainerView | None:
    """Container ``name`` (or id) inspected now; None if there is none."""
    try:
        return ContainerView.inspected(client.api.inspect_container(name))
    except NotFound:
        return None


def containers(client: docker.DockerClient, **filters: Any) -> list[ContainerView]:
    """Every container (stopped ones too) matching the listing ``filters`` (label=..., status=...), in
    one listing call."""
    return [ContainerView.listed(s) for s in client.api.containers(all=True, filters=filters)]


# -- networks and volumes -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class AddressPool:
    """One IPAM pool of a network: its subnet, gateway and the range Docker hands addresses out from."""

    subnet: str
    gateway: str | None = None
    ip_range: str | None = None

    def describe(self) -> str:
        return f"subnet {self.subnet}, gateway {self.gateway or 'none'}, range {self.ip_range or 'the subnet'}"


@dataclass(frozen=True)
class NetworkView:
    """A network: its name, labels and address pools (a bridge network of ours has one)."""

    id: str
    name: str
    labels: Mapping[str, str]
    pools: tuple[AddressPool, ...]

    @classmethod
    def of(cls, attrs: Mapping[str, Any]) -> NetworkView:
        configs = (attrs.get("IPAM") or {}).get("Config") or []
        pools = tuple(AddressPool(subnet=c["Subnet"], gateway=c.get("Gateway"), ip_range=c.get("IPRange"))
                      for c in configs if c.get("Subnet"))
        return cls(id=attrs["Id"], name=attrs["Name"], labels=attrs.get("Labels") or {}, pools=pools)


@dataclass(frozen=True)
class VolumeView:
    """A named volume and its labels."""

    name: str
    labels: Mapping[str, str]


def networks(client: docker.DockerClient, **filters: Any) -> list[NetworkView]:
    """Every network matching the listing ``filters`` (label=..., name=...)."""
    return [NetworkView.of(n) for n in client.api.networks(filters=filters)]


def volumes(client: docker.DockerClient, **filters: Any) -> list[VolumeView]:
    """Every volume matching the listing ``filters`` (label=...)."""
    found = client.api.volumes(filters=filters).get("Volumes") or []
    return [VolumeView(name=v["Name"], labels=v.get("Labels") or {}) for v in found]


# -- Swarm services, tasks and nodes ------------------------------------------------------------------------

@dataclass(frozen=True)
class ServiceView:
    """A Swarm service: its name, the labels of its spec, and a digest of its spec (equal digests: the
    spec did not change, so Swarm starts no new task by itself)."""

    id: str
    name: str
    labels: Mapping[str, str]
    spec_digest: str
    replicas: int | None  # None for a global service
    created: datetime

    @classmethod
    def of(cls, attrs: Mapping[str, Any]) -> ServiceView:
        spec = attrs.get("Spec") or {}
        mode = spec.get("Mode") or {}
        replicas = (mode.get("Replicated") or {}).get("Replicas", 1) if "Global" not in mode else None
        digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
        return cls(id=attrs["ID"], name=spec.get("Name", ""), labels=spec.get("Labels") or {}, spec_digest=digest,
                   replicas=replicas, created=_timestamp(attrs.get("CreatedAt")))


@dataclass(frozen=True)
class TaskView:
    """One task, reduced to what people and waits need."""

    id: str
    state: str
    desired: str
    node_id: str | None
    error: str
    exit_code: int | None
    created: datetime = EPOCH

    @classmethod
    def of(cls, task: Mapping[str, Any]) -> TaskView:
        """From an Engine API task document."""
        status = task.get("Status") or {}
        container_status = status.get("ContainerStatus") or {}
        return cls(id=str(task.get("ID", "")), state=str(status.get("State", "unknown")),
                   desired=str(task.get("DesiredState", "")), node_id=task.get("NodeID") or None,
                   error=str(status.get("Err") or ""), exit_code=container_status.get("ExitCode"),
                   created=_timestamp(task.get("CreatedAt")))

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL

    @property
    def failed(self) -> bool:
        """Failed or rejected: an attempt that a restart policy counts."""
        return self.state in ("failed", "rejected")

    def describe(self, hostnames: Mapping[str, str] | None = None) -> str:
        where = (hostnames or {}).get(self.node_id or "", self.node_id or "no node yet")
        text = f"{self.state} on {where}"
        if self.exit_code not in (None, 0):
            text += f", exit code {self.exit_code}"
        if self.error:
            text += f": {self.error}"
        return text


def _timestamp(text: str | None) -> datetime:
    """A Docker time stamp (nanoseconds with trailing zeros trimmed: not sortable as text)."""
    whole, _, fraction = str(text or "1970-01-01T00:00:00Z").rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{whole}.{(fraction + '000000')[:6]}+00:00")


def services(client: docker.DockerClient, **filters: Any) -> list[ServiceView]:
    """Every Swarm service matching the listing ``filters`` (label=..., name=...)."""
    return [ServiceView.of(s) for s in client.api.services(filters=filters)]


def service(client: docker.DockerClient, name: str) -> ServiceView | None:
    """Service ``name`` (or id) inspected now; None if there is none."""
    try:
        return ServiceView.of(client.api.inspect_service(name))
    except NotFound:
        return None


def tasks(client: docker.DockerClient, service_name: str) -> list[TaskView]:
    """Every task of the service (name or id), old ones included (restarts, earlier runs); NotFound
    without the service (the daemon resolves the name)."""
    return [TaskView.of(t) for t in client.api.tasks(filters={"service": service_name})]


def is_swarm_manager(client: docker.DockerClient) -> bool:
    """Whether this engine manages a Swarm (only a manager lists services)."""
    return bool((client.info().get("Swarm") or {}).get("ControlAvailable"))


def node_hostnames(client: docker.DockerClient) -> dict[str, str]:
    """Swarm node id -> hostname, for saying where a task runs."""
    return {node["ID"]: node["Description"]["Hostname"] for node in client.api.nodes()}


# -- logs ---------------------------------------------------------------------------------------------------

class LogStream(CancellableStream):
    """Log lines (str, each with its newline but perhaps the last) of a container, a Swarm service or a task;
    ``close()`` from another thread ends a followed stream, which otherwise lasts as long as its source."""


def log_lines(client: docker.DockerClient, *, container: str | None = None, service: str | None = None,
              task: str | None = None, follow: bool = False, tail: int | None = None,
              stderr: bool = True) -> LogStream:
    """The output of a container, or of a Swarm service or one of its tasks (from whichever nodes ran
    them), stdout and stderr interleaved as Docker recorded them. One endpoint family serves all three;
    the SDK has no task logs, and its service logs cannot be closed while followed."""
    sources = {"containers": container, "services": service, "tasks": task}
    chosen = [(kind, name) for kind, name in sources.items() if name is not None]
    if len(chosen) != 1:
        raise ValueError("log_lines needs exactly one of container, service and task")
    kind, name = chosen[0]
    params: dict[str, Any] = {"follow": follow, "stdout": True, "stderr": stderr}
    if tail is not None:
        params["tail"] = tail
    api = client.api
    response = api.get(f"{api.base_url}/v{api.api_version}/{kind}/{quote(name, safe='')}/logs", stream=True,
                       params=params)
    try:
        response.raise_for_status()
    except requests.HTTPError as error:
        raise create_api_error_from_http_exception(error) from None
    return LogStream(_lines(response), response)


def _lines(response: requests.Response) -> Iterator[str]:
    """Lines of Docker's multiplexed stream (frames of an 8-byte header: stream, 0, 0, 0, big-endian size,
    then the payload); the log broker sends a line per frame, a container's log may split lines."""
    pending = b""
    while True:
        header = response.raw.read(8)
        if len(header) < 8:
            break
        pending += response.raw.read(int.from_bytes(header[4:8], "big"))
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line.decode(errors="replace") + "\n"
    if pending:
        yield pending.decode(errors="replace")
