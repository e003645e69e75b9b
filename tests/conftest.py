"""Shared fixtures: free port blocks and real local Redis Clusters that are always torn down."""

from __future__ import annotations

import random
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from artm_compose.api import Cluster
from artm_compose.config import CLUSTER_BUS_OFFSET, ClusterConfig
from artm_compose.errors import ConfigError
from artm_compose.processes import port_free

_PORT_FLOOR = 12000


def _ephemeral_floor() -> int:
    """Lowest port the kernel hands to outgoing connections: stay below it with node and bus ports."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port_block(count: int, attempts: int = 500) -> int:
    """A base port such that ``base..base+count-1`` and their cluster-bus ports are all free now.

    Random, so that tests running at the same time (other sessions, other workers) rarely pick the
    same block; ``local_cluster`` retries with a new block when it loses a race anyway.
    """
    ceiling = _ephemeral_floor() - CLUSTER_BUS_OFFSET - count
    for _ in range(attempts):
        base = random.randrange(_PORT_FLOOR, ceiling)
        ports = [p for i in range(count) for p in (base + i, base + i + CLUSTER_BUS_OFFSET)]
        if all(port_free(p) for p in ports):
            return base
    raise RuntimeError(f"no free block of {count} ports (and their bus ports) found in {attempts} attempts")


requires_redis = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")


@pytest.fixture
def local_cluster(tmp_path: Path) -> Iterator[Callable[..., Cluster]]:
    """Factory: ``local_cluster(nodes=4, **config)`` brings up a real local Redis Cluster and returns its
    :class:`Cluster` (``.plan``, ``.state.addresses``, ``.state.password_file``); all are stopped at teardown."""
    clusters: list[Cluster] = []

    def make(nodes: int = 4, *, up: bool = True, **overrides) -> Cluster:
        state_dir = overrides.pop("state_dir", tmp_path / f"state-{len(clusters)}")
        for _ in range(5):
            config = ClusterConfig(name=overrides.pop("name", "test"), runtime="local", nodes=nodes,
                                   base_port=free_port_block(nodes), state_dir=state_dir, **overrides)
            cluster = Cluster(config)
            clusters.append(cluster)
            if not up:
                return cluster
            try:
                cluster.up(detach=True, echo=lambda _message: None)
            except ConfigError as error:
                if "already in use" not in str(error):
                    raise
                continue  # another test took a port between the check and the start: new block
            return cluster
        raise RuntimeError("could not start a local cluster: ports kept being taken")

    yield make
    for cluster in reversed(clusters):
        cluster.down(echo=lambda _message: None)
