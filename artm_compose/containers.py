"""Conventions of the containers that Compose and Swarm both run: how their Redis nodes are addressed,
secret and mount paths inside them, the engine's command lines, in-cluster jobs, Redis memory and the
escaping of Compose-format files.

Free of Docker on purpose: the rendering of both files (``runtimes.compose.compose_file``,
``runtimes.swarm.stack``) and the runtimes' checks import it without needing a Docker client.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from artm_compose.acl import ADMIN_USER, JOB_USERS, READER_USER, TRAINING_USER, password_file
from artm_compose.addressing import Addressing
from artm_compose.errors import RuntimeUnavailable
from artm_compose.plan import Plan
from artm_compose.state import CHECKPOINT_FILE, SCORES_FILE, StateDir

# Every Redis node is a service named after its component (render.redis_component) on the cluster's
# network, so each has its own host name and all listen on the same port.
SERVICE_ADDRESSING = Addressing(host="redis-{index}", port_per_node=False)
# Secrets, one per Redis user's password (acl.py): the admin's (the Redis nodes and bootstrap), the training
# user's (the executors and the master), the reader's (probes, export, transform, the dashboard); and the
# users' definitions (the Redis nodes). Each container gets only the ones its programs log in with. A Redis
# node's health check (docker/artm-redis-healthcheck) PINGs with the admin's: the node holds it anyway
# (requirepass, masterauth), so the reader's would add a secret and take nothing away. `down` logs in as no one.
SECRET_NAME = "redis_password"
TRAINING_SECRET_NAME = "redis_training_password"
READER_SECRET_NAME = "redis_reader_password"
USER_SECRETS = {ADMIN_USER: SECRET_NAME, TRAINING_USER: TRAINING_SECRET_NAME, READER_USER: READER_SECRET_NAME}
USERS_SECRET_NAME = "redis_users"
CORPUS_MOUNT = "/corpus"
VOCAB_MOUNT = "/vocab"
INIT_PHI_MOUNT = "/init"
STATE_MOUNT = "/state"
# Where the control container writes exports and copies of transform inputs: the state directory's
# scratch/ (its root file system is read-only, and a tmpfs is out of reach of `docker cp`).
SCRATCH_MOUNT = "/scratch"
# Root file systems are read-only. An artm container writes to a tmpfs at HOME=/tmp (numba's cache, which
# the image's entrypoint copies there; the control container's ready file) and to its mounts; a Redis
# node to a tmpfs at its node directory (redis.conf, nodes.conf; no persistence).
TMP_DIR = "/tmp"
TMP_BYTES = 64 << 20
REDIS_DIR_BYTES = 16 << 20
# Redis may use this share of its container's memory limit; the rest covers buffers and fragmentation.
MAXMEMORY_SHARE = 0.8
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}
EXECUTOR_PROGRAM = "artm-compose-executor"
# The artm image's entrypoint (docker/artm-entrypoint); `docker exec` has to name it to go through it.
ARTM_ENTRYPOINT = "artm-entrypoint"
MASTER_PROGRAM = "artm-compose-master"


@dataclass(frozen=True)
class Mount:
    """A bind mount: host ``source`` at container ``target``."""

    source: str
    target: str
    read_only: bool = True


def data_mounts(plan: Plan) -> tuple[list[Mount], str | None, str | None]:
    """Read-only mounts of the batches and the vocabulary, and their paths inside containers."""
    if plan.data is None:
        return [], None, None
    return corpus_mounts(Path(plan.data.batches_dir), Path(plan.data.vocab_path))


def corpus_mounts(batches_dir: Path, vocab_path: Path) -> tuple[list[Mount], str, str]:
    """Mounts of a batches directory and a vocabulary (its own mount unless it lies in the directory)."""
    batches = batches_dir.resolve()
    vocab = vocab_path.resolve()
    mounts = [Mount(str(batches), CORPUS_MOUNT)]
    if vocab.is_relative_to(batches):
        return mounts, CORPUS_MOUNT, f"{CORPUS_MOUNT}/{vocab.relative_to(batches).as_posix()}"
    mounts.append(Mount(str(vocab.parent), VOCAB_MOUNT))
    return mounts, CORPUS_MOUNT, f"{VOCAB_MOUNT}/{vocab.name}"


def container_plan(plan: Plan) -> tuple[Plan, list[Mount]]:
    """``plan`` with host paths its programs read replaced by container paths, and the mounts that provide them."""
    if plan.config.init_phi is None:
        return plan, []
    init_phi = Path(plan.config.init_phi).resolve()
    inside = dataclasses.replace(plan, config=plan.config.replace(init_phi=Path(INIT_PHI_MOUNT) / init_phi.name))
    return inside, [Mount(str(init_phi.parent), INIT_PHI_MOUNT)]


def secret_file(user: str) -> str:
    """Where a container finds the password of the Redis ``user`` (its secret)."""
    return f"/run/secrets/{USER_SECRETS[user]}"


def state_mounts(root: Path | str, users: Collection[str], *, read_only: bool = True) -> list[Mount]:
    """The state directory at STATE_MOUNT for a container whose programs log in as ``users``, with the
    password files of every other user in it hidden (``/dev/null`` bound over each): mounting the directory
    must not hand out more than the container's secrets."""
    state = StateDir.at(root)
    hidden = [password_file(state, user).name for user in USER_SECRETS if user not in users]
    return [Mount(str(state.root), STATE_MOUNT, read_only),
            *(Mount(os.devnull, f"{STATE_MOUNT}/{name}") for name in hidden)]


def dashboard_command(vocab_path: str | None, *listen: str) -> list[str]:
    """``up --dashboard``'s server in a container: it looks at the cluster from inside its network (no Docker
    there) as the reader, reads the state directory at STATE_MOUNT and the vocabulary at ``vocab_path``;
    ``listen`` says where."""
    command = ["artm-compose", "dashboard", "--inside", "--state-dir", STATE_MOUNT,
               "--password-file", secret_file(READER_USER), *listen]
    return command + (["--vocab", vocab_path] if vocab_path is not None else [])


def in_cluster_command(job: str, *arguments: str) -> list[str]:
    """An :mod:`artm_compose.in_cluster` job as run in a container that has the secret of the job's user."""
    return ["python3", "-m", "artm_compose.in_cluster", job, "--state-dir", STATE_MOUNT,
            "--password-file", secret_file(JOB_USERS[job]), *arguments]


def redis_maxmemory(limit: str | None) -> int | None:
    """Redis's ``maxmemory`` in bytes for a container limit such as ``512m`` (None without a limit)."""
    if limit is None:
        return None
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([bkmg]?)", limit.strip().lower())
    if match is None:
        raise ValueError(f"memory limit {limit!r} is not a Docker memory size")
    return int(float(match.group(1)) * _UNITS[match.group(2)] * MAXMEMORY_SHARE)


@dataclass(frozen=True)
class EngineCommands:
    """The executors' and the master's container command lines, and the mounts they need beyond the data."""

    executors: dict[int, list[str]]
    master: list[str]
    mounts: list[Mount]


def engine_commands(plan: Plan, batches_dir: str, vocab_path: str) -> EngineCommands:
    """Command lines of the training containers, the same in Compose and Swarm: executor i talks to its
    node's Redis, the master to the first node's, and the master writes scores.json and its checkpoints into
    the state mount."""
    launch = engine_launch()
    inside, mounts = container_plan(plan)
    executors = {
        e.id: [EXECUTOR_PROGRAM, *launch.executor_argv(
            inside, e, redis_host=plan.nodes[e.node].host, redis_port=plan.nodes[e.node].port,
            password_file=secret_file(TRAINING_USER), batches_dir=batches_dir, vocab_path=vocab_path)]
        for e in plan.executors
    }
    first = plan.nodes[0]
    master = [MASTER_PROGRAM, *launch.master_argv(
        inside, redis_host=first.host, redis_port=first.port, password_file=secret_file(TRAINING_USER),
        batches_dir=batches_dir, vocab_path=vocab_path, scores_path=f"{STATE_MOUNT}/{SCORES_FILE}",
        checkpoint_path=f"{STATE_MOUNT}/{CHECKPOINT_FILE}")]
    return EngineCommands(executors=executors, master=master, mounts=mounts)


def engine_launch() -> ModuleType:
    """The engine's argv builders, imported only for a plan that trains (a Redis-only cluster needs none)."""
    try:
        from artm_compose.engine import launch
    except ImportError as error:
        raise RuntimeUnavailable(f"the training engine is not available ({error}); run `up` without --data "
                                 f"to bring up the Redis Cluster alone") from None
    return launch


def escape_dollars(value: Any) -> Any:
    """Double every ``$`` so that Compose takes paths and arguments literally (no ``${VAR}`` expansion)."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, dict):
        return {k: escape_dollars(v) for k, v in value.items()}
    if isinstance(value, list):
        return [escape_dollars(v) for v in value]
    return value
