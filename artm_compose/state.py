"""The state directory: where a cluster's rendered files, password, logs and PIDs live.

Every runtime uses the same layout, so ``status``, ``logs`` and ``down`` only need the directory::

    cluster.json          the plan plus runtime and status (written by render.cluster_description,
                          read and updated as a record.ClusterRecord)
    redis.password        the cluster (admin) password, mode 0600, never on a command line
    redis.training.password  the password of the master's and executors' ACL user (acl.py), mode 0600
    redis.reader.password the password of the read-only ACL user of probes, exports and the dashboard, mode 0600
    redis.users.conf      containers: those users' definitions for the Redis nodes (a secret), mode 0600
    addresses.txt         local runtime: HOST PORT per Redis instance (the reference's addresses file)
    redis/<i>/redis.conf  local runtime: one directory per virtual node, emptied of all else before a (re)start
    logs/<component>.log  one log per component: redis-<i>, executor-<id>, master
    pids/<component>.json the processes a local runtime started (see processes.py)
    scores.json           written by the master
    checkpoint.npz        the master's last checkpoint of the model (engine.checkpoint); down removes it
    scratch/              compose: the control container's exports and transform inputs (removed after use)
"""

from __future__ import annotations

import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

from artm_compose.errors import ConfigError

PASSWORD_BYTES = 24
SCORES_FILE = "scores.json"
CHECKPOINT_FILE = "checkpoint.npz"


@dataclass(frozen=True)
class StateDir:
    """Paths of one cluster's state directory (always absolute)."""

    root: Path

    @classmethod
    def at(cls, path: Path | str) -> StateDir:
        return cls(Path(path).expanduser().resolve())

    @property
    def cluster_json(self) -> Path:
        return self.root / "cluster.json"

    @property
    def addresses(self) -> Path:
        return self.root / "addresses.txt"

    @property
    def password_file(self) -> Path:
        return self.root / "redis.password"

    @property
    def training_password_file(self) -> Path:
        return self.root / "redis.training.password"

    @property
    def reader_password_file(self) -> Path:
        return self.root / "redis.reader.password"

    @property
    def users_conf(self) -> Path:
        return self.root / "redis.users.conf"

    @property
    def scores(self) -> Path:
        return self.root / SCORES_FILE

    @property
    def checkpoint(self) -> Path:
        return self.root / CHECKPOINT_FILE

    @property
    def scratch_dir(self) -> Path:
        return self.root / "scratch"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def pids_dir(self) -> Path:
        return self.root / "pids"

    def redis_dir(self, index: int) -> Path:
        return self.root / "redis" / str(index)

    def redis_conf(self, index: int) -> Path:
        return self.redis_dir(index) / "redis.conf"

    def log(self, component: str) -> Path:
        return self.logs_dir / f"{component}.log"

    def pid_record(self, component: str) -> Path:
        return self.pids_dir / f"{component}.json"

    def exists(self) -> bool:
        return self.cluster_json.is_file()

    def create(self) -> None:
        """Create the directory skeleton (idempotent)."""
        for directory in (self.root, self.logs_dir, self.pids_dir):
            directory.mkdir(parents=True, exist_ok=True)

    def ensure_password(self) -> str:
        """The cluster password: read from ``redis.password``, created (mode 0600) on first use."""
        return _ensure_secret(self.password_file)

    def ensure_training_password(self) -> str:
        """The training user's password: read from ``redis.training.password``, created on first use."""
        return _ensure_secret(self.training_password_file)

    def ensure_reader_password(self) -> str:
        """The reader's password: read from ``redis.reader.password``, created on first use."""
        return _ensure_secret(self.reader_password_file)

    def empty_redis_dir(self, index: int) -> None:
        """Remove everything in ``redis/<index>/`` except ``redis.conf`` (stale nodes.conf breaks a cluster)."""
        directory = self.redis_dir(index)
        if not directory.is_dir():
            return
        for entry in directory.iterdir():
            if entry.name == "redis.conf":
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()


def _ensure_secret(path: Path) -> str:
    """The random password stored in ``path``, created (mode 0600) if it does not exist yet."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return read_password(path)
    password = secrets.token_hex(PASSWORD_BYTES)
    with os.fdopen(fd, "w") as handle:
        handle.write(password + "\n")
    return password


def read_password(path: Path) -> str:
    """The password stored in ``path`` (first line, stripped); a ConfigError if missing or empty."""
    try:
        password = Path(path).read_text().strip()
    except FileNotFoundError:
        raise ConfigError(f"password file {path} does not exist") from None
    if not password:
        raise ConfigError(f"password file {path} is empty")
    return password


def write_text_atomic(path: Path, text: str, mode: int | None = None) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename, optionally with ``mode``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode if mode is not None else 0o644)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    if mode is not None:
        os.chmod(temporary, mode)
    os.replace(temporary, path)
