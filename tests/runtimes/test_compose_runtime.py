"""The compose runtime on this machine's Docker: real images, containers, networks and Redis Clusters.

Marked ``containers``: each test builds the images if they are missing (cached by content) and
removes everything it started, checked by label.
"""

from __future__ import annotations

import json
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from artm_compose import labels
from artm_compose.api import Cluster
from artm_compose.config import ClusterConfig
from artm_compose.docker_access import docker_client
from artm_compose.errors import ConfigError, RuntimeUnavailable
from artm_compose.images.build import build_images
from artm_compose.record import ClusterRecord, Status
from artm_compose.runtimes.compose.runtime import ComposeRuntime
from artm_compose.slots import SLOT_COUNT
from support.compose import QUIET, leftovers
from support.ports import free_port_block

pytestmark = pytest.mark.containers


@pytest.fixture(scope="session")
def images():
    """The Redis and artm images, built once per session if missing."""
    return build_images(echo=QUIET)


@pytest.fixture
def compose_cluster(tmp_path: Path, images) -> Iterator[Callable[..., Cluster]]:
    """Factory: ``compose_cluster(nodes=4, up=True, **config)``; every cluster is taken down at teardown and
    the test fails if anything labelled with its name is left on Docker."""
    made: list[Cluster] = []

    def make(nodes: int = 1, *, up: bool = True, **overrides) -> Cluster:
        name = overrides.pop("name", f"t{secrets.token_hex(4)}")
        config = ClusterConfig(name=name, runtime="compose", nodes=nodes,
                               state_dir=overrides.pop("state_dir", tmp_path / f"state-{len(made)}"), **overrides)
        cluster = Cluster(config)
        made.append(cluster)
        if up:
            cluster.up(detach=True, echo=QUIET)
        return cluster

    yield make
    for cluster in reversed(made):
        if cluster.state.exists():
            ComposeRuntime(cluster.state).down(echo=QUIET, volumes=True)
    left = {c.config.name: leftovers(c.config.name) for c in made if leftovers(c.config.name)}
    assert not left, f"left on Docker after down: {left}"


def _redis_containers(cluster: Cluster) -> list:
    client = docker_client()
    return client.containers.list(all=True, filters={
        "label": labels.selector(cluster.config.name, "compose", role="redis")})


@pytest.mark.parametrize("nodes", [1, 4])
def test_up_status_down(compose_cluster, nodes):
    cluster = compose_cluster(nodes=nodes)
    status = cluster.status()
    assert status.healthy, status.describe()
    assert status.cluster_state == "ok" and status.slots_assigned == SLOT_COUNT
    assert status.count("redis") == (nodes, nodes)
    redis = _redis_containers(cluster)
    assert sorted(c.labels[labels.NODE] for c in redis) == [str(i) for i in range(nodes)]
    deadline = time.monotonic() + 60
    while not all(c.attrs["State"]["Health"]["Status"] == "healthy" for c in redis):
        assert time.monotonic() < deadline, [(c.name, c.attrs["State"]["Health"]) for c in redis]
        time.sleep(1)
        redis = _redis_containers(cluster)
    assert all(not c.attrs["HostConfig"]["PortBindings"] for c in redis), "ports published without --publish"
    messages = ComposeRuntime(cluster.state).down(echo=QUIET)
    assert any("network" in m for m in messages)
    assert leftovers(cluster.config.name) == []
    assert ClusterRecord.load(cluster.state).status == Status.STOPPED
    assert ComposeRuntime(cluster.state).down(echo=QUIET) == [
        f"nothing of cluster {cluster.config.name!r} is left on Docker"]


def test_up_twice_changes_nothing(compose_cluster):
    cluster = compose_cluster(nodes=3)
    before = {c.name: c.id for c in _redis_containers(cluster)}
    result = cluster.up(detach=True, echo=QUIET)
    assert result.already_up and result.actions == ()
    assert {c.name: c.id for c in _redis_containers(cluster)} == before
    assert cluster.status().healthy


def test_restarted_redis_node_comes_back_empty_and_up_heals_the_cluster(compose_cluster):
    cluster = compose_cluster(nodes=4)
    victim = next(c for c in _redis_containers(cluster) if c.labels[labels.NODE] == "2")
    address = victim.attrs["NetworkSettings"]["Networks"][f"artm-{cluster.config.name}"]["IPAddress"]
    victim.restart(timeout=2)
    victim.reload()
    assert victim.attrs["NetworkSettings"]["Networks"][f"artm-{cluster.config.name}"]["IPAddress"] == address
    broken = cluster.status()
    assert any("redis-2" in p for p in broken.problems), broken.describe()
    result = cluster.up(detach=True, echo=QUIET)
    assert any("assigned slots" in a for a in result.actions), result.actions
    assert any("met redis-2" in a for a in result.actions), result.actions
    healed = cluster.status()
    assert healed.healthy, healed.describe()


def test_published_ports_are_bound_to_loopback_only(compose_cluster):
    port = free_port_block(2)
    cluster = compose_cluster(nodes=2, publish=True, base_port=port)
    bindings = {c.labels[labels.NODE]: c.attrs["HostConfig"]["PortBindings"] for c in _redis_containers(cluster)}
    assert bindings == {str(i): {f"{port}/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port + i)}]}
                        for i in range(2)}
    with socket.create_connection(("127.0.0.1", port + 1), timeout=5) as connection:
        connection.sendall(b"PING\r\n")
        assert connection.recv(64).startswith(b"-NOAUTH")


def test_taken_port_is_refused_before_anything_starts(compose_cluster):
    port = free_port_block(2)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port + 1))
        holder.listen()
        cluster = compose_cluster(nodes=2, publish=True, base_port=port, up=False)
        with pytest.raises(ConfigError, match=f"port 127.0.0.1:{port + 1} for redis-1 is already in use"):
            cluster.up(echo=QUIET)
    assert leftovers(cluster.config.name) == []


def test_taken_container_name_is_refused_before_anything_starts(compose_cluster, images):
    cluster = compose_cluster(nodes=2, up=False)
    squatter = docker_client().containers.create(images.redis, name=f"artm-{cluster.config.name}-redis-1")
    try:
        with pytest.raises(ConfigError, match=f"container name artm-{cluster.config.name}-redis-1 is taken by "
                                              f"container artm-{cluster.config.name}-redis-1 \\(not made by"):
            cluster.up(echo=QUIET)
        assert leftovers(cluster.config.name) == []
    finally:
        squatter.remove(force=True)


def test_cluster_name_in_use_elsewhere_is_refused(compose_cluster, tmp_path):
    first = compose_cluster(nodes=1)
    second = compose_cluster(nodes=1, name=first.config.name, state_dir=tmp_path / "elsewhere", up=False)
    with pytest.raises(ConfigError, match=f"cluster name '{first.config.name}' is in use by the compose cluster "
                                          f"of state dir {first.state.root}"):
        second.up(echo=QUIET)
    assert first.status().healthy


def test_another_layout_on_a_running_cluster_is_refused(compose_cluster):
    cluster = compose_cluster(nodes=2)
    bigger = Cluster(cluster.config.replace(nodes=3))
    with pytest.raises(ConfigError, match="is up with another Redis layout"):
        bigger.up(echo=QUIET)
    assert len(_redis_containers(cluster)) == 2


def test_bad_configs_are_refused_before_docker_is_touched(compose_cluster, tmp_path):
    with pytest.raises(ConfigError, match="redis_memory='lots'"):
        compose_cluster(nodes=1, redis_memory="lots", up=False)
    with pytest.raises(ConfigError, match="nodes=0"):
        compose_cluster(nodes=0, up=False)


def test_no_docker_daemon_points_to_the_local_runtime(compose_cluster, monkeypatch, tmp_path):
    cluster = compose_cluster(nodes=1, up=False)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    with pytest.raises(RuntimeUnavailable, match="--runtime local"):
        cluster.up(echo=QUIET)


def test_logs_by_component_and_role(compose_cluster):
    cluster = compose_cluster(nodes=2)
    runtime = ComposeRuntime(cluster.state)
    one = "".join(runtime.logs("redis-1"))
    assert "Ready to accept connections" in one
    both = "".join(runtime.logs("redis"))
    assert "==> redis-0 <==" in both and "==> redis-1 <==" in both
    with pytest.raises(ConfigError, match="component='nosuch' has no container"):
        list(runtime.logs("nosuch"))


def test_rendered_file_runs_with_plain_docker_compose(compose_cluster):
    """`render` output is usable by hand: `docker compose up` bootstraps the cluster by itself."""
    cluster = compose_cluster(nodes=2, up=False)
    ComposeRuntime(cluster.state).render(cluster.plan)
    compose_file = cluster.state.root / "compose.yml"
    result = subprocess.run(["docker", "compose", "-f", str(compose_file), "up", "-d", "--wait"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    control = docker_client().containers.get(f"artm-{cluster.config.name}-control")
    assert '"actions": ["redis-0: assigned slots 0-8191"' in control.logs().decode()
    assert cluster.status().healthy




def test_down_finds_the_containers_by_state_dir_when_cluster_json_is_gone(compose_cluster):
    cluster = compose_cluster(nodes=1)
    cluster.state.cluster_json.unlink()
    messages = ComposeRuntime(cluster.state).down(echo=QUIET)
    assert f"removed container artm-{cluster.config.name}-redis-0" in messages
    assert leftovers(cluster.config.name) == []


def test_down_removes_a_cluster_started_here_under_another_name_and_honours_name(compose_cluster, tmp_path):
    # The state dir's record names another cluster (as an old `up` used to overwrite it): the containers
    # of the first one still carry this state dir's label, and `down` finds them by it.
    first = compose_cluster(nodes=1)
    record = json.loads(first.state.cluster_json.read_text())
    first.state.cluster_json.write_text(json.dumps({**record, "cluster": "someone-else"}))
    messages = ComposeRuntime(first.state).down(echo=QUIET)
    assert f"removed container artm-{first.config.name}-redis-0" in messages
    assert leftovers(first.config.name) == []
    # `down --name N` removes cluster N even from a state dir that knows nothing of it.
    second = compose_cluster(nodes=1)
    elsewhere = tmp_path / "elsewhere"
    code = subprocess.run([str(Path(sys.executable).with_name("artm-compose")), "down", "--runtime", "compose",
                           "--state-dir", str(elsewhere), "--name", second.config.name],
                          capture_output=True, text=True, timeout=120)
    assert code.returncode == 0, code.stderr
    assert f"removed container artm-{second.config.name}-redis-0" in code.stdout
    assert leftovers(second.config.name) == []
