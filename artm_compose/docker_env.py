"""The address space of the Docker host, as the container runtimes' networks must fit into it.

``prefix_for``, ``free_subnet`` and ``layout_network`` pick a subnet for a cluster's bridge
network that overlaps no Docker network and no host route, and lays it out: the gateway, one fixed
address per Redis node (so MEET gets IPs and ``nodes.conf`` stays true across restarts), and a
separate range for the addresses Docker hands out to everything else.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import docker

from artm_compose.docker_access import networks
from artm_compose.errors import ConfigError, RuntimeUnavailable

# Searched in order; Docker's own default pools (172.17-31.x, 192.168.x) come last.
CANDIDATE_POOLS = tuple(ipaddress.ip_network(p) for p in ("10.213.0.0/16", "10.214.0.0/16", "172.30.0.0/15"))
# Room in the dynamic range beyond executors, master and bootstrap (one-off status/export containers).
SPARE_DYNAMIC = 8
SMALLEST_PREFIX = 16


@dataclass(frozen=True)
class NetworkLayout:
    """A cluster network: subnet, gateway, fixed Redis addresses, and the dynamic range."""

    subnet: ipaddress.IPv4Network
    gateway: ipaddress.IPv4Address
    ip_range: ipaddress.IPv4Network
    redis_ips: tuple[ipaddress.IPv4Address, ...]


def layout_network(subnet: ipaddress.IPv4Network, nodes: int) -> NetworkLayout:
    """Fixed addresses in the lower half of ``subnet`` (gateway first, then node 0, 1, ...), dynamic upper half."""
    lower, upper = subnet.subnets(prefixlen_diff=1)
    hosts = list(lower.hosts())
    if nodes + 1 > len(hosts):
        raise ConfigError(f"nodes={nodes}: subnet {subnet} has room for {len(hosts) - 1} fixed Redis addresses")
    return NetworkLayout(subnet=subnet, gateway=hosts[0], ip_range=upper, redis_ips=tuple(hosts[1:nodes + 1]))


def prefix_for(nodes: int, dynamic: int) -> int:
    """The longest prefix whose halves hold ``nodes`` fixed addresses + gateway and ``dynamic`` + spare."""
    needed = max(nodes + 1, dynamic + SPARE_DYNAMIC)
    for prefix in range(24, SMALLEST_PREFIX - 1, -1):
        half = 2 ** (32 - prefix - 1)
        if half - 2 >= needed:
            return prefix
    raise ConfigError(f"nodes={nodes}: too many containers for one bridge network (at most a /{SMALLEST_PREFIX})")


def free_subnet(prefix: int, used: Iterable[ipaddress.IPv4Network],
                pools: Iterable[ipaddress.IPv4Network] = CANDIDATE_POOLS) -> ipaddress.IPv4Network:
    """The first ``/prefix`` in ``pools`` that overlaps none of ``used``."""
    taken = [u for u in used if u.prefixlen > 0]  # the default route overlaps everything
    for pool in pools:
        if pool.prefixlen > prefix:
            continue
        for candidate in pool.subnets(new_prefix=prefix):
            if not any(candidate.overlaps(u) for u in taken):
                return candidate
    raise RuntimeUnavailable(f"no free /{prefix} subnet in {', '.join(map(str, pools))}: every one overlaps "
                             f"a Docker network or a host route; remove unused networks (docker network prune)")


def used_subnets(client: docker.DockerClient | None) -> list[ipaddress.IPv4Network]:
    """IPv4 subnets of every Docker network (if ``client``) and every route of this host."""
    used = list(host_routes())
    if client is not None:
        used += [ipaddress.ip_network(pool.subnet, strict=False) for network in networks(client)
                 for pool in network.pools if ":" not in pool.subnet]
    return used


def host_routes(route_table: Path = Path("/proc/net/route")) -> list[ipaddress.IPv4Network]:
    """Destinations of this host's IPv4 routes (empty where there is no /proc, e.g. macOS)."""
    try:
        lines = route_table.read_text().splitlines()[1:]
    except OSError:
        return []
    routes = []
    for line in lines:
        fields = line.split()
        if len(fields) < 8:
            continue
        destination = socket.inet_ntoa(int(fields[1], 16).to_bytes(4, "little"))
        mask = socket.inet_ntoa(int(fields[7], 16).to_bytes(4, "little"))
        routes.append(ipaddress.ip_network(f"{destination}/{mask}", strict=False))
    return routes
