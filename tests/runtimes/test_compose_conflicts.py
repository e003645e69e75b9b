"""What keeps `up` from starting, decided from an inventory of Docker objects (pure, no Docker needed)."""

from __future__ import annotations


from artm_compose import labels
from artm_compose.config import ClusterConfig
from artm_compose.containers import SERVICE_ADDRESSING
from artm_compose.plan import make_plan
from artm_compose.render import redis_fingerprint
from artm_compose.runtimes.compose.runtime import DockerObject, Inventory, find_conflicts, redis_lost
from artm_compose.state import StateDir

STATE = StateDir.at("/srv/artm/state")


def plan(**overrides):
    return make_plan(ClusterConfig(name="demo", runtime="compose", state_dir=STATE.root, **overrides),
                     addressing=SERVICE_ADDRESSING)


def ours(name: str, role: str, *, running: bool = True, state: StateDir = STATE, layout: str | None = None,
         ports: tuple[int, ...] = (), **extra: str) -> DockerObject:
    tags = {labels.CLUSTER: "demo", labels.RUNTIME: "compose", labels.STATE_DIR: str(state.root),
            labels.ROLE: role, **extra}
    if layout is not None:
        tags[labels.REDIS_LAYOUT] = layout
    return DockerObject("container", name, tags, running=running, host_ports=ports)


def test_nothing_on_docker_means_no_conflict():
    assert find_conflicts(plan(nodes=4), STATE, Inventory()) == []


def test_the_same_cluster_up_again_is_no_conflict():
    p = plan(nodes=2)
    layout = redis_fingerprint(p)[:12]
    inventory = Inventory(containers=(ours("artm-demo-redis-0", "redis", layout=layout),
                                      ours("artm-demo-redis-1", "redis", layout=layout),
                                      ours("artm-demo-control", "control"),
                                      ours("artm-demo-master", "master", running=False)))
    assert find_conflicts(p, STATE, inventory) == []


def test_foreign_container_and_network_names_are_named():
    inventory = Inventory(containers=(DockerObject("container", "artm-demo-redis-1", {}),),
                          networks=(DockerObject("network", "artm-demo", {labels.CLUSTER: "other",
                                                                          labels.RUNTIME: "compose"}),))
    problems = find_conflicts(plan(nodes=2), STATE, inventory)
    assert problems == [
        "container name artm-demo-redis-1 is taken by container artm-demo-redis-1 (not made by artm-compose); "
        "choose another --name or remove that container",
        "network name artm-demo is taken by network artm-demo (cluster 'other', runtime compose); "
        "choose another --name or remove that network"]


def test_a_name_used_from_another_state_dir_is_refused():
    elsewhere = StateDir.at("/home/someone/state")
    problems = find_conflicts(plan(), STATE, Inventory(containers=(ours("artm-demo-redis-0", "redis",
                                                                          state=elsewhere),)))
    assert problems[0].startswith("cluster name 'demo' is in use by the compose cluster of state dir "
                                  "/home/someone/state")


def test_another_layout_and_running_training_are_refused():
    inventory = Inventory(containers=(ours("artm-demo-redis-0", "redis", layout="0123456789ab"),
                                      ours("artm-demo-executor-0", "executor"), ours("artm-demo-master", "master")))
    problems = find_conflicts(plan(nodes=3), STATE, inventory)
    assert "is up with another Redis layout (1 Redis container(s) such as artm-demo-redis-0; now 3 node(s)" \
        in problems[0]
    assert problems[1].startswith("training is already running in cluster 'demo' (artm-demo-executor-0, "
                                  "artm-demo-master up)")


def test_training_left_by_a_run_that_lost_its_redis_is_no_conflict():
    p = plan(nodes=2)
    layout = redis_fingerprint(p)[:12]
    redis = (ours("artm-demo-redis-0", "redis", layout=layout), ours("artm-demo-redis-1", "redis", layout=layout))
    training = (ours("artm-demo-executor-0", "executor"), ours("artm-demo-master", "master"))
    every_node_up = Inventory(containers=(*redis, *training))

    def not_asked() -> dict:
        raise AssertionError("with every Redis container running, the cluster is not probed")

    assert not redis_lost(p, every_node_up, not_asked)
    assert find_conflicts(p, STATE, every_node_up)[0].startswith("training is already running")
    one_down = Inventory(containers=(ours("artm-demo-redis-0", "redis", layout=layout, running=False), *redis[1:],
                                     *training))
    assert not redis_lost(p, one_down, lambda: {"cluster_state": "ok"})  # a replica took over
    assert redis_lost(p, one_down, lambda: {"cluster_state": "fail"})
    assert find_conflicts(p, STATE, one_down, left_over=[o.name for o in training]) == []


def test_published_ports_taken_by_others_are_named_and_our_own_are_fine():
    p = plan(nodes=3, publish=True, base_port=7100)
    layout = redis_fingerprint(p)[:12]
    inventory = Inventory(containers=(
        ours("artm-demo-redis-0", "redis", layout=layout, ports=(7100,)),
        DockerObject("container", "web", {}, running=True, host_ports=(7101,)),
    ))
    problems = find_conflicts(p, STATE, inventory, port_is_free=lambda port: port != 7102)
    assert problems == [
        "port 127.0.0.1:7101 for redis-1 is published by container web (not made by artm-compose); "
        "choose another --base-port",
        "port 127.0.0.1:7102 for redis-2 is already in use; choose another --base-port"]
