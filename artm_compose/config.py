"""The cluster configuration: validated once here, plain values everywhere after.

A config comes from CLI flags, a YAML file (``--config``), or Python (``ClusterConfig(...)``);
every path ends in :class:`ClusterConfig`, whose constructor rejects bad values with a
:class:`~artm_compose.errors.ConfigError` naming the field and the value.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from artm_compose.engine.connect import DEFAULT_MAX_RESTARTS, DEFAULT_RESTART_TIMEOUT
from artm_compose.engine.protocol import TTL_FRACTION
from artm_compose.engine.online import DEFAULT_KAPPA, DEFAULT_TAU0, DEFAULT_UPDATE_EVERY, check_online
from artm_compose.engine.scores import SCORE_SETS
from artm_compose.engine.regularizers import Regularizer, check_class_weights, make_regularizer, parse_shorthand
from artm_compose.errors import ConfigError
from artm_compose.slots import SLOT_COUNT

RUNTIMES = ("local", "compose", "swarm")
SPLITS = ("balanced", "even")
CLUSTER_BUS_OFFSET = 10000
MAX_PORT = 65535
# Where `up --dashboard` serves the dashboard (Ray's dashboard port, as `artm-compose dashboard`).
DEFAULT_DASHBOARD_PORT = 8265
# A checkpoint reads phi out of Redis once and writes it to a file, about a tenth of a pass (BENCHMARKS.md,
# "Checkpoints"): every 10 passes it adds about 1% to the passes' time, and a loss redoes at most 10.
DEFAULT_CHECKPOINT_EVERY = 10
_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
_MEMORY_PATTERN = re.compile(r"^\d+(\.\d+)?[bkmg]?$", re.IGNORECASE)


@dataclass(frozen=True)
class ClusterConfig:
    """Everything needed to plan, run and train one cluster."""

    name: str = "artm"
    runtime: Literal["local", "compose", "swarm"] = "compose"
    nodes: int = 1
    executors_per_node: int = 1
    base_port: int = 7000
    state_dir: Path = Path("state")
    data_dir: Path | None = None
    vocab_path: Path | None = None
    topics: int = 20
    iterations: int = 10
    inner_iterations: int = 10
    threads: int = 1
    seed: int = 0
    split: Literal["balanced", "even"] = "balanced"
    allow_idle: bool = False
    continue_fitting: bool = False
    init_phi: Path | None = None
    show_top_tokens: bool = True
    node_timeout_ms: int = 5000
    # Copies of every virtual node's data, each beside another virtual node (plan.replica_placement);
    # Redis Cluster promotes one when its primary is lost and the master redoes the interrupted pass.
    replicas: int = 0
    heartbeat_timeout: float = 30.0
    # A lost executor is restarted (local: a supervisor; Compose/Swarm: the restart policy) this many
    # times per run, and the master waits restart_timeout seconds for it, then redoes the pass.
    max_restarts: int = DEFAULT_MAX_RESTARTS
    restart_timeout: float = DEFAULT_RESTART_TIMEOUT
    # The master checkpoints the committed model into the state directory every this many passes
    # (0: never); a run whose Redis lost its data goes on from it (engine.checkpoint).
    checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY
    publish: bool = False
    redis_memory: str | None = None
    executor_memory: str | None = None
    master_memory: str | None = None
    mode: Literal["offline", "online"] = "offline"
    update_every: int = DEFAULT_UPDATE_EVERY
    tau0: float = DEFAULT_TAU0
    kappa: float = DEFAULT_KAPPA
    dashboard: bool = False
    dashboard_port: int = DEFAULT_DASHBOARD_PORT
    # BigARTM's regularizers (mappings with ``type``, or ``Type:tau=..`` shorthands, become
    # Regularizer objects) and class weights (``artm.ARTM(class_ids=...)``); engine.regularizers.
    regularizers: tuple[Regularizer, ...] = ()
    class_ids: dict[str, float] = field(default_factory=dict)
    scores: Literal["all", "basic"] = "all"

    def __post_init__(self) -> None:
        object.__setattr__(self, "regularizers", _regularizers(self.regularizers))
        if not isinstance(self.class_ids, dict):
            raise ConfigError(f"class_ids={self.class_ids!r} is invalid: use a mapping of class id to weight, "
                              "e.g. {'@default_class': 1.0, '@tag': 5.0}")
        object.__setattr__(self, "class_ids", check_class_weights(self.class_ids))
        _check(self.scores in SCORE_SETS, "scores", self.scores, f"choose one of {', '.join(SCORE_SETS)}")
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.type in ("int", "float") and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise ConfigError(f"{f.name}={value!r} is invalid: must be a number")
            if f.type == "int" and not isinstance(value, int):
                raise ConfigError(f"{f.name}={value!r} is invalid: must be a whole number")
        _check(_NAME_PATTERN.match(self.name) is not None, "name", self.name,
               "use 1-40 lowercase letters, digits, '-' or '_', starting with a letter or digit")
        _check(self.runtime in RUNTIMES, "runtime", self.runtime, f"choose one of {', '.join(RUNTIMES)}")
        _check(1 <= self.nodes <= SLOT_COUNT, "nodes", self.nodes,
               f"a Redis Cluster has between 1 and {SLOT_COUNT} nodes (one hash slot each at least)")
        _check(self.executors_per_node >= 1, "executors_per_node", self.executors_per_node, "must be >= 1")
        _check(self.split in SPLITS, "split", self.split, f"choose one of {', '.join(SPLITS)}")
        for field_name in ("topics", "threads"):
            _check(getattr(self, field_name) >= 1, field_name, getattr(self, field_name), "must be >= 1")
        _check(self.iterations >= 0, "iterations", self.iterations, "must be >= 0")
        _check(self.inner_iterations >= 1, "inner_iterations", self.inner_iterations, "must be >= 1")
        _check(self.node_timeout_ms >= 100, "node_timeout_ms", self.node_timeout_ms, "must be >= 100")
        _check_replicas(self.replicas, self.nodes)
        if self.replicas:
            # A heartbeat key on the lost node's slots lives on in its replica only until its TTL: it must
            # outlast the node timeout, after which the cluster fails the node over.
            shortest = self.node_timeout_ms / 1000 / TTL_FRACTION
            _check(self.heartbeat_timeout > shortest, "heartbeat_timeout", self.heartbeat_timeout,
                   f"with replicas it must exceed {shortest:g} s (node_timeout_ms={self.node_timeout_ms}): heartbeats "
                   f"must outlive a failover")
        _check(self.heartbeat_timeout > 0, "heartbeat_timeout", self.heartbeat_timeout, "must be > 0")
        _check(self.max_restarts >= 0, "max_restarts", self.max_restarts, "must be >= 0")
        _check(self.restart_timeout > 0, "restart_timeout", self.restart_timeout, "must be > 0")
        _check(self.checkpoint_every >= 0, "checkpoint_every", self.checkpoint_every, "must be >= 0")
        # Every node listens on base_port at least; the runtime's addressing checks the ports of nodes
        # that share a host (artm_compose.addressing), when the plan is made.
        check_node_ports(self.base_port, 1)
        _check(1024 <= self.dashboard_port <= MAX_PORT, "dashboard_port", self.dashboard_port,
               f"the dashboard needs a port in 1024..{MAX_PORT}")
        check_online(self.mode, self.update_every, self.tau0, self.kappa)
        for field_name in ("redis_memory", "executor_memory", "master_memory"):
            value = getattr(self, field_name)
            _check(value is None or _MEMORY_PATTERN.match(str(value)) is not None, field_name, value,
                   "use a Docker memory size such as 512m or 2g")
        if self.vocab_path is not None and self.data_dir is None:
            raise ConfigError(f"vocab_path={self.vocab_path}: a vocabulary needs a data directory (data_dir)")

    @property
    def executor_count(self) -> int:
        return self.nodes * self.executors_per_node

    @property
    def redis_instances(self) -> int:
        """Redis instances of the cluster: every virtual node's primary and its replicas."""
        return self.nodes * (1 + self.replicas)

    @property
    def resolved_vocab_path(self) -> Path | None:
        """The vocabulary: ``vocab_path`` if given, else ``vocab.txt`` in the data directory."""
        if self.data_dir is None:
            return None
        return self.vocab_path if self.vocab_path is not None else self.data_dir / "vocab.txt"

    def replace(self, **changes: Any) -> ClusterConfig:
        """A copy with ``changes`` applied and validated again."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        values = {f.name: (str(v) if isinstance(v, Path) else v)
                  for f in dataclasses.fields(self) for v in [getattr(self, f.name)]}
        values["regularizers"] = [r.to_dict() for r in self.regularizers]
        values["class_ids"] = dict(self.class_ids)
        return values

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> ClusterConfig:
        """Build from a mapping (a YAML file, JSON), naming any unknown key."""
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(f"unknown config key(s): {', '.join(unknown)}; known keys: {', '.join(known)}")
        converted = {}
        for key, value in values.items():
            if value is not None and key in _PATH_FIELDS:
                value = Path(value)
            converted[key] = value
        try:
            return cls(**converted)
        except TypeError as error:
            raise ConfigError(str(error)) from None

    @classmethod
    def from_file(cls, path: Path, **overrides: Any) -> ClusterConfig:
        """Load a YAML config file; ``overrides`` (CLI flags given explicitly) win over the file."""
        try:
            values = yaml.safe_load(Path(path).read_text()) or {}
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except yaml.YAMLError as error:
            raise ConfigError(f"config file {path} is not valid YAML: {error}") from None
        if not isinstance(values, dict):
            raise ConfigError(f"config file {path} must hold a mapping of keys to values")
        return cls.from_mapping({**values, **overrides})


_PATH_FIELDS = {"state_dir", "data_dir", "vocab_path", "init_phi"}


def _regularizers(values: Any) -> tuple[Regularizer, ...]:
    if not isinstance(values, (list, tuple)):
        raise ConfigError(f"regularizers={values!r} is invalid: use a list of mappings with a type, "
                          "e.g. [{type: SmoothSparsePhiRegularizer, tau: -0.1}]")
    result = []
    for position, value in enumerate(values):
        if isinstance(value, Regularizer):
            result.append(value)
        elif isinstance(value, str):
            result.append(parse_shorthand(value))
        elif isinstance(value, dict):
            result.append(make_regularizer(value, where=f"regularizers[{position}]"))
        else:
            raise ConfigError(f"regularizers[{position}]={value!r} is invalid: use a mapping with a type")
    return tuple(result)


# Redis Cluster promotes a replica only by a majority vote of the primaries: with two, the survivor is no
# majority, and the cluster would stay down until someone forced a takeover.
MIN_NODES_FOR_REPLICAS = 3


def _check_replicas(replicas: int, nodes: int) -> None:
    _check(replicas >= 0, "replicas", replicas, "must be >= 0")
    if replicas == 0:
        return
    _check(nodes >= MIN_NODES_FOR_REPLICAS, "replicas", replicas,
           f"replicas need at least {MIN_NODES_FOR_REPLICAS} nodes (now {nodes}): Redis Cluster promotes a replica "
           f"only by a majority vote of the primaries, which one of two surviving primaries is not")
    _check(replicas < nodes, "replicas", replicas,
           f"each replica sits beside another virtual node than its primary: at most {nodes - 1} with {nodes} nodes")


def check_node_ports(base_port: int, ports: int) -> None:
    """Refuse ``ports`` node ports from ``base_port`` unless they and their cluster-bus ports (+10000) are
    usable ports (1024..65535)."""
    highest = base_port + ports - 1
    _check(1024 <= base_port and highest + CLUSTER_BUS_OFFSET <= MAX_PORT, "base_port", base_port,
           f"node ports {base_port}..{highest} and their cluster-bus ports "
           f"{base_port + CLUSTER_BUS_OFFSET}..{highest + CLUSTER_BUS_OFFSET} must lie in 1024..{MAX_PORT}")


def _check(ok: bool, field_name: str, value: Any, advice: str) -> None:
    if not ok:
        raise ConfigError(f"{field_name}={value!r} is invalid: {advice}")
