"""``plan`` and ``render``: what would run where, and the files it needs; nothing starts."""

from __future__ import annotations

import json
from typing import Any

import click

from artm_compose.cli.group import cli
from artm_compose.cli.options import cluster_of, cluster_options
from artm_compose.memory import (describe_executor_memory, describe_node_memory, executor_memory,
                                  redis_node_memory)
from artm_compose.plan import Plan


@cli.command("plan")
@cluster_options
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON (nodes, executors, split, data).")
def plan_command(as_json: bool, **options: Any) -> None:
    """Show the plan: nodes with ports and slot ranges, executors with token and batch ranges.

    Reads the data directory (if given) to balance the split; starts nothing.
    """
    plan = cluster_of(options).plan
    if as_json:
        click.echo(json.dumps(plan.to_dict(), indent=2))
    else:
        click.echo(describe_plan(plan))


@cli.command("render")
@cluster_options
def render_command(**options: Any) -> None:
    """Write the cluster's files into the state directory without starting anything.

    cluster.json and redis.password (0600), and the runtime's own files: redis.conf per node and
    addresses.txt for local, compose.yml for Compose, stack.yml for Swarm (as `swarm render` writes it).
    """
    cluster = cluster_of(options)
    for path in cluster.render():
        click.echo(str(path))


def describe_plan(plan: Plan) -> str:
    """The plan for people: sizes, data, split balance, then one line per node and per executor."""
    config = plan.config
    lines = [f"cluster {plan.cluster}: {len(plan.nodes)} virtual node(s) x {config.executors_per_node} executor(s) "
             f"= {len(plan.executors)} executor(s), runtime {config.runtime}"]
    if plan.data is not None:
        data = plan.data
        lines.append(f"data {data.batches_dir}: {data.batch_count} batches, {data.items} documents, "
                     f"vocabulary {data.vocab_size} tokens ({data.vocab_path}), token weight {data.token_weight:.0f}")
        lines.append(f"training: {config.topics} topics, {config.iterations} passes x {config.inner_iterations} "
                     f"document passes, {config.threads} thread(s) per executor, seed {config.seed}")
        lines.append(plan.split.describe())
    else:
        lines.append("no data directory: only the Redis Cluster would come up")
    lines.append("nodes:")
    memory = redis_node_memory(plan)
    for node, needs in zip(plan.nodes, memory):
        ids = [e.id for e in plan.executors_of(node.index)]
        lines.append(f"  {node.name:<10} {node.host}:{node.port:<6} slots {node.slots[0]}-{node.slots[1]:<6} "
                     f"executors {ids[0]}-{ids[-1]}  Redis memory {describe_node_memory(needs)}")
    if plan.data is not None:
        lines.append("executors:")
        for executor, needs in zip(plan.executors, executor_memory(plan)):
            (b0, b1), (t0, t1) = executor.batch_range, executor.token_range
            idle = "  (idle)" if executor.idle else ""
            lines.append(f"  {executor.name:<12} node {executor.node:<4} batches [{b0}, {b1}) tokens [{t0}, {t1}){idle}"
                         f"  memory {describe_executor_memory(needs)}")
    return "\n".join(lines)
