"""Redis ACL users of a cluster: the admin and the training user.

The admin is Redis's ``default`` user with the cluster password (``redis.password``): bootstrap, healing,
probes, exports and the dashboard use it. The master and the executors log in as :data:`TRAINING_USER` with
their own password (``redis.training.password``), which may touch only the cluster's keys
(``ac:<cluster>:*``, see ``engine.layout``) with only the commands the engine sends. Every node loads the
user from its configuration at start (a restarted node or a promoted replica has it too).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from artm_compose.state import StateDir, write_text_atomic

TRAINING_USER = "artm-training"

# What the engine sends: heartbeats, leases, queues, scale requests and progress (engine/protocol.py), the
# model's blocks and n_wt increments (engine/model_store.py, INFO for the bytes moved per pass), the start-up
# PING (engine/connect.py), and its look at the cluster while it rides out a failover (engine/failover.py:
# CLUSTER INFO and NODES, PING to each primary).
ENGINE_COMMANDS = ("get", "set", "getrange", "pttl", "expire", "del", "unlink", "rpush", "lrange", "blpop",
                   "info", "ping", "cluster|info", "cluster|nodes")
# What redis-py's cluster client sends by itself: COMMAND (the command table, read once to find keys in
# commands), the slot map (at start and after MOVED) and ASKING on an ASK redirection while a slot migrates.
# Not CLIENT SETINFO (its library name on connect): Redis before 7.2 refuses a rule naming it, and redis-py
# ignores its refusal.
CLIENT_COMMANDS = ("command", "cluster|slots", "asking")


def key_prefix(cluster: str) -> str:
    """Every key of ``cluster`` starts with this (``engine.layout``, ``engine.protocol``)."""
    return f"ac:{cluster}:"


def training_rules(cluster: str, password: str) -> list[str]:
    """ACL rules of the training user of ``cluster``: its password (as a SHA-256 hash, so the rules hold no
    secret), its keys, no Pub/Sub channels, and nothing but the commands listed above."""
    digest = hashlib.sha256(password.encode()).hexdigest()
    return ["reset", "on", f"#{digest}", f"~{key_prefix(cluster)}*", "resetchannels", "-@all",
            *(f"+{command}" for command in ENGINE_COMMANDS + CLIENT_COMMANDS)]


def users_conf(cluster: str, password: str) -> str:
    """The ``user`` line of a ``redis.conf`` that defines the training user."""
    return " ".join(["user", TRAINING_USER, *training_rules(cluster, password)]) + "\n"


def write_users_conf(cluster: str, state: StateDir) -> Path:
    """Write ``redis.users.conf`` (mode 0600): the training user, which Redis nodes in containers read as a
    secret (local nodes have it in their ``redis.conf``)."""
    write_text_atomic(state.users_conf, users_conf(cluster, state.ensure_training_password()), mode=0o600)
    return state.users_conf
