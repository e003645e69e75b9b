"""Swarm range labels: balanced by capacity, idempotent, and correct when the Swarm changes."""

from __future__ import annotations

import re

import pytest

from artm_compose.config import ClusterConfig
from artm_compose.containers import SERVICE_ADDRESSING
from artm_compose.errors import ConfigError
from artm_compose.plan import make_plan
from artm_compose.runtimes.swarm.assign import (
    SwarmNode, assign, holdings_from_labels, largest_remainder, removal, replica_groups, usable_holdings,
)

CLUSTER = "demo"
VNODES = "artm.demo.vnodes"
GROUP = "artm.demo.group"


def node(name: str, capacity: float | None = None, **kwargs) -> SwarmNode:
    labels = dict(kwargs.pop("labels", {}))
    if capacity is not None:
        labels["artm.capacity"] = str(capacity)
    return SwarmNode(id=f"id-{name}", hostname=name, labels=labels, **kwargs)


def apply(nodes: list[SwarmNode], changes) -> list[SwarmNode]:
    """What ``docker node update --label-add/--label-rm`` would leave on the nodes."""
    by_id = {c.node_id: c for c in changes}
    result = []
    for n in nodes:
        labels = dict(n.labels)
        change = by_id.get(n.id)
        if change is not None:
            for key in change.remove:
                labels.pop(key)
            labels.update(change.add)
        result.append(SwarmNode(n.id, n.hostname, n.availability, n.state, labels))
    return result


def spans(nodes: list[SwarmNode]) -> dict[str, tuple[str | None, str | None]]:
    return {n.hostname: (n.labels.get(VNODES), n.labels.get(GROUP)) for n in nodes}


def test_equal_capacities_give_contiguous_equal_ranges():
    result = assign(CLUSTER, 8, [node("b"), node("a")])
    assert [(h.hostname, h.first, h.last, h.group) for h in result.holdings] == [("a", 0, 3, 0), ("b", 4, 7, 1)]
    assert [result.group_of(v) for v in range(8)] == [0] * 4 + [1] * 4


def test_uneven_capacities_follow_largest_remainder():
    nodes = [node("a", 1), node("b", 2), node("c", 3)]
    result = assign(CLUSTER, 8, nodes)
    # Quotas 1.33, 2.67, 4.0: floors 1, 2, 4; the one left over goes to b (remainder .67).
    assert [(h.first, h.last) for h in result.holdings] == [(0, 0), (1, 3), (4, 7)]
    labelled = apply(nodes, result.changes)
    assert spans(labelled) == {"a": ("0-0", "0"), "b": ("1-3", "1"), "c": ("4-7", "2")}


def test_more_swarm_nodes_than_virtual_nodes_leaves_some_unlabelled():
    nodes = [node(name) for name in "abcde"]
    result = assign(CLUSTER, 3, nodes)
    assert [(h.hostname, h.first, h.last) for h in result.holdings] == [("a", 0, 0), ("b", 1, 1), ("c", 2, 2)]
    assert result.skipped == {"d": "more Swarm nodes than virtual nodes", "e": "more Swarm nodes than virtual nodes"}
    labelled = apply(nodes, result.changes)
    assert spans(labelled)["d"] == (None, None) and spans(labelled)["e"] == (None, None)
    # Groups are numbered over the holders only, so constraints never name an unlabelled node.
    assert {h.group for h in result.holdings} == {0, 1, 2}


def test_relabelling_is_idempotent():
    nodes = [node("a", 2), node("b", 1)]
    first = assign(CLUSTER, 5, nodes)
    labelled = apply(nodes, first.changes)
    again = assign(CLUSTER, 5, labelled)
    assert again.holdings == first.holdings
    assert again.pending == ()


def test_drained_node_between_two_calls_loses_its_labels():
    nodes = [node("a"), node("b"), node("c")]
    labelled = apply(nodes, assign(CLUSTER, 6, nodes).changes)
    assert spans(labelled)["b"] == ("2-3", "1")
    drained = [SwarmNode(n.id, n.hostname, "drain" if n.hostname == "b" else "active", n.state, n.labels)
               for n in labelled]
    result = assign(CLUSTER, 6, drained)
    assert result.skipped == {"b": "availability drain"}
    change_b = next(c for c in result.changes if c.hostname == "b")
    assert change_b.add == {} and change_b.remove == (GROUP, VNODES)
    relabelled = apply(drained, result.changes)
    assert spans(relabelled) == {"a": ("0-2", "0"), "b": (None, None), "c": ("3-5", "1")}


def test_down_or_removed_node_between_two_calls():
    nodes = [node("a"), node("b"), node("c")]
    labelled = apply(nodes, assign(CLUSTER, 4, nodes).changes)
    down = [SwarmNode(n.id, n.hostname, n.availability, "down" if n.hostname == "a" else "ready", n.labels)
            for n in labelled]
    result = assign(CLUSTER, 4, down)
    assert [(h.hostname, h.first, h.last) for h in result.holdings] == [("b", 0, 1), ("c", 2, 3)]
    assert result.skipped == {"a": "state down"}
    # A node that left the Swarm is simply not listed: the others take over its range.
    gone = [n for n in labelled if n.hostname != "c"]
    result = assign(CLUSTER, 4, gone)
    assert spans(apply(gone, result.changes)) == {"a": ("0-1", "0"), "b": ("2-3", "1")}


def test_selector_and_other_clusters_labels_are_respected():
    other = {"artm.other.vnodes": "0-3", "artm.other.group": "0"}
    nodes = [node("a", labels={"artm.enabled": "true", **other}), node("b"),
             node("c", labels={"artm.enabled": "true"})]
    result = assign(CLUSTER, 4, nodes, selector="artm.enabled=true")
    assert [h.hostname for h in result.holdings] == ["a", "c"]
    assert result.skipped == {"b": "not labelled artm.enabled=true"}
    labelled = apply(nodes, result.changes)
    assert {k: v for k, v in labelled[0].labels.items() if k.startswith("artm.other.")} == other
    assert removal(CLUSTER, labelled) and not removal(CLUSTER, apply(labelled, removal(CLUSTER, labelled)))
    assert apply(labelled, removal(CLUSTER, labelled))[0].labels == {"artm.enabled": "true", **other}


def test_holdings_read_back_from_labels():
    nodes = [node("a", 1), node("b", 3)]
    result = assign(CLUSTER, 4, nodes)
    assert holdings_from_labels(CLUSTER, apply(nodes, result.changes)) == result.holdings


def test_zero_capacity_node_holds_nothing():
    result = assign(CLUSTER, 4, [node("a", 0), node("b", 1)])
    assert [(h.hostname, h.first, h.last) for h in result.holdings] == [("b", 0, 3)]
    assert result.skipped == {"a": "artm.capacity=0"}


@pytest.mark.parametrize("nodes,selector,message", [
    ([node("a", availability="drain")], None, "a: availability drain"),
    ([node("a", labels={"artm.capacity": "lots"})], None, "artm.capacity='lots'"),
    ([node("a", -1)], None, "artm.capacity='-1'"),
    ([node("a")], "artm.enabled", "node selector 'artm.enabled'"),
    ([], None, "the Swarm lists no nodes"),
])
def test_bad_inputs_are_named(nodes, selector, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        assign(CLUSTER, 4, nodes, selector=selector)


@pytest.mark.parametrize("total,weights", [(8, [1, 2, 3]), (3, [1] * 5), (16, [0.5, 0.25, 7]), (1, [1, 1])])
def test_largest_remainder_sums_and_stays_within_one_of_quota(total, weights):
    counts = largest_remainder(total, weights)
    assert sum(counts) == total
    for count, weight in zip(counts, weights):
        assert abs(count - total * weight / sum(weights)) < 1


def test_usable_holdings_accept_a_complete_labelling_only():
    nodes = [node("a"), node("b")]
    labelled = apply(nodes, assign(CLUSTER, 4, nodes).changes)
    assert usable_holdings(CLUSTER, 4, labelled) == assign(CLUSTER, 4, labelled).holdings
    assert usable_holdings(CLUSTER, 5, labelled) is None  # the plan grew: relabel
    assert usable_holdings(CLUSTER, 4, nodes) is None  # not labelled at all
    drained = [SwarmNode(n.id, n.hostname, "drain" if n.hostname == "b" else "active", n.state, n.labels)
               for n in labelled]
    assert usable_holdings(CLUSTER, 4, drained) is None


def placed_replicas(nodes: int, replicas: int, swarm: list[SwarmNode]) -> tuple[dict[int, int], dict[int, int], list]:
    """(virtual node -> group, replica instance -> group, the plan's replicas) of a cluster on ``swarm``."""
    plan = make_plan(ClusterConfig(name=CLUSTER, runtime="swarm", nodes=nodes, replicas=replicas),
                     addressing=SERVICE_ADDRESSING)
    groups = {v: h.group for h in assign(CLUSTER, nodes, swarm).holdings for v in h.vnodes}
    return groups, replica_groups(plan.replicas, groups), list(plan.replicas)


def test_on_one_swarm_node_every_replica_stays_beside_its_planned_node():
    groups, placed, replicas = placed_replicas(3, 2, [node("a")])
    assert placed == {r.index: 0 for r in replicas} and set(groups.values()) == {0}


@pytest.mark.parametrize("nodes,replicas,machines", [(4, 1, 2), (6, 1, 3), (6, 2, 3), (5, 2, 2), (3, 1, 3)])
def test_replicas_go_to_another_swarm_node_than_their_primary_when_there_is_one(nodes, replicas, machines):
    groups, placed, planned = placed_replicas(nodes, replicas, [node(f"m{i}") for i in range(machines)])
    for primary in range(nodes):
        copies = [placed[r.index] for r in planned if r.replica_of == primary]
        assert groups[primary] not in copies
        # Copies of one primary on as many different Swarm nodes as there are others to take them.
        assert len(set(copies)) == min(replicas, machines - 1), (primary, copies)
    hosted = [sum(1 for g in placed.values() if g == group) for group in range(machines)]
    assert max(hosted) - min(hosted) <= replicas, hosted  # spread, not piled on one Swarm node


def test_a_replica_whose_planned_neighbour_shares_its_swarm_node_moves_to_the_next_other_one():
    # m0 holds 0-1 and m1 holds 2-3; the plan puts replica j of node i beside node (i + j) mod 4.
    groups, placed, _ = placed_replicas(4, 1, [node("m0"), node("m1")])
    assert groups == {0: 0, 1: 0, 2: 1, 3: 1}
    assert placed == {4: 1, 5: 1, 6: 0, 7: 0}  # 4 (of 0) beside 1 on m0 -> beside 2; 6 (of 2) beside 3 -> beside 0
