"""Check a data plan on the Swarm nodes themselves: one short task per node reads the files it needs.

Each task runs the artm image on its node, as the user the executors run as, with the batches directory
(and the vocabulary's folder) bind-mounted at the same path; a node without that path rejects the task,
which is reported as such.
"""

from __future__ import annotations

import os
from pathlib import Path

import docker
from docker.types import Mount

from artm_compose import labels
from artm_compose.runtimes.swarm.data_plan import DataPlan
from artm_compose.runtimes.swarm.one_shot import json_result, run_once, tail

CHECK_TIMEOUT = 120.0


def check_on_nodes(client: docker.DockerClient, data: DataPlan, image: str, cluster: str,
                   timeout: float = CHECK_TIMEOUT) -> dict[str, list[str]]:
    """Per Swarm hostname, the problems its task found (empty list: every file it needs is readable there)."""
    folders = sorted({str(data.batches_dir), str(Path(data.vocab_path).parent)})
    mounts = [Mount(folder, folder, type="bind", read_only=True) for folder in folders]
    found: dict[str, list[str]] = {}
    for node in data.nodes:
        paths = [str(data.batches_dir / name) for name in node.batches] + [str(data.vocab_path)]
        outcome = run_once(client, image, ["python3", "-m", "artm_compose.runtimes.swarm.check_files", *paths],
                           name=f"{labels.project_name(cluster)}_data-check", timeout=timeout, mounts=mounts,
                           constraints=[f"node.id == {node.node_id}"], user=f"{os.getuid()}:{os.getgid()}",
                           labels={labels.CLUSTER: cluster, labels.RUNTIME: "swarm"},
                           container_labels={labels.CLUSTER: cluster, labels.RUNTIME: "swarm"})
        result = json_result(outcome.output)
        if outcome.ok and result is not None:
            found[node.hostname] = list(result["problems"])
        else:
            reason = "; ".join(part for part in (outcome.task.error, tail(outcome.output, 3)) if part)
            found[node.hostname] = [f"the check could not run there ({outcome.task.state}: {reason}); "
                                    f"is {' and '.join(folders)} present on {node.hostname}?"]
    return found
