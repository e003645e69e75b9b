"""Render a plan into files: redis.conf per node, addresses.txt, executors.txt, cluster.json.

Text artefacts are Jinja2 templates in ``artm_compose/templates``; a compose file or a Swarm stack
is one more template over the same :class:`~artm_compose.plan.Plan` (``render_template``). The
``render_*`` functions are pure (plan in, text out); ``render_all`` writes them into a state directory.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from artm_compose.plan import ExecutorPlan, NodePlan, Plan
from artm_compose.record import Status, write_document
from artm_compose.state import StateDir, write_text_atomic

# Inside a container every node has the same layout; locally each has its own directory and port.
CONTAINER_REDIS_DIR = "/data"
MASTER = "master"
DASHBOARD = "dashboard"


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader("artm_compose", "templates"),
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                              trim_blocks=True, lstrip_blocks=True, autoescape=False)


def render_template(name: str, **context: Any) -> str:
    """Render ``templates/<name>`` with ``context`` (undefined names are an error)."""
    return _environment().get_template(name).render(**context)


def redis_component(index: int) -> str:
    return f"redis-{index}"


def components(plan: Plan) -> list[str]:
    """Every component name of ``plan`` in start order: Redis nodes, executors, then the master."""
    names = [redis_component(n.index) for n in plan.nodes] + [e.name for e in plan.executors]
    return names + ([MASTER] if plan.data is not None else [])


def render_redis_conf(plan: Plan, node: NodePlan, *, password: str, directory: str, logfile: str = "",
                      bind: str = "127.0.0.1", announce: dict[str, str | int] | None = None) -> str:
    """The ``redis.conf`` of ``node``: cluster mode, node timeout, noeviction, no persistence, password.

    ``logfile=""`` logs to stdout (containers); ``announce`` adds ``cluster-announce-*`` settings
    for nodes reached through a translated address.
    """
    return render_template("redis.conf.j2", cluster=plan.cluster, node=node, port=node.port, bind=bind,
                           password=password, directory=directory, logfile=logfile,
                           node_timeout_ms=plan.config.node_timeout_ms,
                           announce=sorted((announce or {}).items()))


def render_addresses(plan: Plan) -> str:
    """``HOST PORT`` per instance, in node order (the reference's addresses file)."""
    return render_template("addresses.txt.j2", nodes=plan.nodes)


def render_executors(plan: Plan) -> str:
    """One executor id per line (the master's input)."""
    return render_template("executors.txt.j2", executors=plan.executors)


def plan_fingerprint(plan: Plan) -> str:
    """A digest of everything the plan decides: equal fingerprints mean the same cluster and training."""
    return _digest(plan.to_dict())


def redis_fingerprint(plan: Plan) -> str:
    """A digest of the Redis Cluster part of the plan: equal means the running cluster can be reused."""
    return _digest({"cluster": plan.cluster, "runtime": plan.config.runtime,
                    "node_timeout_ms": plan.config.node_timeout_ms, "nodes": [n.to_dict() for n in plan.nodes]})


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
                  for n in plan.nodes],
        "executors": [executor(e) for e in plan.executors],
        "master": {"name": MASTER, "redis": f"{first.host}:{first.port}", "log": str(state.log(MASTER)),
                   "enabled": plan.data is not None},
        "files": {"addresses": str(state.addresses), "executors": str(state.executors),
                  "password": str(state.password_file), "scores": str(state.scores),
                  "logs": str(state.logs_dir)},
    }


def redis_conf_for(plan: Plan, state: StateDir, node: NodePlan, password: str) -> str:
    """``node``'s redis.conf as its runtime needs it: own dir and log file locally, /data and stdout in containers."""
    if plan.config.runtime == "local":
        return render_redis_conf(plan, node, password=password, directory=str(state.redis_dir(node.index)),
                                 logfile=str(state.log(redis_component(node.index))), bind=node.host)
    return render_redis_conf(plan, node, password=password, directory=CONTAINER_REDIS_DIR, bind="0.0.0.0")


def render_all(plan: Plan, state: StateDir, *, status: Status = Status.RENDERED) -> list[Path]:
    """Write every artefact of ``plan`` into ``state`` and return the paths written.

    Creates the password on first use; ``redis.conf`` holds it, so it is written mode 0600 too.
    """
    state.create()
    password = state.ensure_password()
    written = []
    for node in plan.nodes:
        path = state.redis_conf(node.index)
        write_text_atomic(path, redis_conf_for(plan, state, node, password), mode=0o600)
        written.append(path)
    for path, text in ((state.addresses, render_addresses(plan)), (state.executors, render_executors(plan))):
        write_text_atomic(path, text)
        written.append(path)
    write_document(state, cluster_description(plan, state, status=status))
    written.append(state.cluster_json)
    return written
