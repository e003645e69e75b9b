"""Connections to the cluster: the password comes from a file, never from a command line.

``node_client`` talks to one instance (bootstrap, health checks); ``cluster_client`` is a
``RedisCluster`` for data, optionally with an address remap for clients outside the cluster's
network (PITFALLS.md, "Addresses").

``timeout`` bounds each reply; ``connect_timeout`` (at most ``timeout``) bounds opening a connection, which
the Redis host's kernel answers whatever Redis itself is doing, so it can be much shorter inside the
cluster's network (engine.connect.CONNECT_TIMEOUT).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.retry import Retry

from artm_compose.errors import ConfigError
from artm_compose.state import read_password

Address = tuple[str, int]


def node_client(host: str, port: int, password: str | None, *, username: str | None = None,
                timeout: float = 5.0, connect_timeout: float = 2.0, retries: int | None = None) -> redis.Redis:
    """A client of one Redis instance, answers decoded to ``str``. ``retries``: how often a command is tried
    again after a connection error or timeout (default: redis-py's, 10 times); 0 for probes that are polled."""
    retry = {} if retries is None else {"retry": Retry(NoBackoff(), retries)}
    return redis.Redis(host=host, port=port, username=username, password=password, decode_responses=True,
                       socket_timeout=timeout, socket_connect_timeout=min(timeout, connect_timeout), **retry)


def cluster_client(addresses: Sequence[Address], password: str | None, *, username: str | None = None,
                   address_remap: Callable[[Address], Address] | None = None,
                   decode_responses: bool = False, timeout: float = 10.0,
                   connect_timeout: float = 2.0) -> RedisCluster:
    """A cluster client that starts from ``addresses`` and follows MOVED redirections; it logs in as
    ``username`` (an ACL user, acl.py) or, without one, as Redis's default user (the cluster password)."""
    return RedisCluster(startup_nodes=[ClusterNode(host, port) for host, port in addresses],
                        username=username, password=password, address_remap=address_remap,
                        decode_responses=decode_responses, socket_timeout=timeout,
                        socket_connect_timeout=min(timeout, connect_timeout))


def read_addresses(path: Path) -> list[Address]:
    """Parse an addresses file: one ``HOST PORT`` per line, blank lines ignored."""
    addresses = []
    try:
        lines = Path(path).read_text().splitlines()
    except FileNotFoundError:
        raise ConfigError(f"addresses file {path} does not exist") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            raise ConfigError(f"{path}:{number}: expected 'HOST PORT', got {line!r}")
        addresses.append((parts[0], int(parts[1])))
    if not addresses:
        raise ConfigError(f"addresses file {path} lists no instance")
    return addresses


def cluster_client_from_files(addresses_path: Path, password_file: Path, **options) -> RedisCluster:
    """A cluster client from a state directory's ``addresses.txt`` and ``redis.password``."""
    return cluster_client(read_addresses(addresses_path), read_password(password_file), **options)
