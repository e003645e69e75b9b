"""The compose runtime: the plan as containers on one Docker host, driven by Docker Compose v2.

``up`` checks everything first (Docker, the Compose plugin, names, ports, a cluster of another layout,
a training in progress), builds the images that are missing, renders ``<state dir>/compose.yml``, starts
the Redis nodes together with the ``control`` container, which bootstraps the cluster from inside its
network (the host may not reach container addresses) and then idles for later jobs run with ``docker
exec`` (heal, probe, export); then it starts the executors and the master and follows the master's
output. ``status``, ``logs`` and ``down`` find containers by the labels ``artm-compose.cluster=<name>``
and ``artm-compose.runtime=compose``, never by name.

Redis node directories are in-memory (tmpfs), so a restarted Redis container comes back empty, as the
reference requires; ``up`` heals the cluster by bootstrapping again (the bootstrap forgets the stale
node id, assigns the node's slots and meets it at its fixed address).
"""

from __future__ import annotations

import io
import ipaddress
import json
import os
import secrets
import tarfile
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import python_on_whales

from artm_compose import labels
from artm_compose.acl import write_users_conf
from artm_compose.bootstrap import bootstrap_timeout
from artm_compose.runtimes.compose.compose_file import (CONTROL, FINGERPRINT_LENGTH, compose_path, container_name,
                                                        network_name, published_port, render_compose)
from artm_compose.containers import (ARTM_ENTRYPOINT, SCRATCH_MOUNT, SERVICE_ADDRESSING, corpus_mounts,
                                     in_cluster_command)
from artm_compose.docker_access import (AddressPool, APIError, ContainerView, NotFound, compose_cli, container,
                                        containers, docker_client, failing_as, log_lines, networks)
from artm_compose.docker_access import volumes as volume_list  # ``remove`` has a flag named volumes
from artm_compose.docker_env import NetworkLayout, free_subnet, layout_network, prefix_for, used_subnets
from artm_compose.data.batches import list_batches
from artm_compose.errors import BootstrapError, BootstrapTimeout, ConfigError, RuntimeUnavailable, TrainingTimeout
from artm_compose.images.build import ImageTags, build_images, image_tags
from artm_compose.images.tooling import ensure_compose_plugin
from artm_compose.plan import Plan
from artm_compose.processes import port_free, port_owner
from artm_compose.render import DASHBOARD, MASTER, redis_component, redis_fingerprint, render_all
from artm_compose.record import ClusterRecord, Status, TrainingRecord
from artm_compose.runtimes.base import Bootstrapped, Echo, MemberState, TransformJob
from artm_compose.runtimes import lifecycle
from artm_compose.runtimes.lifecycle import Runtime
from artm_compose.state import StateDir
from artm_compose.waiting import poll_until, wait_until

RUNTIME_NAME = "compose"
# Beyond the bootstrap's own time limit: starting Python in a fresh container.
CONTROL_START_SLACK = 30.0
POLL_SECONDS = 0.1
# Executors notice the master's end at their next poll; allow that beyond the heartbeat timeout.
EXECUTOR_EXIT_SLACK = 5.0
# Between a container's exit and its restart: Docker's back-off (0.1 s doubling per restart) and the start.
RESTART_TIMEOUT = 60.0
# Docker records a container's exit within moments; until then it refuses to update the container.
RESTART_POLICY_TIMEOUT = 10.0
REMOVE_THREADS = 8
LOG_TAIL_LINES = 20

@dataclass(frozen=True)
class DockerObject:
    """A container, network or volume as the conflict checks see it."""

    kind: str
    name: str
    labels: dict[str, str]
    running: bool = False
    host_ports: tuple[int, ...] = ()

    def belongs_to(self, cluster: str) -> bool:
        return self.labels.get(labels.CLUSTER) == cluster and self.labels.get(labels.RUNTIME) == RUNTIME_NAME

    def describe(self) -> str:
        owner = self.labels.get(labels.CLUSTER)
        if owner is None:
            return f"{self.kind} {self.name} (not made by artm-compose)"
        return f"{self.kind} {self.name} (cluster {owner!r}, runtime {self.labels.get(labels.RUNTIME)})"


@dataclass(frozen=True)
class Inventory:
    """The Docker objects on this host that ``up`` could collide with."""

    containers: tuple[DockerObject, ...] = ()
    networks: tuple[DockerObject, ...] = ()
    volumes: tuple[DockerObject, ...] = ()
    subnets: dict[str, AddressPool] = field(default_factory=dict)  # network name -> its address pool

    def of_cluster(self, cluster: str) -> list[DockerObject]:
        return [o for o in (*self.containers, *self.networks, *self.volumes) if o.belongs_to(cluster)]

    @classmethod
    def collect(cls, client: docker.DockerClient) -> Inventory:
        # One listing call: inspecting containers one by one races with their removal by others.
        listed = tuple(_container_object(c) for c in containers(client))
        found = networks(client)
        return cls(containers=listed,
                   networks=tuple(DockerObject("network", n.name, dict(n.labels)) for n in found),
                   volumes=tuple(DockerObject("volume", v.name, dict(v.labels)) for v in volume_list(client)),
                   subnets={n.name: n.pools[0] for n in found if n.pools})


def planned_containers(plan: Plan) -> dict[str, str]:
    """Service name -> container name of every long-lived container of ``plan``."""
    services = [redis_component(n.index) for n in plan.redis_nodes] + [CONTROL]
    if plan.config.dashboard:
        services.append(DASHBOARD)
    if plan.data is not None:
        services += [e.name for e in plan.executors] + [MASTER]
    return {service: container_name(plan, service) for service in services}


def find_conflicts(plan: Plan, state: StateDir, inventory: Inventory,
                   port_is_free=port_free, left_over: Collection[str] = ()) -> list[str]:
    """Everything that keeps ``plan`` from starting here, each naming the object, port or state dir in the way.

    Pure apart from ``port_is_free`` (probes a host port). An empty list means ``up`` may proceed; objects of
    this very cluster (same name, same state directory) are not conflicts: ``up`` reuses or heals them, and
    removes the containers named in ``left_over`` (the training of a run whose Redis was lost).
    """
    cluster = plan.cluster
    problems = []
    ours = inventory.of_cluster(cluster)
    elsewhere = sorted({o.labels.get(labels.STATE_DIR, "?") for o in ours} - {str(state.root)})
    if elsewhere:
        problems.append(f"cluster name {cluster!r} is in use by the compose cluster of state dir {elsewhere[0]}; "
                        f"choose another --name or run `artm-compose down --state-dir {elsewhere[0]}`")
    by_name = {(o.kind, o.name): o for o in (*inventory.containers, *inventory.networks, *inventory.volumes)}
    wanted = [("container", name) for name in planned_containers(plan).values()] + [("network", network_name(plan))]
    for key in wanted:
        found = by_name.get(key)
        if found is not None and not found.belongs_to(cluster):
            problems.append(f"{key[0]} name {key[1]} is taken by {found.describe()}; choose another --name "
                            f"or remove that {key[0]}")
    layout = redis_fingerprint(plan)[:FINGERPRINT_LENGTH]
    stale = [o for o in ours if o.kind == "container" and o.labels.get(labels.ROLE) == "redis"
             and o.labels.get(labels.REDIS_LAYOUT) != layout]
    if stale:
        problems.append(f"cluster {cluster!r} is up with another Redis layout ({len(stale)} Redis container(s) "
                        f"such as {stale[0].name}; now {len(plan.nodes)} node(s) from port {plan.config.base_port}); "
                        f"run `artm-compose down --state-dir {state.root}` first")
    training = [o.name for o in training_containers(plan, inventory) if o.name not in left_over]
    if training:
        problems.append(f"training is already running in cluster {cluster!r} ({', '.join(sorted(training)[:4])} "
                        f"up); follow it with `artm-compose logs master -f`, or stop it with `artm-compose down`")
    wanted_ports = ([(published_port(plan, n.index), n.name, "--base-port") for n in plan.redis_nodes]
                    if plan.config.publish else [])
    if plan.config.dashboard:
        wanted_ports.append((plan.config.dashboard_port, "the dashboard", "--dashboard-port"))
    problems.extend(_port_conflicts(plan, inventory, port_is_free, wanted_ports))
    return problems


def redis_lost(plan: Plan, inventory: Inventory, probe: Callable[[], dict[str, Any]]) -> bool:
    """Whether the cluster's Redis lost data (:func:`artm_compose.runtimes.lifecycle.redis_lost`): a Redis
    container of the plan is down or gone and the nodes left do not serve the cluster."""
    redis = [o for o in inventory.of_cluster(plan.cluster)
             if o.kind == "container" and o.labels.get(labels.ROLE) == "redis"]
    return lifecycle.redis_lost(len(redis) >= len(plan.redis_nodes) and all(o.running for o in redis), probe)


def training_containers(plan: Plan, inventory: Inventory) -> list[DockerObject]:
    """The executors and master of the cluster that are running (or restarting)."""
    return [o for o in inventory.of_cluster(plan.cluster) if o.kind == "container" and o.running
            and o.labels.get(labels.ROLE) in ("executor", "master")]


def _port_conflicts(plan: Plan, inventory: Inventory, port_is_free,
                    wanted: list[tuple[int | None, str, str]]) -> list[str]:
    """Host ports the plan publishes on 127.0.0.1 (port, for whom, the option that moves it) held by others."""
    problems = []
    for port, owner_name, option in wanted:
        holders = [c for c in inventory.containers if c.running and port in c.host_ports]
        if any(c.belongs_to(plan.cluster) for c in holders):
            continue
        if holders:
            problems.append(f"port 127.0.0.1:{port} for {owner_name} is published by {holders[0].describe()}; "
                            f"choose another {option}")
        elif not port_is_free(port):
            owner = port_owner(port)
            by = f" by pid {owner[0]} ({owner[1]})" if owner else ""
            problems.append(f"port 127.0.0.1:{port} for {owner_name} is already in use{by}; choose another {option}")
    return problems


def network_layout(plan: Plan, inventory: Inventory, client: docker.DockerClient | None) -> NetworkLayout:
    """The cluster network's layout: that of its existing network, else a fresh subnet free on this host."""
    name = network_name(plan)
    existing = inventory.subnets.get(name)
    if existing is not None and any(n.name == name and n.belongs_to(plan.cluster) for n in inventory.networks):
        layout = layout_network(ipaddress.ip_network(existing.subnet), len(plan.redis_nodes))
        if existing.ip_range != str(layout.ip_range) or existing.gateway != str(layout.gateway):
            raise ConfigError(f"network {name} exists with another layout ({existing.describe()}); "
                              f"run `artm-compose down` for cluster {plan.cluster!r} first")
        return layout
    prefix = prefix_for(len(plan.redis_nodes), len(plan.executors) + 2)
    return layout_network(free_subnet(prefix, used_subnets(client)), len(plan.redis_nodes))


class ComposeRuntime(Runtime):
    """Containers on this Docker host, one Compose project per cluster (``artm-<name>``)."""

    name = RUNTIME_NAME
    addressing = SERVICE_ADDRESSING
    where = "on Docker"
    serves_dashboard = True
    scales_executors = True
    missing = "no container"

    # -- primitives of up ---------------------------------------------------------------------------

    def prepare(self, plan: Plan, echo: Echo) -> None:
        self._client = client = docker_client()
        ensure_compose_plugin()
        inventory = Inventory.collect(client)
        lost = redis_lost(plan, inventory, lambda: self._exec(plan.cluster, "probe", client=client))
        # A run whose Redis lost data cannot go on (its model is gone), though its restart policies keep
        # its members coming back: removed, not a training in progress; the run starts again, from its
        # checkpoint.
        left_over = training_containers(plan, inventory) if lost else []
        problems = find_conflicts(plan, self.state, inventory, left_over=[o.name for o in left_over])
        if problems:
            raise ConfigError("; ".join(problems))
        for left in left_over:
            echo(_remove_container(client, left.name, left.name) + " (left by a run that lost its Redis)")
        self._start_empty = self.goes_on_from_checkpoint(plan, lost)
        images = build_images(echo=echo, client=client)
        layout = network_layout(plan, inventory, client)
        self.render(plan, images=images, layout=layout, status=Status.STARTING)

    def start_redis(self, plan: Plan, echo: Echo) -> Bootstrapped:
        report = self._start_cluster(plan, self._client, echo)
        return Bootstrapped(actions=tuple(report["actions"]), seconds=report["seconds"])

    def start_dashboard(self, plan: Plan, echo: Echo) -> None:
        _compose_up(self._compose(), [DASHBOARD], "starting the dashboard")

    def start_training(self, plan: Plan, echo: Echo) -> None:
        training = [e.name for e in plan.executors] + [MASTER]
        self.state.scores.unlink(missing_ok=True)
        # Fresh containers for every run: their logs then hold this run only.
        _compose_up(self._compose(), training, "starting the training", recreate=True)
        self._master = container_name(plan, MASTER)

    def follow(self, plan: Plan, echo: Echo) -> str | None:
        """Echo the master's output until it has ended for good: its restart policy brings a killed master
        back, which resumes the run."""
        client, master = self._client, self._master

        def restarted(count: int) -> None:
            # A killed master resumes its run; one that failed by itself ends again (engine.master).
            echo(f"master restarted by its restart policy ({count} of {plan.config.max_restarts})")

        for line in _lines_through_restarts(client, master, restarted):
            echo(line.rstrip("\n"))
        code = _inspect(client, master).exit_code
        if code == 0:
            return None
        tail = "".join(log_lines(client, container=master, tail=LOG_TAIL_LINES))
        return f"master exited with code {code}; last lines:\n{tail}"

    def after_training(self, plan: Plan, echo: Echo) -> None:
        """After the master's end the executors leave on their own; wait (bounded) so that status is final.

        Their and the master's restart policies go first: the run is over, and Docker would restart an
        executor that the master's abort ended (exit status 3)."""
        executors = containers(self._client, label=labels.selector(plan.cluster, self.name, role="executor"))
        for name in [*(e.id for e in executors), self._master]:
            _restart_no_more(self._client, name)
        _await_executors_exit(self._client, plan, echo, "the master ended")

    def replace_executors(self, plan: Plan, echo: Echo) -> None:
        """``scale``: the master has ended the executors; render ``compose.yml`` for ``plan``, remove the
        executor containers it has no more and start its executors afresh (their ranges, so their commands,
        changed). Redis, the control container and the master are not touched: the master goes on with
        the run. The images are those the cluster runs, not this installation's, which may be newer."""
        client = docker_client()
        _await_executors_exit(client, plan, echo, "the master ended them to scale")
        found = self._containers(client, plan.cluster)
        wanted = {e.name for e in plan.executors}
        for service, member in sorted(found.items()):
            if member.labels.get(labels.ROLE) == "executor" and service not in wanted:
                echo(_remove_container(client, member.id, member.name))
        redis = next(c for c in found.values() if c.labels.get(labels.ROLE) == "redis")
        images = ImageTags(redis=redis.image, artm=found[MASTER].image)
        compose_path(self.state).write_text(render_compose(
            plan, self.state, images=images, network=network_layout(plan, Inventory.collect(client), client)))
        echo(f"starting {len(wanted)} executor(s)")
        _compose_up(self._compose(), sorted(wanted, key=_component_order), "starting the executors", recreate=True)

    def _start_cluster(self, plan: Plan, client: docker.DockerClient, echo: Echo) -> dict[str, Any]:
        """Start the Redis nodes and the control container together; the bootstrap's JSON report.

        A control container started now bootstraps by itself (waiting for the nodes to answer); one that
        was already running bootstraps again through ``docker exec``, healing restarted nodes. With
        ``_start_empty`` (set by prepare) every one is created anew.
        """
        control_name = container_name(plan, CONTROL)
        before = _start_marker(client, control_name)
        services = [redis_component(n.index) for n in plan.redis_nodes] + [CONTROL]
        echo(f"starting {len(plan.redis_nodes)} Redis node(s) and the control container on network "
             f"{network_name(plan)}" + (", all anew: the Redis Cluster lost data and the run goes on from its "
                                        "checkpoint" if self._start_empty else ""))
        _compose_up(self._compose(), services, "starting the containers", recreate=self._start_empty)
        if _start_marker(client, control_name) != before:
            return self._startup_report(client, control_name,
                                        bootstrap_timeout(len(plan.redis_nodes)) + CONTROL_START_SLACK)
        return self._exec(plan.cluster, "bootstrap", "--timeout", f"{bootstrap_timeout(len(plan.redis_nodes)):g}")

    def _startup_report(self, client: docker.DockerClient, control: str, timeout: float) -> dict[str, Any]:
        """Wait (bounded) for the control container's start-up bootstrap to print its report."""
        status = "unknown"

        def report() -> dict[str, Any] | None:
            nonlocal status
            status = _inspect(client, control).status
            found = _last_json("".join(log_lines(client, container=control, stderr=False)))
            if found is None and status in ("exited", "dead"):
                tail = "".join(log_lines(client, container=control, tail=LOG_TAIL_LINES)).strip()
                raise BootstrapError(f"bootstrap failed in {control}: {tail}")
            return found

        return wait_until(report, timeout, f"the bootstrap in {control} to report", interval=POLL_SECONDS,
                          describe=lambda: f"status {status}; see `artm-compose logs control`",
                          error=BootstrapTimeout)

    def render(self, plan: Plan, *, images: ImageTags | None = None, layout: NetworkLayout | None = None,
               status: Status = Status.RENDERED) -> list[Path]:
        """Write the state directory's files and ``compose.yml`` (for ``docker compose`` by hand too)."""
        if images is None:
            images = image_tags()
        if layout is None:
            client = _client_or_none()
            layout = network_layout(plan, Inventory.collect(client) if client else Inventory(), client)
        written = [*render_all(plan, self.state, status=status), write_users_conf(plan.cluster, self.state)]
        self.state.scratch_dir.mkdir(mode=0o700, exist_ok=True)  # a bind mount's source must exist
        path = compose_path(self.state)
        path.write_text(render_compose(plan, self.state, images=images, network=layout))
        return [*written, path]

    # -- primitives of status, export, logs and down ------------------------------------------------

    def observe_members(self, record: ClusterRecord) -> dict[str, MemberState]:
        return {name: MemberState(alive=member.running and member.health in (None, "healthy", "starting"),
                                  state=member.describe())
                for name, member in self._containers(docker_client(), record.cluster).items()}

    def run_job(self, record: ClusterRecord, job: str, *arguments: str) -> dict[str, Any]:
        return self._exec(record.cluster, job, *arguments)

    def export_model(self, record: ClusterRecord, training: TrainingRecord, out: Path) -> Path:
        """Exported inside the control container, then copied out of it."""
        _, _, vocab = corpus_mounts(training.batches_dir, training.vocab_path)
        inside = f"{SCRATCH_MOUNT}/{secrets.token_hex(4)}-{out.name}"
        client = docker_client()
        self._exec(record.cluster, "export", "--vocab-path", vocab, "--out", inside, client=client)
        control = client.containers.get(labels.project_name(record.cluster) + f"-{CONTROL}")
        try:
            _copy_out(control, inside, out)
        finally:
            control.exec_run(["rm", "-f", inside])
        return out

    def transform_theta(self, record: ClusterRecord, training: TrainingRecord, batches_dir: Path,
                        job: TransformJob, out: Path) -> Path:
        """In the control container (the shares in parallel processes there); other data than the training
        data is copied into it first (the engine may be remote, so no new mount), then removed."""
        _, corpus, vocab = corpus_mounts(training.batches_dir, training.vocab_path)
        client = docker_client()
        control = client.containers.get(labels.project_name(record.cluster) + f"-{CONTROL}")
        scratch = f"{SCRATCH_MOUNT}/transform-{secrets.token_hex(4)}"
        inside_out = f"{scratch}/{out.name}"
        control.exec_run(["mkdir", "-p", f"{scratch}/data"])
        try:
            data = corpus
            if batches_dir.resolve() != Path(training.batches_dir).resolve():
                control.put_archive(f"{scratch}/data", _batches_archive(batches_dir))
                data = f"{scratch}/data"
            self._exec(record.cluster, "transform", *job.arguments(data, vocab, inside_out), client=client)
            _copy_out(control, inside_out, out)
        finally:
            control.exec_run(["rm", "-rf", scratch])
        return out

    def remove(self, record: ClusterRecord | None, echo: Echo, *, volumes: bool,
               names: tuple[str, ...] = ()) -> list[str]:
        """Remove every container and network labelled with this state directory or with the recorded
        cluster or one of ``names`` (and volumes with ``volumes``): a cluster started here under another
        name, or whose ``cluster.json`` is gone, is found by the state-directory label."""
        selectors = [{"label": [f"{labels.STATE_DIR}={self.state.root}", f"{labels.RUNTIME}={self.name}"]}]
        for name in sorted({*names, *([record.cluster] if record is not None else [])}):
            selectors.append({"label": labels.selector(name, self.name)})
        client = docker_client()

        def union(listing: Callable[[dict[str, Any]], list[Any]], key: Callable[[Any], str]) -> list[Any]:
            found: dict[str, Any] = {}
            for selector in selectors:
                for item in listing(selector):
                    found.setdefault(key(item), item)
            return list(found.values())

        members = union(lambda selector: containers(client, **selector), lambda c: c.id)
        # Training first, Redis last: executors and the master then never see Redis vanish under them.
        order = {"master": 0, "executor": 1, CONTROL: 2, "redis": 3}
        rank = lambda member: order.get(member.labels.get(labels.ROLE, ""), 2)  # noqa: E731
        messages = []
        for step in sorted({rank(c) for c in members}):
            batch = [c for c in members if rank(c) == step]
            with ThreadPoolExecutor(max_workers=REMOVE_THREADS) as pool:
                messages.extend(pool.map(lambda c: _remove_container(client, c.id, c.name), batch))
        for network in union(lambda selector: networks(client, **selector), lambda n: n.id):
            client.api.remove_network(network.id)
            messages.append(f"removed network {network.name}")
        if volumes:
            for volume in union(lambda selector: volume_list(client, **selector), lambda v: v.name):
                client.api.remove_volume(volume.name, force=True)
                messages.append(f"removed volume {volume.name}")
        for message in messages:
            echo(message)
        return messages

    def logs(self, component: str | None = None, *, follow: bool = False) -> Iterator[str]:
        client = docker_client()
        chosen = _choose_components(self._containers(client, self.state_record().cluster), component)
        if len(chosen) == 1:
            member = next(iter(chosen.values()))
            yield from _lines_through_restarts(client, member.id) if follow else log_lines(client, container=member.id)
            return
        if not follow:
            for name, member in chosen.items():
                yield f"==> {name} <==\n"
                yield from log_lines(client, container=member.id)
            return
        for _source, line in self._compose().compose.logs(list(chosen), follow=True, stream=True):
            yield line.decode(errors="replace")

    # -- helpers ------------------------------------------------------------------------------------

    def _compose(self) -> python_on_whales.DockerClient:
        path = compose_path(self.state)
        if not path.is_file():
            raise ConfigError(f"{path} does not exist: run `artm-compose up --runtime compose` or `render` first")
        project = labels.project_name(self.state_record().cluster)
        return compose_cli(path, project, self.state.root)

    def _exec(self, cluster: str, job: str, *arguments: str,
              client: docker.DockerClient | None = None) -> dict[str, Any]:
        """Run an ``in_cluster`` job in the running control container (``docker exec``); its JSON result."""
        client = client or docker_client()
        name = labels.project_name(cluster) + f"-{CONTROL}"
        control = _running(client, name)
        if control is None:
            raise BootstrapError(f"the control container {name} is not running: run `artm-compose up` "
                                 f"--state-dir {self.state.root}")
        code, (stdout, stderr) = control.exec_run([ARTM_ENTRYPOINT, *in_cluster_command(job, *arguments)],
                                                  demux=True)
        report = _last_json((stdout or b"").decode(errors="replace"))
        if code != 0 or report is None:
            message = (stderr or stdout or b"").decode(errors="replace").strip()
            raise BootstrapError(f"{job} in {name} failed (exit {code}): {message}")
        return report

    def _containers(self, client: docker.DockerClient, cluster: str) -> dict[str, ContainerView]:
        """Long-lived containers of the cluster by service name (one-off jobs excluded), inspected now;
        one removed since the listing is left out."""
        found = [container(client, c.id) for c in containers(client, label=labels.selector(cluster, self.name))]
        return {c.service: c for c in found if c is not None and c.service is not None}


RUNTIME = ComposeRuntime


def _await_executors_exit(client: docker.DockerClient, plan: Plan, echo: Echo, why: str) -> None:
    """Executors leave on their own at their next poll once the master has ended them; wait for that
    (bounded) and warn of those that do not."""
    selector = {"label": labels.selector(plan.cluster, RUNTIME_NAME, role="executor"), "status": "running"}
    timeout = plan.config.heartbeat_timeout + EXECUTOR_EXIT_SLACK
    running: list[ContainerView] = []

    def all_exited() -> bool:
        nonlocal running
        running = containers(client, **selector)
        return not running

    if not poll_until(all_exited, timeout, interval=POLL_SECONDS * 5):
        names = ", ".join(sorted(c.name for c in running)[:4])
        echo(f"warning: {len(running)} executor(s) still running {timeout:g} s after {why}: {names}")


def _copy_out(container: docker.models.containers.Container, inside: str, out: Path) -> None:
    """Copy the file ``inside`` the container to ``out`` on this machine."""
    stream, _ = container.get_archive(inside)
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
        member = archive.extractfile(archive.getmembers()[0])
        assert member is not None
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(member.read())


def _batches_archive(batches_dir: Path) -> bytes:
    """A tar of the ``*.batch`` files of ``batches_dir`` (flat), owned by this user: they land in the state
    directory's scratch/ (a bind mount), which this user removes again."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for path in list_batches(batches_dir):
            info = archive.gettarinfo(str(path), arcname=path.name)
            info.mode, info.uid, info.gid = 0o644, os.getuid(), os.getgid()
            with path.open("rb") as handle:
                archive.addfile(info, handle)
    return buffer.getvalue()


def _container_object(listed: ContainerView) -> DockerObject:
    """A listed container as the conflict checks see it (one that Docker is restarting counts as running)."""
    return DockerObject("container", listed.name, dict(listed.labels), running=listed.running,
                        host_ports=listed.host_ports)


def _start_marker(client: docker.DockerClient, name: str) -> tuple[str, str] | None:
    """(id, start time) of container ``name``: a change means it was (re)started."""
    found = container(client, name)
    return (found.id, found.started_at) if found is not None else None


def _inspect(client: docker.DockerClient, name: str) -> ContainerView:
    """Container ``name`` now; one that is gone is an error here (the runtime started it moments ago)."""
    found = container(client, name)
    if found is None:
        raise BootstrapError(f"container {name} is gone (removed by `artm-compose down`?)")
    return found


def _compose_up(compose: python_on_whales.DockerClient, services: list[str], what: str, *,
                recreate: bool = False) -> None:
    """``docker compose up -d`` of ``services`` only (their dependencies are started by the runtime itself);
    ``recreate`` makes fresh containers."""
    with failing_as(what, BootstrapError):
        compose.compose.up(services, detach=True, dependencies=False, force_recreate=recreate, quiet=True,
                           color=False)


def _last_json(text: str) -> dict[str, Any] | None:
    lines = [line for line in text.splitlines() if line.startswith("{")]
    return json.loads(lines[-1]) if lines else None


def _client_or_none() -> docker.DockerClient | None:
    try:
        return docker_client()
    except RuntimeUnavailable:
        return None


def _running(client: docker.DockerClient, name: str) -> docker.models.containers.Container | None:
    """Container ``name`` to act on (exec, copy) if it is running."""
    found = container(client, name)
    return client.containers.get(found.id) if found is not None and found.status == "running" else None


def _remove_container(client: docker.DockerClient, container: str, name: str) -> str:
    """Remove ``container`` (id or name) by force; what happened, for people."""
    try:
        client.api.remove_container(container, force=True)
    except NotFound:
        return f"{name} was already gone"
    except APIError as error:
        if "already in progress" in str(error):
            return f"{name} is being removed"
        raise
    return f"removed container {name}"


def _choose_components(members: dict[str, ContainerView], component: str | None) -> dict[str, ContainerView]:
    ordered = dict(sorted(members.items(), key=lambda item: _component_order(item[0])))
    if component is None:
        return ordered
    if component in ordered:
        return {component: ordered[component]}
    chosen = {name: c for name, c in ordered.items() if name.startswith(component + "-")
              or c.labels.get(labels.ROLE) == component.rstrip("s")}
    if not chosen:
        raise ConfigError(f"component={component!r} has no container; available: "
                          f"{', '.join(ordered) or 'none'} (or a role: redis, executor, master)")
    return chosen


def _component_order(service: str) -> tuple[int, int]:
    role, _, index = service.partition("-")
    return {"redis": 0, "executor": 1, "master": 2}.get(role, 3), int(index) if index.isdigit() else 0


def _lines_through_restarts(client: docker.DockerClient, name: str,
                            restarted: Callable[[int], None] = lambda _count: None) -> Iterator[str]:
    """Container ``name``'s log lines, followed until it has exited for good; ``restarted`` hears of each
    restart by its restart policy. Docker ends a log stream at each exit, and its log holds every
    instance's lines, so each new stream skips the complete lines yielded already."""
    yielded = restarts = 0
    while True:
        for number, line in enumerate(log_lines(client, container=name, follow=True)):
            if number >= yielded:
                yield line
                yielded += line.endswith("\n")
        state = _settled(client, name, RESTART_TIMEOUT)
        if state.restart_count > restarts:
            restarts = state.restart_count
            restarted(restarts)
        if not state.running:
            return


# What Docker says to an update of a container whose exit it has not recorded yet (the full suite saw each).
EXITING = ("stopped container", "container not running", "deleted process")


def _restart_no_more(client: docker.DockerClient, container: str) -> None:
    """Switch the container's restart policy off. Docker refuses to update a container in the middle of
    its exit ("cannot update a stopped container", or runc's "container not running" and "cannot update a
    deleted process") until it has recorded the exit: retried (bounded)."""
    def switched() -> bool:
        try:
            client.api.update_container(container, restart_policy={"Name": "no"})
        except NotFound:
            return True
        except APIError as error:
            if not any(words in str(error) for words in EXITING):
                raise
            return False
        return True

    wait_until(switched, RESTART_POLICY_TIMEOUT, f"the restart policy of container {container[:12]} to be switched off",
               interval=POLL_SECONDS)


def _settled(client: docker.DockerClient, name: str, timeout: float) -> ContainerView:
    """Container ``name`` once it is not between an exit and its restart (``restarting``): running again,
    or exited for good (Docker decides under one lock, so an exited container stays exited)."""
    last = "unknown"

    def settled() -> ContainerView | None:
        nonlocal last
        now = _inspect(client, name)
        last = now.status
        return None if now.restarting else now

    return wait_until(settled, timeout, f"{name} to come back from restarting", interval=POLL_SECONDS,
                      describe=lambda: last, error=TrainingTimeout)
