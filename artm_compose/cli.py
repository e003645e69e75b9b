"""``artm-compose``: plan, render, bring up, inspect and stop a topic-model training cluster.

A thin layer over :mod:`artm_compose.api`: options become a validated ClusterConfig once, here;
user errors print as one line ``error: ...`` (exit code 2 for bad input, 1 for a failed run).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from artm_compose import __version__
from artm_compose.api import EXPORT_FORMATS, Cluster
from artm_compose.config import RUNTIMES, SPLITS
from artm_compose.dashboard.terminal import EXIT_CODES_HELP, ProgressEcho, probe_for, status_exit_code
from artm_compose.dashboard.terminal import watch as watch_status
from artm_compose.errors import ArtmComposeError, BootstrapError, TrainingError
from artm_compose.plan import Plan

# Commands that live with their subsystem, loaded only when used (a missing one does not break the CLI).
_LAZY_COMMANDS = {
    "data": ("artm_compose.data.commands", "data_group"),
    "build": ("artm_compose.images.commands", "build_command"),
    "swarm": ("artm_compose.swarm.commands", "swarm_group"),
    "dashboard": ("artm_compose.dashboard.commands", "dashboard_command"),
    "plot": ("artm_compose.dashboard.commands", "plot_command"),
}
# CLI option name -> ClusterConfig field, where they differ.
_FIELD_OF_OPTION = {"data": "data_dir", "vocab": "vocab_path", "config_file": None, "as_json": None, "detach": None}
_FAILED_RUN_EXIT = 1
_BAD_INPUT_EXIT = 2


class _Commands(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        lazy = [name for name, (module, _) in _LAZY_COMMANDS.items() if importlib.util.find_spec(module)]
        return [*super().list_commands(ctx), *sorted(lazy)]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in _LAZY_COMMANDS and name not in self.commands:
            module_name, attribute = _LAZY_COMMANDS[name]
            if importlib.util.find_spec(module_name) is None:
                return None
            return getattr(importlib.import_module(module_name), attribute)
        return super().get_command(ctx, name)


def _state_options(function: Callable) -> Callable:
    """Options that find an existing cluster: its state directory (or a config naming one)."""
    for decorator in reversed([
        click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
                     help="YAML config file (keys as in ClusterConfig); flags given here win over it."),
        click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path),
                     help="State directory of the cluster [default: ./state]."),
        click.option("--name", help="Cluster name (used by the Docker runtimes to find their objects)."),
        click.option("--runtime", type=click.Choice(RUNTIMES),
                     help="Where the cluster runs [default: as recorded in the state dir, else compose]."),
    ]):
        function = decorator(function)
    return function


def _cluster_options(function: Callable) -> Callable:
    """Options that describe a cluster to plan and start."""
    function = _state_options(function)
    for decorator in reversed([
        click.option("--nodes", type=int, help="Virtual nodes: one Redis instance each [default: 1]."),
        click.option("--executors-per-node", type=int, help="Executors per virtual node [default: 1]."),
        click.option("--base-port", type=int,
                     help="Redis port (local runtime: node i listens on base+i) [default: 7000]."),
        click.option("--data", type=click.Path(path_type=Path),
                     help="Directory of BigARTM *.batch files; without it only the Redis Cluster comes up."),
        click.option("--vocab", type=click.Path(path_type=Path),
                     help="Vocabulary file, one token per line [default: DATA/vocab.txt]."),
        click.option("--topics", type=int, help="Number of topics [default: 20]."),
        click.option("--iterations", type=int, help="Offline passes over the collection [default: 10]."),
        click.option("--inner-iterations", type=int, help="Document passes per batch [default: 10]."),
        click.option("--threads", type=int, help="Threads per executor [default: 1]."),
        click.option("--seed", type=int, help="Seed of the initial phi [default: 0]."),
        click.option("--split", type=click.Choice(SPLITS),
                     help="balanced: ranges of equal token weight (default); even: the reference formula."),
        click.option("--allow-idle", is_flag=True, default=None,
                     help="Accept executors that get no batch (more executors than batches)."),
        click.option("--init-phi", type=click.Path(dir_okay=False, path_type=Path),
                     help="Start from this phi (.npz export or CSV with tokens as the first column)."),
        click.option("--continue-fitting", is_flag=True, default=None,
                     help="Resume from the model held in Redis instead of a fresh initial phi."),
        click.option("--publish", is_flag=True, default=None,
                     help="Compose: publish Redis ports on 127.0.0.1 (base+i) for clients on this host."),
        click.option("--redis-memory", help="Container memory limit of each Redis node, e.g. 1g."),
        click.option("--executor-memory", help="Container memory limit of each executor, e.g. 2g."),
        click.option("--master-memory", help="Container memory limit of the master, e.g. 512m."),
    ]):
        function = decorator(function)
    return function


def _config_values(options: dict[str, Any]) -> dict[str, Any]:
    """CLI options given explicitly, renamed to ClusterConfig fields."""
    values = {}
    for option, value in options.items():
        field = _FIELD_OF_OPTION.get(option, option)
        if field is not None and value is not None:
            values[field] = value
    return values


def _cluster(options: dict[str, Any]) -> Cluster:
    return Cluster.from_config(options.get("config_file"), **_config_values(options))


def _existing_cluster(options: dict[str, Any]) -> Cluster:
    """The cluster recorded in the state directory if there is one, else the one the options describe."""
    cluster = _cluster(options)
    if cluster.state.exists():
        recorded = Cluster.from_state(cluster.state.root)
        if options.get("runtime") is None or options["runtime"] == recorded.config.runtime:
            return recorded
    return cluster


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="artm-compose")
def cli() -> None:
    """Distributed BigARTM-style topic-model training on a Redis Cluster.

    \b
    A virtual node is one Redis instance plus the executors that talk to it; the master
    drives the EM passes. Typical use:
      artm-compose plan --nodes 4 --data batches/          # what would run where
      artm-compose up --nodes 4 --data batches/ --topics 50 # start, train, follow progress
      artm-compose status                                   # members by role, cluster state
      artm-compose down                                     # stop everything started
    Runtimes: local (processes on this machine), compose (Docker Compose), swarm.
    """


@cli.command("plan")
@_cluster_options
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON (nodes, executors, split, data).")
def plan_command(as_json: bool, **options: Any) -> None:
    """Show the plan: nodes with ports and slot ranges, executors with token and batch ranges.

    Reads the data directory (if given) to balance the split; starts nothing.
    """
    plan = _cluster(options).plan
    if as_json:
        click.echo(json.dumps(plan.to_dict(), indent=2))
    else:
        click.echo(describe_plan(plan))


@cli.command("render")
@_cluster_options
def render_command(**options: Any) -> None:
    """Write the cluster's files into the state directory without starting anything.

    redis.conf per node, addresses.txt, executors.txt, cluster.json and redis.password (0600).
    """
    cluster = _cluster(options)
    for path in cluster.render():
        click.echo(str(path))


@cli.command("up")
@_cluster_options
@click.option("-d", "--detach", is_flag=True, help="Return once started instead of following the training.")
def up_command(detach: bool, **options: Any) -> None:
    """Bring the cluster up: Redis nodes, slots, then (with --data) executors and master.

    Everything is validated before anything starts. Running `up` again on a healthy cluster of the
    same plan changes nothing; a different plan in the same state directory is refused.
    Without -d, follows the training until the master exits (on a terminal with a progress bar
    of the pass in progress under the per-pass lines).
    """
    cluster = _cluster(options)
    with ProgressEcho(sys.stdout, probe_for(cluster.state.root), bar=not detach) as echo:
        result = cluster.up(detach=detach, echo=echo)
    if result.already_up:
        click.echo(f"cluster {cluster.config.name} is already up and healthy ({cluster.state.root})")
    elif result.training == "finished":
        click.echo(f"training finished; scores in {cluster.state.scores}")
    click.echo(cluster.status().describe())


@cli.command("status", epilog=EXIT_CODES_HELP)
@_state_options
@click.option("--json", "as_json", is_flag=True,
              help="Print as JSON: cluster_state, slots_assigned, members with role and liveness.")
@click.option("-w", "--watch", is_flag=True, help="Refresh every --interval seconds (in place on a terminal).")
@click.option("--interval", type=click.FloatRange(min=0.1), default=2.0, show_default=True,
              help="Seconds between refreshes with --watch.")
@click.pass_context
def status_command(ctx: click.Context, as_json: bool, watch: bool, interval: float, **options: Any) -> None:
    """Show members by role with liveness, the Redis Cluster state and training progress."""
    cluster = _existing_cluster(options)

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
@_state_options
@click.argument("component", required=False)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines (Ctrl-C to stop).")
def logs_command(component: str | None, follow: bool, **options: Any) -> None:
    """Print a component's log: redis-<i>, executor-<id>, master, a role (redis, executor), or all."""
    cluster = _existing_cluster(options)
    try:
        for line in cluster.runtime.logs(component, follow=follow):
            click.echo(line, nl=False)
    except KeyboardInterrupt:
        pass


@cli.command("down")
@_state_options
@click.option("--volumes", is_flag=True, help="Also remove the data volumes the cluster created.")
def down_command(volumes: bool, **options: Any) -> None:
    """Stop exactly what `up` started for this state directory (safe to run twice)."""
    _existing_cluster(options).down(echo=click.echo, volumes=volumes)


@cli.command("export")
@_state_options
@click.option("--out", required=True, type=click.Path(path_type=Path),
              help="model.npz (arrays phi, tokens, topics), model.csv (a table), or with --format bigartm "
                   "a new directory.")
@click.option("--format", "export_format", type=click.Choice(EXPORT_FORMATS),
              help="npz, csv, or bigartm: what BigARTM 0.9.2's artm.load_artm_model(DIR) loads to go on "
                   "training on one machine [default: from the --out suffix].")
def export_command(out: Path, export_format: str | None, **options: Any) -> None:
    """Write the trained model (phi with token and topic names) from Redis to a file or directory."""
    click.echo(str(_existing_cluster(options).export(out, format=export_format)))


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
    for node in plan.nodes:
        ids = [e.id for e in plan.executors_of(node.index)]
        lines.append(f"  {node.name:<10} {node.host}:{node.port:<6} slots {node.slots[0]}-{node.slots[1]:<6} "
                     f"executors {ids[0]}-{ids[-1]}")
    if plan.data is not None:
        lines.append("executors:")
        for executor in plan.executors:
            (b0, b1), (t0, t1) = executor.batch_range, executor.token_range
            idle = "  (idle)" if executor.idle else ""
            lines.append(f"  {executor.name:<12} node {executor.node:<4} batches [{b0}, {b1}) tokens [{t0}, {t1}){idle}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: one-line errors, exit 2 for bad input, 1 for a failed run, 130 on Ctrl-C."""
    try:
        code = cli.main(args=argv, prog_name="artm-compose", standalone_mode=False)
    except click.UsageError as error:
        hint = f" (see: {error.ctx.command_path} --help)" if error.ctx is not None else ""
        _fail(f"{error.format_message()}{hint}", _BAD_INPUT_EXIT)
    except click.Abort:
        _fail("aborted", 130)
    except click.ClickException as error:
        _fail(error.format_message(), error.exit_code)
    except (BootstrapError, TrainingError) as error:
        _fail(str(error), _FAILED_RUN_EXIT)
    except ArtmComposeError as error:
        _fail(str(error), _BAD_INPUT_EXIT)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    sys.exit(code if isinstance(code, int) else 0)


def _fail(message: str, code: int) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)
