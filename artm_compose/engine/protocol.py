"""How the master and the executors meet in Redis: runs, commands, replies, heartbeats, progress.

In the spirit of the reference's per-executor command keys, with the weak points removed:

* **Run id.** The master draws a fresh run id and publishes it in ``ac:<c>:master`` (with a
  TTL, refreshed by its heartbeat). Commands go to ``ac:<c>:q:<run>:<e>`` (a list per executor,
  BLPOP with a short timeout), replies to ``ac:<c>:acks:<run>``; every message also carries the
  run id and a sequence number. Keys left by an earlier run have another run id in their name,
  so they can neither end nor confuse a new run.
* **Heartbeats.** Each executor keeps ``ac:<c>:hb:<e>`` alive (TTL = 0.6 x the heartbeat timeout,
  refreshed every 0.1 x) with its state; the refresh stops when the executor's main thread has
  not ticked for 0.4 x the timeout, so a hung process goes silent like a dead one. The master
  checks every executor's key at least every 0.2 s while it waits; a missing key (or a new
  instance id: a restarted process) raises :class:`ExecutorLost` naming the executor and the
  pass. A killed executor is noticed within 0.6 x the timeout, a hung one within the timeout.
* **Rejoining.** A restarted executor (same id, new instance) attaches to the current run like a
  new one; the master, which has dropped the dead instance's queue, waits for it
  (:meth:`MasterChannel.wait_for_rejoin`) and redoes the interrupted pass (``engine.master``).
* **Registration.** The master waits, up to the start-up timeout, for every executor's heartbeat
  to show the master's run id; an executor that started early simply waits for a master.
* **One master per cluster.** ``ac:<c>:master`` is also the master's lease: a master takes it
  only if it is free (SET NX); a held lease that its holder refreshes means another master runs
  (refused, naming its run), one that expires means its holder died (taken).
* **Master loss.** An executor that has worked for a run leaves it when ``ac:<c>:master`` names
  another run, or has been gone for the rest of the heartbeat timeout (the TTL there is the master's
  heartbeat; a Redis failover can take the key for a while, and the master sets it again), and
  waits, up to the start-up timeout, for the next master (a restarted one resumes the run,
  ``engine.master``).
* **States** (the reference's, shown in heartbeats and progress): ``waiting`` -> ``preparation`` ->
  ``normalisation`` -> ``iterations`` (``e-step``, ``aggregate``, ``normalise`` per pass) ->
  ``termination``.

No wait is unbounded: every loop ends on a reply, a dead heartbeat, or a timeout.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException, RedisError

from artm_compose.errors import TrainingError
from artm_compose.redis_client import cluster_client

# A beat refreshes the key this often (fraction of the heartbeat timeout) ...
BEAT_FRACTION = 0.1
# ... and the key lives this long, so a dead process is noticed within the timeout.
TTL_FRACTION = 0.6
# A thread that has not ticked for this fraction of the timeout counts as hung.
SILENT_FRACTION = 0.4
# Queues of a run that ended badly disappear by themselves after this long.
QUEUE_TTL_SECONDS = 3600
# How long one BLPOP blocks before the waiter looks at heartbeats again (seconds).
POLL_SECONDS = 0.2


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def master_key(cluster: str) -> str:
    return f"ac:{cluster}:master"


def heartbeat_key(cluster: str, executor: int) -> str:
    return f"ac:{cluster}:hb:{executor}"


def queue_key(cluster: str, run: str, executor: int) -> str:
    return f"ac:{cluster}:q:{run}:{executor}"


def acks_key(cluster: str, run: str) -> str:
    return f"ac:{cluster}:acks:{run}"


def progress_key(cluster: str) -> str:
    return f"ac:{cluster}:progress"


def scale_key(cluster: str) -> str:
    return f"ac:{cluster}:scale"


def request_scale(client: RedisCluster, cluster: str, executors: int) -> str:
    """Ask the cluster's master to go on with ``executors`` executors after its current pass; the
    request's id, which the master's progress record names (``scale_request``) once it has taken it."""
    request = uuid.uuid4().hex[:12]
    client.set(scale_key(cluster), json.dumps({"executors": executors, "request": request}))
    return request


def take_scale_request(client: RedisCluster, cluster: str) -> dict[str, Any] | None:
    """The pending scale request (removed), or None."""
    request = _decode(client.get(scale_key(cluster)))
    if request is not None:
        client.delete(scale_key(cluster))
    return request


def _decode(value: bytes | str | None) -> dict[str, Any] | None:
    if value is None:
        return None
    try:
        data = json.loads(value)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


class Heartbeat:
    """A daemon thread that keeps ``key`` alive while the owner keeps calling :meth:`tick`.

    ``payload()`` gives the key's value (JSON) at each beat. :meth:`stop` ends the thread and,
    with ``delete=True``, removes the key at once (a clean exit should not look alive). ``lapses`` counts
    the beats that came after the key had expired (the owner was stopped, starved or cut off from Redis
    past the key's TTL): meanwhile the other side may have given the owner up.
    """

    def __init__(self, client: RedisCluster, key: str, timeout: float, payload: Callable[[], dict[str, Any]]):
        self._client = client
        self._key = key
        self._timeout = timeout
        self._payload = payload
        self._last_tick = self._beaten = time.monotonic()
        self.lapses = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat {key}", daemon=True)
        self.error: str | None = None

    def start(self) -> None:
        self.beat()
        self._thread.start()

    def acquire(self) -> bool:
        """Take the key only if nobody holds it (a lease: SET NX with the heartbeat's TTL). A held key is
        watched: refreshed by its holder means taken (False); expired means its holder died, and it is
        taken then. Bounded by the key's own TTL."""
        seen, deadline = None, None
        while True:
            with self._lock:
                if self._client.set(self._key, json.dumps(self._payload()), nx=True,
                                    px=int(self._timeout * TTL_FRACTION * 1000)):
                    return True
            value = self._client.get(self._key)
            if seen is None:
                seen = value
                deadline = time.monotonic() + max(int(self._client.pttl(self._key)), 0) / 1000 + 1.0
            elif value is not None and value != seen:
                return False  # its holder refreshed it: alive
            if time.monotonic() > deadline:
                return False
            time.sleep(POLL_SECONDS)

    def tick(self) -> None:
        """The owner's main loop is alive (cheap: only a timestamp)."""
        self._last_tick = time.monotonic()

    def beat(self) -> None:
        """Refresh the key now (the caller's state changed)."""
        with self._lock:
            self._client.set(self._key, json.dumps(self._payload()), px=int(self._timeout * TTL_FRACTION * 1000))
            now = time.monotonic()
            if now - self._beaten > self._timeout * TTL_FRACTION:
                self.lapses += 1
            self._beaten = now

    def _run(self) -> None:
        interval = self._timeout * BEAT_FRACTION
        while not self._stop.wait(interval):
            if time.monotonic() - self._last_tick > self._timeout * SILENT_FRACTION:
                continue  # hung owner: let the key expire
            try:
                self.beat()
            except Exception as error:  # noqa: BLE001 - keep beating through a transient Redis error
                self.error = str(error)
                self._refresh_slots()

    def _refresh_slots(self) -> None:
        """Ask the cluster anew which node serves which slots: after a failover the key's slots moved to the
        promoted replica, and an owner busy elsewhere may not ask for a while (its key would expire)."""
        try:
            self._client.nodes_manager.initialize()
        except Exception:  # noqa: BLE001 - the next beat tries again
            pass

    def stop(self, delete: bool = False) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self._timeout)
        if delete:
            try:
                self._client.delete(self._key)
            except Exception:  # noqa: BLE001 - best effort: the TTL removes it anyway
                pass


@dataclass
class ExecutorInfo:
    """What the master learned about one executor at registration."""

    id: int
    instance: str
    host: str
    pid: int
    token_range: tuple[int, int]
    batch_range: tuple[int, int]


@dataclass
class ExecutorStatus:
    """What an executor's heartbeat says about it; the main thread updates it, the beat reads it."""

    executor: int
    token_range: tuple[int, int]
    batch_range: tuple[int, int]
    instance: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    run: str | None = None
    state: str = "loading"
    pass_number: int = 0
    error: str | None = None
    documents: int = 0  # the executor's share of the collection
    documents_done: int = 0  # of them, E-stepped in the current pass (dashboards and progress bars)

    def payload(self) -> dict[str, Any]:
        return {"instance": self.instance, "host": socket.gethostname(), "pid": os.getpid(), "run": self.run,
                "state": self.state, "pass": self.pass_number, "token_range": list(self.token_range),
                "batch_range": list(self.batch_range), "documents": self.documents,
                "documents_done": self.documents_done, "error": self.error, "time": time.time()}


def master_payload(run: str, state: str, pass_number: int) -> dict[str, Any]:
    return {"run": run, "host": socket.gethostname(), "pid": os.getpid(), "state": state,
            "pass": pass_number, "time": time.time()}


def read_master(client: RedisCluster, cluster: str) -> dict[str, Any] | None:
    return _decode(client.get(master_key(cluster)))


def read_heartbeats(client: RedisCluster, cluster: str, executors: Iterable[int]) -> dict[int, dict[str, Any] | None]:
    """Each executor's heartbeat value (None when missing), in one pipeline."""
    ids = list(executors)
    pipe = client.pipeline()
    for executor in ids:
        pipe.get(heartbeat_key(cluster, executor))
    return {executor: _decode(value) for executor, value in zip(ids, pipe.execute())}


@dataclass
class MasterChannel:
    """The master's side: send commands, collect replies, watch heartbeats."""

    client: RedisCluster
    cluster: str
    run: str
    executors: dict[int, ExecutorInfo] = field(default_factory=dict)
    sequence: int = 0
    tick: Callable[[], None] = lambda: None
    # Called while replies are awaited (phase, pass, now: not only every so often): raises ClusterInterrupted
    # when a Redis node failed over.
    watch: Callable[[str, int, bool], None] = lambda phase, pass_number, now: None

    def wait_for_registration(self, ids: Sequence[int], timeout: float, echo: Callable[[str], None],
                              gone: frozenset[str] = frozenset(),
                              absent_after: float | None = None) -> dict[int, ExecutorInfo]:
        """Wait until executors ``ids`` all heartbeat with this run id; bounded by ``timeout``.
        Instances in ``gone`` (terminated ones whose heartbeat may linger a moment) do not count.
        With ``absent_after``: once all the others registered, executors without any heartbeat (of any
        run) for that long are not waited for and are left out of the result (a restarted master takes
        their shares over)."""
        started = time.monotonic()
        deadline = started + timeout
        announced: set[int] = set()
        heard = dict.fromkeys(ids, started)  # when each one's heartbeat key was last seen
        while True:
            self.tick()
            beats = read_heartbeats(self.client, self.cluster, ids)
            now = time.monotonic()
            heard.update({e: now for e, b in beats.items() if b is not None})
            ready = {e: b for e, b in beats.items()
                     if b is not None and b.get("run") == self.run and str(b.get("instance")) not in gone}
            for executor, beat in sorted(ready.items()):
                if beat.get("state") == "failed":
                    raise TrainingError(f"executor {executor} ({beat.get('host')}, pid {beat.get('pid')}) failed to "
                                        f"start: {beat.get('error')}")
            for executor in sorted(set(ready) - announced):
                echo(f"executor {executor} registered ({ready[executor].get('host')}, pid {ready[executor].get('pid')})")
                announced.add(executor)
            absent = ({e for e in ids if now - heard[e] > absent_after} - set(ready) if absent_after is not None
                      else set())
            if ready and len(ready) + len(absent) == len(ids):
                for executor in sorted(absent):
                    echo(f"executor {executor} has had no heartbeat for {now - heard[executor]:.1f} s "
                         f"({heartbeat_key(self.cluster, executor)}): not waiting for it")
                self.executors = {
                    e: ExecutorInfo(id=e, instance=str(b["instance"]), host=str(b.get("host")), pid=int(b.get("pid", 0)),
                                    token_range=tuple(b["token_range"]), batch_range=tuple(b["batch_range"]))
                    for e, b in sorted(ready.items())}
                return self.executors
            if time.monotonic() > deadline:
                missing = sorted(set(ids) - set(ready))
                raise TrainingError(
                    f"executor(s) {', '.join(map(str, missing))} did not register with run {self.run} within "
                    f"{timeout:g} s (waited for heartbeat keys {heartbeat_key(self.cluster, missing[0])} ...)")
            time.sleep(POLL_SECONDS)

    def send(self, commands: dict[int, dict[str, Any]]) -> int:
        """Send one command per executor (same sequence number); returns the sequence number."""
        self.sequence += 1
        pipe = self.client.pipeline()
        for executor, command in commands.items():
            message = {**command, "run": self.run, "seq": self.sequence}
            key = queue_key(self.cluster, self.run, executor)
            pipe.rpush(key, json.dumps(message))
            pipe.expire(key, QUEUE_TTL_SECONDS)
        pipe.execute()
        return self.sequence

    def collect(self, sequence: int, expected: Iterable[int], phase: str, pass_number: int,
                kept_pass: int | None) -> dict[int, dict[str, Any]]:
        """Replies of ``expected`` executors to command ``sequence``; raises on error or silence."""
        pending = set(expected)
        replies: dict[int, dict[str, Any]] = {}
        key = acks_key(self.cluster, self.run)
        while pending:
            self.tick()
            popped = self.client.blpop([key], timeout=POLL_SECONDS)
            if popped is not None:
                reply = _decode(popped[1])
                if reply is None or reply.get("run") != self.run or reply.get("seq") != sequence:
                    continue
                executor = int(reply["executor"])
                if reply.get("lapsed"):  # it did not write its results: the pass again, with it or without it
                    lost = ExecutorLost(executor, phase, pass_number, f"executor {executor}'s heartbeat lapsed "
                                        f"during {phase} of pass {pass_number}{_kept(kept_pass)}", lapsed=True)
                    self.watch(phase, pass_number, True)  # unless a Redis failover took the heartbeat key
                    raise lost
                if reply.get("interrupted"):
                    raise ClusterInterrupted(f"executor {executor} lost Redis in {phase} of pass {pass_number}: "
                                             f"{reply.get('error')}", pass_number)
                if reply.get("error"):
                    raise TrainingError(f"executor {executor} failed in {phase} of pass {pass_number}: "
                                        f"{reply['error']}{_kept(kept_pass)}")
                pending.discard(executor)
                replies[executor] = reply
                continue
            try:
                self.check_alive(phase, pass_number, kept_pass)
            except ExecutorLost:
                # A failover can take a heartbeat key with it (expired while its node was down): not a lost executor.
                self.watch(phase, pass_number, True)
                raise
            self.watch(phase, pass_number, False)
        return replies

    def check_alive(self, phase: str, pass_number: int, kept_pass: int | None) -> None:
        """Raise :class:`ExecutorLost` naming the first executor whose heartbeat is gone or belongs to
        another process."""
        beats = read_heartbeats(self.client, self.cluster, self.executors)
        for executor, info in self.executors.items():
            beat = beats[executor]
            if beat is None:
                raise ExecutorLost(executor, phase, pass_number,
                                   f"executor {executor} ({info.host}, pid {info.pid}) stopped answering during "
                                   f"{phase} of pass {pass_number}: no heartbeat within the timeout{_kept(kept_pass)}")
            if beat.get("instance") != info.instance or beat.get("run") != self.run:
                raise ExecutorLost(executor, phase, pass_number,
                                   f"executor {executor} was restarted or joined another run during {phase} of pass "
                                   f"{pass_number} (now pid {beat.get('pid')}, run {beat.get('run')}){_kept(kept_pass)}")

    def forget(self, executor: int) -> None:
        """Drop the queue of a lost executor, so its next instance starts on fresh commands."""
        self.client.delete(queue_key(self.cluster, self.run, executor))

    def wait_for_rejoin(self, executor: int, timeout: float) -> ExecutorInfo:
        """Wait (up to ``timeout``) for ``executor`` to heartbeat with this run again: a new instance (restarted),
        or the same one going on (stopped or starved past its heartbeat timeout). The master then sends it the
        committed model and its ranges (the same) ahead of its next commands, so whatever the same instance
        still finishes of the interrupted command comes first and is redone (its reply is ignored: an older
        sequence number)."""
        lost = self.executors[executor]
        deadline = time.monotonic() + timeout
        while True:
            self.tick()
            beat = read_heartbeats(self.client, self.cluster, [executor])[executor]
            if beat is not None and beat.get("run") == self.run:
                if beat.get("state") == "failed":
                    raise TrainingError(f"executor {executor} came back but failed: {beat.get('error')}")
                info = ExecutorInfo(id=executor, instance=str(beat["instance"]), host=str(beat.get("host")),
                                    pid=int(beat.get("pid", 0)), token_range=lost.token_range,
                                    batch_range=lost.batch_range)
                self.executors[executor] = info
                return info
            if time.monotonic() > deadline:
                raise TrainingError(f"executor {executor} did not come back within {timeout:g} s (waited for its "
                                    f"heartbeat {heartbeat_key(self.cluster, executor)} to show run {self.run})")
            time.sleep(POLL_SECONDS)

    def close(self, aborted: bool) -> None:
        """Delete this run's reply list and, unless ``aborted`` (executors may still have to read the
        abort command), its queues; queues expire by themselves anyway. The model and progress stay."""
        pipe = self.client.pipeline()
        if not aborted:
            for executor in self.executors:
                pipe.delete(queue_key(self.cluster, self.run, executor))
        pipe.delete(acks_key(self.cluster, self.run))
        pipe.execute()


def _kept(kept_pass: int | None) -> str:
    if kept_pass is None:
        return "; no model was committed in this run"
    return f"; the model of pass {kept_pass} is kept in Redis"


class ExecutorLost(TrainingError):
    """An executor died, hung or was replaced in the middle of a run."""

    def __init__(self, executor: int, phase: str, pass_number: int, message: str, lapsed: bool = False):
        super().__init__(message)
        self.executor = executor
        self.phase = phase
        self.pass_number = pass_number
        self.lapsed = lapsed  # it answered that its heartbeat had lapsed (it is alive and wrote nothing)


class ClusterInterrupted(TrainingError):
    """A Redis node was lost (or failed over) during a pass: the pass is redone from the committed model."""

    def __init__(self, message: str, pass_number: int):
        super().__init__(message)
        self.pass_number = pass_number


class MasterGone(TrainingError):
    """The master of the executor's run disappeared or was replaced."""


class NoMaster(TrainingError):
    """No master came within the start-up timeout."""


class RunAborted(TrainingError):
    """The master ended the run with an error."""


@dataclass
class ExecutorChannel:
    """An executor's side: find the run, receive commands, reply."""

    client: RedisCluster
    cluster: str
    executor: int
    run: str | None = None
    started: bool = False  # accepted a command of ``run``: from then on it is bound to it
    # How long the bound run's lease may be missing before its master counts as gone: a Redis failover can take
    # the key's node for longer than the key lives (the master sets it again once the replica serves). A lease
    # naming another run ends the run at once.
    patience: float = 0.0
    missing_since: float | None = None

    def attach(self, deadline: float, tick: Callable[[], None]) -> str:
        """Wait (until ``deadline``, monotonic) for a master and take its run id."""
        while True:
            tick()
            master = read_master(self.client, self.cluster)
            if master is not None and master.get("run"):
                self.run = str(master["run"])
                return self.run
            if time.monotonic() > deadline:
                raise NoMaster(f"no master appeared (key {master_key(self.cluster)}) before the start-up timeout")
            time.sleep(POLL_SECONDS)

    def next_command(self, deadline: float, tick: Callable[[], None],
                     attached: Callable[[], None]) -> dict[str, Any]:
        """Block until the next command of the run; bounded by the master's liveness and ``deadline``.

        Until the first command arrives the executor follows whichever master is current (a newer
        master replaces a stale one); ``attached`` is called whenever it takes a run id. After
        that it is bound to its run and raises :class:`MasterGone` when that master disappears.
        """
        while True:
            tick()
            master = read_master(self.client, self.cluster)
            current = None if master is None else master.get("run")
            if self.started and current != self.run:
                if current is None and self.missing_since is None:
                    self.missing_since = time.monotonic()
                if current is not None or time.monotonic() - self.missing_since >= self.patience:
                    self.raise_if_aborted()  # a master that aborts leaves at once: its last word may be queued
                    raise MasterGone(f"the master of run {self.run} is gone"
                                     + ("" if current is None else f" (replaced by run {current})"))
            else:
                self.missing_since = None
            if not self.started and (current is None or current != self.run):
                if current is None:
                    self.attach(deadline, tick)
                else:
                    self.run = str(current)
                attached()
            popped = self.client.blpop([queue_key(self.cluster, str(self.run), self.executor)], timeout=1.0)
            if popped is None:
                if not self.started and time.monotonic() > deadline:
                    raise TrainingError(f"the master of run {self.run} sent no command before the start-up timeout")
                continue
            command = _decode(popped[1])
            if command is None or command.get("run") != self.run:
                continue
            if not self.started and command.get("op") not in ("prepare", "abort"):
                # A run starts with prepare: this was left for an earlier instance of this executor, or
                # by a master that crashed (its run stays current until its lease expires). Not bound.
                continue
            self.started = True
            return command

    def raise_if_aborted(self) -> None:
        """Raise RunAborted if an abort of this executor's run is still in its queue. Only looks: a master
        whose lease lapsed during a Redis failover keeps its run, and the prepare it queued to bring the
        executors back must still be there when they attach again (popping it left both sides waiting)."""
        key = queue_key(self.cluster, str(self.run), self.executor)
        for raw in self.client.lrange(key, 0, -1):
            command = _decode(raw)
            if command is not None and command.get("op") == "abort":
                raise RunAborted(f"run {self.run} aborted by the master: {command.get('reason', '')}")

    def reply(self, command: dict[str, Any], **fields: Any) -> None:
        message = {**fields, "executor": self.executor, "run": self.run, "seq": command["seq"]}
        self.client.rpush(acks_key(self.cluster, str(self.run)), json.dumps(message))


def write_progress(client: RedisCluster, cluster: str, progress: dict[str, Any]) -> None:
    client.set(progress_key(cluster), json.dumps({**progress, "updated": time.time()}))


def read_progress(client: RedisCluster, cluster: str) -> dict[str, Any]:
    """What ``artm-compose status`` shows: the run's state, pass, perplexities and who is alive.

    Keys: ``run``, ``state``, ``pass``, ``passes``, ``perplexity`` (list), ``seconds`` (list),
    ``error`` (when failed), ``master`` (heartbeat value or None) and ``executors``
    (``{id: heartbeat value or None}``). An empty cluster gives ``{"state": "none"}``.
    """
    progress = _decode(client.get(progress_key(cluster))) or {"state": "none"}
    progress["master"] = read_master(client, cluster)
    count = int(progress.get("executor_count", 0))
    progress["executors"] = {str(e): beat for e, beat in read_heartbeats(client, cluster, range(count)).items()}
    return progress


def probe_progress(addresses: Sequence[tuple[str, int]], password: str | None, cluster: str,
                   *, username: str | None = None, timeout: float = 2.0) -> dict[str, Any] | None:
    """:func:`read_progress` through a short-lived client logged in as ``username`` (the reader, acl.py), for
    status probes: None when no run has started or the Redis Cluster cannot answer (status must report, not
    fail)."""
    try:
        client = cluster_client(addresses, password, username=username, timeout=timeout)
    except (RedisError, RedisClusterException):
        return None
    try:
        progress = read_progress(client, cluster)
    except (RedisError, RedisClusterException):
        return None
    finally:
        client.close()
    return None if progress.get("state") == "none" else progress
