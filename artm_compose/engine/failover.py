"""Riding out a lost Redis node: wait (bounded) until the cluster serves every slot again, or say why it won't.

When a primary dies, Redis Cluster marks it failed after ``cluster-node-timeout`` and its replica wins an
election and takes its slots (a second or so later). Meanwhile commands to its slots fail (connection
errors, ``CLUSTERDOWN``, ``TRYAGAIN``, ``MOVED`` to the promoted replica), and replication being
asynchronous, writes acknowledged just before the loss may be gone: a pass that spans a failover is redone
from the committed model, never trusted (PITFALLS.md, "Replicas, failover, restarts").

Executors and the master use :func:`wait_for_cluster` after a Redis error; the master also watches the
cluster's epoch (:func:`cluster_epoch`), which a failover raises, so a failover that none of its own
commands hit still interrupts the pass.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import redis
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException, RedisError

from artm_compose.bootstrap import NodeView, parse_cluster_nodes, parse_info
from artm_compose.engine.protocol import BEAT_FRACTION, TTL_FRACTION, ClusterInterrupted, heartbeat_key
from artm_compose.errors import TrainingError, TrainingTimeout
from artm_compose.redis_client import node_client
from artm_compose.waiting import poll_until, wait_until

REDIS_ERRORS = (RedisError, RedisClusterException)
_PROBE_TIMEOUT = 2.0
_FAILED = frozenset({"fail", "fail?"})


@dataclass(frozen=True)
class ClusterView:
    """The cluster as one answering node sees it: ``problem`` is empty when every slot is served by a
    primary that answers; ``hopeless`` names a lost primary that no replica can replace."""

    epoch: int = -1
    problem: str = ""
    hopeless: str = ""
    state: str = "?"  # cluster_state


def observe(client: RedisCluster, ping: bool = True) -> ClusterView:
    """Ask the nodes ``client`` knows, first answer wins (logged in as ``client`` is: the training user, acl.py);
    with ``ping``, every serving primary is pinged too (a lost one that is not failed yet is a ``problem``)."""
    login = {key: client.nodes_manager.connection_kwargs.get(key)
             for key in ("username", "password", "socket_connect_timeout")}
    seen: set[tuple[str, int]] = set()
    last_error = "no Redis node known"
    for node in [*client.get_nodes(), *client.nodes_manager.startup_nodes.values()]:
        if (node.host, node.port) in seen:
            continue
        seen.add((node.host, node.port))
        probe = _probe(node.host, node.port, login)
        try:
            info = parse_info(probe.execute_command("CLUSTER", "INFO"))
            views = parse_cluster_nodes(probe.execute_command("CLUSTER", "NODES"))
        except REDIS_ERRORS as error:
            last_error = f"{node.host}:{node.port}: {error or type(error).__name__}"
            continue
        finally:
            probe.close()
        return _judge(info, views, node.host, login, ping)
    # Every node gone: no replica is left to take over, and nodes restarted empty hold no model.
    message = f"no Redis node of the cluster answers ({last_error})"
    return ClusterView(problem=message, hopeless=message)


def _probe(host: str, port: int, login: dict) -> redis.Redis:
    """A client of one node that logs in and connects as the cluster client whose settings ``login`` holds, and
    tries once: the callers look again and again, and the address of a lost node costs every try the connect
    timeout (with redis-py's 10 retries and 2 s a connect, one look at a lost node took 18 s)."""
    return node_client(host, port, login["password"], username=login["username"], timeout=_PROBE_TIMEOUT,
                       connect_timeout=login["socket_connect_timeout"] or _PROBE_TIMEOUT, retries=0)


def _judge(info: dict[str, str], views: list[NodeView], host: str, login: dict, ping: bool) -> ClusterView:
    epoch, state = int(info.get("cluster_current_epoch", -1)), info.get("cluster_state", "?")
    primaries = [v for v in views if v.slots and not v.replica]
    for primary in primaries:
        if "fail" not in primary.flags:
            continue
        standby = [v for v in views if v.master == primary.id and not v.flags & _FAILED]
        if not standby:
            return ClusterView(epoch, f"{primary.ip}:{primary.port} failed",
                               f"Redis node {primary.ip}:{primary.port} is lost and no replica of it is left to "
                               f"serve its slots (use --replicas to have one)", state)
    if state != "ok":
        return ClusterView(epoch, f"cluster_state:{state}", state=state)
    for primary in primaries if ping else ():
        address = host if primary.myself else primary.ip
        probe = _probe(address, primary.port, login)
        try:
            probe.ping()
        except REDIS_ERRORS as error:
            return ClusterView(epoch, f"{address}:{primary.port} serves slots but does not answer: {error}", state=state)
        finally:
            probe.close()
    return ClusterView(epoch, state=state)


def wait_for_heartbeats(client: RedisCluster, cluster: str, executors: Iterable[int], timeout: float,
                        heartbeat_timeout: float, tick: Callable[[], None]) -> bool:
    """Wait (bounded) until every executor's heartbeat key is there again and fresh (beaten within the last two
    beats): keys may have expired during the failover (on the lost node, or their executor stuck in Redis
    retries), and come back with the executors' next beat; a key merely present may be about to expire, and
    the recovery would count its executor lost. False if some did not."""
    wanted = [heartbeat_key(cluster, executor) for executor in executors]
    fresh_ms = (TTL_FRACTION - 2 * BEAT_FRACTION) * heartbeat_timeout * 1000

    def fresh() -> bool:
        tick()
        pipe = client.pipeline()
        for key in wanted:
            pipe.pttl(key)
        return all(left >= fresh_ms for left in pipe.execute())

    return bool(poll_until(fresh, timeout, interval=0.1))


class FailoverWatch:
    """The master's look at the cluster while it awaits replies, at most every ``every`` seconds: a failover
    raises the epoch, and writes of the pass may be lost with the old primary even if no command failed."""

    def __init__(self, client: RedisCluster, every: float = 1.0):
        self.client = client
        self.every = every
        self.baseline = observe(client, ping=False).epoch
        self.next_look = time.monotonic() + every

    def reset(self, epoch: int) -> None:
        """The cluster serves again at ``epoch`` (after a recovery)."""
        self.baseline = epoch

    def __call__(self, phase: str, pass_number: int, now: bool = False) -> None:
        if time.monotonic() < self.next_look and not now:
            return
        self.next_look = time.monotonic() + self.every
        # Only the epoch and the state: a primary slow to answer on a loaded machine is no reason to redo a pass,
        # and pinging a lost one (not failed yet) would only keep the master from its replies.
        view = observe(self.client, ping=False)
        if view.state == "fail" or view.epoch > self.baseline:
            what = (f"cluster_state:{view.state}" if view.state == "fail"
                    else f"the cluster's epoch rose from {self.baseline} to {view.epoch} (a failover)")
            raise ClusterInterrupted(f"Redis Cluster changed during {phase} of pass {pass_number}: {what}",
                                     pass_number)


def wait_for_replicas(client: RedisCluster, cluster: str, timeout: float, phase: str, pass_number: int) -> None:
    """Return once every online replica holds what its primary has taken so far (the pass's phi and n_t), or
    raise :class:`ClusterInterrupted`. Replication is asynchronous: without this, a primary lost just after the
    master committed a pass can take the pass's phi with it, and its promoted replica serves, under the same
    key, the phi of two generations back (the buffers alternate), which the next passes read without an error.

    ``WAIT`` counts the writes of its own connection, so on each primary one connection writes a marker key of
    the cluster (slotted to that primary; after the executors' writes, which were acknowledged) and waits for
    that write. A primary without replicas is not waited for, and a cluster without any (by the client's slot
    table) costs no command: most runs have none, and a pass would pay two round trips per primary."""
    if not client.get_replicas():
        return
    primaries = {node.name: node for node in client.get_primaries()}
    markers: dict[str, str] = {}
    for index in range(100 * len(primaries) + 1000):
        if len(markers) == len(primaries):
            break
        key = f"ac:{cluster}:replicated:{index}"
        markers.setdefault(client.get_node_from_key(key).name, key)
    for name, node in primaries.items():
        pool = node.redis_connection.connection_pool
        connection = pool.get_connection()
        try:
            connection.send_command("SET", markers[name], str(pass_number), "EX", "60")
            connection.read_response()
            connection.send_command("INFO", "replication")
            info = parse_info(connection.read_response().decode())
            online = sum(1 for field, value in info.items() if field.startswith("slave") and "state=online" in value)
            if online:
                connection.send_command("WAIT", online, max(1, int(timeout * 1000)))
                acknowledged = int(connection.read_response())
                if acknowledged < online:
                    raise ClusterInterrupted(f"{acknowledged} of the {online} replica(s) of {node.host}:{node.port} "
                                             f"acknowledged the writes of {phase} of pass {pass_number} within "
                                             f"{timeout:g} s", pass_number)
        finally:
            pool.release(connection)


def wait_for_cluster(client: RedisCluster, timeout: float, why: str, tick: Callable[[], None]) -> ClusterView:
    """Wait until every slot is served by an answering primary (bounded by ``timeout``), then refresh the
    client's slot table. Raises :class:`TrainingError` at once when a lost primary has no replica left.

    ``tick`` tells the caller's heartbeat that it is alive while it waits (a silent owner's key expires)."""
    last = ClusterView(problem="not asked yet")

    def serving() -> ClusterView | None:
        nonlocal last
        tick()
        last = observe(client)
        if last.hopeless:
            raise TrainingError(f"{why}: {last.hopeless}")
        return None if last.problem else last

    view = wait_until(serving, timeout, f"the Redis Cluster to serve every slot again after {why}", interval=0.25,
                      describe=lambda: last.problem, error=TrainingTimeout)
    client.nodes_manager.initialize()
    return view


def describe_redis_error(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
