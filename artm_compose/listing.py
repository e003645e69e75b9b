"""``artm-compose ls``: the clusters on this machine (and its Docker Swarm), as ``docker compose ls`` lists projects.

Found, never recorded anywhere central: Compose clusters by their containers' labels, Swarm clusters by
their services' labels, local clusters by their running ``redis-server`` processes (whose config file
lies in a state directory holding ``cluster.json``).
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from artm_compose import labels


@dataclass(frozen=True)
class ClusterEntry:
    """One cluster: ``running`` of ``members`` containers, services or processes are up."""

    name: str
    runtime: str
    state_dir: str
    running: int
    members: int
    since: str  # ISO 8601, UTC: the oldest member's creation or start

    @property
    def status(self) -> str:
        return f"running({self.running}/{self.members})" if self.running else f"exited({self.members})"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "status": self.status}


def group(members: Iterable[tuple[str, str, str, bool, str]]) -> list[ClusterEntry]:
    """Entries from (name, runtime, state dir, running, since) per member, sorted by name."""
    found: dict[tuple[str, str, str], list[tuple[bool, str]]] = {}
    for name, runtime, state_dir, running, since in members:
        found.setdefault((name, runtime, state_dir), []).append((running, since))
    return [ClusterEntry(name=name, runtime=runtime, state_dir=state_dir, running=sum(r for r, _ in seen),
                         members=len(seen), since=min(s for _, s in seen))
            for (name, runtime, state_dir), seen in sorted(found.items())]


def list_clusters(note: Callable[[str], None] = lambda _message: None) -> list[ClusterEntry]:
    """Every cluster ``ls`` lists: local ones always, Compose and Swarm ones when Docker answers (else
    ``note`` is told why they are missing)."""
    from artm_compose.docker_access import docker_client
    from artm_compose.errors import RuntimeUnavailable

    members = local_members()
    try:
        client = docker_client()
    except RuntimeUnavailable as error:
        note(f"Docker not reachable ({error}); local clusters only")
    else:
        try:
            members += docker_members(client)
        finally:
            client.close()
    return group(members)


def docker_members(client: Any) -> list[tuple[str, str, str, bool, str]]:
    """Compose containers and Swarm services labelled by this tool."""
    from artm_compose.docker_access import containers, is_swarm_manager, services

    members = []
    for container in containers(client, label=labels.CLUSTER):
        tags = container.labels
        if tags.get(labels.RUNTIME) == "swarm":
            continue  # a Swarm task: counted through its service
        members.append((tags[labels.CLUSTER], tags.get(labels.RUNTIME, "compose"), tags.get(labels.STATE_DIR, ""),
                        container.status == "running", container.created.isoformat(timespec="seconds")))
    if is_swarm_manager(client):
        for service in services(client, label=labels.CLUSTER):
            tags = service.labels
            members.append((tags[labels.CLUSTER], "swarm", tags.get(labels.STATE_DIR, ""), service.replicas != 0,
                            service.created.isoformat(timespec="seconds")))
    return members


def local_members(proc: Path = Path("/proc")) -> list[tuple[str, str, str, bool, str]]:
    """The local runtime's Redis nodes: redis-server processes working in a node directory of a state dir
    (the local runtime starts each in its node's directory; Redis rewrites its command line)."""
    from artm_compose.record import ClusterRecord
    from artm_compose.state import StateDir

    members = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # comm, not exe: Debian's redis-server is a link to redis-check-rdb
            if (entry / "comm").read_text().strip() != "redis-server":
                continue
            cwd = Path(os.readlink(entry / "cwd"))
            started = (entry / "stat").stat().st_mtime
        except OSError:
            continue
        root = next((p for p in [cwd, *cwd.parents] if (p / "cluster.json").exists()), None)
        record = ClusterRecord.load_if_any(StateDir.at(root)) if root is not None else None
        if record is None:
            continue
        since = datetime.datetime.fromtimestamp(started, datetime.timezone.utc)
        members.append((record.cluster, "local", str(root), True, since.isoformat(timespec="seconds")))
    return members


def format_table(entries: list[ClusterEntry]) -> str:
    """Columns as ``docker compose ls``: NAME, RUNTIME, STATUS, STATE DIR, SINCE."""
    rows = [("NAME", "RUNTIME", "STATUS", "STATE DIR", "SINCE")]
    rows += [(e.name, e.runtime, e.status, e.state_dir, e.since) for e in entries]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("   ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "   " + row[-1]
                     for row in rows)
