"""The local runtime: the plan as processes on this machine, supervisord-style.

One ``redis-server`` per virtual node on 127.0.0.1 (own directory, own log, own ``redis.conf`` rendered
here), then the executors and the master as Python processes, each logging to ``logs/<component>.log``. Every process started is
recorded in ``pids/<component>.json``; ``down`` stops exactly those (after checking each PID is still
the process we started) and nothing else.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from artm_compose.acl import ADMIN_USER, JOB_USERS, READER_USER, password_file, user_passwords, users_conf
from artm_compose.addressing import Addressing
from artm_compose.containers import engine_launch
from artm_compose.bootstrap import bootstrap, bootstrap_timeout, check_health, seeded_nodes_conf, targets_from_plan
from artm_compose.errors import ArtmComposeError, BootstrapError, BootstrapTimeout, ConfigError, RuntimeUnavailable
from artm_compose.in_cluster import parse_job, run_job
from artm_compose.plan import NodePlan, Plan
from artm_compose.processes import (ProcessRecord, check_dashboard_port, is_running, port_free, port_owner,
                                   start_process, stop_processes)
from artm_compose.record import ClusterRecord, Status, TrainingRecord, set_status
from artm_compose.render import (DASHBOARD, MASTER, redis_component, redis_fingerprint, render_all,
                                 render_template)
from artm_compose.runtimes.base import Bootstrapped, Echo, MemberState, TransformJob
from artm_compose.runtimes.lifecycle import Runtime
from artm_compose.state import StateDir, read_password, write_text_atomic
from artm_compose.waiting import poll_until, wait_until

# Every node listens on this machine's loopback, so each takes its own port.
LOOPBACK = Addressing(host="127.0.0.1", port_per_node=True)
REDIS_START_TIMEOUT = 10.0


def redis_start_timeout(nodes: int) -> float:
    """All nodes start at once and compete for the cores (256 on 2 cores took over 10 s under load)."""
    return REDIS_START_TIMEOUT + 0.1 * nodes
# The shell stops itself, then (once continued) becomes redis-server with the same PID.
_STOP_THEN_EXEC = 'kill -STOP $$ && exec "$@"'

LOG_TAIL_LINES = 20
EXECUTOR_EXIT_GRACE = 10.0
DASHBOARD_START_TIMEOUT = 10.0


def render_redis_conf(plan: Plan, state: StateDir, node: NodePlan, password: str, users: str) -> str:
    """The ``redis.conf`` of ``node``: its own directory and log file, cluster mode, node timeout,
    noeviction, no persistence, the password (so none is on a command line) and the ACL users (acl.py)."""
    return render_template(__package__, "redis.conf.j2", cluster=plan.cluster, node=node, port=node.port, bind=node.host,
                           password=password, users=users, directory=str(state.redis_dir(node.index)),
                           logfile=str(state.log(redis_component(node.index))),
                           node_timeout_ms=plan.config.node_timeout_ms)


def render_local_files(plan: Plan, state: StateDir) -> list[Path]:
    """Write what only this runtime reads beside ``cluster.json``: each node's ``redis.conf`` (mode 0600:
    it holds the passwords) and ``addresses.txt``, the reference's ``HOST PORT`` per node, which this
    machine (unlike one outside a container network) can use to reach the cluster."""
    passwords = user_passwords(state)
    password = passwords[ADMIN_USER]
    users = users_conf(plan.cluster, passwords)
    written = []
    for node in plan.redis_nodes:
        path = state.redis_conf(node.index)
        write_text_atomic(path, render_redis_conf(plan, state, node, password, users), mode=0o600)
        written.append(path)
    write_text_atomic(state.addresses, render_template(__package__, "addresses.txt.j2", nodes=plan.nodes))
    return [*written, state.addresses]


class LocalRuntime(Runtime):
    """Processes on this machine, recorded in the state directory."""

    name = "local"
    addressing = LOOPBACK
    where = "on this machine"
    serves_dashboard = True
    scales_executors = True

    # -- primitives of up ---------------------------------------------------------------------------

    def prepare(self, plan: Plan, echo: Echo) -> None:
        self._redis_server = self._check_prerequisites(plan)
        running = self._running_records()
        self._reuse_redis = self._decide_reuse(plan, running)
        # Processes that were up before this call: a failed start leaves a reused Redis Cluster up.
        self._kept = set(running) if self._reuse_redis else set()
        if not self._reuse_redis:
            self._check_ports(plan, {r.pid for r in running.values()})
            self._stop(list(running.values()), echo)
        if plan.config.dashboard and DASHBOARD not in self._running_records():
            check_dashboard_port(plan.config.dashboard_port)
        self._forget_exited(keep=self._kept)
        render_local_files(plan, self.state)
        render_all(plan, self.state, status=Status.STARTING)

    def render(self, plan: Plan) -> list[Path]:
        """``cluster.json``, each node's ``redis.conf`` and ``addresses.txt``; nothing starts."""
        return [*render_local_files(plan, self.state), *render_all(plan, self.state)]

    def start_redis(self, plan: Plan, echo: Echo) -> Bootstrapped:
        if self._reuse_redis:
            return Bootstrapped()
        report = self._start_redis(plan, self._redis_server, echo)
        # The seeded nodes.conf files did what MEET and ADDSLOTSRANGE would otherwise do: an action too.
        seeded = f"seeded the cluster config of {len(plan.nodes)} node(s)"
        return Bootstrapped(actions=(seeded, *report.actions), seconds=report.seconds)

    def start_dashboard(self, plan: Plan, echo: Echo) -> None:
        if DASHBOARD in self._running_records():
            return
        port = plan.config.dashboard_port
        child = self._start(DASHBOARD, [sys.executable, "-m", "artm_compose", "dashboard", "--state-dir",
                                        str(self.state.root), "--port", str(port)])

        def listening() -> bool:
            if not port_free(port):
                return True
            if child.poll() is not None:
                raise BootstrapError(f"the dashboard exited with code {child.returncode}: "
                                     f"{_tail(self.state.log(DASHBOARD))}")
            return False

        wait_until(listening, DASHBOARD_START_TIMEOUT, f"the dashboard to listen on 127.0.0.1:{port}", interval=0.05,
                   describe=lambda: f"port free; see {self.state.log(DASHBOARD)}", error=BootstrapTimeout)

    def start_training(self, plan: Plan, echo: Echo) -> None:
        self._master = self._start_training(plan)

    def follow(self, plan: Plan, echo: Echo) -> str | None:
        path = self.state.log(MASTER)
        for line in _read_lines(path, follow=True, until=lambda: self._master.poll() is not None):
            echo(line.rstrip("\n"))
        code = self._master.wait()
        return None if code == 0 else f"master exited with code {code}; see {path}"

    def after_training(self, plan: Plan, echo: Echo) -> None:
        self._stop_lingering_executors(echo)

    def undo_start(self, echo: Echo) -> None:
        started_here = [r for name, r in self._records().items() if name not in self._kept]
        self._stop(started_here, echo=lambda _message: None)

    # -- primitives of status, export, logs and down ------------------------------------------------

    def observe_members(self, record: ClusterRecord) -> dict[str, MemberState]:
        return {name: MemberState(alive=is_running(r), state="" if is_running(r) else "exited")
                for name, r in self._records().items()}

    def run_job(self, record: ClusterRecord, job: str, *arguments: str) -> dict[str, Any]:
        """The in-cluster job, run in this process (this machine reaches the Redis nodes) as its Redis user."""
        args = parse_job([job, "--state-dir", str(self.state.root),
                          "--password-file", str(password_file(self.state, JOB_USERS[job])), *arguments])
        try:
            return run_job(args)
        except ArtmComposeError as error:
            raise BootstrapError(f"{job}: {error}") from None

    def export_model(self, record: ClusterRecord, training: TrainingRecord, out: Path) -> Path:
        return Path(self.run_job(record, "export", "--vocab-path", str(training.vocab_path), "--out", str(out))["path"])

    def transform_theta(self, record: ClusterRecord, training: TrainingRecord, batches_dir: Path,
                        job: TransformJob, out: Path) -> Path:
        """From this process (this machine reaches Redis); the shares run in parallel forked processes."""
        return Path(self.run_job(record, "transform", *job.arguments(batches_dir, training.vocab_path, out))["path"])

    def remove(self, record: ClusterRecord | None, echo: Echo, *, volumes: bool,
               names: tuple[str, ...] = ()) -> list[str]:
        """Every process started with this state directory, and those of the local clusters ``names`` whose
        Redis nodes run from another state directory (found as ``ls`` finds them); those are recorded stopped."""
        from artm_compose.listing import local_members

        elsewhere = sorted({StateDir.at(root) for name, _, root, _, _ in local_members()
                            if name in names and StateDir.at(root) != self.state}, key=lambda s: str(s.root))
        records = [*self._records().values(), *(r for state in elsewhere for r in LocalRuntime(state)._records().values())]
        messages = self._stop(records, echo)
        for state in elsewhere:
            set_status(state, Status.STOPPED)
        return messages

    def logs(self, component: str | None = None, *, follow: bool = False) -> Iterator[str]:
        paths = self._log_paths(component)
        if len(paths) == 1:
            yield from _read_lines(next(iter(paths.values())), follow)
            return
        if not follow:
            for name, path in paths.items():
                yield f"==> {name} <==\n"
                yield from _read_lines(path, follow=False)
            return
        yield from _follow_many(paths)

    # -- up, step by step ---------------------------------------------------------------------------

    def _check_prerequisites(self, plan: Plan) -> str:
        redis_server = shutil.which("redis-server")
        if redis_server is None:
            raise RuntimeUnavailable("redis-server is not installed (apt-get install redis-server); "
                                     "the local runtime runs one per virtual node")
        if plan.data is not None:
            engine_launch()
        return redis_server

    def _decide_reuse(self, plan: Plan, running: dict[str, ProcessRecord]) -> bool:
        """True if the running Redis Cluster is this plan's and healthy; raises if it belongs to another plan."""
        if not running:
            return False
        recorded = ClusterRecord.load_if_any(self.state)
        if recorded is None or recorded.redis_fingerprint != redis_fingerprint(plan):
            nodes = recorded.nodes if recorded is not None else ()
            ports = f"ports {nodes[0].port}-{nodes[-1].port}" if nodes else "unknown ports"
            raise ConfigError(
                f"state_dir={str(self.state.root)!r} already runs cluster "
                f"{recorded.cluster if recorded is not None else '?'!r} "
                f"with {len(nodes)} node(s) on {ports} and a different plan (now {len(plan.nodes)} node(s) from "
                f"port {plan.nodes[0].port}); run `artm-compose down --state-dir {self.state.root}` first "
                f"or use another --state-dir")
        redis_up = all(redis_component(n.index) in running for n in plan.redis_nodes)
        reader = self.state.reader_password_file
        healthy = redis_up and check_health(targets_from_plan(plan), read_password(reader) if reader.exists() else None,
                                            username=READER_USER).ok
        busy = [name for name in (MASTER, *(e.name for e in plan.executors)) if name in running]
        # Executors with neither a master nor a healthy Redis are what a lost cluster left: stopped below.
        if plan.data is not None and busy and (MASTER in busy or healthy):
            raise ConfigError(f"training is already running in {self.state.root} ({', '.join(busy[:4])} alive); "
                              f"follow it with `artm-compose logs master -f`, or stop it with `artm-compose down`")
        return healthy

    def _check_ports(self, plan: Plan, ours: set[int]) -> None:
        for node in plan.redis_nodes:
            for kind, port in (("port", node.port), ("cluster-bus port", node.bus_port)):
                if port_free(port, node.host):
                    continue
                owner = port_owner(port)
                if owner is not None and owner[0] in ours:
                    continue
                holder = f" by pid {owner[0]} ({owner[1]})" if owner else " by another process"
                raise ConfigError(f"{kind} {port} of {node.name} on {node.host} is already in use{holder}; "
                                  f"choose another --base-port or stop that process")

    def _start_redis(self, plan: Plan, redis_server: str, echo: Echo):
        """Start every node from a seeded ``nodes.conf`` (see ``seeded_nodes_conf``), all at once.

        Each process stops itself before it becomes redis-server and all are continued together: a
        node that knows the others tries to connect to every one of them ten times a second, and with
        256 nodes started one after the other those attempts at nodes not started yet starved the
        starting (191 s to cluster_state:ok instead of 13 s with the processes released together).
        """
        records = []
        # Primaries only: replicas start empty, are met and attached by the bootstrap (CLUSTER REPLICATE).
        seeded = dict(zip((n.index for n in plan.nodes), seeded_nodes_conf(targets_from_plan(plan)[:len(plan.nodes)])))
        for node in plan.redis_nodes:
            self.state.empty_redis_dir(node.index)
            if node.index in seeded:
                (self.state.redis_dir(node.index) / "nodes.conf").write_text(seeded[node.index])
            component = redis_component(node.index)
            argv = ["sh", "-c", _STOP_THEN_EXEC, "sh", redis_server, str(self.state.redis_conf(node.index))]
            _, record = start_process(component, argv, log=self.state.log(component),
                                      cwd=self.state.redis_dir(node.index))
            record.save(self.state.pid_record(component))
            records.append(record)
        self._release_together(records)
        echo(f"started {len(records)} redis-server process(es) on {plan.nodes[0].host} "
             f"ports {plan.redis_nodes[0].port}-{plan.redis_nodes[-1].port}")
        self._wait_redis_started(plan, records)
        report = bootstrap(targets_from_plan(plan), read_password(self.state.password_file),
                           timeout=bootstrap_timeout(len(plan.redis_nodes)))
        return report

    def _release_together(self, records: list[ProcessRecord]) -> None:
        """Wait until every process started by ``_STOP_THEN_EXEC`` has stopped itself, then continue all."""
        pending = list(records)

        def all_stopped() -> bool:
            for record in list(pending):
                if not is_running(record):
                    raise BootstrapError(f"{record.component} exited right after start; last lines of "
                                         f"{self.state.log(record.component)}:\n"
                                         f"{_tail(self.state.log(record.component))}")
                if _stopped(record.pid):
                    pending.remove(record)
            return not pending

        wait_until(all_stopped, redis_start_timeout(len(records)), "the shells starting redis-server to stop "
                   "themselves", interval=0.005, describe=lambda: "running: " + ", ".join(r.component for r in pending),
                   error=BootstrapTimeout)
        for record in records:
            os.kill(record.pid, signal.SIGCONT)

    def _wait_redis_started(self, plan: Plan, records: list[ProcessRecord]) -> None:
        """Wait until every redis-server accepts connections; fail at once if one exits."""
        pending = {record.component: node for record, node in zip(records, plan.redis_nodes)}
        by_name = {r.component: r for r in records}

        def all_accept() -> bool:
            for component, node in list(pending.items()):
                if not is_running(by_name[component]):
                    raise BootstrapError(f"{component} exited right after start; last lines of "
                                         f"{self.state.log(component)}:\n{_tail(self.state.log(component))}")
                if _accepts_connections(node.host, node.port):
                    del pending[component]
            return not pending

        wait_until(all_accept, redis_start_timeout(len(records)), "every redis-server to open its port",
                   interval=0.01, describe=lambda: "closed: " + ", ".join(sorted(pending)), error=BootstrapTimeout)

    def _start_training(self, plan: Plan) -> subprocess.Popen:
        launch, common = engine_launch(), self._engine_paths(plan)
        self.state.scores.unlink(missing_ok=True)
        self._start_executors(plan)
        first = plan.nodes[0]
        argv = [sys.executable, "-m", "artm_compose.engine.master",
                *launch.master_argv(plan, redis_host=first.host, redis_port=first.port,
                                    scores_path=self.state.scores, checkpoint_path=self.state.checkpoint, **common)]
        if plan.config.max_restarts:  # a killed master comes back and resumes its run (engine.master)
            argv = [sys.executable, "-m", "artm_compose.supervise", "--name", MASTER, "--only-killed",
                    "--max-restarts", str(plan.config.max_restarts), "--", *argv]
        return self._start(MASTER, argv)

    def _engine_paths(self, plan: Plan) -> dict[str, Path]:
        """The training user's password and the data paths every engine process of ``plan`` gets."""
        assert plan.data is not None
        return dict(password_file=self.state.training_password_file, batches_dir=plan.data.batches_dir,
                    vocab_path=plan.data.vocab_path)

    def _start_executors(self, plan: Plan) -> None:
        launch, common = engine_launch(), self._engine_paths(plan)
        for executor in plan.executors:
            node = plan.nodes[executor.node]
            argv = [sys.executable, "-m", "artm_compose.engine.executor",
                    *launch.executor_argv(plan, executor, redis_host=node.host, redis_port=node.port, **common)]
            if plan.config.max_restarts:  # restarted when it dies, as a restart policy does in containers
                argv = [sys.executable, "-m", "artm_compose.supervise", "--name", executor.name,
                        "--max-restarts", str(plan.config.max_restarts), "--", *argv]
            self._start(executor.name, argv)

    def replace_executors(self, plan: Plan, echo: Echo) -> None:
        """The master has ended the executors: forget their records (stopping any that lingers) and start
        ``plan``'s."""
        self._stop_lingering_executors(echo)
        for name in [name for name in self._records() if name.startswith("executor-")]:
            self.state.pid_record(name).unlink(missing_ok=True)
        self._start_executors(plan)

    def _start(self, component: str, argv: list[str]) -> subprocess.Popen:
        self.state.log(component).unlink(missing_ok=True)
        child, record = start_process(component, argv, log=self.state.log(component), cwd=self.state.root)
        record.save(self.state.pid_record(component))
        return child

    def _stop_lingering_executors(self, echo: Echo) -> None:
        """Executors leave on their own once the master has ended the run; stop those that do not."""
        executors = [r for name, r in self._records().items() if name.startswith("executor-")]
        poll_until(lambda: not any(is_running(r) for r in executors), EXECUTOR_EXIT_GRACE, interval=0.1)
        lingering = [r for r in executors if is_running(r)]
        if lingering:
            echo(f"stopping {len(lingering)} executor(s) still running after the master exited")
            self._stop(lingering, echo)

    # -- bookkeeping --------------------------------------------------------------------------------

    def _records(self) -> dict[str, ProcessRecord]:
        if not self.state.pids_dir.is_dir():
            return {}
        return {path.stem: ProcessRecord.load(path) for path in sorted(self.state.pids_dir.glob("*.json"))}

    def _forget_exited(self, keep: set[str]) -> None:
        """Drop the records of processes that are gone, so status and down see only this run's."""
        for name in set(self._records()) - keep:
            self.state.pid_record(name).unlink(missing_ok=True)

    def _running_records(self) -> dict[str, ProcessRecord]:
        return {name: record for name, record in self._records().items() if is_running(record)}

    def _stop(self, records: list[ProcessRecord], echo: Echo) -> list[str]:
        """Stop the master and executors first (they need Redis to exit cleanly), then the Redis nodes."""
        messages = []
        training = [r for r in records if not r.component.startswith("redis-")]
        for stage in (training, [r for r in records if r not in training]):
            for record, message in zip(stage, stop_processes(stage)):
                self.state.pid_record(record.component).unlink(missing_ok=True)
                echo(message)
                messages.append(message)
        return messages

    def _log_paths(self, component: str | None) -> dict[str, Path]:
        available = {path.stem: path for path in sorted(self.state.logs_dir.glob("*.log"))} \
            if self.state.logs_dir.is_dir() else {}
        if component is None:
            return available
        if component in available:
            return {component: available[component]}
        chosen = {name: path for name, path in available.items() if name.startswith(component + "-")}
        if not chosen:
            raise ConfigError(f"component={component!r} has no log in {self.state.logs_dir}; available: "
                              f"{', '.join(available) or 'none'} (or a role: redis, executor)")
        return chosen


RUNTIME = LocalRuntime


def _stopped(pid: int) -> bool:
    """True when ``pid`` is stopped by a signal (state ``T`` in ``/proc/<pid>/stat``)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] == "T"


def _accepts_connections(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=0.5).close()
    except OSError:
        return False
    return True


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _read_lines(path: Path, follow: bool, until=None, poll: float = 0.1) -> Iterator[str]:
    """Lines of ``path``; with ``follow``, wait for more until ``until()`` is true (forever if None)."""
    while follow and not path.exists():
        if until is not None and until():
            return
        time.sleep(poll)
    with open(path, errors="replace") as handle:
        pending = ""
        while True:
            chunk = handle.readline()
            if chunk:
                pending += chunk
                if pending.endswith("\n"):
                    yield pending
                    pending = ""
                continue
            if not follow:
                break
            if until is not None and until():
                # The writer has exited: read what it wrote last, then stop.
                rest = handle.read()
                if pending + rest:
                    yield pending + rest
                return
            time.sleep(poll)
        if pending:
            yield pending


def _follow_many(paths: dict[str, Path], poll: float = 0.2) -> Iterator[str]:
    """Follow several logs at once, each line prefixed with its component."""
    handles = {name: open(path, errors="replace") for name, path in paths.items()}
    try:
        while True:
            quiet = True
            for name, handle in handles.items():
                for line in iter(handle.readline, ""):
                    quiet = False
                    yield f"{name} | {line}"
            if quiet:
                time.sleep(poll)
    finally:
        for handle in handles.values():
            handle.close()
