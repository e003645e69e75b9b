"""Reading Swarm nodes and writing range labels onto them (the side-effect half of ``assign``)."""

from __future__ import annotations

from python_on_whales import DockerClient

from artm_compose.docker_access import DOCKER_ERRORS, error_reason
from artm_compose.errors import RuntimeUnavailable
from artm_compose.runtimes.swarm.assign import LabelChange, SwarmNode


def require_manager(docker: DockerClient) -> str:
    """The id of this engine's Swarm node; raises unless the engine is an active Swarm manager."""
    try:
        info = docker.system.info()
    except DOCKER_ERRORS as error:
        raise RuntimeUnavailable(f"cannot reach the Docker engine ({error_reason(error)}); is Docker running? "
                                 "`--runtime local` runs without Docker") from None
    swarm = info.swarm
    if swarm is None or swarm.local_node_state != "active":
        state = swarm.local_node_state if swarm is not None else "unknown"
        raise RuntimeUnavailable(f"this Docker engine is not in a Swarm (state {state!r}): run `docker swarm init` "
                                 "here, or `docker swarm join` it to a Swarm, or use `--runtime compose`")
    if not swarm.control_available:
        raise RuntimeUnavailable(f"Swarm node {swarm.node_id} is a worker: run artm-compose on a Swarm manager")
    return str(swarm.node_id)


def list_nodes(docker: DockerClient) -> list[SwarmNode]:
    """Every node of the Swarm, as the assignment sees it."""
    return [
        SwarmNode(id=str(node.id), hostname=str(node.description.hostname),
                  availability=str(node.spec.availability), state=str(node.status.state),
                  labels=dict(node.spec.labels or {}))
        for node in docker.node.list()
    ]


def apply_changes(docker: DockerClient, changes: tuple[LabelChange, ...]) -> None:
    """Write the label changes (``docker node update --label-add/--label-rm``), skipping empty ones."""
    for change in changes:
        if not change.empty:
            docker.node.update(change.node_id, labels_add=dict(change.add), rm_labels=list(change.remove))
