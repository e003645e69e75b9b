"""The Swarm stack file of a plan (pure: plan, images, placement and file paths in, YAML text out).

One service per Redis instance (a virtual node's primary, or one of its replicas), addressed by its service
name with ``endpoint_mode: dnsrr`` (a virtual IP would hide the task's own address, which the cluster
gossips); one service per executor; the master; a one-shot ``bootstrap`` service (it exits when done; a
failure is retried a few times) that assigns slots, joins the nodes and attaches the replicas from inside
the attachable overlay network. Every service of virtual node i is constrained to the Swarm node whose
``artm.<cluster>.group`` label holds i; a replica to another Swarm node than its primary's when there is one
(:func:`artm_compose.runtimes.swarm.assign.replica_groups`). Passwords are Swarm secrets (read-only files),
never environment variables or arguments, and each service gets only that of the Redis user it logs in as
(acl.py: the Redis nodes and bootstrap the admin's, the executors and the master the training user's, the
dashboard the reader's); where the state directory is mounted, the other users' password files are hidden
in it. Redis ports are not published. With ``dashboard`` the
manager also runs the dashboard and its relay (:func:`dashboard_services`), which publish no port either.

A Redis node keeps its directory (``/data``, owned by the image's redis user) in its container's own
layer: every new task is a new container and starts empty, as the reference requires. (A Swarm tmpfs
mount would be root-owned: stack files cannot set its mode.)
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from artm_compose import labels
from artm_compose.acl import ADMIN_USER, READER_USER, TRAINING_USER, password_file, users_conf
from artm_compose.bootstrap import bootstrap_timeout
from artm_compose.containers import (REDIS_DIR_BYTES, STATE_MOUNT, TMP_BYTES, TMP_DIR, USER_SECRETS,
                                     USERS_SECRET_NAME, Mount, dashboard_command, data_mounts, engine_commands,
                                     escape_dollars, in_cluster_command, redis_maxmemory, state_mounts)
from artm_compose.images.build import ImageTags
from artm_compose.plan import Plan
from artm_compose.render import (CONTAINER_REDIS_DIR, DASHBOARD, plan_fingerprint, redis_component, redis_fingerprint,
                                 render_template)
from artm_compose.state import StateDir
from artm_compose.runtimes.swarm.assign import group_label, replica_groups

ROLE_GROUP = f"{labels.PREFIX}.swarm-group"
FINGERPRINT_LENGTH = 12
# Reserved per task so that the scheduler does not pile more onto a node than it can hold; a configured
# memory limit is reserved in full.
DEFAULT_RESERVATIONS = {"redis": "32M", "bootstrap": "32M", "executor": "64M", "master": "32M", "dashboard": "32M"}
# up --dashboard (see artm_compose.dashboard.relay): the dashboard serves on a Unix socket in this directory,
# which the relay, on the host's network, passes 127.0.0.1:dashboard_port on to.
DASHBOARD_RELAY = f"{DASHBOARD}-relay"
SOCKET_MOUNT = "/run/artm-dashboard"
DASHBOARD_SOCKET = f"{SOCKET_MOUNT}/dashboard.sock"
RESTART = {
    # Redis comes back empty after a crash; the next bootstrap (``up``) joins it again.
    "redis": {"condition": "any", "delay": "2s", "max_attempts": 0, "window": "10s"},
    # The bootstrap waits for every node itself; a few retries cover nodes scheduled late.
    "bootstrap": {"condition": "on-failure", "delay": "2s", "max_attempts": 5, "window": "0s"},
    # An executor that exits 0 is done; one that fails early (e.g. deployed by hand before the bootstrap
    # finished) is retried a little.
    "executor": {"condition": "on-failure", "delay": "5s", "max_attempts": 3, "window": "30s"},
    # A lost master comes back and resumes its run (engine.master; bounded by --max-restarts, see
    # stack_context); one that failed by itself comes back only to find its run failed, and ends again.
    "master": {"condition": "on-failure", "delay": "2s", "max_attempts": 0, "window": "0s"},
    # The dashboard and its relay serve until `down`; a crash is retried a little.
    "dashboard": {"condition": "on-failure", "delay": "2s", "max_attempts": 3, "window": "30s"},
}


@dataclass(frozen=True)
class StackFiles:
    """Files of the state directory the stack refers to (read by ``docker stack deploy`` on the manager)."""

    stack: Path
    nodes: Path
    password: Path

    dashboard: Path  # the dashboard's socket directory

    @classmethod
    def of(cls, state: StateDir) -> StackFiles:
        return cls(stack=state.root / "stack.yml", nodes=state.root / "swarm-nodes.json",
                   password=state.password_file, dashboard=state.root / DASHBOARD)

    def make_dashboard_dir(self) -> None:
        """The socket directory must exist before a deploy binds it; only its owner may reach the socket."""
        self.dashboard.mkdir(mode=0o700, exist_ok=True)
        self.dashboard.chmod(0o700)


def stack_name(plan: Plan) -> str:
    return labels.project_name(plan.cluster)


def network_name(plan: Plan) -> str:
    """The overlay network; distinct from the Compose network of a cluster of the same name."""
    return f"{labels.project_name(plan.cluster)}-swarm"


def nodes_document(plan: Plan) -> str:
    """What the bootstrap job reads as its ``cluster.json``: the Redis instances, their addresses and slots."""
    nodes = [{**n.to_dict(), "bus_port": n.bus_port} for n in plan.redis_nodes]
    return json.dumps({"cluster": plan.cluster, "nodes": nodes}, indent=2, sort_keys=True) + "\n"


def content_name(plan: Plan, kind: str, content: str) -> str:
    """A Swarm secret/config name that changes with its content (both are immutable once created)."""
    digest = hashlib.sha256(content.encode()).hexdigest()[:FINGERPRINT_LENGTH]
    return f"{labels.project_name(plan.cluster)}-{kind}-{digest}"


# The kind in the content name of each Redis user's password secret.
SECRET_KINDS = {ADMIN_USER: "password", TRAINING_USER: "training-password", READER_USER: "reader-password"}


def password_secrets(plan: Plan, passwords: Mapping[str, str]) -> dict[str, str]:
    """The Swarm secret of each Redis user's password (acl.py, ``user_passwords``) by user."""
    return {user: content_name(plan, kind, passwords[user]) for user, kind in SECRET_KINDS.items()}


def group_constraint(cluster: str, group: int) -> str:
    return f"node.labels.{group_label(cluster)} == {group}"


def stack_context(plan: Plan, state: StateDir, *, images: ImageTags, groups: Mapping[int, int],
                  manager_id: str, passwords: Mapping[str, str], user: str | None = None,
                  training: bool = True) -> dict[str, Any]:
    """Everything the template needs; ``groups`` maps each virtual node to its Swarm group label.

    ``training=False`` leaves out the executors and the master (``up`` deploys those once the Redis
    Cluster is bootstrapped).
    """
    missing = [n.index for n in plan.nodes if n.index not in groups]
    if missing:
        raise ValueError(f"no Swarm group for virtual node(s) {missing}")
    files = StackFiles.of(state)
    root = state.root
    users = users_conf(plan.cluster, passwords)
    secret_names = password_secrets(plan, passwords)
    fingerprint = plan_fingerprint(plan)[:FINGERPRINT_LENGTH]
    layout = redis_fingerprint(plan)[:FINGERPRINT_LENGTH]

    # Every Redis instance's group: a primary's is its virtual node's, a replica's another Swarm node's.
    instances = {**groups, **replica_groups(plan.replicas, groups)}

    def placed(node: int) -> dict[str, Any]:
        return {"constraints": [group_constraint(plan.cluster, instances[node])],
                "group": instances[node]}

    def service_labels(values: dict[str, str], node: int | None = None) -> dict[str, str]:
        return {**values, **({ROLE_GROUP: str(instances[node])} if node is not None else {})}

    redis_services = [{
        "service": redis_component(node.index), "dnsrr": True, **placed(node.index),
        "labels": service_labels(labels.redis_labels(plan, root, node, layout), node.index),
    } for node in plan.redis_nodes]
    mounts, batches_dir, vocab_path = data_mounts(plan)
    dashboard = (dashboard_services(plan, root, files, manager_id, [*mounts, *state_mounts(root, [READER_USER])],
                                    vocab_path) if plan.config.dashboard else None)
    executor_services: list[dict[str, Any]] = []
    master = None
    if plan.data is not None and training:
        assert batches_dir is not None and vocab_path is not None
        commands = engine_commands(plan, batches_dir, vocab_path)
        mounts += commands.mounts
        executor_services = [{
            "service": e.name, **placed(e.node),
            "labels": service_labels(labels.executor_labels(plan, root, e, fingerprint), e.node),
            "command": commands.executors[e.id],
        } for e in plan.executors]
        # The master writes scores.json into the state directory, which lives on this manager.
        master = {
            "constraints": [f"node.id == {manager_id}"],
            "labels": labels.role_labels(plan, root, "master", fingerprint),
            "command": commands.master,
        }
    base = labels.base_labels(plan, root)
    context = {
        "cluster": plan.cluster,
        "stack": stack_name(plan),
        "stack_file": str(files.stack),
        "group_label": group_label(plan.cluster),
        "images": {"redis": images.redis, "artm": images.artm},
        "user": user if user is not None else f"{os.getuid()}:{os.getgid()}",
        "port": plan.config.base_port,
        "node_timeout_ms": plan.config.node_timeout_ms,
        "redis_maxmemory": redis_maxmemory(plan.config.redis_memory),
        "tmp": {"target": TMP_DIR, "size": TMP_BYTES},
        "redis_tmp": {"target": CONTAINER_REDIS_DIR, "size": REDIS_DIR_BYTES},
        "redis_services": redis_services,
        "bootstrap": {"constraints": [],
                      "labels": labels.role_labels(plan, root, "bootstrap"),
                      "command": in_cluster_command("bootstrap", "--timeout",
                                                    f"{bootstrap_timeout(len(plan.redis_nodes)):g}"),
                      "nodes_target": f"{STATE_MOUNT}/cluster.json"},
        "executor_services": executor_services,
        "master": master,
        "dashboard": dashboard,
        "data_mounts": [vars(m) for m in mounts],
        "master_state_mounts": [vars(m) for m in state_mounts(root, [TRAINING_USER], read_only=False)],
        "restart": {**RESTART, **{role: {**RESTART[role], "max_attempts": plan.config.max_restarts,
                                         "condition": "on-failure" if plan.config.max_restarts else "none"}
                                  for role in ("executor", "master")}},
        "limits": {"redis": plan.config.redis_memory, "executor": plan.config.executor_memory,
                   "master": plan.config.master_memory},
        "reservations": {role: _reservation(plan, role) for role in DEFAULT_RESERVATIONS},
        "network": {"name": network_name(plan), "labels": base},
        "secrets": {
            **{USER_SECRETS[user]: {"name": name, "file": str(password_file(state, user)), "labels": base}
               for user, name in secret_names.items()},
            USERS_SECRET_NAME: {"name": content_name(plan, "users", users), "file": str(state.users_conf),
                                "labels": base},
        },
        "nodes_config": {"name": content_name(plan, "nodes", nodes_document(plan)), "file": str(files.nodes),
                         "labels": base},
    }
    return escape_dollars(context)


def dashboard_services(plan: Plan, root: Path, files: StackFiles, manager_id: str, mounts: list[Mount],
                       vocab_path: str | None) -> dict[str, Any]:
    """The dashboard (on the overlay network, serving on a Unix socket) and its relay (on the host's network,
    listening on 127.0.0.1:dashboard_port), both on this manager, which holds the state directory."""
    sockets = Mount(str(files.dashboard), SOCKET_MOUNT, read_only=False)
    return {"constraints": [f"node.id == {manager_id}"], "labels": labels.role_labels(plan, root, DASHBOARD),
            "command": dashboard_command(vocab_path, "--unix-socket", DASHBOARD_SOCKET),
            "mounts": [vars(m) for m in (*mounts, sockets)],
            "relay": DASHBOARD_RELAY,
            "relay_command": ["artm-compose", "dashboard", "--relay-to", DASHBOARD_SOCKET,
                              "--port", str(plan.config.dashboard_port)],
            "relay_mounts": [vars(sockets)]}


def render_stack(plan: Plan, state: StateDir, *, images: ImageTags, groups: Mapping[int, int], manager_id: str,
                 passwords: Mapping[str, str], user: str | None = None, training: bool = True) -> str:
    """The stack file of ``plan`` as YAML text; ``passwords`` are every Redis user's (only their hashes
    go into it, as the secrets' and the users config's content names)."""
    return render_template(__package__, "stack.yml.j2", **stack_context(plan, state, images=images, groups=groups,
                                                            manager_id=manager_id, passwords=passwords, user=user,
                                                            training=training))


def _reservation(plan: Plan, role: str) -> str:
    limit = {"redis": plan.config.redis_memory, "executor": plan.config.executor_memory,
             "master": plan.config.master_memory}.get(role)
    return limit or DEFAULT_RESERVATIONS[role]
