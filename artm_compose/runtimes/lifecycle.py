"""The lifecycle of a cluster, written once over each runtime's small primitives.

``up``, ``status``, ``down`` and ``export`` are defined here only: their sequence, their messages, the
status each step records and the assembly of the status report. A runtime (local processes, Docker
Compose, Docker Swarm) implements the primitives: prepare, start Redis, start the training, follow it,
observe members, run an in-cluster job, export, remove, and read logs. The local runtime runs the
in-cluster jobs in this process; the container runtimes run them inside the cluster's network.
"""

from __future__ import annotations

import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

from artm_compose.addressing import Addressing
from artm_compose.containers import redis_maxmemory
from artm_compose.data.batches import list_batches
from artm_compose.errors import BootstrapError, ConfigError, TrainingError
from artm_compose.engine.protocol import BEAT_FRACTION
from artm_compose.memory import check_executor_memory, check_redis_memory
from artm_compose.plan import Plan
from artm_compose.record import ClusterRecord, Status, TrainingRecord, set_status
from artm_compose.runtimes.base import TransformJob
from artm_compose.render import render_all
from artm_compose.runtimes.base import (Bootstrapped, ClusterStatus, Echo, MemberState, Probe,
                                        UpResult, effective_status, members_of, require_training,
                                        training_summary)
from artm_compose.slots import SLOT_COUNT
from artm_compose.state import StateDir
from artm_compose.waiting import poll_until, wait_until

STARTED_TRAINING = "started training"


def redis_ok_message(plan: Plan, started: Bootstrapped) -> str:
    done = (f" ({len(started.actions)} bootstrap action(s), {started.seconds or 0:.2f} s)" if started.actions
            else ", already healthy")
    return f"Redis Cluster ok: {len(plan.nodes)} node(s), {SLOT_COUNT} slots{done}"


def training_started_message(plan: Plan) -> str:
    return f"started {len(plan.executors)} executor(s) and the master; follow with `artm-compose logs master -f`"


def stopped_following_message(state: StateDir) -> str:
    return (f"stopped following; training goes on (artm-compose status / logs master -f / down "
            f"--state-dir {state.root})")


def dashboard_message(plan: Plan) -> str:
    return f"dashboard: http://127.0.0.1:{plan.config.dashboard_port}/"


def nothing_left_message(owner: str, where: str) -> str:
    return f"nothing of {owner} is left {where}"


def check_initial_phi(plan: Plan) -> None:
    """The initial phi against the vocabulary and the topic count, before anything starts."""
    from artm_compose.data.vocab import read_vocab
    from artm_compose.engine.initial import check_phi_file

    if plan.data is None:
        raise ConfigError(f"init_phi={str(plan.config.init_phi)!r} needs training data (--data)")
    check_phi_file(Path(plan.config.init_phi), read_vocab(plan.data.vocab_path), plan.config.topics,
                   continue_fitting=plan.config.continue_fitting)


def check_model_settings(plan: Plan) -> None:
    """Regularizers and class weights against the vocabulary's classes and the model's topics."""
    from artm_compose.data.vocab import read_vocab
    from artm_compose.engine.export import topic_names
    from artm_compose.engine.regularizers import check_against_model

    config = plan.config
    if not (config.regularizers or config.class_ids):
        return
    if plan.data is None:
        raise ConfigError("regularizers and class_ids need training data (--data)")
    vocab = read_vocab(plan.data.vocab_path)
    check_against_model(config.regularizers, config.class_ids, topic_names(config.topics),
                        list(dict.fromkeys(vocab.class_ids)), config.inner_iterations)


def redis_lost(all_running: bool, probe: Callable[[], dict[str, Any]]) -> bool:
    """Whether the cluster's Redis lost data: a Redis node of the plan is down, gone or was replaced
    (``all_running`` False) and the nodes there now do not serve the cluster (``probe``, the in-cluster job,
    says so or cannot run). A cluster that still serves, e.g. a replica took over a dead node, lost nothing."""
    if all_running:
        return False
    try:
        return probe()["cluster_state"] != "ok"
    except BootstrapError:  # no node answers, or the job cannot run
        return True


# A master's lease (its heartbeat key) found by ``up`` is watched this many of its beats: a live master
# refreshes it meanwhile, a dead one's only runs down (the new master takes it once expired).
LEASE_WATCH_BEATS = 2.5
# scale: the master takes a request after the pass in progress, which may be long on a big corpus.
SCALE_TAKEN_TIMEOUT = 1800.0


def training_refused_message(record: ClusterRecord, state: StateDir, master: dict[str, Any]) -> str:
    return (f"cluster {record.cluster!r} is training: run {master.get('run')} holds it (master pid "
            f"{master.get('pid')} on {master.get('host')}, {master.get('state')}, pass {master.get('pass')}); "
            f"follow it with `artm-compose logs master -f --state-dir {state.root}`, or stop it with "
            f"`artm-compose down --state-dir {state.root}` before starting another run")


def assemble_status(record: ClusterRecord, state: StateDir, runtime: str, seen: dict[str, MemberState],
                    probe: Callable[[], dict[str, Any]], missing: str) -> ClusterStatus:
    """The status report from what was seen of the members and, when a Redis node runs, the ``probe`` job."""
    found = Probe(cluster_state="down", slots_assigned=0)
    if any(seen.get(node.name, MemberState(False)).alive for node in record.nodes):
        try:
            result = probe()
            found = Probe(cluster_state=result["cluster_state"], slots_assigned=int(result["slots_assigned"]),
                          problems=tuple(result["problems"]), progress=result.get("training"),
                          roles=result.get("roles") or {})
        except BootstrapError as error:
            found = Probe(cluster_state="unknown", slots_assigned=0, problems=(str(error),))
    training = training_summary(found.progress, state.scores) if record.training else None
    # Roles matter with replicas: which instance of a virtual node serves it (a failover swaps them).
    roles = found.roles if any(node.replica_of is not None for node in record.nodes) else {}
    members = members_of(record, seen, training, missing, roles)
    return ClusterStatus(cluster=record.cluster, runtime=runtime, state_dir=str(state.root),
                         status=effective_status(record.status, members, training), cluster_state=found.cluster_state,
                         slots_assigned=found.slots_assigned, members=tuple(members), problems=found.problems,
                         training=training)


class Runtime(ABC):
    """Brings a plan up as running members and reports on, logs and stops them.

    ``up`` takes the plan; ``status``, ``logs``, ``export`` and ``down`` work from the state directory
    alone (its cluster record says what was started), so they need no data directory.
    """

    name: ClassVar[str]
    # How its Redis nodes are reached; make_plan takes it, so the plan never asks for the runtime's name.
    addressing: ClassVar[Addressing]
    # Where the members live, for people: "nothing of cluster 'x' is left <where>".
    where: ClassVar[str]
    # A member's state when the runtime finds no trace of it.
    missing: ClassVar[str] = "not started"
    # Whether `up --dashboard` can start the dashboard beside the cluster (start_dashboard).
    serves_dashboard: ClassVar[bool] = False
    # Whether `scale` can replace the executors of a running training (replace_executors).
    scales_executors: ClassVar[bool] = False

    def __init__(self, state: StateDir):
        self.state = state

    # -- the lifecycle ------------------------------------------------------------------------------

    def up(self, plan: Plan, *, detach: bool = True, echo: Echo = print) -> UpResult:
        """Start what is missing of ``plan`` (validating everything first); follow training unless ``detach``."""
        started = time.monotonic()
        if plan.config.runtime != self.name:
            raise ConfigError(f"runtime={plan.config.runtime!r}: this plan is not for the {self.name} runtime")
        if plan.addressing != self.addressing:
            raise ConfigError(f"this plan addresses its nodes as {plan.addressing}, the {self.name} runtime "
                              f"as {self.addressing}")
        # Before anything starts: a node that hits maxmemory mid-training fails the run (noeviction).
        check_redis_memory(plan, redis_maxmemory(plan.config.redis_memory), plan.config.redis_memory)
        check_executor_memory(plan, plan.config.executor_memory)
        if plan.config.init_phi is not None:
            check_initial_phi(plan)
        check_model_settings(plan)
        if plan.config.dashboard and not self.serves_dashboard:
            raise ConfigError(f"dashboard=True: the {self.name} runtime cannot run the dashboard; run "
                              f"`artm-compose dashboard --state-dir {self.state.root}` on a machine that reaches it")
        if plan.data is not None:
            self.refuse_while_training()
        self.prepare(plan, echo)
        try:
            redis = self.start_redis(plan, echo)
            if plan.config.dashboard:
                self.start_dashboard(plan, echo)
        except BaseException:
            self._failed_start(echo)
            raise
        echo(redis_ok_message(plan, redis))
        if plan.config.dashboard:
            echo(dashboard_message(plan))
        self.set_status(Status.RUNNING)

        def result(**outcome: Any) -> UpResult:
            return UpResult(bootstrap_seconds=redis.seconds, seconds=time.monotonic() - started, **outcome)

        if plan.data is None:
            return result(actions=redis.actions, already_up=not redis.actions)
        try:
            self.start_training(plan, echo)
        except BaseException:
            self._failed_start(echo)
            raise
        echo(training_started_message(plan))
        self.set_status(Status.TRAINING)
        actions = (*redis.actions, STARTED_TRAINING)
        if detach:
            return result(actions=actions, training="started")
        try:
            failure = self.follow(plan, echo)
        except KeyboardInterrupt:
            echo(stopped_following_message(self.state))
            return result(actions=actions, training="started")
        except TrainingError:
            self.set_status(Status.FAILED)
            raise
        self.after_training(plan, echo)
        if failure is not None:
            self.set_status(Status.FAILED)
            raise TrainingError(failure)
        self.set_status(Status.FINISHED)
        return result(actions=actions, training="finished")

    def refuse_while_training(self) -> None:
        """Raise a ConfigError naming the run if a live master holds the cluster recorded here (its lease,
        the master key, is refreshed while watched); a dead master's lease is no reason to refuse."""
        record = ClusterRecord.load_if_any(self.state)
        if record is None or record.training is None:
            return

        def holder() -> dict[str, Any] | None:
            try:
                return (self.run_job(record, "probe").get("training") or {}).get("master")
            except BootstrapError:  # Redis is not running: nothing trains
                return None

        seen: dict[str, Any] | None = None

        def released() -> bool:
            """Whether no master holds the lease; raises once it changed since first seen (refreshed)."""
            nonlocal seen
            now = holder()
            if now is None:
                return True
            if seen is not None and now != seen:
                raise ConfigError(training_refused_message(record, self.state, now))
            seen = now
            return False

        beat = float(record.config.get("heartbeat_timeout", 30.0)) * BEAT_FRACTION
        # Not refreshed within the watch: its master is dead, and its lease no reason to refuse.
        poll_until(released, beat * LEASE_WATCH_BEATS, interval=min(beat / 2, 0.5))

    def goes_on_from_checkpoint(self, plan: Plan, lost: bool) -> bool:
        """Whether ``up`` after Redis lost data (``lost``, see :func:`redis_lost`) starts every Redis node
        anew: the nodes left hold only part of the model (no replicas took over), so the master is to go on
        from the whole checkpoint rather than start over on that part."""
        return lost and plan.data is not None and self.state.checkpoint.exists()

    def scale(self, plan: Plan, echo: Echo = print) -> None:
        """Go on with the executors of ``plan`` (the recorded cluster with another executor count) in the
        training that runs: the master takes the request after its current pass and ends the executors,
        the runtime starts the new plan's, and they take over from the committed model
        (:meth:`artm_compose.engine.master.Master.rescale`)."""
        record = self.state_record()
        if record.training is None:
            raise ConfigError(f"cluster {record.cluster!r} was started without --data: there is no training to scale")
        if not self.scales_executors:
            raise ConfigError(f"the {self.name} runtime cannot scale a running training yet; stop it and run `up "
                              f"--continue-fitting --executors-per-node N --state-dir {self.state.root}`")
        if plan.config.mode == "online":
            raise ConfigError("mode='online': online counters live in the executors, so a running online training "
                              "cannot change its executors")
        count, before = len(plan.executors), len(record.executors)

        def training() -> dict[str, Any]:
            return self.run_job(record, "probe").get("training") or {}

        progress = training()
        if progress.get("state") in (None, "done", "failed") or not progress.get("master"):
            raise ConfigError(f"no training runs in {self.state.root} (its state: {progress.get('state', 'none')}); "
                              f"start one with `artm-compose up --executors-per-node N`")
        if count == before:
            echo(f"run {progress.get('run')} already has {count} executor(s)")
            return
        request = self.run_job(record, "scale", "--executors", str(count))["request"]
        echo(f"asked run {progress.get('run')} to go on with {count} executor(s) (now {before}) after pass "
             f"{progress.get('pass')}")

        def taken() -> bool:
            seen = training()
            if seen.get("state") in ("done", "failed"):
                raise TrainingError(f"run {progress.get('run')} ended ({seen['state']}) before it took the request "
                                    f"for {count} executor(s)")
            return seen.get("scale_request") == request

        wait_until(taken, SCALE_TAKEN_TIMEOUT, f"the master to end its pass and take the request for {count} "
                   f"executor(s)", interval=0.2)
        self.replace_executors(plan, echo)
        render_all(plan, self.state, status=Status.TRAINING)
        self.state_record().with_extras(record.extras).save(self.state)  # the runtime's part (Swarm placement)
        seen = wait_until(lambda: (lambda p: p if p.get("state") != "rescaling" else None)(training()),
                          float(plan.config.restart_timeout) + 60, f"the {count} new executor(s) to take over",
                          describe=lambda: f"training state {training().get('state')}")
        if seen.get("state") == "failed":
            raise TrainingError(f"run {progress.get('run')} failed while scaling: {seen.get('error')}")
        echo(f"run {progress.get('run')} goes on with {count} executor(s)")

    def status(self) -> ClusterStatus:
        """Members by role with liveness, the Redis Cluster's state, and the training's progress."""
        record = self.state_record()
        status = assemble_status(record, self.state, self.name, self.observe_members(record),
                                 lambda: self.run_job(record, "probe"), self.missing)
        return self.report(record, status)

    def down(self, echo: Echo = print, *, volumes: bool = False, names: tuple[str, ...] = ()) -> list[str]:
        """Stop exactly what this runtime started for the state directory, whatever name it was started
        under, and the clusters ``names`` (given explicitly); idempotent.

        ``volumes`` also removes the data volumes the runtime created (runtimes without any ignore it).
        """
        record = ClusterRecord.load_if_any(self.state)
        messages = self.remove(record, echo, volumes=volumes, names=names)
        self.state.checkpoint.unlink(missing_ok=True)  # the run ends with its cluster: nothing to go on from
        if not messages:
            owner = f"cluster {record.cluster!r}" if record is not None else f"state dir {self.state.root}"
            messages = [nothing_left_message(owner, self.where)]
            echo(messages[0])
        if record is not None:
            self.set_status(Status.STOPPED)
        return messages

    def export(self, out: Path) -> Path:
        """Write the trained model to ``out`` (.npz: phi, tokens, topics; or .csv)."""
        record = self.state_record()
        return self.export_model(record, require_training(record, self.state), out)

    def transform(self, out: Path, data: Path | None = None) -> Path:
        """Theta of the batches in ``data`` (default: the training data) under the committed model, written
        to ``out`` (.npz or .csv); shares as training split its batches, computed in parallel."""
        from artm_compose.engine.transform import check_theta_path, transform_shares  # numba: on use only

        check_theta_path(out)
        record = self.state_record()
        training = require_training(record, self.state)
        batches_dir = Path(data).resolve() if data is not None else Path(training.batches_dir)
        shares = transform_shares(len(list_batches(batches_dir)), [e.batch_range for e in record.executors],
                                  same_data=batches_dir == Path(training.batches_dir).resolve())
        job = TransformJob(shares=tuple(shares), inner=int(record.config.get("inner_iterations", 10)),
                           parallel=max(1, min(len(shares), os.cpu_count() or 1)))
        return self.transform_theta(record, training, batches_dir, job, Path(out))

    def render(self, plan: Plan) -> list[Path]:
        """Write the state directory's files for ``plan`` without starting anything."""
        return render_all(plan, self.state)

    def state_record(self) -> ClusterRecord:
        return ClusterRecord.load(self.state)

    def set_status(self, status: Status) -> None:
        set_status(self.state, status)

    def _failed_start(self, echo: Echo) -> None:
        self.undo_start(echo)
        if self.state.exists():
            self.set_status(Status.FAILED)

    # -- the primitives -----------------------------------------------------------------------------

    @abstractmethod
    def prepare(self, plan: Plan, echo: Echo) -> None:
        """Check everything that could stop ``plan`` here, make what is missing (images) and write the
        state directory's files with status ``starting``; raise before anything starts."""

    @abstractmethod
    def start_redis(self, plan: Plan, echo: Echo) -> Bootstrapped:
        """Start (or keep) the Redis nodes and bootstrap them into one healthy cluster."""

    def start_dashboard(self, plan: Plan, echo: Echo) -> None:
        """Serve the dashboard of this cluster on 127.0.0.1:``dashboard_port`` (kept if already serving)."""
        raise ConfigError(f"the {self.name} runtime cannot run the dashboard")

    @abstractmethod
    def start_training(self, plan: Plan, echo: Echo) -> None:
        """Start the executors and the master (fresh, with no scores of an earlier run)."""

    @abstractmethod
    def follow(self, plan: Plan, echo: Echo) -> str | None:
        """Echo the master's output until it ends; None if it succeeded, else what went wrong."""

    def after_training(self, plan: Plan, echo: Echo) -> None:
        """Once the master has ended: executors leave on their own; make sure of it (bounded)."""

    def replace_executors(self, plan: Plan, echo: Echo) -> None:
        """``scale``: once the master has ended the executors, start ``plan``'s (see ``scales_executors``)."""
        raise ConfigError(f"the {self.name} runtime cannot scale a running training")

    def undo_start(self, echo: Echo) -> None:
        """After a failed start: stop what this ``up`` started, if the runtime does that (keep the logs)."""

    @abstractmethod
    def observe_members(self, record: ClusterRecord) -> dict[str, MemberState]:
        """What runs of the record's members, by component name (absent: no trace of it)."""

    @abstractmethod
    def run_job(self, record: ClusterRecord, job: str, *arguments: str) -> dict[str, Any]:
        """Run an :mod:`artm_compose.in_cluster` job where it reaches the Redis nodes; its JSON result.

        Raises BootstrapError when the job cannot run or fails."""

    @abstractmethod
    def export_model(self, record: ClusterRecord, training: TrainingRecord, out: Path) -> Path:
        """Write the model held in Redis to ``out`` on this machine."""

    def transform_theta(self, record: ClusterRecord, training: TrainingRecord, batches_dir: Path,
                        job: TransformJob, out: Path) -> Path:
        """Run the ``transform`` in-cluster job over ``batches_dir`` and bring its file to ``out`` here."""
        raise ConfigError(f"the {self.name} runtime cannot run transform")

    @abstractmethod
    def remove(self, record: ClusterRecord | None, echo: Echo, *, volumes: bool,
               names: tuple[str, ...] = ()) -> list[str]:
        """Remove everything this runtime started for the state directory (under any cluster name) and
        for the clusters ``names``, echoing each removal; the messages (empty: nothing was there).
        ``record`` is None when cluster.json is gone."""

    @abstractmethod
    def logs(self, component: str | None = None, *, follow: bool = False) -> Iterator[str]:
        """Log lines of ``component`` (all components if None); with ``follow``, keep yielding new lines."""

    def report(self, record: ClusterRecord, status: ClusterStatus) -> ClusterStatus:
        """The status report, with what only this runtime knows added (e.g. the Swarm's placement)."""
        return status

