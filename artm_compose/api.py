"""The Python API: the same steps as the CLI (``plan``, ``render``, ``up``, ``status``, ``logs``, ``down``).

    cluster = Cluster.from_config("cluster.yaml", nodes=4, runtime="local")
    cluster.up(detach=True)
    print(cluster.status().describe())
    cluster.down()

The CLI is a thin layer over this module.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

from artm_compose.config import ClusterConfig
from artm_compose.data.summary import DataSummary
from artm_compose.errors import ConfigError
from artm_compose.plan import Plan, make_plan
from artm_compose.record import ClusterRecord
from artm_compose.runtimes.base import ClusterStatus, Echo, UpResult
from artm_compose.runtimes.lifecycle import Runtime
from artm_compose.runtimes.registry import get_runtime
from artm_compose.state import StateDir

_PATH_FIELDS = ("state_dir", "data_dir", "vocab_path", "init_phi")


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
        """The plan (reads the data directory's batches once, if there is one)."""
        return make_plan(self.config, self._data)

    @property
    def state(self) -> StateDir:
        return StateDir.at(self.config.state_dir)

    @property
    def runtime(self) -> Runtime:
        return get_runtime(self.config.runtime, self.state)

    def render(self) -> list[Path]:
        """Write redis.conf files, addresses.txt, executors.txt, cluster.json and the runtime's own files
        (``compose.yml`` for Compose) without starting anything."""
        return self.runtime.render(self.plan)

    def up(self, *, detach: bool = True, echo: Echo = print) -> UpResult:
        """Bring the cluster up (and train, with a data directory); follow training unless ``detach``."""
        runtime = self.runtime  # an unavailable runtime fails before the data are read
        return runtime.up(self.plan, detach=detach, echo=echo)

    def status(self) -> ClusterStatus:
        return self.runtime.status()

    def logs(self, component: str | None = None) -> str:
        """The log of ``component`` (``redis-0``, ``executor-3``, ``master``, a role, or all if None)."""
        return "".join(self.runtime.logs(component))

    def follow_logs(self, component: str | None = None) -> Iterator[str]:
        """New log lines as they are written (stops when the caller stops iterating)."""
        return self.runtime.logs(component, follow=True)

    def export(self, out: str | Path) -> Path:
        """Write the trained model held in Redis to ``out`` (.npz: phi, tokens, topics; or .csv)."""
        return self.runtime.export(Path(out))

    def down(self, echo: Echo = print, *, volumes: bool = False) -> list[str]:
        """Stop exactly what ``up`` started for this state directory; safe to call twice."""
        return self.runtime.down(echo=echo, volumes=volumes)
