"""``up``, ``status``, ``logs``, ``down`` and ``export``: a cluster's life, from start to stop."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from artm_compose.cli.group import cli
from artm_compose.cli.options import cluster_of, cluster_options, existing_cluster, state_options


@cli.command("up")
@cluster_options
@click.option("-d", "--detach", is_flag=True, help="Return once started instead of following the training.")
def up_command(detach: bool, **options: Any) -> None:
    """Bring the cluster up: Redis nodes, slots, then (with --data) executors and master.

    Everything is validated before anything starts. Running `up` again on a healthy cluster of the
    same plan changes nothing; a different plan in the same state directory is refused.
    Without -d, follows the training until the master exits.
    """
    cluster = cluster_of(options)
    result = cluster.up(detach=detach, echo=click.echo)
    if result.already_up:
        click.echo(f"cluster {cluster.config.name} is already up and healthy ({cluster.state.root})")
    elif result.training == "finished":
        click.echo(f"training finished; scores in {cluster.state.scores}")
    click.echo(cluster.status().describe())


@cli.command("status")
@state_options
@click.option("--json", "as_json", is_flag=True,
              help="Print as JSON: cluster_state, slots_assigned, members with role and liveness.")
def status_command(as_json: bool, **options: Any) -> None:
    """Show members by role with liveness, the Redis Cluster state and training progress."""
    status = existing_cluster(options).status()
    click.echo(json.dumps(status.to_dict(), indent=2) if as_json else status.describe())


@cli.command("logs")
@state_options
@click.argument("component", required=False)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines (Ctrl-C to stop).")
def logs_command(component: str | None, follow: bool, **options: Any) -> None:
    """Print a component's log: redis-<i>, executor-<id>, master, a role (redis, executor), or all."""
    cluster = existing_cluster(options)
    try:
        for line in cluster.runtime.logs(component, follow=follow):
            click.echo(line, nl=False)
    except KeyboardInterrupt:
        pass


@cli.command("down")
@state_options
@click.option("--volumes", is_flag=True, help="Also remove the data volumes the cluster created.")
def down_command(volumes: bool, **options: Any) -> None:
    """Stop exactly what `up` started for this state directory (safe to run twice)."""
    existing_cluster(options).down(echo=click.echo, volumes=volumes)


@cli.command("export")
@state_options
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="model.npz (arrays phi, tokens, topics) or model.csv (a table).")
def export_command(out: Path, **options: Any) -> None:
    """Write the trained model (phi with token and topic names) from Redis to a file."""
    click.echo(str(existing_cluster(options).export(out)))
