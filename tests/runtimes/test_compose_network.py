"""Subnet choice and layout for a cluster's bridge network (pure logic, plus this host's route table)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from artm_compose.docker_env import free_subnet, host_routes, layout_network, prefix_for
from artm_compose.errors import ConfigError, RuntimeUnavailable

net = ipaddress.ip_network


def test_free_subnet_skips_every_overlap_but_the_default_route():
    pool = net("10.213.0.0/22")
    used = [net("0.0.0.0/0"), net("10.213.0.0/24"), net("10.213.1.128/25"), net("10.0.0.0/16")]
    assert free_subnet(24, used, pools=[pool]) == net("10.213.2.0/24")


def test_free_subnet_avoids_a_wider_route_covering_the_pool():
    with pytest.raises(RuntimeUnavailable, match="no free /24 subnet in 10.213.0.0/23"):
        free_subnet(24, [net("10.213.0.0/16")], pools=[net("10.213.0.0/23")])


def test_layout_puts_fixed_addresses_below_the_dynamic_range():
    layout = layout_network(net("10.213.5.0/24"), nodes=4)
    assert str(layout.gateway) == "10.213.5.1"
    assert [str(ip) for ip in layout.redis_ips] == ["10.213.5.2", "10.213.5.3", "10.213.5.4", "10.213.5.5"]
    assert layout.ip_range == net("10.213.5.128/25")
    assert not any(ip in layout.ip_range for ip in layout.redis_ips)
    assert len(set(layout.redis_ips)) == 4


def test_prefix_grows_with_the_cluster():
    assert prefix_for(nodes=4, dynamic=10) == 24
    assert prefix_for(nodes=200, dynamic=10) == 23
    layout = layout_network(net("10.213.0.0/23"), nodes=200)
    assert len(layout.redis_ips) == 200 and layout.redis_ips[-1] < layout.ip_range.network_address
    with pytest.raises(ConfigError, match="nodes=126"):
        layout_network(net("10.213.0.0/24"), nodes=126)


def test_host_routes_are_parsed_from_the_kernel_table(tmp_path: Path):
    table = tmp_path / "route"
    table.write_text(
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
        "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
        "docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n"
        "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n")
    assert host_routes(table) == [net("0.0.0.0/0"), net("172.17.0.0/16"), net("192.0.2.0/24")]
    assert host_routes(tmp_path / "missing") == []


def test_chosen_subnet_misses_this_hosts_routes():
    routes = host_routes()
    chosen = free_subnet(24, routes)
    assert not any(chosen.overlaps(r) for r in routes if r.prefixlen > 0)
