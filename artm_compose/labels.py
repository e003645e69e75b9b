"""Docker label keys and selectors shared by the compose and swarm runtimes.

Every Docker object artm-compose creates carries ``artm-compose.cluster=<name>`` and
``artm-compose.runtime=<runtime>``; ``status`` and ``down`` select by these two, never by name,
so they find exactly what one cluster created and nothing else.
"""

from __future__ import annotations

from pathlib import Path

from artm_compose.plan import ExecutorPlan, NodePlan, Plan

PREFIX = "artm-compose"
CLUSTER = f"{PREFIX}.cluster"
RUNTIME = f"{PREFIX}.runtime"
PROJECT = f"{PREFIX}.project"
ROLE = f"{PREFIX}.role"
NODE = f"{PREFIX}.node"
EXECUTOR = f"{PREFIX}.executor"
SLOTS = f"{PREFIX}.slots"
TOKENS = f"{PREFIX}.tokens"
BATCHES = f"{PREFIX}.batches"
STATE_DIR = f"{PREFIX}.state-dir"
PLAN = f"{PREFIX}.plan"
REDIS_LAYOUT = f"{PREFIX}.redis-layout"

ROLES = ("redis", "bootstrap", "control", "executor", "master", "dashboard")


def project_name(cluster: str) -> str:
    """The Compose project (and stack) name of a cluster: ``artm-<name>``."""
    return f"artm-{cluster}"


def base_labels(plan: Plan, state_dir: Path) -> dict[str, str]:
    """Labels every object of the cluster carries (networks and volumes get only these).

    The state directory tells two clusters of the same name apart: ``up`` refuses a name in use elsewhere.
    """
    return {CLUSTER: plan.cluster, RUNTIME: plan.config.runtime, PROJECT: project_name(plan.cluster),
            STATE_DIR: str(state_dir)}


def redis_labels(plan: Plan, state_dir: Path, node: NodePlan, layout: str) -> dict[str, str]:
    """Labels of node ``node``'s Redis container: index, inclusive slot range, Redis layout fingerprint."""
    return {**base_labels(plan, state_dir), ROLE: "redis", NODE: str(node.index),
            SLOTS: f"{node.slots[0]}-{node.slots[1]}", REDIS_LAYOUT: layout}


def executor_labels(plan: Plan, state_dir: Path, executor: ExecutorPlan, fingerprint: str) -> dict[str, str]:
    """Labels of one executor: id, node, half-open token and batch ranges (``begin:end``), plan fingerprint."""
    return {**base_labels(plan, state_dir), ROLE: "executor", NODE: str(executor.node),
            EXECUTOR: str(executor.id), TOKENS: _half_open(executor.token_range),
            BATCHES: _half_open(executor.batch_range), PLAN: fingerprint}


def role_labels(plan: Plan, state_dir: Path, role: str, fingerprint: str | None = None) -> dict[str, str]:
    """Labels of a single-instance component (``master``, ``bootstrap``)."""
    if role not in ROLES:
        raise ValueError(f"role={role!r}: choose one of {', '.join(ROLES)}")
    return {**base_labels(plan, state_dir), ROLE: role, **({PLAN: fingerprint} if fingerprint else {})}


def selector(cluster: str, runtime: str, **extra: str) -> list[str]:
    """``key=value`` label filters selecting one cluster's objects (for ``docker ... --filter label=``)."""
    pairs = {CLUSTER: cluster, RUNTIME: runtime, **{f"{PREFIX}.{k}": v for k, v in extra.items()}}
    return [f"{key}={value}" for key, value in pairs.items()]


def _half_open(span: tuple[int, int]) -> str:
    return f"{span[0]}:{span[1]}"
