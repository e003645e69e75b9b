"""Render a plan into the files every runtime reads: ``cluster.json`` (and the password it names).

A runtime renders its own files from the same :class:`~artm_compose.plan.Plan` with ``render_template``,
from the Jinja2 templates in its own package's ``templates/`` (local: ``redis.conf`` per node and
``addresses.txt``; Compose: ``compose.yml``; Swarm: ``stack.yml``), since only it reads them.
``render_all`` writes the shared part into a state directory.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from artm_compose.plan import ExecutorPlan, Plan
from artm_compose.record import Status, write_document
from artm_compose.state import StateDir

# Inside a container every node has the same layout (its entrypoint writes redis.conf there).
CONTAINER_REDIS_DIR = "/data"
MASTER = "master"
DASHBOARD = "dashboard"


@lru_cache(maxsize=None)
def _environment(package: str) -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader(package, "templates"),
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                              trim_blocks=True, lstrip_blocks=True, autoescape=False)


def render_template(package: str, name: str, /, **context: Any) -> str:
    """Render ``<package>/templates/<name>`` with ``context`` (undefined names are an error); ``package``
    is the runtime's, e.g. ``__package__`` in its modules."""
    return _environment(package).get_template(name).render(**context)


def redis_component(index: int) -> str:
    return f"redis-{index}"


def components(plan: Plan) -> list[str]:
    """Every component name of ``plan`` in start order: Redis nodes, executors, then the master."""
    names = [redis_component(n.index) for n in plan.redis_nodes] + [e.name for e in plan.executors]
    return names + ([MASTER] if plan.data is not None else [])


def plan_fingerprint(plan: Plan) -> str:
    """A digest of everything the plan decides: equal fingerprints mean the same cluster and training."""
    return _digest(plan.to_dict())


def redis_fingerprint(plan: Plan) -> str:
    """A digest of the Redis Cluster part of the plan: equal means the running cluster can be reused."""
    return _digest({"cluster": plan.cluster, "runtime": plan.config.runtime,
                    "node_timeout_ms": plan.config.node_timeout_ms, "nodes": [n.to_dict() for n in plan.redis_nodes]})


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def cluster_description(plan: Plan, state: StateDir, *, status: Status) -> dict[str, Any]:
    """The ``cluster.json`` document: the plan plus addresses, logs, files, runtime and status."""
    fingerprint = plan_fingerprint(plan)
    described = plan.to_dict()
    nodes_by_index = {n.index: n for n in plan.nodes}

    def executor(e: ExecutorPlan) -> dict[str, Any]:
        node = nodes_by_index[e.node]
        return {**e.to_dict(), "name": e.name, "redis": f"{node.host}:{node.port}",
                "log": str(state.log(e.name))}

    first = plan.nodes[0]
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return {
        **described,
        "id": f"{plan.cluster}-{fingerprint[:12]}",
        "fingerprint": fingerprint,
        "redis_fingerprint": redis_fingerprint(plan),
        "status": str(status),
        "created": now,
        "updated": now,
        "state_dir": str(state.root),
        "config": plan.config.to_dict(),
        "nodes": [{**n.to_dict(), "bus_port": n.bus_port, "address": f"{n.host}:{n.port}",
                   "component": redis_component(n.index), "log": str(state.log(redis_component(n.index)))}
                  for n in plan.redis_nodes],
        "executors": [executor(e) for e in plan.executors],
        "master": {"name": MASTER, "redis": f"{first.host}:{first.port}", "log": str(state.log(MASTER)),
                   "enabled": plan.data is not None},
        "files": {"password": str(state.password_file), "training_password": str(state.training_password_file),
                  "reader_password": str(state.reader_password_file),
                  "scores": str(state.scores), "logs": str(state.logs_dir)},
    }


def render_all(plan: Plan, state: StateDir, *, status: Status = Status.RENDERED) -> list[Path]:
    """Write ``cluster.json`` for ``plan`` into ``state`` (creating the passwords of the admin, the training
    user and the reader on first use) and return the paths written; a runtime writes its own files beside it."""
    state.create()
    state.ensure_password()
    state.ensure_training_password()
    state.ensure_reader_password()
    write_document(state, cluster_description(plan, state, status=status))
    return [state.cluster_json]
