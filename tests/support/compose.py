"""Helpers for the compose runtime tests: what a cluster left on Docker."""

from __future__ import annotations

from redis.cluster import RedisCluster

from artm_compose import labels
from artm_compose.docker_access import docker_client
from artm_compose.redis_client import cluster_client
from artm_compose.state import StateDir, read_password

QUIET = lambda _message: None  # noqa: E731


def leftovers(cluster: str) -> list[str]:
    """Every container, network and volume labelled with ``cluster`` by the compose runtime."""
    client = docker_client()
    selector = {"label": labels.selector(cluster, "compose")}
    return ([f"container {c['Names'][0].lstrip('/')}" for c in client.api.containers(all=True, filters=selector)]
            + [f"network {n.name}" for n in client.networks.list(filters=selector)]
            + [f"volume {v.name}" for v in client.volumes.list(filters=selector)])


def host_client(cluster: str, state: StateDir, port: int) -> RedisCluster:
    """A client of a running compose cluster's Redis from this host, at the Redis containers' own addresses
    (a Linux host reaches its bridge networks; the runtime itself never relies on that)."""
    found = docker_client().containers.list(filters={"label": labels.selector(cluster, "compose", role="redis")})
    addresses = [(network["IPAddress"], port) for container in found
                 for network in container.attrs["NetworkSettings"]["Networks"].values()]
    return cluster_client(addresses, read_password(state.password_file))
