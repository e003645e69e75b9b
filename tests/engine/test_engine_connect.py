"""The engine's Redis client tells a lost node from a slow one: a command to the address of a killed Redis
container fails within a few connect timeouts (and redis-py's retries ride the failover out at that pace),
while a node that answers late (busy, or here stopped) is waited for, never taken for lost."""

from __future__ import annotations

import argparse
import os
import signal
import threading
import time

import pytest
from redis.exceptions import RedisClusterException, RedisError

from artm_compose import labels
from artm_compose.docker_access import docker_client
from artm_compose.engine.connect import CONNECT_TIMEOUT, add_connection_flags, connect
from artm_compose.images.build import build_images
from artm_compose.processes import ProcessRecord
from artm_compose.redis_client import node_client
from artm_compose.waiting import wait_until
from support.compose import QUIET
from support.ports import requires_redis


def engine_client(host: str, port: int, password_file=None):
    """The cluster client a master or an executor makes from its command line (engine.connect)."""
    parser = argparse.ArgumentParser()
    add_connection_flags(parser)
    argv = ["--redis-ip", host, "--redis-port", str(port), "--heartbeat-timeout", "10"]
    if password_file is not None:
        argv += ["--redis-password-file", str(password_file)]
    return connect(parser.parse_args(argv), deadline=time.monotonic() + 60)


@pytest.mark.integration
@requires_redis
def test_a_stopped_redis_node_is_waited_for_not_taken_for_lost(local_cluster):
    # Stopped for 4 connect timeouts: its kernel still accepts the connection, and the reply comes once it goes on.
    cluster = local_cluster(nodes=1)
    node = cluster.plan.redis_nodes[0]
    client = engine_client(node.host, node.port, cluster.state.password_file)
    client.set("ac:test:probe", b"before")
    for known in client.get_nodes():  # the next command opens a new connection: to the stopped node
        known.redis_connection.connection_pool.disconnect()
    pid = ProcessRecord.load(cluster.state.pid_record(node.name)).pid
    stopped = 4 * CONNECT_TIMEOUT
    os.kill(pid, signal.SIGSTOP)
    resume = threading.Timer(stopped, os.kill, (pid, signal.SIGCONT))
    resume.start()
    try:
        started = time.monotonic()
        assert client.get("ac:test:probe") == b"before"
        assert time.monotonic() - started >= stopped * 0.9  # answered by the node itself, once it went on
    finally:
        resume.cancel()
        os.kill(pid, signal.SIGCONT)
        client.close()


@pytest.mark.containers
def test_a_command_to_a_killed_redis_container_fails_within_a_few_connect_timeouts(tmp_path):
    # A killed container's address refuses nothing: connecting to it times out. One node serving every slot,
    # so no failover follows and the client gives up once its refresh of the slot table reached no node.
    name = f"connect{os.getpid()}"
    docker = docker_client()
    network = docker.networks.create(f"artm-{name}", labels={labels.CLUSTER: name})
    container = None
    try:
        container = docker.containers.run(
            build_images(echo=QUIET).redis, entrypoint="redis-server", working_dir="/tmp", detach=True,
            command=["--port", "7000", "--cluster-enabled", "yes", "--protected-mode", "no", "--save", "",
                     "--appendonly", "no"],
            labels={labels.CLUSTER: name}, network=network.name)
        container.reload()
        host = container.attrs["NetworkSettings"]["Networks"][network.name]["IPAddress"]
        admin = wait_until(lambda: _answering(host), 60, f"redis-server in container {container.name} to answer")
        admin.execute_command("CLUSTER", "ADDSLOTSRANGE", "0", "16383")
        wait_until(lambda: admin.execute_command("CLUSTER", "INFO").find("cluster_state:ok") >= 0, 60,
                   "the one-node cluster to serve every slot")
        client = engine_client(host, 7000)
        assert client.blpop(["ac:test:acks"], timeout=0.2) is None
        container.kill()
        started = time.monotonic()
        with pytest.raises((RedisError, RedisClusterException)):
            client.blpop(["ac:test:acks"], timeout=0.2)
        # Old clients waited 2 s a connect (at least 4 s here); the engine's take CONNECT_TIMEOUT a try.
        assert time.monotonic() - started < 6 * CONNECT_TIMEOUT
    finally:
        if container is not None:
            container.remove(force=True)
        network.remove()


def _answering(host: str):
    client = node_client(host, 7000, None, timeout=1.0)
    try:
        client.ping()
    except RedisError:
        return None
    return client
