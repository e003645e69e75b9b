"""Redis ACL users of a cluster: the admin, the training user and the reader, and who logs in as which.

The admin is Redis's ``default`` user with the cluster password (``redis.password``): only bootstrap (which
also heals restarted nodes) uses it, and the Redis nodes themselves (``requirepass``, ``masterauth``). The
master and the executors log in as :data:`TRAINING_USER` with their own password
(``redis.training.password``), which may touch only the cluster's keys (``ac:<cluster>:*``, see
``engine.layout``) with only the commands the engine sends. Everything that only looks (status probes,
export, transform, the dashboard) logs in as :data:`READER_USER` (``redis.reader.password``): it may only
read the cluster's keys and ask the nodes how they and the cluster are. Every node loads both users from its
configuration at start (a restarted node or a promoted replica has them too).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from artm_compose.state import StateDir, write_text_atomic

ADMIN_USER = "default"
TRAINING_USER = "artm-training"
READER_USER = "artm-reader"

# What the engine sends: heartbeats, leases, queues, scale requests and progress (engine/protocol.py), the
# model's blocks and n_wt increments (engine/model_store.py, INFO for the bytes moved per pass), the start-up
# PING (engine/connect.py), and its look at the cluster while it rides out a failover (engine/failover.py:
# CLUSTER INFO and NODES, PING to each primary; WAIT for the replicas before a commit).
ENGINE_COMMANDS = ("get", "set", "getrange", "pttl", "expire", "del", "unlink", "rpush", "lrange", "blpop",
                   "info", "ping", "cluster|info", "cluster|nodes", "wait")
# What the lookers send: the progress record and heartbeats (GET), the committed model (GET, GETRANGE), and
# each node's health (PING, INFO, CLUSTER INFO and NODES: bootstrap.check_health, the dashboard's nodes).
READER_COMMANDS = ("get", "getrange", "info", "ping", "cluster|info", "cluster|nodes")
# What redis-py's cluster client sends by itself: COMMAND (the command table, read once to find keys in
# commands), the slot map (at start and after MOVED) and ASKING on an ASK redirection while a slot migrates.
# Not CLIENT SETINFO (its library name on connect): Redis before 7.2 refuses a rule naming it, and redis-py
# ignores its refusal.
CLIENT_COMMANDS = ("command", "cluster|slots", "asking")

# The user each in-cluster job (in_cluster.py) logs in as. ``scale`` writes the scale request the master
# takes, a key of the engine's protocol: the training user's.
JOB_USERS = {"bootstrap": ADMIN_USER, "control": ADMIN_USER, "probe": READER_USER, "export": READER_USER,
             "transform": READER_USER, "scale": TRAINING_USER}


@dataclass(frozen=True)
class Login:
    """A Redis user and its password, as the clients take them (``username`` None: Redis's default user)."""

    user: str
    password: str

    @property
    def username(self) -> str | None:
        return None if self.user == ADMIN_USER else self.user


def password_file(state: StateDir, user: str) -> Path:
    """Where the state directory keeps ``user``'s password."""
    return {ADMIN_USER: state.password_file, TRAINING_USER: state.training_password_file,
            READER_USER: state.reader_password_file}[user]


def key_prefix(cluster: str) -> str:
    """Every key of ``cluster`` starts with this (``engine.layout``, ``engine.protocol``)."""
    return f"ac:{cluster}:"


def _rules(password: str, keys: str, commands: Sequence[str]) -> list[str]:
    """A user's rules: its password (as a SHA-256 hash, so the rules hold no secret), its keys, no Pub/Sub
    channels, and no command but ``commands``."""
    digest = hashlib.sha256(password.encode()).hexdigest()
    return ["reset", "on", f"#{digest}", keys, "resetchannels", "-@all", *(f"+{command}" for command in commands)]


def training_rules(cluster: str, password: str) -> list[str]:
    """ACL rules of the training user of ``cluster``: its keys, the engine's commands."""
    return _rules(password, f"~{key_prefix(cluster)}*", ENGINE_COMMANDS + CLIENT_COMMANDS)


def reader_rules(cluster: str, password: str) -> list[str]:
    """ACL rules of the reader of ``cluster``: its keys for reading only (``%R~``, so even a command that
    writes could not write them), the lookers' commands."""
    return _rules(password, f"%R~{key_prefix(cluster)}*", READER_COMMANDS + CLIENT_COMMANDS)


def user_passwords(state: StateDir) -> dict[str, str]:
    """Every Redis user's password by user, from ``state`` (each made on first use)."""
    return {ADMIN_USER: state.ensure_password(), TRAINING_USER: state.ensure_training_password(),
            READER_USER: state.ensure_reader_password()}


def users_conf(cluster: str, passwords: Mapping[str, str]) -> str:
    """The ``user`` lines of a ``redis.conf`` that define the training user and the reader of ``cluster``,
    given each user's password (``user_passwords``)."""
    users = ((TRAINING_USER, training_rules(cluster, passwords[TRAINING_USER])),
             (READER_USER, reader_rules(cluster, passwords[READER_USER])))
    return "".join(" ".join(["user", name, *rules]) + "\n" for name, rules in users)


def write_users_conf(cluster: str, state: StateDir) -> Path:
    """Write ``redis.users.conf`` (mode 0600): the users, which Redis nodes in containers read as a secret
    (local nodes have them in their ``redis.conf``)."""
    write_text_atomic(state.users_conf, users_conf(cluster, user_passwords(state)), mode=0o600)
    return state.users_conf
