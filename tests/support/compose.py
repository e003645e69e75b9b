"""Helpers for the compose runtime tests: what a cluster left on Docker."""

from __future__ import annotations

from artm_compose import labels
from artm_compose.docker_env import docker_client

QUIET = lambda _message: None  # noqa: E731


def leftovers(cluster: str) -> list[str]:
    """Every container, network and volume labelled with ``cluster`` by the compose runtime."""
    client = docker_client()
    selector = {"label": labels.selector(cluster, "compose")}
    return ([f"container {c['Names'][0].lstrip('/')}" for c in client.api.containers(all=True, filters=selector)]
            + [f"network {n.name}" for n in client.networks.list(filters=selector)]
            + [f"volume {v.name}" for v in client.volumes.list(filters=selector)])
