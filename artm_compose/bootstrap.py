"""Redis Cluster bootstrap: assign slot ranges, join the nodes, wait until the cluster is healthy.

Idempotent: the current state (``CLUSTER NODES``/``CLUSTER INFO`` of every node) is read first and only
what is missing is done, so bootstrapping a healthy cluster of the same plan sends no command that
changes anything. Every wait is bounded; on timeout the error says which node lacks what.
"""

from __future__ import annotations

import ipaddress
import secrets
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import redis

from artm_compose.errors import BootstrapError, BootstrapTimeout
from artm_compose.plan import Plan
from artm_compose.redis_client import node_client
from artm_compose.slots import SLOT_COUNT
from artm_compose.waiting import poll_until, wait_until

SlotRange = tuple[int, int]  # inclusive, as CLUSTER ADDSLOTSRANGE takes it
_UNHEALTHY_FLAGS = frozenset({"fail", "fail?", "handshake", "noaddr"})
_MAX_PROBLEMS_SHOWN = 12


@dataclass(frozen=True)
class NodeTarget:
    """One instance to bootstrap: where we connect to it, and where the other nodes reach it."""

    index: int
    name: str
    host: str
    port: int
    slots: SlotRange
    meet_host: str
    meet_port: int
    bus_port: int
    replica_of: int | None = None  # a replica: the index of its primary (``slots`` are that primary's)

    @property
    def group(self) -> int:
        """The virtual node whose slots this instance serves or copies: its primary's index."""
        return self.index if self.replica_of is None else self.replica_of

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def label(self) -> str:
        return f"{self.name} ({self.address})"


def targets_from_plan(plan: Plan, connect_address: Callable[[int], tuple[str, int]] | None = None
                      ) -> list[NodeTarget]:
    """Bootstrap targets for ``plan``; ``connect_address(index)`` overrides where we connect (e.g. a
    published port) while the nodes keep meeting each other at their planned address."""
    targets = []
    for node in plan.redis_nodes:
        host, port = connect_address(node.index) if connect_address else (node.host, node.port)
        targets.append(NodeTarget(index=node.index, name=node.name, host=host, port=port, slots=node.slots,
                                  meet_host=node.host, meet_port=node.port, bus_port=node.bus_port,
                                  replica_of=node.replica_of))
    return targets


@dataclass(frozen=True)
class NodeView:
    """One line of ``CLUSTER NODES``: a node as seen by the node that answered."""

    id: str
    ip: str
    port: int
    flags: frozenset[str]
    link: str
    slots: tuple[SlotRange, ...]
    config_epoch: int = 0
    master: str = "-"  # a replica: the id of the primary it copies

    @property
    def replica(self) -> bool:
        return "slave" in self.flags

    @property
    def myself(self) -> bool:
        return "myself" in self.flags

    @property
    def healthy(self) -> bool:
        return (self.myself or self.link == "connected") and not self.flags & _UNHEALTHY_FLAGS


def parse_cluster_nodes(text: str) -> list[NodeView]:
    """Parse ``CLUSTER NODES`` output (slot-migration entries ``[slot->-id]`` are ignored)."""
    views = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 8:
            continue
        address = fields[1].split(",", 1)[0].split("@", 1)[0]
        ip, _, port = address.rpartition(":")
        slots = []
        for token in fields[8:]:
            if token.startswith("["):
                continue
            first, _, last = token.partition("-")
            slots.append((int(first), int(last or first)))
        views.append(NodeView(id=fields[0], ip=ip, port=int(port or 0), flags=frozenset(fields[2].split(",")),
                              link=fields[7], slots=tuple(slots), config_epoch=int(fields[6]), master=fields[3]))
    return views


def parse_info(text: str) -> dict[str, str]:
    """Parse ``CLUSTER INFO`` / ``INFO`` output into a dict of strings."""
    info = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition(":")
        if sep and not key.startswith("#"):
            info[key] = value
    return info


def compress(slots: Iterable[int]) -> list[SlotRange]:
    """Sorted slot numbers as inclusive ranges: ``[1, 2, 3, 7] -> [(1, 3), (7, 7)]``."""
    ranges: list[list[int]] = []
    for slot in sorted(set(slots)):
        if ranges and slot == ranges[-1][1] + 1:
            ranges[-1][1] = slot
        else:
            ranges.append([slot, slot])
    return [(a, b) for a, b in ranges]


def expand(ranges: Iterable[SlotRange]) -> set[int]:
    return {slot for first, last in ranges for slot in range(first, last + 1)}


def describe_ranges(ranges: Sequence[SlotRange], shown: int = 4) -> str:
    text = ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in ranges[:shown])
    return text + (f", ... ({len(ranges) - shown} more ranges)" if len(ranges) > shown else "")


@dataclass
class NodeState:
    """What one node says about itself and the cluster (``error`` set if it could not be asked)."""

    target: NodeTarget
    error: str | None = None
    myid: str | None = None
    info: dict[str, str] = field(default_factory=dict)
    view: list[NodeView] = field(default_factory=list)
    replication: dict[str, str] = field(default_factory=dict)  # INFO replication, asked of replicas only

    @property
    def me(self) -> NodeView | None:
        return next((v for v in self.view if v.myself), None)


@dataclass(frozen=True)
class Health:
    """The cluster as observed from every node; ``problems`` is empty when it is healthy."""

    states: tuple[NodeState, ...]
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def nodes_up(self) -> int:
        return sum(1 for s in self.states if s.error is None)

    def roles(self) -> dict[str, str]:
        """Each answering instance's role by name: ``primary``, ``replica of <name>``, or, for one that serves
        no slots and copies nothing (e.g. restarted empty by Swarm after a failover), ``no slots``."""
        names = {s.myid: s.target.name for s in self.states if s.myid}

        def role(me: NodeView) -> str:
            if me.replica:
                return f"replica of {names.get(me.master, me.master)}"
            return "primary" if me.slots else "no slots (`up` joins it)"

        return {s.target.name: role(s.me) for s in self.states if s.me is not None}

    def summary_info(self) -> dict[str, str]:
        """``CLUSTER INFO`` of the first node that answered (empty if none did)."""
        return next((s.info for s in self.states if s.error is None), {})


@dataclass(frozen=True)
class BootstrapReport:
    """What bootstrap did (``actions`` is empty for a cluster that was already healthy) and how long it took."""

    actions: tuple[str, ...]
    seconds: float

    @property
    def no_op(self) -> bool:
        return not self.actions


Connect = Callable[[NodeTarget], redis.Redis]


class _Clients:
    """One open client per target, closed together."""

    def __init__(self, targets: Sequence[NodeTarget], connect: Connect):
        self.by_index = {t.index: connect(t) for t in targets}

    def __getitem__(self, target: NodeTarget) -> redis.Redis:
        return self.by_index[target.index]

    def close(self) -> None:
        for client in self.by_index.values():
            client.close()


def default_connect(password: str | None, timeout: float = 5.0, username: str | None = None) -> Connect:
    return lambda target: node_client(target.host, target.port, password, username=username, timeout=timeout)


def check_health(targets: Sequence[NodeTarget], password: str | None, *, username: str | None = None,
                 connect: Connect | None = None) -> Health:
    """Observe every node once and list what keeps the cluster from being healthy (no changes made: the
    reader, acl.py, may look)."""
    clients = _Clients(targets, connect or default_connect(password, timeout=2.0, username=username))
    try:
        return _health(targets, _observe(targets, clients))
    finally:
        clients.close()


def bootstrap_timeout(nodes: int) -> float:
    """Gossip among more nodes takes longer to converge."""
    return 30.0 + 0.5 * nodes


def bootstrap(targets: Sequence[NodeTarget], password: str | None, *, timeout: float = 60.0,
              poll: float = 0.05, connect: Connect | None = None,
              echo: Callable[[str], None] | None = None) -> BootstrapReport:
    """Bring the instances of ``targets`` to a healthy cluster with each node serving its planned slots.

    Waits (within ``timeout`` seconds overall) for every node to answer, forgets nodes that belong to
    no target, assigns missing slots, meets missing nodes from the first target, attaches replicas to
    their primaries, then waits for ``cluster_state:ok``, 16384 slots assigned, every node seeing every
    other and every replica connected to its primary and in sync.
    """
    started = time.monotonic()
    deadline = started + timeout
    say = echo or (lambda _message: None)
    actions: list[str] = []
    clients = _Clients(targets, connect or default_connect(password))
    try:
        _wait_reachable(targets, clients, timeout)
        states = _observe(targets, clients)
        if _health(targets, states).ok:
            return BootstrapReport(actions=(), seconds=time.monotonic() - started)
        modern = _major_version(clients[targets[0]]) >= 7
        forgotten = _forget_foreign(states, clients)
        if forgotten:
            states = _observe(targets, clients)
        # Assigning slots changes no membership, so the same views serve the MEET step.
        for action in [*forgotten, *_assign_slots(states, clients, modern), *_meet(states, clients, modern)]:
            actions.append(action)
            say(action)
        for action in _attach_replicas(targets, clients, deadline, poll, timeout):
            actions.append(action)
            say(action)
        _wait_healthy(targets, clients, deadline, poll, timeout)
    finally:
        clients.close()
    return BootstrapReport(actions=tuple(actions), seconds=time.monotonic() - started)


def _wait_reachable(targets: Sequence[NodeTarget], clients: _Clients, timeout: float) -> None:
    pending = list(targets)
    last_error: dict[int, str] = {}

    def all_answer() -> bool:
        for target in list(pending):
            try:
                clients[target].ping()
            except redis.AuthenticationError as error:
                raise BootstrapError(f"{target.label()} rejected the password: {error}") from None
            except redis.RedisError as error:
                last_error[target.index] = str(error) or type(error).__name__
            else:
                pending.remove(target)
        return not pending

    def silent() -> str:
        details = "; ".join(f"{t.label()}: {last_error[t.index]}" for t in pending[:_MAX_PROBLEMS_SHOWN])
        return f"{len(pending)} node(s) silent: {details}"

    wait_until(all_answer, timeout, "every Redis node to answer", interval=0.02, describe=silent,
               error=BootstrapTimeout)


def _observe(targets: Sequence[NodeTarget], clients: _Clients) -> list[NodeState]:
    states = []
    for target in targets:
        state = NodeState(target=target)
        try:
            client = clients[target]
            state.info = parse_info(client.execute_command("CLUSTER", "INFO"))
            state.view = parse_cluster_nodes(client.execute_command("CLUSTER", "NODES"))
            state.myid = state.me.id if state.me else None
            if state.me is not None and state.me.replica:
                state.replication = {key: str(value) for key, value in client.info("replication").items()}
        except redis.ResponseError as error:
            state.error = f"not a cluster node ({error}); is cluster-enabled set in its redis.conf?"
        except redis.RedisError as error:
            state.error = f"does not answer: {error or type(error).__name__}"
        states.append(state)
    return states


def _health(targets: Sequence[NodeTarget], states: Sequence[NodeState]) -> Health:
    problems: list[str] = []
    ids = {s.myid: s.target for s in states if s.myid}
    for state in states:
        label = state.target.label()
        if state.error:
            problems.append(f"{label} {state.error}")
            continue
        if state.info.get("cluster_state") != "ok":
            problems.append(f"{label}: cluster_state:{state.info.get('cluster_state', '?')}")
        seen = {v.id: v for v in state.view}
        assigned = expand(r for v in state.view for r in v.slots)
        if len(assigned) != SLOT_COUNT:
            missing = compress(set(range(SLOT_COUNT)) - assigned)
            problems.append(f"{label} sees {len(assigned)}/{SLOT_COUNT} slots assigned; "
                            f"unassigned: {describe_ranges(missing)}")
        for other_id, other in ids.items():
            view = seen.get(other_id)
            if view is None:
                problems.append(f"{label} does not know {other.label()}")
            elif not view.healthy:
                problems.append(f"{label} sees {other.label()} as {','.join(sorted(view.flags))} "
                                f"link {view.link}")
        foreign = [v for v in state.view if v.id not in ids]
        if foreign:
            problems.append(f"{label} knows {len(foreign)} node(s) outside this cluster: "
                            + ", ".join(f"{v.ip}:{v.port}" for v in foreign[:4]))
        problems.extend(_role_problems(state, states))
    return Health(states=tuple(states), problems=tuple(problems))


def _role_problems(state: NodeState, states: Sequence[NodeState]) -> list[str]:
    """What keeps one instance from its role: serving its node's slots, or copying (in sync) the instance of
    its group that does. Either instance of a group may serve: after a failover the replica does."""
    me, target, label = state.me, state.target, state.target.label()
    if me is None:
        return []
    planned = f"{target.slots[0]}-{target.slots[1]}"
    group = [s for s in states if s.target.group == target.group]
    if me.slots:
        if list(me.slots) != [target.slots]:
            return [f"{label} serves slots {describe_ranges(me.slots)}, planned {planned}"]
        return []
    if len(group) == 1:
        return [f"{label} serves slots none, planned {planned}"]
    holder = next((s for s in group if s.myid == me.master), None)
    if not me.replica or holder is None:
        return [f"{label} neither serves slots {planned} nor copies an instance of {_group_name(group)} that does"]
    link = state.replication.get("master_link_status", "?")
    syncing = state.replication.get("master_sync_in_progress", "0") != "0"
    if link != "up" or syncing:
        return [f"{label} copies {holder.target.name}: link {link}" + (", sync in progress" if syncing else "")]
    return []


def _group_name(group: Sequence[NodeState]) -> str:
    primary = next((s.target for s in group if s.target.replica_of is None), group[0].target)
    return f"virtual node {primary.index} ({', '.join(s.target.name for s in group)})"


def _forget_foreign(states: Sequence[NodeState], clients: _Clients) -> list[str]:
    """Forget nodes known to a target but belonging to none (e.g. an instance restarted empty with a new id)."""
    ids = {s.myid for s in states if s.myid}
    actions = []
    for state in states:
        for view in state.view:
            if view.id in ids or "handshake" in view.flags:
                continue  # handshake entries carry temporary ids and expire on their own
            try:
                clients[state.target].execute_command("CLUSTER", "FORGET", view.id)
            except redis.ResponseError as error:
                raise BootstrapError(f"{state.target.label()} cannot forget stale node {view.id} "
                                     f"({view.ip}:{view.port}): {error}") from None
            actions.append(f"{state.target.name}: forgot stale node {view.ip}:{view.port}")
    return actions


def _assign_slots(states: Sequence[NodeState], clients: _Clients, modern: bool) -> list[str]:
    """Give each node the planned slots it lacks, in one command per node."""
    actions = []
    owner_by_id = {s.myid: s.target for s in states if s.myid}
    for state in states:
        target, me = state.target, state.me
        if me is None or _holder(state, states) is not state:
            continue  # a replica, or a primary whose slots its replica serves since a failover
        planned = expand([target.slots])
        own = expand(me.slots)
        extra = own - planned
        if extra:
            raise BootstrapError(
                f"{target.label()} serves slots {describe_ranges(compress(extra))} outside its planned range "
                f"{target.slots[0]}-{target.slots[1]}: it holds another cluster's state; restart it from an "
                f"empty directory (artm-compose up does)")
        missing = planned - own
        if not missing:
            continue
        for view in state.view:
            busy = missing & expand(view.slots)
            if busy and not view.myself:
                holder = owner_by_id.get(view.id)
                raise BootstrapError(f"{target.label()} sees its planned slots {describe_ranges(compress(busy))} "
                                     f"served by {holder.label() if holder else view.id}")
        ranges = compress(missing)
        client = clients[target]
        if modern:
            client.execute_command("CLUSTER", "ADDSLOTSRANGE", *[bound for r in ranges for bound in r])
        else:
            client.execute_command("CLUSTER", "ADDSLOTS", *sorted(missing))
        actions.append(f"{target.name}: assigned slots {describe_ranges(ranges)}")
        if len(state.view) == 1 and me.config_epoch == 0:
            # Distinct epochs before the nodes meet, as redis-cli --cluster create does: otherwise all
            # masters start at epoch 0 and resolve the collisions one bump at a time.
            client.execute_command("CLUSTER", "SET-CONFIG-EPOCH", target.index + 1)
    return actions


def _holder(state: NodeState, states: Sequence[NodeState]) -> NodeState | None:
    """The instance of ``state``'s group that serves (or is to serve) the group's slots: one that serves
    some already, else the primary. None for a replica while nothing serves them yet (slots go to the primary)."""
    group = [s for s in states if s.target.group == state.target.group]
    serving = next((s for s in group if s.me is not None and s.me.slots), None)
    if serving is not None:
        return serving
    return state if state.target.replica_of is None else None


def _attach_replicas(targets: Sequence[NodeTarget], clients: _Clients, deadline: float, poll: float,
                     timeout: float) -> list[str]:
    """``CLUSTER REPLICATE`` every instance of a group but the one serving its slots, to that one, once it
    knows it (MEET's gossip introduces them; REPLICATE refuses an unknown node id). Bounded by ``deadline``."""
    if all(t.replica_of is None for t in targets):
        return []
    actions: list[str] = []
    waiting: list[str] = []

    def attached() -> bool:
        states = _observe(targets, clients)
        waiting.clear()
        for state in states:
            holder = _holder(state, states)
            if state.me is None or holder is None or holder is state:
                if state.error:
                    waiting.append(f"{state.target.label()} {state.error}")
                continue
            if state.me.master == holder.myid:
                continue
            if holder.myid is None or holder.myid not in {v.id for v in state.view}:
                waiting.append(f"{state.target.label()} does not know {holder.target.label()} yet")
                continue
            clients[state.target].execute_command("CLUSTER", "REPLICATE", holder.myid)
            actions.append(f"{state.target.name}: replicates {holder.target.name}")
        return not waiting

    wait_until(attached, max(deadline - time.monotonic(), 0.0), "every replica to know its primary and replicate it",
               interval=max(poll, 0.1), describe=lambda: "; ".join(waiting[:_MAX_PROBLEMS_SHOWN]),
               error=BootstrapTimeout)
    return actions


def _meet(states: Sequence[NodeState], clients: _Clients, modern: bool) -> list[str]:
    """``CLUSTER MEET`` from the first node every node it does not know yet (by IP: MEET takes no names).

    Gossip then spreads every node to every other. (Introducing lagging pairs directly as well was
    tried: with 128 nodes the extra handshakes left some nodes without another node's slots.)
    """
    first = states[0]
    known = {v.id for v in first.view}
    # One pipeline: the first node is busy with every new handshake, one round trip per MEET adds up.
    pipeline = clients[first.target].pipeline(transaction=False)
    actions = []
    for state in states[1:]:
        target = state.target
        if state.myid in known:
            continue
        ip = resolve_ip(target.meet_host)
        arguments: list[str | int] = [ip, target.meet_port]
        if modern and target.bus_port != target.meet_port + 10000:
            arguments.append(target.bus_port)
        pipeline.execute_command("CLUSTER", "MEET", *arguments)
        actions.append(f"{first.target.name}: met {target.name} at {ip}:{target.meet_port}")
    if actions:
        pipeline.execute()
    return actions


def _wait_healthy(targets: Sequence[NodeTarget], clients: _Clients, deadline: float, poll: float,
                  timeout: float) -> None:
    """Poll until healthy: ``CLUSTER INFO`` only (cheap with hundreds of nodes) until every node reports
    ok, then the full check of every node's ``CLUSTER NODES``; on timeout, say what is missing.

    A node that reported ok is not asked again before the full check (which asks every node): with 256
    nodes on a loaded machine, re-asking all of them on every poll took seconds per round.
    """
    pending = list(targets)

    def healthy() -> bool:
        nonlocal pending
        pending = [t for t in pending if not _info_ok(t, clients, len(targets))]
        if pending:
            return False
        if _health(targets, _observe(targets, clients)).ok:
            return True
        pending = list(targets)
        return False

    if poll_until(healthy, deadline - time.monotonic(), poll):
        return
    # Out of time: the full check of every node says what is missing, even for nodes whose INFO said ok.
    health = _health(targets, _observe(targets, clients))
    if health.ok:
        return
    shown = "; ".join(health.problems[:_MAX_PROBLEMS_SHOWN])
    more = len(health.problems) - _MAX_PROBLEMS_SHOWN
    raise BootstrapTimeout(f"Redis Cluster not healthy after {timeout:g} s: {shown}"
                           + (f"; ... and {more} more" if more > 0 else ""))


def _info_ok(target: NodeTarget, clients: _Clients, node_count: int) -> bool:
    """The node reports cluster_state:ok, all slots assigned and the right number of known nodes."""
    try:
        info = parse_info(clients[target].execute_command("CLUSTER", "INFO"))
    except redis.RedisError:
        return False
    return (info.get("cluster_state") == "ok" and info.get("cluster_slots_assigned") == str(SLOT_COUNT)
            and info.get("cluster_known_nodes") == str(node_count))


def seeded_nodes_conf(targets: Sequence[NodeTarget]) -> list[str]:
    """The ``nodes.conf`` each node of ``targets`` starts from: every node, its planned slots and a
    distinct config epoch, as ``CLUSTER NODES`` would list them once bootstrap is done.

    Redis loads ``cluster-config-file`` at startup, so nodes started from these files know each other
    before they start: no MEET, no slot assignment, no waiting for gossip to introduce 256 nodes to
    each other (26 s of the 31 s of a 256-node ``up``). The ids are fresh random ones (a restarted node
    gets new files, as ``up`` empties its directory); epochs 1..N are distinct so no node has to bump
    its epoch to resolve a collision, and currentEpoch is the largest of them. Bootstrap afterwards
    checks the result exactly as for a cluster it built itself.
    """
    ids = [secrets.token_hex(20) for _ in targets]
    addresses = [f"{resolve_ip(t.meet_host)}:{t.meet_port}@{t.bus_port}" for t in targets]
    files = []
    for me, _target in enumerate(targets):
        lines = [f"{ids[i]} {addresses[i]} {'myself,master' if i == me else 'master'} - 0 0 {i + 1} connected "
                 f"{t.slots[0]}-{t.slots[1]}" for i, t in enumerate(targets)]
        lines.append(f"vars currentEpoch {len(targets)} lastVoteEpoch 0")
        files.append("\n".join(lines) + "\n")
    return files


def resolve_ip(host: str) -> str:
    """``host`` as an IP address (IPv4 preferred); CLUSTER MEET rejects host names."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    for family in (socket.AF_INET, socket.AF_UNSPEC):
        try:
            return socket.getaddrinfo(host, None, family, socket.SOCK_STREAM)[0][4][0]
        except socket.gaierror:
            continue
    raise BootstrapError(f"cannot resolve Redis node host {host!r} to an IP address for CLUSTER MEET")


def _major_version(client: redis.Redis) -> int:
    version = str(client.info("server").get("redis_version", "0"))
    return int(version.split(".", 1)[0])
