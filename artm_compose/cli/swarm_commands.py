"""``artm-compose swarm ...``: range labels on the Swarm's nodes, and the data each node needs."""

from __future__ import annotations

import json
from typing import Any

import click

from artm_compose.cli.options import cluster_of, cluster_options
from artm_compose.docker_access import cli, docker_client
from artm_compose.errors import ArtmComposeError, ConfigError, DataError
from artm_compose.images.build import image_tags
from artm_compose.runtimes.swarm.runtime import SwarmRuntime
from artm_compose.runtimes.swarm.assign import DEFAULT_CAPACITY_LABEL, Assignment, assign, removal, usable_holdings
from artm_compose.runtimes.swarm.data_plan import check_local, data_plan
from artm_compose.runtimes.swarm.node_check import check_on_nodes
from artm_compose.runtimes.swarm.node_labels import apply_changes, list_nodes, require_manager
from artm_compose.runtimes.swarm.stack import stack_name

_selector_option = click.option(
    "--selector", metavar="KEY=VALUE",
    help="Use only Swarm nodes carrying this label (e.g. artm.enabled=true) [default: every node].")
_capacity_option = click.option(
    "--capacity-label", default=DEFAULT_CAPACITY_LABEL, show_default=True,
    help="Node label holding a node's relative capacity (a number; absent means 1, 0 means none).")


@click.group("swarm")
def swarm_group() -> None:
    """Docker Swarm placement: which Swarm node holds which virtual nodes, and their data."""


@swarm_group.command("label")
@click.option("--nodes", type=click.IntRange(min=1), help="Number of virtual nodes to place.")
@click.option("--name", default="artm", show_default=True, help="Cluster name (the labels are artm.<name>.*).")
@_selector_option
@_capacity_option
@click.option("--remove", is_flag=True, help="Remove every label of this cluster from every Swarm node.")
@click.option("--dry-run", is_flag=True, help="Show the assignment and the label changes; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the assignment as JSON.")
def label_command(nodes: int | None, name: str, selector: str | None, capacity_label: str, remove: bool,
                  dry_run: bool, as_json: bool) -> None:
    """Assign each Swarm node a contiguous range of virtual nodes, balanced by capacity, and label it.

    Labels: artm.<name>.vnodes=<first>-<last> (for people) and artm.<name>.group=<k> (what the stack's
    placement constraints compare). Drained, paused and down nodes get none, and lose stale ones.
    Running it again with the same Swarm changes nothing.
    """
    whales = cli()
    require_manager(whales)
    if remove:
        changes = removal(name, list_nodes(whales))
        if not dry_run:
            apply_changes(whales, changes)
        verb = "would remove" if dry_run else "removed"
        for change in changes:
            click.echo(f"{change.hostname}: {verb} {', '.join(change.remove)}")
        if not changes:
            click.echo(f"no Swarm node carries labels of cluster {name!r}")
        return
    if nodes is None:
        raise ConfigError("--nodes is required (unless --remove)")
    result = assign(name, nodes, list_nodes(whales), selector=selector, capacity_label=capacity_label)
    if not dry_run:
        apply_changes(whales, result.changes)
    if as_json:
        click.echo(json.dumps(_assignment_dict(result, applied=not dry_run), indent=2))
        return
    click.echo(describe_assignment(result, applied=not dry_run))


@swarm_group.command("data-plan")
@cluster_options
@_selector_option
@_capacity_option
@click.option("--on-nodes", is_flag=True,
              help="Also check the files on every Swarm node with a short task (the artm image must be there).")
@click.option("--json", "as_json", is_flag=True, help="Print the data plan as JSON.")
def data_plan_command(selector: str | None, capacity_label: str, on_nodes: bool, as_json: bool,
                      **options: Any) -> None:
    """Say which batch files each Swarm node needs, and check them on this machine.

    Executors read their batches at the same path on every node (a shared file system or copies).
    The placement is the Swarm's current labels if they hold every virtual node, else the one
    `swarm label` would write. Exits non-zero if a file is missing here.
    """
    options["runtime"] = "swarm"
    plan = cluster_of(options).plan
    if plan.data is None:
        raise ArtmComposeError("swarm data-plan needs a data directory: pass --data")
    whales = cli()
    require_manager(whales)
    swarm_nodes = list_nodes(whales)
    holdings = usable_holdings(plan.cluster, len(plan.nodes), swarm_nodes)
    labelled = holdings is not None
    if holdings is None:
        holdings = assign(plan.cluster, len(plan.nodes), swarm_nodes, selector=selector,
                          capacity_label=capacity_label).holdings
    placed = data_plan(plan, holdings)
    problems = check_local(placed)
    remote = (check_on_nodes(docker_client(), placed, image_tags().artm, plan.cluster) if on_nodes else {})
    if as_json:
        click.echo(json.dumps({**placed.to_dict(), "labelled": labelled, "local_problems": problems,
                               "node_problems": remote}, indent=2))
    else:
        if not labelled:
            click.echo(f"(the Swarm is not labelled for cluster {plan.cluster!r} yet: this is the placement "
                       f"`artm-compose swarm label --nodes {len(plan.nodes)} --name {plan.cluster}` would write)")
        click.echo(placed.describe())
        click.echo("checked here: " + ("every file is present and readable" if not problems
                                       else f"{len(problems)} problem(s)"))
        for hostname, found in remote.items():
            click.echo(f"checked on {hostname}: " + ("every file it needs is readable" if not found
                                                     else f"{len(found)} problem(s)"))
    problems += [f"{hostname}: {problem}" for hostname, found in remote.items() for problem in found]
    if problems:
        raise DataError("; ".join(problems[:10]))


@swarm_group.command("render")
@cluster_options
def render_command(**options: Any) -> None:
    """Write the stack file (and the state directory's files) for `docker stack deploy` by hand.

    Placement follows the Swarm's current labels if they hold every virtual node, else the labels
    `swarm label` would write (apply them before deploying). Nothing is deployed.
    """
    options["runtime"] = "swarm"
    cluster = cluster_of(options)
    plan = cluster.plan
    runtime = cluster.runtime
    assert isinstance(runtime, SwarmRuntime)
    rendered = runtime.render_stack(plan)
    if not rendered.labelled:
        click.echo(f"(the Swarm is not labelled for cluster {plan.cluster!r} yet: run `artm-compose swarm label "
                   f"--nodes {len(plan.nodes)} --name {plan.cluster}` before deploying)")
    click.echo(str(rendered.stack))
    click.echo(f"deploy: docker stack deploy --resolve-image never -c {rendered.stack} {stack_name(plan)}")


def describe_assignment(result: Assignment, *, applied: bool) -> str:
    """The assignment for people: one line per holder, per skipped node, and per label change."""
    lines = [f"cluster {result.cluster}: {sum(len(h.vnodes) for h in result.holdings)} virtual node(s) on "
             f"{len(result.holdings)} Swarm node(s)"]
    for holding in result.holdings:
        lines.append(f"  {holding.hostname:<20} virtual nodes {holding.first}-{holding.last}  group {holding.group}")
    for hostname, reason in result.skipped.items():
        lines.append(f"  {hostname:<20} none ({reason})")
    pending = result.pending
    if not pending:
        lines.append("labels already up to date")
    verb = "" if applied else "would "
    for change in pending:
        parts = [f"{verb}add {k}={v}" for k, v in change.add.items()] + [f"{verb}remove {k}" for k in change.remove]
        lines.append(f"  {change.hostname}: " + ", ".join(parts))
    return "\n".join(lines)


def _assignment_dict(result: Assignment, *, applied: bool) -> dict[str, Any]:
    return {"cluster": result.cluster, "applied": applied,
            "holdings": [h.to_dict() for h in result.holdings], "skipped": dict(result.skipped),
            "changes": [{"hostname": c.hostname, "node_id": c.node_id, "add": dict(c.add), "remove": list(c.remove)}
                        for c in result.pending]}
