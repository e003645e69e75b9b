"""One contract, every runtime: what ``up``, ``status``, ``logs``, ``export`` and ``down`` promise, whatever
runs the cluster (local processes, Docker Compose, Docker Swarm).

The ``runtime`` fixture runs the same test over each: local always (marked ``integration``), compose under
``containers``, swarm under ``swarm``. A real Redis Cluster, the real engine and a real corpus (this
machine's package descriptions).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from artm_compose.api import Cluster
from artm_compose.config import ClusterConfig
from artm_compose.docker_access import docker_client
from artm_compose.processes import ProcessRecord, is_running
from artm_compose.slots import SLOT_COUNT
from support.compose import QUIET, leftovers
from support.engine import DPKG_STATUS, dpkg_corpus
from support.ports import free_port_block, requires_redis
from support.swarm_nodes import swarm_leftovers, swarm_mode

NODES = 2
TRAINING = dict(executors_per_node=1, topics=4, iterations=2, inner_iterations=5, seed=3)


@dataclass(frozen=True)
class RuntimeCase:
    """A runtime under test: its extra config, and what a cluster of it left behind (empty: nothing)."""

    name: str
    overrides: dict
    left: Callable[[Cluster], list[str]]


def local_leftovers(cluster: Cluster) -> list[str]:
    """Recorded processes still running, and any record left at all."""
    records = [ProcessRecord.load(p) for p in sorted(cluster.state.pids_dir.glob("*.json"))]
    return [f"record {r.component}" + (" (running)" if is_running(r) else "") for r in records]


@pytest.fixture(params=[
    pytest.param("local", marks=[pytest.mark.integration, requires_redis]),
    pytest.param("compose", marks=pytest.mark.containers),
    pytest.param("swarm", marks=pytest.mark.swarm),
])
def runtime(request) -> Iterator[RuntimeCase]:
    if request.param == "local":
        yield RuntimeCase("local", {"base_port": free_port_block(NODES)}, local_leftovers)
        return
    from artm_compose.images.build import build_images

    build_images(echo=QUIET)
    if request.param == "compose":
        yield RuntimeCase("compose", {}, lambda cluster: leftovers(cluster.config.name))
        return
    with swarm_mode(docker_client()):
        yield RuntimeCase("swarm", {}, lambda cluster: swarm_leftovers(docker_client(), cluster.config.name))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    if not DPKG_STATUS.exists():
        pytest.skip("needs /var/lib/dpkg/status for a real corpus")
    return dpkg_corpus(tmp_path_factory.mktemp("contract") / "dpkg")


def test_the_runtime_contract(runtime: RuntimeCase, corpus: Path, tmp_path: Path) -> None:
    name = f"c{secrets.token_hex(4)}"
    config = ClusterConfig(name=name, runtime=runtime.name, nodes=NODES, state_dir=tmp_path / "state",
                           **runtime.overrides)
    redis_only = Cluster(config)
    training = Cluster(config.replace(data_dir=corpus, **TRAINING))
    try:
        # up: a healthy Redis Cluster, recorded as running.
        first = redis_only.up(detach=True, echo=QUIET)
        assert not first.already_up and first.actions
        status = redis_only.status()
        assert status.healthy, status.describe()
        assert (status.status, status.cluster_state, status.slots_assigned) == ("running", "ok", SLOT_COUNT)
        assert status.count("redis") == (NODES, NODES)
        assert status.to_dict()["runtime"] == runtime.name

        # up again: nothing to do.
        again = redis_only.up(detach=True, echo=QUIET)
        assert again.already_up and again.actions == ()

        # logs: by component and by role.
        assert "Ready to accept connections" in redis_only.logs("redis-1")
        assert redis_only.logs("redis").count("==> redis-") == NODES

        # training on the same Redis Cluster, followed to its end.
        echoed: list[str] = []
        result = training.up(detach=False, echo=echoed.append)
        assert result.training == "finished", echoed
        # One lifecycle: the same messages whatever the runtime.
        assert sum(line.startswith("Redis Cluster ok: 2 node(s), 16384 slots") for line in echoed) == 1, echoed
        assert "started 2 executor(s) and the master; follow with `artm-compose logs master -f`" in echoed
        perplexity = json.loads(training.state.scores.read_text())["perplexity"]
        assert len(perplexity) == TRAINING["iterations"] and all(np.isfinite(perplexity))
        status = training.status()
        assert status.status == "finished", status.describe()
        assert status.training["pass"] == TRAINING["iterations"]
        assert status.training["perplexity"] == pytest.approx(perplexity[-1])
        assert status.count("executor")[1] == NODES and status.count("master")[1] == 1

        # export: the trained phi with its tokens and topics.
        out = training.export(tmp_path / "out" / "model.npz")
        with np.load(out) as model:
            assert model["phi"].shape == (training.plan.data.vocab_size, TRAINING["topics"])
            assert np.allclose(model["phi"].sum(axis=0), 1.0, atol=1e-4)

        # down twice: the second finds nothing, and nothing is left.
        assert training.down(echo=QUIET)
        assert runtime.left(training) == []
        second = training.down(echo=QUIET)
        assert second == [f"nothing of cluster {name!r} is left {training.runtime.where}"], second
        assert json.loads(training.state.cluster_json.read_text())["status"] == "stopped"
        assert training.status().status in ("stopped", "down")
    finally:
        if training.state.exists():
            training.down(echo=QUIET)
    assert runtime.left(training) == []
