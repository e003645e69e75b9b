"""Free port blocks for real Redis Clusters, and the skip mark for machines without redis-server."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest

from artm_compose.config import CLUSTER_BUS_OFFSET
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
