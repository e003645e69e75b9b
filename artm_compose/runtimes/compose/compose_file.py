"""The Docker Compose file of a plan (pure: plan, images and network layout in, YAML text out).

One service per Redis instance (a virtual node's primary, or one of its replicas: a container of its own)
with a fixed address (MEET needs IPs; ``nodes.conf`` keeps them); a ``control`` service that bootstraps the cluster from inside the network and then idles, so that later
jobs (heal, probe) run in it with ``docker exec``; one service per executor with its own id and ranges
on its command line; and the master. Passwords reach containers as Compose secrets (read-only files),
never through the environment or a command line, each container only those of the Redis users it logs in
as (acl.py): the Redis nodes the admin's and the users' definitions, the executors and the master the
training user's, the dashboard the reader's, and the control container all three (it bootstraps, and the
jobs run in it log in as their own users). Where the state directory is mounted, the password files of
the other users are hidden in it. Every container runs as the host user, so it can read its secrets and
what the master writes into the state directory belongs to the user. The file also works by hand:
executors wait for ``control`` to be healthy (bootstrapped).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from artm_compose import labels
from artm_compose.acl import READER_USER, TRAINING_USER
from artm_compose.bootstrap import bootstrap_timeout
from artm_compose.containers import (READER_SECRET_NAME, REDIS_DIR_BYTES, SCRATCH_MOUNT, TMP_BYTES, TMP_DIR,
                                     TRAINING_SECRET_NAME, USER_SECRETS, Mount, dashboard_command, data_mounts,
                                     engine_commands, escape_dollars, in_cluster_command, redis_maxmemory,
                                     state_mounts)
from artm_compose.docker_env import NetworkLayout
from artm_compose.in_cluster import READY_FILE
from artm_compose.images.build import ImageTags
from artm_compose.plan import Plan
from artm_compose.render import (CONTAINER_REDIS_DIR, DASHBOARD, plan_fingerprint, redis_component,
                                 redis_fingerprint, render_template)
from artm_compose.state import StateDir

# The node directory lives in memory: a restarted container starts empty (the reference's rule), and
# nothing is left on disk or in a volume when the cluster goes.
REDIS_TMPFS = f"{CONTAINER_REDIS_DIR}:rw,mode=1777,size={REDIS_DIR_BYTES}"
ARTM_TMPFS = f"{TMP_DIR}:rw,mode=1777,size={TMP_BYTES}"
# Health is shown by status (and orders a hand-run `docker compose up`); `up` itself never waits for it,
# so checks are rare: each one is a process started in the container.
HEALTH_INTERVAL = "5s"
CONTROL = "control"
# The dashboard's port inside its container; the host side is 127.0.0.1:dashboard_port.
DASHBOARD_CONTAINER_PORT = 8265
FINGERPRINT_LENGTH = 12


def container_name(plan: Plan, service: str) -> str:
    """The container of ``service``: ``artm-<cluster>-<service>``."""
    return f"{labels.project_name(plan.cluster)}-{service}"


def network_name(plan: Plan) -> str:
    return labels.project_name(plan.cluster)


def published_port(plan: Plan, node: int) -> int | None:
    """With ``publish``, node i is reachable on 127.0.0.1:(base_port + i); otherwise not at all."""
    return plan.config.base_port + node if plan.config.publish else None


def compose_context(plan: Plan, state: StateDir, *, images: ImageTags, network: NetworkLayout,
                    user: str | None = None) -> dict[str, Any]:
    """Everything the template needs, as plain values (escaped for Compose interpolation)."""
    if len(network.redis_ips) != len(plan.redis_nodes):
        raise ValueError(f"network layout has {len(network.redis_ips)} Redis addresses for {len(plan.redis_nodes)} "
                         f"Redis instances")
    mounts, batches_dir, vocab_path = data_mounts(plan)
    timeout = bootstrap_timeout(len(plan.redis_nodes))
    root = state.root
    fingerprint = plan_fingerprint(plan)[:FINGERPRINT_LENGTH]
    layout = redis_fingerprint(plan)[:FINGERPRINT_LENGTH]
    redis_services = [{
        "service": redis_component(node.index),
        "container": container_name(plan, redis_component(node.index)),
        "labels": labels.redis_labels(plan, root, node, layout),
        "ip": str(ip),
        "published_port": published_port(plan, node.index),
    } for node, ip in zip(plan.redis_nodes, network.redis_ips)]
    executor_services: list[dict[str, Any]] = []
    master = None
    if plan.data is not None:
        assert batches_dir is not None and vocab_path is not None
        commands = engine_commands(plan, batches_dir, vocab_path)
        mounts += commands.mounts
        executor_services = [{
            "service": e.name,
            "container": container_name(plan, e.name),
            "labels": labels.executor_labels(plan, root, e, fingerprint),
            "command": commands.executors[e.id],
        } for e in plan.executors]
        master = {
            "container": container_name(plan, "master"),
            "labels": labels.role_labels(plan, root, "master", fingerprint),
            "command": commands.master,
        }
    context = {
        "cluster": plan.cluster,
        "project": labels.project_name(plan.cluster),
        "compose_file": str(compose_path(state)),
        "images": {"redis": images.redis, "artm": images.artm},
        "user": user if user is not None else f"{os.getuid()}:{os.getgid()}",
        "port": plan.config.base_port,
        "node_timeout_ms": plan.config.node_timeout_ms,
        "redis_maxmemory": redis_maxmemory(plan.config.redis_memory),
        "redis_tmpfs": REDIS_TMPFS,
        "artm_tmpfs": ARTM_TMPFS,
        "health_interval": HEALTH_INTERVAL,
        "redis_services": redis_services,
        "control": {"container": container_name(plan, CONTROL),
                    "labels": labels.role_labels(plan, root, CONTROL),
                    "command": in_cluster_command("control", "--timeout", f"{timeout:g}"),
                    "ready_file": str(READY_FILE), "start_period": f"{timeout:g}s",
                    "scratch": vars(Mount(str(state.scratch_dir), SCRATCH_MOUNT, read_only=False))},
        "executor_services": executor_services,
        # A dead executor comes back and the master redoes the pass; a dead master comes back and resumes
        # its run from the committed model (engine.master); see training_restart.
        "executor_restart": training_restart(plan.config.max_restarts),
        "master_restart": training_restart(plan.config.max_restarts),
        "master": master,
        "dashboard": dashboard_service(plan, root, vocab_path) if plan.config.dashboard else None,
        "mounts": [vars(m) for m in mounts],
        "state_mounts": {"control": [vars(m) for m in state_mounts(root, USER_SECRETS)],
                         "dashboard": [vars(m) for m in state_mounts(root, [READER_USER])],
                         "master": [vars(m) for m in state_mounts(root, [TRAINING_USER], read_only=False)]},
        "secrets": {"control": list(USER_SECRETS.values()), "dashboard": [READER_SECRET_NAME],
                    "engine": [TRAINING_SECRET_NAME]},
        "limits": {"redis": plan.config.redis_memory, "executor": plan.config.executor_memory,
                   "master": plan.config.master_memory},
        "network": {"name": network_name(plan), "labels": labels.base_labels(plan, root),
                    "subnet": str(network.subnet), "ip_range": str(network.ip_range),
                    "gateway": str(network.gateway)},
        "password_file": str(state.password_file),
        "training_password_file": str(state.training_password_file),
        "reader_password_file": str(state.reader_password_file),
        "users_file": str(state.users_conf),
    }
    return escape_dollars(context)


def dashboard_service(plan: Plan, state_root: Path, vocab_path: str | None) -> dict[str, Any]:
    """The dashboard's container: it looks at the cluster from inside its network (no Docker there),
    reads scores.json from the state mount and is published on the host's loopback only."""
    command = dashboard_command(vocab_path, "--host", "0.0.0.0", "--port", str(DASHBOARD_CONTAINER_PORT))
    return {"container": container_name(plan, DASHBOARD), "labels": labels.role_labels(plan, state_root, DASHBOARD),
            "command": command, "published": f"127.0.0.1:{plan.config.dashboard_port}:{DASHBOARD_CONTAINER_PORT}"}


def compose_path(state: StateDir) -> Path:
    """Where the compose file of a cluster lives: ``<state dir>/compose.yml``."""
    return state.root / "compose.yml"


def training_restart(max_restarts: int) -> str:
    """The executors' and the master's Compose restart policy: on failure, ``max_restarts`` times. Docker
    restarts any non-zero exit, not only a kill: a run that is over ends the executors with exit status 3,
    and the runtime switches their policy off then; a master that failed by itself comes back only to find
    its run failed and end again (engine.master refuses to start a failed run over)."""
    return f"on-failure:{max_restarts}" if max_restarts else "no"


def render_compose(plan: Plan, state: StateDir, *, images: ImageTags, network: NetworkLayout,
                   user: str | None = None) -> str:
    """The compose file of ``plan`` as YAML text."""
    return render_template(__package__, "compose.yml.j2", **compose_context(plan, state, images=images, network=network,
                                                                user=user))
