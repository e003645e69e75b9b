"""How a runtime's Redis nodes are addressed: supplied by the runtime, passed into the plan.

The config, the plan and the renderers never ask which runtime runs the cluster; the runtime says where
its nodes listen and the plan computes every node's address from that. Two schemes exist: nodes that
share one host and take a port each (the local runtime, on 127.0.0.1), and nodes that each have their
own host name and the same port (containers, reached by service name on their network).
"""

from __future__ import annotations

from dataclasses import dataclass

from artm_compose.config import CLUSTER_BUS_OFFSET, ClusterConfig, check_node_ports
from artm_compose.errors import ConfigError


@dataclass(frozen=True)
class Addressing:
    """Where node ``i`` of a cluster listens.

    ``host`` is the node's host name with ``{index}`` standing for ``i`` (a fixed host has none);
    ``port_per_node`` means the nodes share that host, so node ``i`` takes ``base_port + i`` (and its
    cluster bus that port + 10000), else every node listens on ``base_port`` on its own host.
    """

    host: str
    port_per_node: bool

    def address(self, index: int, base_port: int) -> tuple[str, int]:
        """Host and port of node ``index``."""
        return self.host.format(index=index), base_port + index if self.port_per_node else base_port

    def check(self, config: ClusterConfig) -> None:
        """Refuse a config whose nodes' ports (and their cluster-bus ports) do not fit on one host."""
        if not self.port_per_node:
            return  # every node has its own host: the config's own check of base_port covers it
        instances = config.redis_instances  # replicas take the ports after the primaries'
        check_node_ports(config.base_port, instances)
        if instances > CLUSTER_BUS_OFFSET:
            raise ConfigError(f"nodes={config.nodes!r} is invalid: {instances} Redis instances on one host from port "
                              f"{config.base_port} would collide with their own cluster-bus ports "
                              f"(+{CLUSTER_BUS_OFFSET}); use at most {CLUSTER_BUS_OFFSET} instances on one host")
