"""Swarm test helpers: Swarm mode for the duration of a test module, and what a cluster left behind."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import docker

from artm_compose import labels
from artm_compose.swarm.assign import label_prefix

GATEWAY_BRIDGE = "docker_gwbridge"


@contextmanager
def swarm_mode(client: docker.DockerClient, advertise: str = "127.0.0.1") -> Iterator[str]:
    """The engine's Swarm node id; initialises a single-node Swarm if needed and leaves it afterwards."""
    if client.info()["Swarm"]["LocalNodeState"] == "active":
        yield client.info()["Swarm"]["NodeID"]
        return
    had_bridge = bool(client.networks.list(names=[GATEWAY_BRIDGE]))
    _docker("swarm", "init", "--advertise-addr", advertise)
    try:
        yield client.info()["Swarm"]["NodeID"]
    finally:
        _docker("swarm", "leave", "--force")
        if not had_bridge:
            # Swarm mode creates this bridge and leaves it behind when the node leaves.
            for network in client.networks.list(names=[GATEWAY_BRIDGE]):
                network.remove()


def swarm_leftovers(client: docker.DockerClient, cluster: str) -> list[str]:
    """Every Docker object and node label of ``cluster`` made by the swarm runtime."""
    selector = {"label": labels.selector(cluster, "swarm")}
    found = [f"service {s.name}" for s in client.services.list(filters=selector)]
    found += [f"container {c.name}" for c in client.containers.list(all=True, filters=selector, sparse=True)]
    for kind, collection in (("network", client.networks), ("secret", client.secrets), ("config", client.configs)):
        found += [f"{kind} {item.name}" for item in collection.list(filters=selector)]
    for node in client.nodes.list():
        found += [f"label {key} on {node.attrs['Description']['Hostname']}"
                  for key in node.attrs["Spec"].get("Labels") or {} if key.startswith(label_prefix(cluster))]
    return found


def _docker(*arguments: str) -> None:
    subprocess.run(["docker", *arguments], check=True, capture_output=True, timeout=120)
