"""Shared fixtures: real local Redis Clusters that are always torn down (helpers live in ``support``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from artm_compose.api import Cluster
from artm_compose.config import ClusterConfig
from artm_compose.errors import ConfigError
from support.ports import free_port_block


@pytest.fixture
def local_cluster(tmp_path: Path) -> Iterator[Callable[..., Cluster]]:
    """Factory: ``local_cluster(nodes=4, **config)`` brings up a real local Redis Cluster and returns its
    :class:`Cluster` (``.plan``, ``.state.addresses``, ``.state.password_file``); all are stopped at teardown."""
    clusters: list[Cluster] = []

    def make(nodes: int = 4, *, up: bool = True, **overrides) -> Cluster:
        state_dir = overrides.pop("state_dir", tmp_path / f"state-{len(clusters)}")
        for _ in range(5):
            config = ClusterConfig(name=overrides.pop("name", "test"), runtime="local", nodes=nodes,
                                   base_port=free_port_block(nodes * (1 + overrides.get("replicas", 0))), state_dir=state_dir, **overrides)
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
