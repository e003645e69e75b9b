"""Which data files each Swarm node needs: the batches of the executors it runs, and the vocabulary.

Executors read their batches from the same path on every node (a shared file system or a copy);
``data_plan`` says before deploying which files each node must see there, and ``check_local`` checks
them on this machine, where the manager runs (``node_check`` checks them on the nodes themselves).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from artm_compose.errors import ConfigError
from artm_compose.plan import Plan
from artm_compose.runtimes.swarm.assign import Holding
from artm_compose.runtimes.swarm.check_files import problems


@dataclass(frozen=True)
class NodeData:
    """The files one Swarm node needs, as names relative to the batches directory."""

    hostname: str
    node_id: str
    vnodes: tuple[int, int]
    executors: tuple[int, ...]
    batch_range: tuple[int, int]  # half-open, in the plan's batch order
    batches: tuple[str, ...]
    vocab: str

    def to_dict(self) -> dict[str, Any]:
        return {"hostname": self.hostname, "node_id": self.node_id, "vnodes": list(self.vnodes),
                "executors": list(self.executors), "batch_range": list(self.batch_range),
                "batches": list(self.batches), "vocab": self.vocab}


@dataclass(frozen=True)
class DataPlan:
    """Per Swarm node, the files it needs; all under ``batches_dir`` (the same path on every node)."""

    batches_dir: Path
    vocab_path: Path
    nodes: tuple[NodeData, ...]

    def all_files(self) -> list[Path]:
        names = sorted({name for node in self.nodes for name in node.batches})
        return [self.batches_dir / name for name in names] + [self.vocab_path]

    def to_dict(self) -> dict[str, Any]:
        return {"batches_dir": str(self.batches_dir), "vocab_path": str(self.vocab_path),
                "nodes": [n.to_dict() for n in self.nodes]}

    def describe(self) -> str:
        lines = [f"every Swarm node below must see {self.batches_dir} (and {self.vocab_path}) at the same path:"]
        for node in self.nodes:
            first, last = node.vnodes
            if node.batches:
                files = (node.batches[0] if len(node.batches) == 1
                         else f"{node.batches[0]} .. {node.batches[-1]}")
                need = f"{len(node.batches)} batch file(s) {files}"
            else:
                need = "no batch file (idle executors)"
            lines.append(f"  {node.hostname}: virtual nodes {first}-{last}, executors "
                         f"{_span(node.executors)}: {need}, plus {Path(node.vocab).name}")
        return "\n".join(lines)


def data_plan(plan: Plan, holdings: tuple[Holding, ...]) -> DataPlan:
    """The files each holding's executors read; raises if the plan has no data."""
    if plan.data is None:
        raise ConfigError("the cluster has no data directory (data_dir): there is nothing to place")
    names = plan.data.batch_names
    nodes = []
    for holding in holdings:
        executors = [e for e in plan.executors if holding.first <= e.node <= holding.last]
        used = [e.batch_range for e in executors if e.batch_range[0] < e.batch_range[1]]
        # An executor's batches are contiguous and executors are in node order, so a holding's are too.
        span = (min(b for b, _ in used), max(e for _, e in used)) if used else (0, 0)
        nodes.append(NodeData(hostname=holding.hostname, node_id=holding.node_id,
                              vnodes=(holding.first, holding.last), executors=tuple(e.id for e in executors),
                              batch_range=span, batches=names[span[0]:span[1]],
                              vocab=str(plan.data.vocab_path)))
    return DataPlan(batches_dir=plan.data.batches_dir, vocab_path=plan.data.vocab_path, nodes=tuple(nodes))


def check_local(data: DataPlan) -> list[str]:
    """Problems with the planned files as this machine sees them (empty when every file is readable)."""
    return problems(data.all_files())


def _span(ids: tuple[int, ...]) -> str:
    if not ids:
        return "none"
    return str(ids[0]) if len(ids) == 1 else f"{ids[0]}-{ids[-1]}"
