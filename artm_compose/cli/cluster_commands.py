"""``up``, ``status``, ``logs``, ``down`` and ``export``: a cluster's life, from start to stop."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from artm_compose.api import EXPORT_FORMATS
from artm_compose.cli.group import cli
from artm_compose.cli.options import cluster_for_up, cluster_options, existing_cluster, state_options
from artm_compose.dashboard.terminal import EXIT_CODES_HELP, ProgressEcho, probe_for, status_exit_code
from artm_compose.dashboard.terminal import watch as watch_status


@cli.command("up")
@cluster_options
@click.option("-d", "--detach", is_flag=True, help="Return once started instead of following the training.")
def up_command(detach: bool, **options: Any) -> None:
    """Bring the cluster up: Redis nodes, slots, then (with --data) executors and master.

    Everything is validated before anything starts. Running `up` again on a healthy cluster of the
    same plan changes nothing; a different plan in the same state directory is refused.
    Without -d, follows the training until the master exits (on a terminal with a progress bar
    of the pass in progress under the per-pass lines).
    """
    cluster = cluster_for_up(options)
    with ProgressEcho(sys.stdout, probe_for(cluster.state.root), bar=not detach) as echo:
        result = cluster.up(detach=detach, echo=echo)
    if result.already_up:
        click.echo(f"cluster {cluster.config.name} is already up and healthy ({cluster.state.root})")
    elif result.training == "finished":
        click.echo(f"training finished; scores in {cluster.state.scores}")
    click.echo(cluster.status().describe())


@cli.command("status", epilog=EXIT_CODES_HELP)
@state_options
@click.option("--json", "as_json", is_flag=True,
              help="Print as JSON: cluster_state, slots_assigned, members with role and liveness.")
@click.option("-w", "--watch", is_flag=True, help="Refresh every --interval seconds (in place on a terminal).")
@click.option("--interval", type=click.FloatRange(min=0.1), default=2.0, show_default=True,
              help="Seconds between refreshes with --watch.")
@click.pass_context
def status_command(ctx: click.Context, as_json: bool, watch: bool, interval: float, **options: Any) -> None:
    """Show members by role with liveness, the Redis Cluster state and training progress."""
    cluster = existing_cluster(options)

    def render() -> tuple[str, int]:
        status = cluster.status()
        document = status.to_dict()
        return (json.dumps(document, indent=2) if as_json else status.describe()), status_exit_code(document)

    if watch:
        code = watch_status(render, interval, sys.stdout)
    else:
        text, code = render()
        click.echo(text)
    ctx.exit(code)


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


@cli.command("ls")
@click.option("--json", "as_json", is_flag=True, help="One JSON list instead of the table.")
def ls_command(as_json: bool) -> None:
    """List the clusters on this machine and its Docker Swarm: Compose and Swarm ones by their labels, local
    ones by their running Redis nodes (name, runtime, status, state dir, since), like `docker compose ls`."""
    from artm_compose import listing

    entries = listing.list_clusters(note=lambda message: click.echo(f"note: {message}", err=True))
    click.echo(json.dumps([e.to_dict() for e in entries], indent=1) if as_json else listing.format_table(entries))


@cli.command("scale")
@state_options
@click.option("--executors", type=click.IntRange(min=1), required=True,
              help="Executors to go on with: a multiple of the Redis nodes (the same number beside each).")
def scale_command(executors: int, **options: Any) -> None:
    """Change the executors of a running training between two passes (local, compose and swarm runtimes).

    The master takes the request once its current pass is committed, ends the executors, and the new
    ones (ranges of tokens and batches planned for the new count) take over from the committed model;
    the model ends as an uninterrupted run's up to float rounding. Offline training only. In Compose the
    executor containers beyond the new count are removed and the others recreated, in Swarm the stack is
    deployed again with the new executor services; the master and Redis keep running."""
    click.echo(existing_cluster(options).scale(executors, echo=click.echo).status().describe())


@cli.command("down")
@state_options
@click.option("--volumes", is_flag=True, help="Also remove the data volumes the cluster created.")
def down_command(volumes: bool, **options: Any) -> None:
    """Stop exactly what `up` started for this state directory, under whatever name (safe to run twice).

    With --name, that cluster's containers, networks, services and local processes go too, even if
    the state directory records another one."""
    names = (options["name"],) if options.get("name") else ()
    existing_cluster(options).down(echo=click.echo, volumes=volumes, names=names)


@cli.command("export")
@state_options
@click.option("--out", required=True, type=click.Path(path_type=Path),
              help="model.npz (arrays phi, tokens, topics), model.csv (a table), or with --format bigartm "
                   "a new directory.")
@click.option("--format", "export_format", type=click.Choice(EXPORT_FORMATS),
              help="npz, csv, or bigartm: what BigARTM 0.9.2's artm.load_artm_model(DIR) loads to go on "
                   "training on one machine [default: from the --out suffix].")
def export_command(out: Path, export_format: str | None, **options: Any) -> None:
    """Write the trained model (phi with token and topic names) from Redis to a file or directory."""
    click.echo(str(existing_cluster(options).export(out, format=export_format)))


@cli.command("transform")
@state_options
@click.option("--data", "data_dir", type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="Batch directory whose documents get theta [default: the training data].")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="theta.npz (arrays theta, items, titles, topics) or theta.csv (one row per document).")
def transform_command(data_dir: Path | None, out: Path, **options: Any) -> None:
    """Theta (documents x topics) of any batches under the committed model, as BigARTM's transform.

    Runs the E-step on the cluster, the batches split as training splits them and the shares
    computed in parallel; tokens the model does not have are skipped.
    """
    click.echo(str(existing_cluster(options).runtime.transform(out, data=data_dir)))
