"""The Python API: the same steps as the CLI (``plan``, ``render``, ``up``, ``status``, ``logs``, ``down``),
and the trained model as BigARTM shows it (``get_phi``, ``get_theta``/``transform``, ``score_tracker``,
``export(format="bigartm")``).

    cluster = Cluster.from_config("cluster.yaml", nodes=4, runtime="local")
    cluster.up(detach=True)
    print(cluster.status().describe())
    cluster.down()

The CLI is a thin layer over this module.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from artm_compose.config import ClusterConfig
from artm_compose.data.bigartm_model import write_bigartm_model
from artm_compose.data.summary import DataSummary
from artm_compose.errors import ConfigError
from artm_compose.model_frames import ExportedModel, ScoreTracker, phi_frame, theta_frame
from artm_compose.plan import Plan, make_plan
from artm_compose.record import ClusterRecord
from artm_compose.runtimes.base import ClusterStatus, Echo, UpResult
from artm_compose.runtimes.lifecycle import Runtime
from artm_compose.runtimes.registry import addressing_of, get_runtime
from artm_compose.state import StateDir

if TYPE_CHECKING:
    import pandas

_PATH_FIELDS = ("state_dir", "data_dir", "vocab_path", "init_phi")
EXPORT_FORMATS = ("npz", "csv", "bigartm")


class Cluster:
    """One cluster: its validated config, its plan (computed on first use) and its runtime."""

    def __init__(self, config: ClusterConfig, *, data: DataSummary | None = None):
        # Processes run from the state directory and cluster.json outlives this working directory.
        self.config = config.replace(**{name: Path(value).expanduser().resolve()
                                        for name in _PATH_FIELDS
                                        if (value := getattr(config, name)) is not None})
        self._data = data

    @classmethod
    def from_config(cls, config: ClusterConfig | Mapping[str, Any] | str | Path | None = None,
                    **overrides: Any) -> Cluster:
        """From a ClusterConfig, a mapping, or a YAML file path; ``overrides`` win (None values are ignored)."""
        overrides = {key: value for key, value in overrides.items() if value is not None}
        if isinstance(config, ClusterConfig):
            return cls(config.replace(**overrides) if overrides else config)
        if isinstance(config, (str, Path)):
            return cls(ClusterConfig.from_file(Path(config), **overrides))
        return cls(ClusterConfig.from_mapping({**(config or {}), **overrides}))

    @classmethod
    def from_state(cls, state_dir: str | Path) -> Cluster:
        """The cluster recorded in ``state_dir/cluster.json`` (for status, logs and down)."""
        state = StateDir.at(state_dir)
        recorded = ClusterRecord.load(state).config
        if not recorded:
            raise ConfigError(f"{state.cluster_json} records no config")
        return cls(ClusterConfig.from_mapping({**recorded, "state_dir": state.root}))

    @cached_property
    def plan(self) -> Plan:
        """The plan, with nodes where the runtime puts them (reads the data directory's batches once, if
        there is one)."""
        return make_plan(self.config, self._data, addressing=addressing_of(self.config.runtime))

    @property
    def state(self) -> StateDir:
        return StateDir.at(self.config.state_dir)

    @property
    def runtime(self) -> Runtime:
        return get_runtime(self.config.runtime, self.state)

    def render(self) -> list[Path]:
        """Write cluster.json and the runtime's own files (``redis.conf`` per node and ``addresses.txt``
        for local, ``compose.yml`` for Compose, ``stack.yml`` for Swarm) without starting anything."""
        return self.runtime.render(self.plan)

    def up(self, *, detach: bool = True, echo: Echo = print) -> UpResult:
        """Bring the cluster up (and train, with a data directory); follow training unless ``detach``."""
        runtime = self.runtime  # an unavailable runtime fails before the data are read
        return runtime.up(self.plan, detach=detach, echo=echo)

    def status(self) -> ClusterStatus:
        return self.runtime.status()

    def scale(self, executors: int, *, echo: Echo = print) -> Cluster:
        """Go on with ``executors`` executors in the running training, from the next pass; the cluster as
        it now is. The same number runs beside each Redis node, so ``executors`` is a multiple of the nodes."""
        nodes = self.config.nodes
        if executors < 1 or executors % nodes:
            raise ConfigError(f"executors={executors}: the cluster has {nodes} Redis node(s) with the same number "
                              f"of executors beside each; use a multiple of {nodes}")
        scaled = Cluster(self.config.replace(executors_per_node=executors // nodes))
        self.runtime.scale(scaled.plan, echo)
        return scaled

    def logs(self, component: str | None = None) -> str:
        """The log of ``component`` (``redis-0``, ``executor-3``, ``master``, a role, or all if None)."""
        return "".join(self.runtime.logs(component))

    def follow_logs(self, component: str | None = None) -> Iterator[str]:
        """New log lines as they are written (stops when the caller stops iterating)."""
        return self.runtime.logs(component, follow=True)

    def export(self, out: str | Path, *, format: str | None = None) -> Path:  # noqa: A002 - BigARTM's word
        """Write the trained model held in Redis to ``out``: ``npz`` (phi, tokens, topics), ``csv``, or
        ``bigartm`` (a new directory that BigARTM 0.9.2's ``artm.load_artm_model`` loads); by default
        the format follows the file name's suffix."""
        out = Path(out)
        chosen = format or out.suffix.lstrip(".")
        if chosen not in EXPORT_FORMATS:
            raise ConfigError(f"export format {chosen!r} (from {out}): choose one of {', '.join(EXPORT_FORMATS)}")
        if chosen != "bigartm":
            if out.suffix != f".{chosen}":
                raise ConfigError(f"export to {out}: a {chosen} export needs a file name ending in .{chosen}")
            return self.runtime.export(out)
        with tempfile.TemporaryDirectory(prefix="artm-export-") as directory:
            model = ExportedModel.load(self.runtime.export(Path(directory) / "model.npz"))
        config = self.config
        return write_bigartm_model(out, phi=model.phi, tokens=model.tokens, class_ids=model.class_ids,
                                   topic_names=model.topics, n_t=model.n_t, document_passes=config.inner_iterations,
                                   seed=config.seed, threads=config.threads, passes_done=model.pass_number)

    def get_phi(self, topic_names: str | Sequence[str] | None = None,
                class_ids: str | Sequence[str] | None = None) -> pandas.DataFrame:
        """Phi of the committed model as BigARTM's ``ARTM.get_phi``: tokens x topics (pandas).

        Indexed by token, or by ``(class_id, token)`` when the vocabulary has several modalities.
        """
        with tempfile.TemporaryDirectory(prefix="artm-phi-") as directory:
            model = ExportedModel.load(self.runtime.export(Path(directory) / "model.npz"))
        return phi_frame(model, topic_names, class_ids)

    def transform(self, data: str | Path | None = None, *, topic_names: str | Sequence[str] | None = None,
                  naming: str = "id", out: str | Path | None = None) -> pandas.DataFrame:
        """Theta of the batches in ``data`` (default: the training data) under the committed model, as
        BigARTM's ``ARTM.transform(batch_vectorizer)`` computes it, run on the cluster (shares in parallel).

        Orientation: documents x topics (rows indexed by item id, ``naming="title"`` for titles; columns
        ``topic_0``...). BigARTM returns the transpose, topics x documents with the item ids as columns:
        ``cluster.transform(d).T`` is BigARTM's frame. With ``out`` the theta file (.npz/.csv) is kept there.
        """
        from artm_compose.engine.transform import Theta, write_theta  # numba: on use only

        data_path = Path(data).expanduser().resolve() if data is not None else None
        with tempfile.TemporaryDirectory(prefix="artm-theta-") as directory:
            written = self.runtime.transform(Path(directory) / "theta.npz", data=data_path)
            theta = Theta.load(written)
            if out is not None:
                Path(out).parent.mkdir(parents=True, exist_ok=True)
                write_theta(theta, Path(out))
        return theta_frame(theta.theta, theta.items, theta.titles, theta.topics, topic_names, naming)

    def get_theta(self, topic_names: str | Sequence[str] | None = None, naming: str = "id") -> pandas.DataFrame:
        """Theta of the training documents under the committed model (BigARTM's ``ARTM.get_theta()``),
        documents x topics; see :meth:`transform` for the orientation (``.T`` is BigARTM's)."""
        return self.transform(topic_names=topic_names, naming=naming)

    @property
    def score_tracker(self) -> ScoreTracker:
        """Per-pass scores, as BigARTM's ``ARTM.score_tracker``: ``score_tracker["perplexity"].value``
        lists every pass, ``.last_value`` the last; ``score_tracker.frame()`` is a DataFrame."""
        try:
            return ScoreTracker(json.loads(self.state.scores.read_text()))
        except FileNotFoundError:
            return ScoreTracker({})

    def down(self, echo: Echo = print, *, volumes: bool = False, names: tuple[str, ...] = ()) -> list[str]:
        """Stop exactly what ``up`` started for this state directory (under whatever name) and the clusters
        ``names`` of this runtime; safe to call twice."""
        return self.runtime.down(echo=echo, volumes=volumes, names=names)
