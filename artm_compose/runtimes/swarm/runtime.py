"""The swarm runtime: the plan as a Docker Swarm stack, each virtual node placed by range labels.

``up`` runs on a Swarm manager: it builds the images that are missing, labels the Swarm nodes with
their ranges of virtual nodes (keeping a complete labelling made earlier by ``swarm label``), checks
the data files, deploys the Redis services and a one-shot bootstrap job on the stack's attachable
overlay network (the manager cannot reach overlay addresses), waits for every service, then deploys
the executors and the master and follows the master. ``status`` shows every Swarm node's range and
services; ``down`` removes the stack, its secrets and configs, and this cluster's node labels. With
``--dashboard`` the stack also runs the dashboard and its relay on this manager, which listens on its
127.0.0.1:dashboard_port only (see :mod:`artm_compose.dashboard.relay`).

Images are not distributed: every Swarm node must have them (a registry, or ``docker save`` /
``docker load``); a task that cannot find its image is reported with its node.
"""

from __future__ import annotations

import os
import queue
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import docker
import python_on_whales
import yaml
from docker.types import ConfigReference, SecretReference
from docker.types import Mount as DockerMount

from artm_compose import labels
from artm_compose.acl import JOB_USERS, user_passwords, write_users_conf
from artm_compose.bootstrap import bootstrap_timeout
from artm_compose.containers import (SERVICE_ADDRESSING, STATE_MOUNT, USER_SECRETS, Mount, corpus_mounts,
                                    in_cluster_command)
from artm_compose.docker_access import (APIError, LogStream, NotFound, TaskView, cli, containers, docker_client,
                                        failing_as, log_lines, node_hostnames, service, services, tasks)
from artm_compose.errors import (BootstrapError, BootstrapTimeout, ConfigError, DataError, RuntimeTimeout,
                                 RuntimeUnavailable, TrainingTimeout)
from artm_compose.images.build import ImageTags, build_images, image_tags
from artm_compose.plan import Plan
from artm_compose.processes import check_dashboard_port
from artm_compose.render import DASHBOARD, MASTER, redis_component, render_all
from artm_compose.record import ClusterRecord, Status, TrainingRecord
from artm_compose.runtimes.base import Bootstrapped, ClusterStatus, Echo, MemberState, TransformJob
from artm_compose.runtimes.lifecycle import Runtime, redis_lost
from artm_compose.state import write_text_atomic
from artm_compose.runtimes.swarm.assign import Holding, assign, removal, replica_groups, usable_holdings
from artm_compose.runtimes.swarm.data_plan import check_local, data_plan
from artm_compose.runtimes.swarm.node_check import check_on_nodes
from artm_compose.runtimes.swarm.node_labels import apply_changes, list_nodes, require_manager
from artm_compose.runtimes.swarm.stack import (
    DASHBOARD_RELAY, RESTART, StackFiles, content_name, network_name, nodes_document, password_secrets, render_stack,
    stack_name,
)
from artm_compose.runtimes.swarm.one_shot import json_result, run_once, tail, task_logs
from artm_compose.runtimes.swarm.tasks import last_failure, latest, run_state
from artm_compose.waiting import poll_until, wait_until

RUNTIME_NAME = "swarm"
BOOTSTRAP_SERVICE = "bootstrap"
SERVICE_START_TIMEOUT = 120.0
IN_CLUSTER_TIMEOUT = 120.0
EXPORT_MOUNT = "/export"
REMOVE_TIMEOUT = 60.0
MASTER_RESTART_DELAY = float(RESTART["master"]["delay"].rstrip("s"))
POLL = 0.5
# The log stream lags a task's end: its output is echoed until the stream has been quiet this long.
LOG_LAG = 2.0


@dataclass(frozen=True)
class SwarmRecord:
    """The Swarm's part of the cluster record: the stack, where each virtual node and replica runs, and its
    objects."""

    stack: str
    network: str
    manager: str
    images: ImageTags
    secrets: dict[str, str]  # the Swarm secret of each Redis user's password, by user (acl.py)
    nodes_config: str
    holdings: tuple[Holding, ...]
    replica_groups: dict[int, int] = field(default_factory=dict)  # replica instance -> the group it runs in

    @classmethod
    def of(cls, cluster: ClusterRecord) -> SwarmRecord | None:
        """The Swarm part of ``cluster`` (None before ``up`` placed it)."""
        extras = cluster.extras
        if not extras:
            return None
        return cls(stack=extras["stack"], network=extras["network"], manager=extras["manager"],
                   images=ImageTags(**extras["images"]), secrets=extras.get("secrets", {}),
                   nodes_config=extras["nodes_config"],
                   holdings=tuple(Holding.from_dict(h) for h in extras["holdings"]),
                   replica_groups={int(i): g for i, g in (extras.get("replica_groups") or {}).items()})

    def to_dict(self) -> dict[str, Any]:
        return {"stack": self.stack, "network": self.network, "manager": self.manager,
                "images": {"redis": self.images.redis, "artm": self.images.artm}, "secrets": self.secrets,
                "nodes_config": self.nodes_config, "holdings": [h.to_dict() for h in self.holdings],
                "replica_groups": {str(i): g for i, g in self.replica_groups.items()}}


@dataclass(frozen=True)
class ServiceView:
    """One service of the stack: its component name, role, labels and the task that matters."""

    component: str
    role: str
    labels: dict[str, str]
    task: TaskView | None
    failure: TaskView | None = None


@dataclass(frozen=True)
class RenderedStack:
    """What ``render`` wrote; ``labelled`` is False when the Swarm's nodes still need `swarm label`."""

    paths: list[Path]
    stack: Path
    labelled: bool


class SwarmRuntime(Runtime):
    """A Docker Swarm stack per cluster (``artm-<name>``), driven from a Swarm manager."""

    name = RUNTIME_NAME
    addressing = SERVICE_ADDRESSING
    where = "on Docker Swarm"
    missing = "no service"
    serves_dashboard = True
    scales_executors = True

    # -- primitives of up ---------------------------------------------------------------------------

    def prepare(self, plan: Plan, echo: Echo) -> None:
        self._client = client = docker_client()
        self._whales = whales = cli()
        self._manager_id = manager_id = require_manager(whales)
        self._remove_after_lost_redis(client, plan, echo)
        self._check_conflicts(client, plan)
        if plan.config.dashboard:
            relay = self._service_view(client, plan.cluster, DASHBOARD_RELAY)
            if relay is None or relay.task is None or not relay.task.running:
                check_dashboard_port(plan.config.dashboard_port)
        holdings = self.place(whales, plan, echo)
        if plan.data is not None:
            placed = data_plan(plan, holdings)
            echo(placed.describe())
            problems = check_local(placed)
            if problems:
                raise DataError(f"data for the Swarm nodes is incomplete on this manager: {'; '.join(problems[:5])}")
        self._images = images = build_images(echo=echo, client=client)
        if plan.data is not None:
            self._check_data_on_nodes(client, plan, holdings, manager_id, images, echo)
        render_all(plan, self.state, status=Status.STARTING)
        write_users_conf(plan.cluster, self.state)
        files = StackFiles.of(self.state)
        write_text_atomic(files.nodes, nodes_document(plan))
        if plan.config.dashboard:
            files.make_dashboard_dir()
        self._passwords = passwords = user_passwords(self.state)
        record = self.state_record()
        record.with_extras(self._record(plan, holdings, manager_id, images, passwords).to_dict()).save(self.state)
        self._groups = {v: h.group for h in holdings for v in h.vnodes}

    def render(self, plan: Plan) -> list[Path]:
        return self.render_stack(plan).paths

    def render_stack(self, plan: Plan) -> RenderedStack:
        """Write the state directory's files and ``stack.yml`` for `docker stack deploy` by hand; nothing is
        deployed. Placement follows the Swarm's labels if they hold every virtual node, else the labels
        `swarm label` would write (to apply before deploying)."""
        whales = cli()
        manager_id = require_manager(whales)
        swarm_nodes = list_nodes(whales)
        holdings = usable_holdings(plan.cluster, len(plan.nodes), swarm_nodes)
        labelled = holdings is not None
        if holdings is None:
            holdings = assign(plan.cluster, len(plan.nodes), swarm_nodes).holdings
        written = [*render_all(plan, self.state), write_users_conf(plan.cluster, self.state)]
        files = StackFiles.of(self.state)
        write_text_atomic(files.nodes, nodes_document(plan))
        if plan.config.dashboard:
            files.make_dashboard_dir()
        write_text_atomic(files.stack, render_stack(plan, self.state, images=image_tags(), manager_id=manager_id,
                                                    groups={v: h.group for h in holdings for v in h.vnodes},
                                                    passwords=user_passwords(self.state)))
        return RenderedStack(paths=[*written, files.nodes, files.stack], stack=files.stack, labelled=labelled)

    def start_redis(self, plan: Plan, echo: Echo) -> Bootstrapped:
        client = self._client
        bootstrap = f"{stack_name(plan)}_{BOOTSTRAP_SERVICE}"
        before = _one_shot_state(client, bootstrap)
        self._deploy(plan, training=False)
        _run_again_if_unchanged(client, bootstrap, before)
        redis = [redis_component(n.index) for n in plan.redis_nodes]
        echo(f"deployed stack {stack_name(plan)}: {len(redis)} Redis service(s) on network {network_name(plan)}")
        self._wait_running(client, plan, redis, SERVICE_START_TIMEOUT)
        report = self._wait_bootstrap(client, bootstrap, before[1] if before else set(),
                                      bootstrap_timeout(len(plan.redis_nodes)) + 30)
        return Bootstrapped(actions=tuple(report.get("actions", ())), seconds=report.get("seconds"))

    def start_dashboard(self, plan: Plan, echo: Echo) -> None:
        """The stack deployed by start_redis holds the dashboard and its relay: wait until they answer."""
        client = self._client
        self._wait_running(client, plan, [DASHBOARD, DASHBOARD_RELAY], SERVICE_START_TIMEOUT)
        url = f"http://127.0.0.1:{plan.config.dashboard_port}/healthz"
        answer = "no answer yet"

        def healthy() -> bool:
            nonlocal answer
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    return response.read().strip() == b"ok"
            except OSError as error:
                answer = str(error)
                return False

        def state() -> str:
            views = {v.component: v for v in self._services(client, plan.cluster)}
            names = node_hostnames(client)
            services = "; ".join(self._explain(client, views.get(c), c, names) for c in (DASHBOARD, DASHBOARD_RELAY))
            return f"{answer}; {services}"

        wait_until(healthy, SERVICE_START_TIMEOUT, f"the dashboard to answer on {url}", interval=POLL,
                   describe=state, error=BootstrapTimeout)
        port = plan.config.dashboard_port
        echo(f"dashboard on this manager's 127.0.0.1 only; from another machine: "
             f"ssh -N -L {port}:127.0.0.1:{port} <this manager>")

    def start_training(self, plan: Plan, echo: Echo) -> None:
        self.state.scores.unlink(missing_ok=True)
        self._deploy(plan, training=True)

    def replace_executors(self, plan: Plan, echo: Echo) -> None:
        """``scale``: the master has ended the executors; deploy the stack again with ``plan``'s executors.
        Every other service keeps the spec it was deployed with (the stack file in the state directory):
        Swarm replaces the task of a service whose spec changed, and the master, whose command and labels
        name the executor count it started with, must go on with the run. The prune removes the executor
        services ``plan`` has not."""
        swarm = SwarmRecord.of(self.state_record())
        assert swarm is not None
        files = StackFiles.of(self.state)
        deployed = yaml.safe_load(files.stack.read_text())
        stack = yaml.safe_load(render_stack(plan, self.state, images=swarm.images, manager_id=swarm.manager,
                                            groups={v: h.group for h in swarm.holdings for v in h.vnodes},
                                            passwords=user_passwords(self.state)))
        stack["services"] = {**{name: spec for name, spec in deployed["services"].items()
                                if not name.startswith("executor-")},
                             **{name: spec for name, spec in stack["services"].items() if name.startswith("executor-")}}
        write_text_atomic(files.stack, yaml.safe_dump(stack, sort_keys=False))
        echo(f"deploying {len(plan.executors)} executor service(s)")
        _deploy_stack(cli(), stack_name(plan), files.stack)

    def place(self, whales: python_on_whales.DockerClient, plan: Plan, echo: Echo) -> tuple[Holding, ...]:
        """Keep the Swarm's labels if they already place every virtual node on a usable node, else relabel."""
        nodes = list_nodes(whales)
        current = usable_holdings(plan.cluster, len(plan.nodes), nodes)
        if current is not None:
            echo("Swarm placement kept: " + _describe_holdings(current))
            return current
        assignment = assign(plan.cluster, len(plan.nodes), nodes)
        apply_changes(whales, assignment.changes)
        echo("Swarm placement labelled: " + _describe_holdings(assignment.holdings))
        return assignment.holdings

    def _check_data_on_nodes(self, client: docker.DockerClient, plan: Plan, holdings: tuple[Holding, ...],
                             manager_id: str, images: ImageTags, echo: Echo) -> None:
        """Check the data on every Swarm node but this one (checked above), before anything is deployed."""
        remote = tuple(h for h in holdings if h.node_id != manager_id)
        if not remote:
            return
        found = check_on_nodes(client, data_plan(plan, remote), images.artm, plan.cluster)
        problems = [f"{hostname}: {problem}" for hostname, listed in found.items() for problem in listed]
        if problems:
            raise DataError(f"data for the Swarm nodes is incomplete: {'; '.join(problems[:5])}")
        echo(f"data checked on {len(found)} other Swarm node(s): every file they need is readable")

    def _remove_after_lost_redis(self, client: docker.DockerClient, plan: Plan, echo: Echo) -> None:
        """If the cluster's Redis lost data (:func:`artm_compose.runtimes.lifecycle.redis_lost`), remove the
        run's executor and master services (they cannot go on; their restart policy would keep them coming
        back) and, when the run goes on from its checkpoint, every Redis service, which the deploy then
        starts anew (the nodes left hold only part of the model). A Redis service
        with a failed task was replaced by Swarm: a new, empty container. Before the conflict checks, which
        then find no training in progress."""
        views = [v for v in self._services(client, plan.cluster) if v.role == "redis"]
        record = ClusterRecord.load_if_any(self.state)

        def probe() -> dict[str, Any]:
            if record is None:
                raise BootstrapError("no cluster recorded")
            return self.run_job(record, "probe")

        lost = redis_lost(len(views) >= len(plan.redis_nodes) and all(
            v.task is not None and v.task.running and v.failure is None for v in views), probe)
        if not lost:
            return
        gone = [v for v in self._services(client, plan.cluster) if v.role in ("executor", "master")]
        if self.goes_on_from_checkpoint(plan, lost):
            echo("every Redis node starts anew: the Redis Cluster lost data and the run goes on from its checkpoint")
            gone += views
        names = {f"{stack_name(plan)}_{v.component}": v.role for v in gone}
        for name, role in names.items():
            _ignore_missing(lambda: client.api.remove_service(name))  # noqa: B023 (called at once)
            echo(f"removed service {name}" + (" (left by a run that lost its Redis)" if role != "redis" else ""))
        selector = {"label": labels.selector(plan.cluster, self.name)}
        _wait_gone(lambda: [*(s for s in services(client, **selector) if s.name in names),
                            *(c for c in containers(client, **selector)
                              if c.labels.get("com.docker.swarm.service.name") in names)],
                   "the services of the run that lost its Redis and their containers", REMOVE_TIMEOUT)

    def _check_conflicts(self, client: docker.DockerClient, plan: Plan) -> None:
        found = services(client, label=labels.selector(plan.cluster, self.name))
        elsewhere = sorted({s.labels.get(labels.STATE_DIR, "?") for s in found} - {str(self.state.root)})
        if elsewhere:
            raise ConfigError(f"cluster name {plan.cluster!r} is in use by the swarm cluster of state dir "
                              f"{elsewhere[0]}; choose another --name or run `artm-compose down --state-dir "
                              f"{elsewhere[0]}`")
        busy = [v.component for v in self._services(client, plan.cluster)
                if v.role in ("executor", "master") and v.task is not None and not v.task.terminal]
        if busy:
            raise ConfigError(f"training of cluster {plan.cluster!r} is running ({', '.join(busy[:4])}); follow it "
                              f"(artm-compose logs master -f) or stop it (artm-compose down)")

    def _record(self, plan: Plan, holdings: tuple[Holding, ...], manager_id: str, images: ImageTags,
                passwords: Mapping[str, str]) -> SwarmRecord:
        """The Swarm part of cluster.json: where each virtual node runs and what the stack is made of."""
        groups = {v: h.group for h in holdings for v in h.vnodes}
        return SwarmRecord(stack=stack_name(plan), network=network_name(plan), manager=manager_id, images=images,
                           secrets=password_secrets(plan, passwords),
                           nodes_config=content_name(plan, "nodes", nodes_document(plan)), holdings=holdings,
                           replica_groups=replica_groups(plan.replicas, groups))

    def _deploy(self, plan: Plan, *, training: bool) -> None:
        files = StackFiles.of(self.state)
        write_text_atomic(files.stack, render_stack(plan, self.state, images=self._images, groups=self._groups,
                                                    manager_id=self._manager_id, passwords=self._passwords,
                                                    training=training))
        # Prune: the first deploy of a run drops the previous run's executors and master.
        _deploy_stack(self._whales, stack_name(plan), files.stack)

    def _wait_running(self, client: docker.DockerClient, plan: Plan, components: list[str], timeout: float) -> None:
        """Wait until every service in ``components`` has a running task; name the ones that have not."""
        views: dict[str, ServiceView] = {}
        pending = components

        def all_running() -> bool:
            nonlocal views, pending
            views = {v.component: v for v in self._services(client, plan.cluster)}
            pending = [c for c in components if views.get(c) is None or views[c].task is None
                       or not views[c].task.running]
            return not pending

        def not_running() -> str:
            names = node_hostnames(client)
            details = "; ".join(self._explain(client, views.get(c), c, names) for c in pending[:6])
            return (f"{len(pending)} not running: {details} "
                    f"(every Swarm node needs the images; `docker node ls` shows the nodes)")

        wait_until(all_running, timeout, f"{len(components)} service(s) to run", interval=POLL,
                   describe=not_running, error=BootstrapTimeout)

    def _wait_bootstrap(self, client: docker.DockerClient, name: str, earlier: set[str],
                        timeout: float) -> dict[str, Any]:
        """Wait for this run of the bootstrap service (its tasks not in ``earlier``); its JSON report."""
        runs: list[TaskView] = []

        def report() -> dict[str, Any] | None:
            nonlocal runs
            runs = [t for t in tasks(client, name) if t.id not in earlier]
            outcome = run_state(runs, RESTART["bootstrap"]["max_attempts"])
            if outcome == "failed":
                raise BootstrapError(f"bootstrap service {name} did not complete: {unfinished()}")
            if outcome != "complete":
                return None
            done = latest(t for t in runs if t.state == "complete")
            assert done is not None
            output = task_logs(client, done.id)
            found = json_result(output)
            if found is None:
                raise BootstrapError(f"bootstrap service {name} printed no result: {tail(output)}")
            return found

        def unfinished() -> str:
            last = latest(runs)
            logs = task_logs(client, last.id) if last is not None else ""
            state = last.describe(node_hostnames(client)) if last else "never scheduled"
            return f"{state}; its output:\n{tail(logs)}"

        return wait_until(report, timeout, f"bootstrap service {name} to complete", interval=POLL,
                          describe=unfinished, error=BootstrapTimeout)

    def follow(self, plan: Plan, echo: Echo) -> str | None:
        """Echo the master task's output until it ends; a failed one is replaced by the service's restart
        policy (at most ``max_restarts`` times, fresh for each run's master service) and the new task,
        which resumes the run from the committed model, is followed in turn."""
        client = self._client
        task = self._follow_task(client, plan, self._wait_running_or_done(client, plan, MASTER,
                                                                          SERVICE_START_TIMEOUT), echo)
        while task.state != "complete":
            failed = sum(1 for t in tasks(client, f"{stack_name(plan)}_{MASTER}") if t.failed)
            if not task.failed or failed > plan.config.max_restarts:
                return (f"master {task.describe(node_hostnames(client))}; see `artm-compose logs master "
                        f"--state-dir {self.state.root}`")
            echo(f"master {task.describe(node_hostnames(client))}; restarted by its restart policy ({failed} of "
                 f"{plan.config.max_restarts})")
            task = self._follow_task(client, plan, self._wait_running_or_done(
                client, plan, MASTER, SERVICE_START_TIMEOUT + MASTER_RESTART_DELAY, after=task.id), echo)
        return None

    def _follow_task(self, client: docker.DockerClient, plan: Plan, task: TaskView, echo: Echo) -> TaskView:
        """Echo the output of the master's task ``task`` until it is over; its last state."""
        lines: queue.Queue[str | None] = queue.Queue()
        stream = _pump(log_lines(client, task=task.id, follow=True), lines)
        try:
            while not task.terminal:
                _echo_queued(lines, echo)
                time.sleep(POLL)
                task = _task_now(client, f"{stack_name(plan)}_{MASTER}", task)
            while poll_until(lambda: _echo_queued(lines, echo), LOG_LAG, interval=POLL / 5):
                pass
        finally:
            stream.close()
        return task

    def _wait_running_or_done(self, client: docker.DockerClient, plan: Plan, component: str, timeout: float,
                              after: str | None = None) -> TaskView:
        """The latest task of ``component`` (other than the task ``after``) once it runs or is over."""
        found: ServiceView | None = None

        def started() -> TaskView | None:
            nonlocal found
            found = self._service_view(client, plan.cluster, component)
            task = found.task if found is not None else None
            return task if task is not None and task.id != after and (task.running or task.terminal) else None

        def state() -> str:
            return found.task.describe(node_hostnames(client)) if found and found.task else "no task"

        return wait_until(started, timeout, f"{component} to start", interval=POLL, describe=state,
                          error=TrainingTimeout)

    # -- primitives of status, export, logs and down ------------------------------------------------

    def observe_members(self, record: ClusterRecord) -> dict[str, MemberState]:
        client = docker_client()
        names = node_hostnames(client)
        views = {v.component: v for v in self._services(client, record.cluster)}
        self._observed = views, names  # for report()
        seen = {}
        for component, view in views.items():
            if view.task is None:
                seen[component] = MemberState(alive=False, state="no task")
            else:
                seen[component] = MemberState(alive=view.task.running, state=view.task.describe(names),
                                              address=names.get(view.task.node_id or "") or None)
        return seen

    def report(self, record: ClusterRecord, status: ClusterStatus) -> ClusterStatus:
        """Per Swarm node: its range of virtual nodes and the state of the services placed on it."""
        views, names = self._observed
        swarm = SwarmRecord.of(record)
        holdings = list(swarm.holdings) if swarm is not None else []
        return SwarmStatus(**{f.name: getattr(status, f.name) for f in fields(status)},
                           swarm_nodes=tuple(_node_rows(holdings, swarm.replica_groups if swarm else {}, record,
                                                        views, names)))

    def run_job(self, record: ClusterRecord, job: str, *arguments: str) -> dict[str, Any]:
        return self._in_cluster(docker_client(), record, job, *arguments)

    def logs(self, component: str | None = None, *, follow: bool = False) -> Iterator[str]:
        cluster = self.state_record()
        client = docker_client()
        views = {v.component: v for v in self._services(client, cluster.cluster)}
        chosen = _choose(views, component)
        stack = labels.project_name(cluster.cluster)
        if not follow:
            for name in chosen:
                if len(chosen) > 1:
                    yield f"==> {name} <==\n"
                yield from log_lines(client, service=f"{stack}_{name}")
            return
        lines: queue.Queue[str | None] = queue.Queue()
        streams = [_pump(log_lines(client, service=f"{stack}_{name}", follow=True), lines,
                         prefix=f"{name} | " if len(chosen) > 1 else "") for name in chosen]
        try:
            while True:
                line = lines.get()
                if line is not None:
                    yield line
        finally:
            for stream in streams:
                stream.close()

    def remove(self, record: ClusterRecord | None, echo: Echo, *, volumes: bool,
               names: tuple[str, ...] = ()) -> list[str]:
        """Remove the stack, every service, secret, config and network, and the node labels of the recorded
        cluster, of ``names``, and of any cluster whose services carry this state directory's label."""
        client = docker_client()
        whales = cli()
        messages: list[str] = []

        def say(message: str) -> None:
            messages.append(message)
            echo(message)

        try:
            require_manager(whales)
        except RuntimeUnavailable as error:
            say(f"nothing removed from Docker Swarm: {error}")
            return messages
        here = {"label": [f"{labels.STATE_DIR}={self.state.root}", f"{labels.RUNTIME}={self.name}"]}
        clusters = {*names, *([record.cluster] if record is not None else [])}
        clusters |= {s.labels.get(labels.CLUSTER) for s in services(client, **here)}
        clusters.discard(None)
        for cluster in sorted(clusters or {self.state_record().cluster}):
            self._remove_cluster(client, whales, cluster, say)
        return messages

    def _remove_cluster(self, client: docker.DockerClient, whales: python_on_whales.DockerClient, cluster: str,
                        say: Callable[[str], None]) -> None:
        selector = {"label": labels.selector(cluster, self.name)}
        stack = labels.project_name(cluster)
        found = services(client, **selector)
        if found:
            whales.stack.remove(stack)
            for left in services(client, **selector):
                _ignore_missing(lambda: client.api.remove_service(left.id))
            say(f"removed stack {stack} ({len(found)} service(s))")
        _wait_gone(lambda: [*services(client, **selector), *containers(client, **selector)],
                   "services and their containers", REMOVE_TIMEOUT)
        for kind, collection in (("network", client.networks), ("secret", client.secrets),
                                 ("config", client.configs)):
            for item in collection.list(filters=selector):
                _remove_when_unused(item)
                say(f"removed {kind} {item.name}")
        changes = removal(cluster, list_nodes(whales))
        apply_changes(whales, changes)
        for change in changes:
            say(f"removed labels {', '.join(change.remove)} from Swarm node {change.hostname}")

    # -- helpers ------------------------------------------------------------------------------------

    def _services(self, client: docker.DockerClient, cluster: str) -> list[ServiceView]:
        views = []
        for listed in services(client, label=labels.selector(cluster, self.name)):
            component = listed.name.split("_", 1)[1] if "_" in listed.name else listed.name
            try:
                found = tasks(client, listed.id)
            except NotFound:  # removed since the listing
                continue
            views.append(ServiceView(component=component, role=listed.labels.get(labels.ROLE, ""),
                                     labels=dict(listed.labels), task=latest(found), failure=last_failure(found)))
        return views

    def _service_view(self, client: docker.DockerClient, cluster: str, component: str) -> ServiceView | None:
        return next((v for v in self._services(client, cluster) if v.component == component), None)

    def _explain(self, client: docker.DockerClient, found: ServiceView | None, component: str,
                 names: dict[str, str]) -> str:
        """Why ``component`` is not running: its task, and the last failed attempt with its last log lines."""
        if found is None or found.task is None:
            return f"{component}: no task yet"
        text = f"{component}: {found.task.describe(names)}"
        if found.failure is not None and found.failure.id != found.task.id:
            text += f" (last attempt {found.failure.describe(names)}"
            output = tail(task_logs(client, found.failure.id), 3).replace("\n", " | ")
            text += f"; its output: {output})"
        return text

    def _in_cluster(self, client: docker.DockerClient, cluster: ClusterRecord, job: str, *arguments: str,
                    mounts: tuple[Mount, ...] = (), on_manager: bool = False) -> dict[str, Any]:
        """Run an ``in_cluster`` job as a one-shot service on the overlay network; its JSON result.

        The job reads the stack's nodes config as its ``cluster.json`` and the password secret of its Redis
        user (acl.JOB_USERS); with
        ``on_manager`` it runs on this manager as the host user (to write into ``mounts`` here).
        """
        swarm = SwarmRecord.of(cluster)
        try:
            if swarm is None:
                raise KeyError("no swarm record in cluster.json")
            user = JOB_USERS[job]
            secret = client.secrets.get(swarm.secrets[user])
            config = client.configs.get(swarm.nodes_config)
        except (KeyError, NotFound) as error:
            raise BootstrapError(f"the stack's secret or nodes config is gone ({error}); run `artm-compose up`") from None
        try:
            outcome = run_once(
                client, swarm.images.artm, in_cluster_command(job, *arguments), name=f"{swarm.stack}_{job}",
                timeout=IN_CLUSTER_TIMEOUT, networks=[swarm.network],
                secrets=[SecretReference(secret.id, secret.name, filename=USER_SECRETS[user])],
                configs=[ConfigReference(config.id, config.name, filename=f"{STATE_MOUNT}/cluster.json")],
                mounts=[DockerMount(m.target, m.source, type="bind", read_only=m.read_only) for m in mounts],
                constraints=[f"node.id == {swarm.manager}"] if on_manager else [],
                user=f"{os.getuid()}:{os.getgid()}" if on_manager else None,
                labels={labels.CLUSTER: cluster.cluster, labels.RUNTIME: self.name, labels.ROLE: "bootstrap",
                        labels.STATE_DIR: str(self.state.root)},
                container_labels={labels.CLUSTER: cluster.cluster, labels.RUNTIME: self.name})
        except RuntimeUnavailable as error:
            raise BootstrapError(str(error)) from None
        result = json_result(outcome.output)
        if not outcome.ok or result is None:
            raise BootstrapError(f"{job} {outcome.task.describe(node_hostnames(client))}: {tail(outcome.output)}")
        return result

    def transform_theta(self, record: ClusterRecord, training: TrainingRecord, batches_dir: Path,
                        job: TransformJob, out: Path) -> Path:
        """From a one-shot job on this manager, which mounts the batches, the vocabulary and the folder of ``out``."""
        out = out.resolve()
        out.parent.mkdir(parents=True, exist_ok=True)
        mounts, corpus, vocab = corpus_mounts(batches_dir, training.vocab_path)
        self._in_cluster(docker_client(), record, "transform", *job.arguments(corpus, vocab, f"{EXPORT_MOUNT}/{out.name}"),
                         mounts=(*mounts, Mount(str(out.parent), EXPORT_MOUNT, read_only=False)), on_manager=True)
        return out

    def export_model(self, record: ClusterRecord, training: TrainingRecord, out: Path) -> Path:
        """From a one-shot job on this manager, which mounts the folder of ``out``."""
        cluster = record
        out = out.resolve()
        out.parent.mkdir(parents=True, exist_ok=True)
        mounts, _, vocab = corpus_mounts(training.batches_dir, training.vocab_path)
        self._in_cluster(docker_client(), cluster, "export", "--vocab-path", vocab,
                         "--out", f"{EXPORT_MOUNT}/{out.name}",
                         mounts=(*mounts, Mount(str(out.parent), EXPORT_MOUNT, read_only=False)), on_manager=True)
        return out


@dataclass(frozen=True)
class SwarmStatus(ClusterStatus):
    """The cluster status plus, per Swarm node, its range of virtual nodes and its services."""

    swarm_nodes: tuple[dict[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "swarm_nodes": list(self.swarm_nodes)}

    def describe(self) -> str:
        lines = [super().describe()]
        for row in self.swarm_nodes:
            first, last = row["vnodes"]
            lines.append(f"swarm node {row['hostname']} (group {row['group']}): virtual nodes {first}-{last}")
            for component, state in row["services"].items():
                lines.append(f"    {component:<14} {state}")
        return "\n".join(lines)


RUNTIME = SwarmRuntime


def _one_shot_state(client: docker.DockerClient, name: str) -> tuple[str, set[str]] | None:
    """A one-shot service's spec digest and the ids of its tasks so far (None if it does not exist)."""
    found = service(client, name)
    if found is None:
        return None
    return found.spec_digest, {t.id for t in tasks(client, found.id)}


def _run_again_if_unchanged(client: docker.DockerClient, name: str, before: tuple[str, set[str]] | None) -> None:
    """Make a one-shot service run once more: Swarm starts a new task by itself only when the spec changed."""
    if before is None:
        return
    now = service(client, name)
    if now is not None and now.spec_digest == before[0]:
        client.services.get(now.id).force_update()


def _deploy_stack(whales: python_on_whales.DockerClient, stack: str, path: Path) -> None:
    """``docker stack deploy`` of ``path`` with the images this manager has (no registry) and ``--prune``."""
    with failing_as(f"docker stack deploy of {path}"):
        whales.stack.deploy(stack, [path], resolve_image="never", prune=True)


def _describe_holdings(holdings: tuple[Holding, ...]) -> str:
    return ", ".join(f"{h.hostname} holds {h.first}-{h.last} (group {h.group})" for h in holdings)


def _node_rows(holdings: list[Holding], replicas: dict[int, int], cluster: ClusterRecord,
               views: dict[str, ServiceView], names: dict[str, str]) -> list[dict[str, Any]]:
    """Per Swarm node: its range and the state of the services placed on it (``replicas``: the group of each
    replica instance)."""
    executors_of = {}
    for executor in cluster.executors:
        executors_of.setdefault(executor.node, []).append(executor.name)
    rows = []
    for holding in holdings:
        components = []
        for vnode in holding.vnodes:
            components.append(redis_component(vnode))
            components.extend(executors_of.get(vnode, []))
        components.extend(redis_component(index) for index, group in sorted(replicas.items()) if group == holding.group)
        services = {}
        for component in components:
            found = views.get(component)
            services[component] = (found.task.describe(names) if found is not None and found.task is not None
                                   else "no service")
        rows.append({**holding.to_dict(), "services": services})
    return rows


def _choose(views: dict[str, ServiceView], component: str | None) -> list[str]:
    order = {"redis": 0, "bootstrap": 1, "executor": 2, "master": 3}

    def key(name: str) -> tuple[int, int]:
        role, _, index = name.partition("-")
        return order.get(role, 4), int(index) if index.isdigit() else 0

    names = sorted(views, key=key)
    if component is None:
        return names
    if component in views:
        return [component]
    chosen = [n for n in names if n.startswith(component + "-") or views[n].role == component.rstrip("s")]
    if not chosen:
        raise ConfigError(f"component={component!r} has no service; available: {', '.join(names) or 'none'} "
                          f"(or a role: redis, executor, master)")
    return chosen


def _task_now(client: docker.DockerClient, service: str, task: TaskView) -> TaskView:
    """``task`` of ``service`` as it is now (a removed service ends it)."""
    try:
        now = tasks(client, service)
    except NotFound:
        return TaskView(id=task.id, state="remove", desired="remove", node_id=task.node_id,
                        error=f"service {service} was removed", exit_code=None, created=task.created)
    return next((t for t in now if t.id == task.id), task)


def _pump(stream: LogStream, lines: queue.Queue, prefix: str = "") -> LogStream:
    """Put the lines of ``stream`` on ``lines`` from a reader thread (None when it ends): several streams,
    followed at once, merge there. Closing the returned stream ends the thread."""
    def read() -> None:
        for line in stream:
            lines.put(prefix + line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    return stream


def _echo_queued(lines: queue.Queue, echo: Echo) -> bool:
    """Echo every line queued now; whether there was one."""
    echoed = False
    while True:
        try:
            line = lines.get_nowait()
        except queue.Empty:
            return echoed
        if line is not None:
            echo(line.rstrip("\n"))
            echoed = True


def _wait_gone(listing, what: str, timeout: float) -> None:
    left: list[Any] = []

    def gone() -> bool:
        nonlocal left
        left = listing()
        return not left

    def still_present() -> str:
        return "still present: " + ", ".join(getattr(item, "name", str(item)) for item in left[:6])

    wait_until(gone, timeout, f"{what} to be gone", interval=POLL, describe=still_present, error=RuntimeTimeout)


def _remove_when_unused(item, timeout: float = REMOVE_TIMEOUT) -> None:
    """Remove a network, secret or config; tasks shutting down may hold it for a few seconds more."""
    refusal = ""

    def removed() -> bool:
        nonlocal refusal
        try:
            item.remove()
        except NotFound:
            pass
        except APIError as error:
            refusal = str(error.explanation or error)
            return False
        return True

    wait_until(removed, timeout, f"{item.name} to be removed", interval=POLL, describe=lambda: refusal,
               error=RuntimeTimeout)


def _ignore_missing(remove) -> None:
    try:
        remove()
    except NotFound:
        pass
