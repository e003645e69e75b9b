"""Option sets shared by commands, and the one place CLI options become a Cluster (a validated config).

Command groups of other packages (``swarm``, ``data``) use these too: add an option that describes a
cluster to :func:`cluster_options` and, if its name differs from the ClusterConfig field, to
``_FIELD_OF_OPTION``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from artm_compose.api import Cluster
from artm_compose.config import RUNTIMES, SPLITS, ClusterConfig
from artm_compose.engine.regularizers import parse_class_weight, parse_shorthand
from artm_compose.engine.scores import SCORE_SETS
from artm_compose.errors import ConfigError
from artm_compose.record import ClusterRecord, Status

# CLI option name -> ClusterConfig field, where they differ (None: not a config field).
_FIELD_OF_OPTION = {"data": "data_dir", "vocab": "vocab_path", "config_file": None, "as_json": None, "detach": None,
                    "regularizer": "regularizers", "class_id": "class_ids"}


def state_options(function: Callable) -> Callable:
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


def cluster_options(function: Callable) -> Callable:
    """Options that describe a cluster to plan and start."""
    function = state_options(function)
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
        click.option("--mode", type=click.Choice(("offline", "online")),
                     help="offline EM (fit_offline, default) or online (fit_online: phi updated within a pass)."),
        click.option("--update-every", type=int,
                     help="Online: batches of every executor per phi update [default: 1]."),
        click.option("--tau0", type=float, help="Online: rho = (tau0 + update) ** -kappa [default: 1024]."),
        click.option("--kappa", type=float, help="Online: rho = (tau0 + update) ** -kappa [default: 0.7]."),
        click.option("--max-restarts", type=int,
                     help="Times a lost executor is restarted (local: a supervisor; Compose/Swarm: the restart "
                          "policy) and the interrupted pass redone from the committed model [default: 3]; 0: a lost "
                          "executor stops the run."),
        click.option("--replicas", type=int,
                     help="Replicas of every virtual node, each beside another node (needs 3 nodes or more): a lost "
                          "Redis node fails over to one and the interrupted pass is redone [default: 0]."),
        click.option("--restart-timeout", type=float,
                     help="Seconds the master waits for a lost executor to come back [default: 120]."),
        click.option("--checkpoint-every", type=int,
                     help="Passes between checkpoints of the model into the state directory (checkpoint.npz) "
                          "[default: 10]; 0: none. When every Redis node lost its data, `up` again goes on from "
                          "the last checkpoint of the unfinished run; `down` removes it."),
        click.option("--regularizer", multiple=True, metavar="TYPE:tau=X,...",
                     help="A BigARTM regularizer (repeatable): SmoothSparsePhiRegularizer, "
                          "SmoothSparseThetaRegularizer or DecorrelatorPhiRegularizer with tau and optionally "
                          "topic_names=a|b, class_ids=@x|@y (phi) or alpha_iter=1|0.5|... (theta); "
                          "e.g. 'SmoothSparsePhiRegularizer:tau=-0.1'. Replaces the recorded ones."),
        click.option("--class-id", multiple=True, metavar="CLASS=WEIGHT",
                     help="Weight of a modality as artm.ARTM(class_ids=...), e.g. @tag=5 (repeatable); when given, "
                          "tokens of classes not listed are ignored."),
        click.option("--scores", type=click.Choice(SCORE_SETS),
                     help="all (default): perplexity (also per class), sparsity of phi and theta, topic kernel, top "
                          "tokens; basic: perplexity and sparsity of theta only (no extra work per pass)."),
        click.option("--dashboard", is_flag=True, default=None,
                     help="Also serve the live dashboard on 127.0.0.1 only (local: a process on this machine; "
                          "Compose: a container published there; Swarm: a service on this manager behind a "
                          "relay there; from elsewhere: an SSH tunnel); up prints its address."),
        click.option("--dashboard-port", type=int, help="Port of the --dashboard on 127.0.0.1 [default: 8265]."),
        click.option("--redis-memory", help="Container memory limit of each Redis node, e.g. 1g."),
        click.option("--executor-memory", help="Container memory limit of each executor, e.g. 2g."),
        click.option("--master-memory", help="Container memory limit of the master, e.g. 512m."),
    ]):
        function = decorator(function)
    return function


def config_values(options: dict[str, Any]) -> dict[str, Any]:
    """CLI options given explicitly, renamed to ClusterConfig fields."""
    values = {}
    for option, value in options.items():
        field = _FIELD_OF_OPTION.get(option, option)
        if field is None or value is None or (isinstance(value, tuple) and not value):
            continue
        if option == "regularizer":
            value = tuple(parse_shorthand(text) for text in value)
        elif option == "class_id":
            value = dict(parse_class_weight(text) for text in value)
        values[field] = value
    return values


def cluster_of(options: dict[str, Any]) -> Cluster:
    """The cluster the options (and the ``--config`` file they may name) describe."""
    return Cluster.from_config(options.get("config_file"), **config_values(options))


def existing_cluster(options: dict[str, Any]) -> Cluster:
    """The cluster recorded in the state directory if there is one, else the one the options describe."""
    cluster = cluster_of(options)
    if cluster.state.exists():
        recorded = Cluster.from_state(cluster.state.root)
        if options.get("runtime") is None or options["runtime"] == recorded.config.runtime:
            return recorded
    return cluster


# What makes another cluster: changing one of these needs `down` first (other fields may change between runs).
IDENTITY_FIELDS = ("name", "runtime", "nodes", "executors_per_node", "base_port", "replicas")


def cluster_for_up(options: dict[str, Any]) -> Cluster:
    """The cluster ``up`` brings up: the one recorded in the state directory, with the options given
    explicitly (and a ``--config`` file's keys) applied over it; a fresh one where none is recorded.

    A change that needs another cluster (:data:`IDENTITY_FIELDS`) is refused while the recorded one
    has not been taken down: starting it would orphan the recorded cluster's processes or containers.
    """
    given = cluster_of(options)
    record = ClusterRecord.load_if_any(given.state)
    if record is None or not record.config:
        return given
    explicit = config_values(options)
    if options.get("config_file") is not None:
        explicit = {**ClusterConfig.from_file(options["config_file"], **explicit).to_dict(), **explicit}
    values = {**record.config, **explicit, "state_dir": given.state.root}
    # An explicit start (initial phi or continuing) replaces the recorded one instead of clashing with it.
    if "continue_fitting" in explicit and "init_phi" not in explicit:
        values["init_phi"] = None
    if "init_phi" in explicit and "continue_fitting" not in explicit:
        values["continue_fitting"] = False
    cluster = Cluster(ClusterConfig.from_mapping(values))
    if record.status != Status.STOPPED:
        changed = [f"{field} {record.config.get(field)!r} -> {getattr(cluster.config, field)!r}"
                   for field in IDENTITY_FIELDS if record.config.get(field) != getattr(cluster.config, field)]
        if changed:
            raise ConfigError(f"state dir {given.state.root} holds cluster {record.config.get('name')!r} "
                              f"({record.status}); {', '.join(changed)} needs another cluster: run "
                              f"`artm-compose down --state-dir {given.state.root}` first, or use another --state-dir")
    return cluster
