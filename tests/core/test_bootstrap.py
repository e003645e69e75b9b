"""Bootstrap: CLUSTER NODES parsing, and real redis-server nodes joined, healed, and refused."""

from __future__ import annotations

import dataclasses
import time

import pytest

from artm_compose import bootstrap as bootstrap_module
from artm_compose.bootstrap import (NodeTarget, bootstrap, check_health, compress, expand, parse_cluster_nodes,
                                    parse_info, seeded_nodes_conf, targets_from_plan)
from artm_compose.errors import BootstrapError
from artm_compose.processes import ProcessRecord, is_running, start_process, stop_process
from artm_compose.redis_client import node_client
from artm_compose.slots import SLOT_COUNT
from artm_compose.state import read_password

from support.ports import requires_redis

NODES_TEXT = """\
07c37dfeb235213a872192d90877d0cd55635b91 127.0.0.1:30004@31004,host-a slave e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 0 1426238317239 4 connected
67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:30002@31002 master - 0 1426238316232 2 connected 5461-10922 [5461->-e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca]
e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca :30001@31001 myself,master - 0 0 1 connected 0-5460 16383
6ec23923021cf3ffec47632106199cb7f496ce01 127.0.0.1:30005@31005 handshake - 1426238316232 0 0 disconnected
"""


def test_parse_cluster_nodes_reads_ids_addresses_flags_and_slots():
    views = parse_cluster_nodes(NODES_TEXT)
    assert [v.id[:4] for v in views] == ["07c3", "67ed", "e7d1", "6ec2"]
    replica, other, me, shaking = views
    assert (replica.ip, replica.port) == ("127.0.0.1", 30004) and replica.healthy
    assert other.slots == ((5461, 10922),)  # the migration entry is not a slot range
    assert me.myself and me.ip == "" and me.slots == ((0, 5460), (16383, 16383)) and me.healthy
    assert not shaking.healthy


def test_parse_info_and_slot_ranges():
    assert parse_info("# Cluster\r\ncluster_state:ok\r\ncluster_slots_assigned:16384\r\n") == {
        "cluster_state": "ok", "cluster_slots_assigned": "16384"}
    assert compress([7, 1, 2, 3, 9, 8]) == [(1, 3), (7, 9)]
    assert expand([(1, 3), (7, 7)]) == {1, 2, 3, 7}
    assert compress(expand([(0, SLOT_COUNT - 1)])) == [(0, SLOT_COUNT - 1)]


def test_seeded_nodes_conf_lists_every_node_once_with_its_slots_and_a_distinct_epoch():
    targets = [NodeTarget(index=i, name=f"redis-{i}", host="127.0.0.1", port=7000 + i, slots=slots,
                          meet_host="127.0.0.1", meet_port=7000 + i, bus_port=17000 + i)
               for i, slots in enumerate([(0, 5460), (5461, 10922), (10923, 16383)])]
    files = seeded_nodes_conf(targets)
    assert len(files) == 3
    views = [parse_cluster_nodes(text) for text in files]
    ids = [v.id for v in views[0]]
    assert len(set(ids)) == 3 and all(len(i) == 40 for i in ids)
    for me, (text, view) in enumerate(zip(files, views)):
        assert [v.id for v in view] == ids  # the same ids in every file
        assert [v.myself for v in view] == [i == me for i in range(3)]
        assert [(v.ip, v.port, v.slots) for v in view] == [("127.0.0.1", t.port, (t.slots,)) for t in targets]
        assert [v.config_epoch for v in view] == [1, 2, 3]
        assert text.endswith("vars currentEpoch 3 lastVoteEpoch 0\n")
        assert "@17000 " in text


# -- real nodes ---------------------------------------------------------------------------------------

def restart_empty(cluster, indices) -> None:
    """Stop nodes ``indices`` of a running cluster and start them again from empty directories, unjoined."""
    state = cluster.state
    for index in indices:
        component = f"redis-{index}"
        stop_process(ProcessRecord.load(state.pid_record(component)))
        state.empty_redis_dir(index)
        _, record = start_process(component, ["redis-server", str(state.redis_conf(index))],
                                  log=state.log(component), cwd=state.redis_dir(index))
        record.save(state.pid_record(component))
    password = read_password(state.password_file)
    deadline = time.monotonic() + 10
    for index in indices:
        node = cluster.plan.redis_nodes[index]
        while True:
            try:
                node_client(node.host, node.port, password).ping()
                break
            except Exception:
                assert time.monotonic() < deadline, f"redis-{index} did not come back"
                time.sleep(0.02)


def slots_seen_by(cluster, index) -> dict[str, list]:
    password = read_password(cluster.state.password_file)
    node = cluster.plan.nodes[index]
    views = parse_cluster_nodes(node_client(node.host, node.port, password).execute_command("CLUSTER", "NODES"))
    return {f"{v.ip}:{v.port}" if not v.myself else f"127.0.0.1:{node.port}": list(v.slots) for v in views}


@pytest.mark.integration
@requires_redis
def test_fresh_nodes_joined_with_single_addslots_for_old_servers(local_cluster, monkeypatch):
    cluster = local_cluster(nodes=3)
    restart_empty(cluster, [0, 1, 2])
    monkeypatch.setattr(bootstrap_module, "_major_version", lambda client: 6)
    report = bootstrap(targets_from_plan(cluster.plan), read_password(cluster.state.password_file), timeout=20)
    assert sum("assigned slots" in a for a in report.actions) == 3
    assert sum(" met " in a for a in report.actions) == 2
    expected = {f"{n.host}:{n.port}": [n.slots] for n in cluster.plan.nodes}
    for index in range(3):
        assert slots_seen_by(cluster, index) == expected


@pytest.mark.integration
@requires_redis
def test_timeout_names_the_node_that_did_not_join_and_the_unassigned_slots(local_cluster):
    cluster = local_cluster(nodes=3)
    restart_empty(cluster, [0, 1, 2])
    targets = targets_from_plan(cluster.plan)
    # redis-2 is announced at a port where nothing listens: the MEET never completes.
    targets[2] = dataclasses.replace(targets[2], meet_port=targets[2].port + 3, bus_port=targets[2].bus_port + 3)
    started = time.monotonic()
    with pytest.raises(BootstrapError) as caught:
        bootstrap(targets, read_password(cluster.state.password_file), timeout=3)
    assert time.monotonic() - started < 10
    message = str(caught.value)
    last = cluster.plan.nodes[2]
    assert "not healthy after 3 s" in message
    assert f"redis-0 (127.0.0.1:{cluster.plan.nodes[0].port}) does not know redis-2" in message
    assert f"unassigned: {last.slots[0]}-{last.slots[1]}" in message


@pytest.mark.integration
@requires_redis
def test_a_node_restarted_empty_is_forgotten_reassigned_and_met_again(local_cluster):
    cluster = local_cluster(nodes=3)
    password = read_password(cluster.state.password_file)
    restart_empty(cluster, [1])
    assert not check_health(targets_from_plan(cluster.plan), password).ok
    report = bootstrap(targets_from_plan(cluster.plan), password, timeout=30)
    assert any("forgot stale node" in a for a in report.actions)
    assert any(a.startswith("redis-1: assigned slots") for a in report.actions)
    assert any("met redis-1" in a for a in report.actions)
    health = check_health(targets_from_plan(cluster.plan), password)
    assert health.ok, health.problems
    assert bootstrap(targets_from_plan(cluster.plan), password, timeout=10).no_op


@pytest.mark.integration
@requires_redis
def test_a_node_serving_another_plans_slots_is_refused(local_cluster):
    cluster = local_cluster(nodes=2)
    targets = targets_from_plan(cluster.plan)
    swapped = [dataclasses.replace(targets[0], slots=targets[1].slots),
               dataclasses.replace(targets[1], slots=targets[0].slots)]
    with pytest.raises(BootstrapError, match="redis-0 .* serves slots 0-8191 outside its planned range 8192-16383"):
        bootstrap(swapped, read_password(cluster.state.password_file), timeout=5)
    assert all(is_running(ProcessRecord.load(p)) for p in cluster.state.pids_dir.glob("*.json"))


def roles(cluster) -> dict[str, str]:
    """Each live instance's role as the first answering node sees it: 'master' or 'replica of redis-i'."""
    password = read_password(cluster.state.password_file)
    by_port = {n.port: n.name for n in cluster.plan.redis_nodes}
    for node in cluster.plan.redis_nodes:
        try:
            views = parse_cluster_nodes(node_client(node.host, node.port, password, timeout=1.0)
                                        .execute_command("CLUSTER", "NODES"))
        except Exception:
            continue
        names = {v.id: by_port[v.port if not v.myself else node.port] for v in views}
        return {names[v.id]: ("master" if not v.replica else f"replica of {names.get(v.master, '?')}")
                for v in views if "fail" not in v.flags}
    raise AssertionError("no Redis node answers")


@pytest.mark.integration
@requires_redis
def test_replicas_are_attached_and_a_lost_primary_fails_over_then_rejoins_as_replica(local_cluster):
    cluster = local_cluster(nodes=3, replicas=1, node_timeout_ms=1000)
    password = read_password(cluster.state.password_file)
    assert roles(cluster) == {"redis-0": "master", "redis-1": "master", "redis-2": "master",
                              "redis-3": "replica of redis-0", "redis-4": "replica of redis-1",
                              "redis-5": "replica of redis-2"}
    targets = targets_from_plan(cluster.plan)
    assert check_health(targets, password).ok
    assert bootstrap(targets, password, timeout=10).no_op
    restart_empty(cluster, range(6))  # as containers start: no seeded nodes.conf, slots go to the primaries
    report = bootstrap(targets, password, timeout=30)
    assert sorted(a.split(":")[0] for a in report.actions if "assigned slots" in a) == ["redis-0", "redis-1", "redis-2"]
    assert roles(cluster) == {"redis-0": "master", "redis-1": "master", "redis-2": "master",
                              "redis-3": "replica of redis-0", "redis-4": "replica of redis-1",
                              "redis-5": "replica of redis-2"}
    stop_process(ProcessRecord.load(cluster.state.pid_record("redis-1")))
    deadline = time.monotonic() + 20  # node timeout 1 s, then the election
    while roles(cluster).get("redis-4") != "master":
        assert time.monotonic() < deadline, f"redis-4 was not promoted: {roles(cluster)}"
        time.sleep(0.1)
    restart_empty(cluster, [1])
    report = bootstrap(targets, password, timeout=30)
    assert "redis-1: replicates redis-4" in report.actions
    assert not any("assigned slots" in a for a in report.actions)  # redis-4 serves them since the failover
    health = check_health(targets, password)
    assert health.ok, health.problems
    assert roles(cluster)["redis-1"] == "replica of redis-4"
