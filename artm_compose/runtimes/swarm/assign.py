"""Which Swarm node holds which virtual nodes: a pure assignment and the label changes it implies.

Swarm placement constraints compare node labels with ``==`` and ``!=`` only, so a range of
virtual nodes cannot be matched directly. Each Swarm node that holds virtual nodes gets two
labels: ``artm.<cluster>.vnodes=<first>-<last>`` for people and ``artm.<cluster>.group=<k>``
that every service of those virtual nodes is constrained to.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from artm_compose.errors import ConfigError
from artm_compose.plan import NodePlan

LABEL_ROOT = "artm"
DEFAULT_CAPACITY_LABEL = "artm.capacity"


@dataclass(frozen=True)
class SwarmNode:
    """What the assignment needs to know about one Swarm node (``docker node ls`` / inspect)."""

    id: str
    hostname: str
    availability: str = "active"  # active | pause | drain
    state: str = "ready"  # ready | down | unknown | disconnected
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Holding:
    """A Swarm node and the contiguous virtual nodes ``first..last`` (inclusive) it holds."""

    node_id: str
    hostname: str
    group: int
    first: int
    last: int

    @property
    def vnodes(self) -> range:
        return range(self.first, self.last + 1)

    def to_dict(self) -> dict[str, object]:
        return {"node_id": self.node_id, "hostname": self.hostname, "group": self.group,
                "vnodes": [self.first, self.last]}

    @classmethod
    def from_dict(cls, value: Mapping[str, Any]) -> Holding:
        return cls(value["node_id"], value["hostname"], value["group"], value["vnodes"][0], value["vnodes"][1])


@dataclass(frozen=True)
class LabelChange:
    """Labels to add (or overwrite) and to remove on one Swarm node; empty when nothing changes."""

    node_id: str
    hostname: str
    add: Mapping[str, str]
    remove: tuple[str, ...]

    @property
    def empty(self) -> bool:
        return not self.add and not self.remove


@dataclass(frozen=True)
class Assignment:
    """The holdings of one cluster and the label changes that bring the Swarm to them."""

    cluster: str
    holdings: tuple[Holding, ...]
    changes: tuple[LabelChange, ...]
    skipped: Mapping[str, str]  # hostname -> why it holds nothing

    def group_of(self, vnode: int) -> int:
        """The group label value of the Swarm node holding virtual node ``vnode``."""
        for holding in self.holdings:
            if holding.first <= vnode <= holding.last:
                return holding.group
        raise ConfigError(f"virtual node {vnode} is not held by any Swarm node of cluster {self.cluster!r}")

    @property
    def pending(self) -> tuple[LabelChange, ...]:
        return tuple(c for c in self.changes if not c.empty)


def label_prefix(cluster: str) -> str:
    return f"{LABEL_ROOT}.{cluster}."


def vnodes_label(cluster: str) -> str:
    return f"{label_prefix(cluster)}vnodes"


def group_label(cluster: str) -> str:
    return f"{label_prefix(cluster)}group"


def parse_selector(selector: str | None) -> tuple[str, str] | None:
    """``key=value`` -> ``(key, value)``; ``None`` stays ``None``."""
    if selector is None:
        return None
    key, sep, value = selector.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"node selector {selector!r} is invalid: use KEY=VALUE, e.g. artm.enabled=true")
    return key.strip(), value.strip()


def capacity_of(node: SwarmNode, capacity_label: str) -> float:
    """The node's capacity label as a non-negative number (1 when absent)."""
    raw = node.labels.get(capacity_label)
    if raw is None:
        return 1.0
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"Swarm node {node.hostname}: label {capacity_label}={raw!r} is invalid: "
                          "use a non-negative number")
    return value


def largest_remainder(total: int, weights: list[float]) -> list[int]:
    """Split ``total`` units over ``weights`` proportionally; leftover units go to the largest remainders.

    Ties are broken by position, so the result depends only on the inputs.
    """
    weight_sum = sum(weights)
    if weight_sum <= 0:
        raise ValueError("weights must have a positive sum")
    quotas = [total * w / weight_sum for w in weights]
    counts = [math.floor(q) for q in quotas]
    order = sorted(range(len(weights)), key=lambda i: (-(quotas[i] - counts[i]), i))
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


def assign(cluster: str, vnode_count: int, nodes: list[SwarmNode], *,
           selector: str | None = None, capacity_label: str = DEFAULT_CAPACITY_LABEL) -> Assignment:
    """Assign ``vnode_count`` virtual nodes to the eligible Swarm ``nodes``, balanced by capacity.

    Eligible: ready, active, matching ``selector`` (``KEY=VALUE``) if given, capacity above 0.
    Nodes are taken in (hostname, id) order, so the same Swarm gives the same assignment.
    Every node not holding virtual nodes loses this cluster's labels.
    """
    if vnode_count < 1:
        raise ConfigError(f"nodes={vnode_count!r} is invalid: must be >= 1")
    wanted = parse_selector(selector)
    skipped: dict[str, str] = {}
    eligible: list[tuple[SwarmNode, float]] = []
    for node in sorted(nodes, key=lambda n: (n.hostname, n.id)):
        reason = _ineligible(node, wanted)
        capacity = capacity_of(node, capacity_label) if reason is None else 0.0
        if reason is None and capacity == 0:
            reason = f"{capacity_label}=0"
        if reason is None:
            eligible.append((node, capacity))
        else:
            skipped[node.hostname] = reason
    if not eligible:
        why = "; ".join(f"{host}: {reason}" for host, reason in skipped.items()) or "the Swarm lists no nodes"
        raise ConfigError(f"no Swarm node can hold virtual nodes of cluster {cluster!r} ({why})")
    counts = largest_remainder(vnode_count, [capacity for _, capacity in eligible])
    holdings: list[Holding] = []
    first = 0
    for (node, _), count in zip(eligible, counts):
        if count == 0:
            skipped[node.hostname] = "more Swarm nodes than virtual nodes"
            continue
        holdings.append(Holding(node.id, node.hostname, len(holdings), first, first + count - 1))
        first += count
    desired = {h.node_id: {vnodes_label(cluster): f"{h.first}-{h.last}", group_label(cluster): str(h.group)}
               for h in holdings}
    changes = tuple(_change(cluster, node, desired.get(node.id, {}))
                    for node in sorted(nodes, key=lambda n: (n.hostname, n.id)))
    return Assignment(cluster=cluster, holdings=tuple(holdings), changes=changes, skipped=skipped)


def replica_groups(replicas: Sequence[NodePlan], groups: Mapping[int, int]) -> dict[int, int]:
    """The Swarm group (node) of each replica, by instance index; ``groups`` maps each virtual node to its group.

    A replica goes where the Swarm node of its primary is not, or it protects nothing when that machine is
    lost (PITFALLS.md, "Replicas, failover, restarts"): beside the virtual node the plan puts it beside when
    another Swarm node holds that one, else beside the next virtual node (cyclically) that another Swarm
    node holds, preferring a Swarm node that holds no other copy of the same primary. On a Swarm of one
    node every replica stays beside its planned virtual node (another container all the same).
    """
    vnodes = sorted(groups)
    placed: dict[int, int] = {}
    holding: dict[int, set[int]] = {}  # primary -> the groups that hold a copy of it
    for replica in replicas:
        assert replica.replica_of is not None and replica.beside is not None, replica
        own = groups[replica.replica_of]
        taken = holding.setdefault(replica.replica_of, {own})
        start = vnodes.index(replica.beside)
        candidates = [groups[vnodes[(start + step) % len(vnodes)]] for step in range(len(vnodes))]
        group = next((g for g in candidates if g not in taken),
                     next((g for g in candidates if g != own), groups[replica.beside]))
        placed[replica.index] = group
        taken.add(group)
    return placed


def removal(cluster: str, nodes: list[SwarmNode]) -> tuple[LabelChange, ...]:
    """The changes that remove every label of ``cluster`` from ``nodes`` (for ``down``)."""
    changes = (_change(cluster, node, {}) for node in sorted(nodes, key=lambda n: (n.hostname, n.id)))
    return tuple(c for c in changes if not c.empty)


def holdings_from_labels(cluster: str, nodes: list[SwarmNode]) -> tuple[Holding, ...]:
    """Read the holdings back from the labels currently on ``nodes`` (for ``status``)."""
    holdings = []
    for node in nodes:
        span = node.labels.get(vnodes_label(cluster))
        group = node.labels.get(group_label(cluster))
        if span is None or group is None:
            continue
        first, _, last = span.partition("-")
        try:
            holdings.append(Holding(node.id, node.hostname, int(group), int(first), int(last or first)))
        except ValueError:
            raise ConfigError(f"Swarm node {node.hostname}: labels {vnodes_label(cluster)}={span!r}, "
                              f"{group_label(cluster)}={group!r} are not a range and a group number") from None
    return tuple(sorted(holdings, key=lambda h: h.first))


def usable_holdings(cluster: str, vnode_count: int, nodes: list[SwarmNode]) -> tuple[Holding, ...] | None:
    """The holdings on the nodes' labels if they place virtual nodes 0..vnode_count-1 exactly once, each
    on a ready and active node with its own group; ``None`` otherwise (then the Swarm needs labelling)."""
    try:
        holdings = holdings_from_labels(cluster, nodes)
    except ConfigError:
        return None
    usable = {n.id for n in nodes if n.state == "ready" and n.availability == "active"}
    groups = [h.group for h in holdings]
    if [v for h in holdings for v in h.vnodes] != list(range(vnode_count)) or len(set(groups)) != len(groups):
        return None
    if any(h.node_id not in usable for h in holdings):
        return None
    return holdings


def _ineligible(node: SwarmNode, wanted: tuple[str, str] | None) -> str | None:
    if node.state != "ready":
        return f"state {node.state}"
    if node.availability != "active":
        return f"availability {node.availability}"
    if wanted is not None and node.labels.get(wanted[0]) != wanted[1]:
        return f"not labelled {wanted[0]}={wanted[1]}"
    return None


def _change(cluster: str, node: SwarmNode, desired: dict[str, str]) -> LabelChange:
    prefix = label_prefix(cluster)
    add = {k: v for k, v in desired.items() if node.labels.get(k) != v}
    remove = tuple(sorted(k for k in node.labels if k.startswith(prefix) and k not in desired))
    return LabelChange(node_id=node.id, hostname=node.hostname, add=add, remove=remove)
