"""The status report as seen from inside the cluster's network, where there is no Docker to ask.

``up --dashboard`` runs the dashboard in a container of the cluster (Compose) or a service on the
manager (Swarm). From there it reaches Redis but not the runtime, so members are judged by the
cluster's own signals instead of container states: a Redis node is alive when it answers PING, an
executor or the master while its heartbeat key lives (they expire after the heartbeat timeout).
The report is assembled by the same function as every runtime's ``status``.
"""

from __future__ import annotations

from pathlib import Path

from redis.exceptions import RedisClusterException, RedisError

from artm_compose.acl import READER_USER, Login
from artm_compose.engine.protocol import probe_progress
from artm_compose.in_cluster import run_probe
from artm_compose.record import ClusterRecord
from artm_compose.redis_client import node_client
from artm_compose.render import MASTER
from artm_compose.runtimes.base import ClusterStatus, MemberState
from artm_compose.runtimes.lifecycle import assemble_status
from artm_compose.state import StateDir, read_password

PING_TIMEOUT = 1.0
NO_SIGNAL = "no answer"


def inside_status(state: StateDir, password_file: Path) -> ClusterStatus:
    """The cluster of ``state`` as its own Redis nodes and heartbeats show it to the reader (acl.py), whose
    password is in ``password_file``."""
    record = ClusterRecord.load(state)
    login = Login(READER_USER, read_password(password_file))
    seen = observe_from_inside(record, login)
    return assemble_status(record, state, record.runtime, seen, lambda: run_probe(state, login), NO_SIGNAL)


def observe_from_inside(record: ClusterRecord, login: Login) -> dict[str, MemberState]:
    """Every member that gives a sign of life: Redis nodes that answer, executors and master with a heartbeat."""
    seen = {node.name: _ping(node.address, login) for node in record.nodes}
    if record.training is None or not any(state.alive for state in seen.values()):
        return seen
    progress = probe_progress(record.addresses, login.password, record.cluster, username=login.username) or {}
    beats = progress.get("executors") or {}
    for executor in record.executors:
        beat = beats.get(str(executor.id))
        seen[executor.name] = MemberState(alive=beat is not None, state="heartbeat" if beat else "no heartbeat")
    master = progress.get("master")
    seen[MASTER] = MemberState(alive=master is not None, state="heartbeat" if master else "no heartbeat")
    return seen


def _ping(address: str, login: Login) -> MemberState:
    host, _, port = address.rpartition(":")
    client = node_client(host, int(port), login.password, username=login.username, timeout=PING_TIMEOUT)
    try:
        client.ping()
    except (RedisError, RedisClusterException, OSError):
        return MemberState(alive=False, state=NO_SIGNAL)
    finally:
        client.close()
    return MemberState(alive=True, state="answers")
