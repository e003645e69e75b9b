"""Plan: slot coverage, the reference range formula, the balanced split, node addressing, validation."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from artm_compose.config import ClusterConfig
from artm_compose.containers import SERVICE_ADDRESSING
from artm_compose.data.summary import DataSummary
from artm_compose.errors import ConfigError
from artm_compose.plan import make_plan, replica_placement
from artm_compose.ranges import balanced_ranges, even_ranges, measure_balance
from artm_compose.runtimes.local.runtime import LOOPBACK
from artm_compose.slots import SLOT_COUNT, split_slots


def summary(batch_weights, token_weights) -> DataSummary:
    return DataSummary(batches_dir=Path("b"), vocab_path=Path("b/vocab.txt"),
                       batch_names=tuple(f"{i:05d}.batch" for i in range(len(batch_weights))),
                       batch_weights=np.asarray(batch_weights, float),
                       token_weights=np.asarray(token_weights, float))


@pytest.mark.parametrize("parts", [1, 2, 3, 4, 7, 1000, 16383, 16384])
def test_slots_cover_everything_once_and_evenly(parts):
    ranges = split_slots(parts)
    assert len(ranges) == parts
    assert ranges[0][0] == 0 and ranges[-1][1] == SLOT_COUNT - 1
    for (_, last), (first, _) in zip(ranges, ranges[1:]):
        assert first == last + 1
    sizes = [last - first + 1 for first, last in ranges]
    assert sum(sizes) == SLOT_COUNT and max(sizes) - min(sizes) <= 1


@pytest.mark.parametrize("parts", [0, 16385])
def test_slots_refuse_impossible_splits(parts):
    with pytest.raises(ValueError):
        split_slots(parts)


def reference_ranges(size, parts):
    """The reference launcher's loop, written as it is there."""
    step = math.ceil(size / parts)
    return [(step * i, min(step * (i + 1), size)) for i in range(parts)]


@pytest.mark.parametrize("size,parts", [(10, 1), (10, 2), (10, 3), (10, 10), (17800, 8), (64, 8), (1, 1), (7, 3)])
def test_even_ranges_are_the_reference_formula(size, parts):
    assert even_ranges(size, parts) == reference_ranges(size, parts)


def test_even_ranges_clamp_where_the_reference_runs_past_the_end():
    # ceil(5/4) = 2: the reference gives [6, 5) to the last executor; we give it the empty [5, 5).
    assert reference_ranges(5, 4)[-1] == (6, 5)
    assert even_ranges(5, 4) == [(0, 2), (2, 4), (4, 5), (5, 5)]


def test_balanced_ranges_follow_weight_not_count():
    weights = np.array([100, 1, 1, 1, 1, 1, 1, 94], float)
    ranges = balanced_ranges(weights, 2)
    assert ranges == [(0, 1), (1, 8)]
    balance = measure_balance(weights, ranges)
    assert balance.max_over_mean <= measure_balance(weights, even_ranges(8, 2)).max_over_mean
    assert balance.imbalance_percent < 5


def test_balanced_ranges_are_contiguous_and_never_empty_when_items_suffice():
    rng = np.random.default_rng(0)
    for parts in (1, 2, 5, 13, 64):
        weights = rng.lognormal(size=64) * (rng.random(64) > 0.2)
        ranges = balanced_ranges(weights, parts)
        assert ranges[0][0] == 0 and ranges[-1][1] == 64
        assert all(b < e for b, e in ranges)
        assert all(r1[1] == r2[0] for r1, r2 in zip(ranges, ranges[1:]))


def test_balanced_ranges_with_fewer_items_than_parts_leave_the_last_parts_empty():
    assert balanced_ranges(np.array([5.0, 1.0, 5.0]), 4) == [(0, 1), (1, 2), (2, 3), (3, 3)]
    assert balanced_ranges(np.array([]), 2) == [(0, 0), (0, 0)]


def test_balanced_beats_even_on_uneven_batches():
    weights = np.concatenate([np.full(8, 10.0), np.full(8, 1.0)])
    balanced = measure_balance(weights, balanced_ranges(weights, 4))
    even = measure_balance(weights, even_ranges(16, 4))
    assert balanced.max_over_mean < even.max_over_mean


def test_plan_executor_ids_are_node_major_and_ranges_cover_the_data():
    config = ClusterConfig(nodes=4, executors_per_node=2, runtime="local", data_dir=Path("b"))
    plan = make_plan(config, summary(np.arange(1, 17), np.ones(100)), addressing=LOOPBACK)
    assert [e.id for e in plan.executors] == list(range(8))
    assert [e.node for e in plan.executors] == [0, 0, 1, 1, 2, 2, 3, 3]
    assert plan.executors[0].batch_range[0] == 0 and plan.executors[-1].batch_range[1] == 16
    assert plan.executors[0].token_range[0] == 0 and plan.executors[-1].token_range[1] == 100
    assert [(n.host, n.port) for n in plan.nodes] == [("127.0.0.1", 7000 + i) for i in range(4)]


def test_plan_even_split_matches_reference_for_every_executor():
    config = ClusterConfig(nodes=3, executors_per_node=2, split="even", runtime="local", data_dir=Path("b"))
    plan = make_plan(config, summary(np.ones(64), np.ones(17800)), addressing=LOOPBACK)
    assert [e.batch_range for e in plan.executors] == reference_ranges(64, 6)
    assert [e.token_range for e in plan.executors] == reference_ranges(17800, 6)


def test_containers_address_nodes_by_service_name():
    plan = make_plan(ClusterConfig(nodes=2, runtime="compose"), addressing=SERVICE_ADDRESSING)
    assert [(n.host, n.port) for n in plan.nodes] == [("redis-0", 7000), ("redis-1", 7000)]
    assert [n.name for n in plan.nodes] == ["redis-0", "redis-1"]  # the service is the node's host


@pytest.mark.parametrize("changes,named", [
    ({"nodes": 3, "base_port": 55534}, "base_port=55534"),  # node 2's cluster bus would be port 65536
    ({"nodes": 10001}, "nodes=10001"),  # node 10000 would take node 0's cluster-bus port
])
def test_nodes_sharing_a_host_need_a_port_each_and_their_bus_ports(changes, named):
    config = ClusterConfig(**changes)
    with pytest.raises(ConfigError) as error:
        make_plan(config, addressing=LOOPBACK)
    assert named in str(error.value)
    assert len(make_plan(config, addressing=SERVICE_ADDRESSING).nodes) == config.nodes


@pytest.mark.parametrize("nodes,replicas", [(3, 1), (3, 2), (4, 1), (5, 3), (16, 2)])
def test_replicas_sit_beside_other_nodes_spread_evenly(nodes, replicas):
    placement = replica_placement(nodes, replicas)
    assert len(placement) == nodes * replicas
    assert sorted(r.index for r in placement) == list(range(nodes, nodes * (1 + replicas)))
    for primary in range(nodes):
        mine = [r for r in placement if r.primary == primary]
        assert sorted(r.number for r in mine) == list(range(1, replicas + 1))
        besides = [r.beside for r in mine]
        assert primary not in besides and len(set(besides)) == replicas  # a lost node takes one copy at most
    hosted = [sum(1 for r in placement if r.beside == node) for node in range(nodes)]
    assert hosted == [replicas] * nodes
    assert replica_placement(nodes, 0) == []


def test_replica_placement_refuses_a_replica_beside_its_primary():
    with pytest.raises(ValueError, match="beside"):
        replica_placement(3, 3)


def test_plan_replicas_copy_their_primary_and_take_the_addresses_after_the_primaries():
    config = ClusterConfig(nodes=3, replicas=2, base_port=7000)
    plan = make_plan(config, addressing=LOOPBACK)
    assert [n.port for n in plan.nodes] == [7000, 7001, 7002]
    assert [(r.name, r.port, r.replica_of, r.beside) for r in plan.replicas] == [
        ("redis-3", 7003, 0, 1), ("redis-4", 7004, 1, 2), ("redis-5", 7005, 2, 0),
        ("redis-6", 7006, 0, 2), ("redis-7", 7007, 1, 0), ("redis-8", 7008, 2, 1)]
    assert all(r.slots == plan.nodes[r.replica_of].slots for r in plan.replicas)
    assert [n.index for n in plan.redis_nodes] == list(range(9))
    containers = make_plan(config.replace(runtime="compose"), addressing=SERVICE_ADDRESSING)
    assert [(r.host, r.port) for r in containers.replicas][:2] == [("redis-3", 7000), ("redis-4", 7000)]
    assert "replicas" not in make_plan(config.replace(replicas=0), addressing=LOOPBACK).to_dict()


def test_replicas_on_one_host_need_ports_too():
    config = ClusterConfig(nodes=3, replicas=2, base_port=55528)  # instance 8's bus port would be 65536
    with pytest.raises(ConfigError, match="base_port=55528"):
        make_plan(config, addressing=LOOPBACK)
    assert len(make_plan(config, addressing=SERVICE_ADDRESSING).redis_nodes) == 9


def test_more_executors_than_batches_names_the_idle_ones():
    config = ClusterConfig(nodes=2, executors_per_node=2, data_dir=Path("b"))
    with pytest.raises(ConfigError, match=r"ids 3\b"):
        make_plan(config, summary([5.0, 5.0, 5.0], np.ones(10)), addressing=SERVICE_ADDRESSING)
    plan = make_plan(config.replace(allow_idle=True), summary([5.0, 5.0, 5.0], np.ones(10)),
                     addressing=SERVICE_ADDRESSING)
    assert [e.id for e in plan.executors if e.idle] == [3]


def test_empty_vocabulary_is_refused():
    with pytest.raises(ConfigError, match="empty"):
        make_plan(ClusterConfig(data_dir=Path("b")), summary([1.0], []), addressing=SERVICE_ADDRESSING)


@pytest.mark.parametrize("changes,named", [
    ({"nodes": 0}, "nodes=0"),
    ({"nodes": 16385}, "nodes=16385"),
    ({"executors_per_node": 0}, "executors_per_node=0"),
    ({"base_port": 80}, "base_port=80"),
    ({"base_port": 60000}, "base_port=60000"),
    ({"name": "Bad Name"}, "name='Bad Name'"),
    ({"runtime": "kubernetes"}, "runtime='kubernetes'"),
    ({"split": "random"}, "split='random'"),
    ({"topics": "ten"}, "topics='ten'"),
    ({"redis_memory": "lots"}, "redis_memory='lots'"),
    ({"nodes": 3, "replicas": -1}, "replicas=-1"),
    ({"nodes": 2, "replicas": 1}, "at least 3 nodes"),  # the survivor of two primaries is no majority
    ({"nodes": 3, "replicas": 3}, "at most 2 with 3 nodes"),  # one would sit beside its own primary
    ({"nodes": 3, "replicas": 1, "heartbeat_timeout": 8.0}, "heartbeat_timeout=8.0"),  # expires before a failover
])
def test_bad_config_values_are_named(changes, named):
    with pytest.raises(ConfigError) as error:
        ClusterConfig(**changes)
    assert named in str(error.value)


def test_config_file_overrides_and_unknown_keys(tmp_path):
    path = tmp_path / "cluster.yaml"
    path.write_text("nodes: 3\nexecutors_per_node: 2\ndata_dir: corpus\n")
    config = ClusterConfig.from_file(path, nodes=5)
    assert (config.nodes, config.executors_per_node, config.data_dir) == (5, 2, Path("corpus"))
    path.write_text("nodes: 3\nnodez: 4\n")
    with pytest.raises(ConfigError, match="nodez"):
        ClusterConfig.from_file(path)
