"""A Swarm of three nodes on this one machine (Docker-in-Docker, see swarm_nodes.py): every Redis service
and its executors run on the node whose labels hold its range, and training across nodes gives the
same perplexity per pass as the local runtime.

Marked ``swarm``; slow (it builds the node image once and loads the project's images into every node).
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import numpy as np
import pytest

from artm_compose import labels
from artm_compose.api import Cluster
from artm_compose.config import ClusterConfig
from artm_compose.docker_access import docker_client
from artm_compose.images.build import build_images
from artm_compose.runtimes.swarm import runtime as swarm_runtime
from artm_compose.runtimes.swarm.assign import label_prefix
from support.ports import free_port_block, requires_redis
from support.engine import DPKG_STATUS, dpkg_corpus
from support.swarm_nodes import dind_swarm, swarm_leftovers

pytestmark = [pytest.mark.swarm, requires_redis,
              pytest.mark.skipif(not DPKG_STATUS.exists(), reason="needs /var/lib/dpkg/status for a real corpus")]
QUIET = lambda _message: None  # noqa: E731
TRAINING = {"topics": 8, "seed": 5, "iterations": 4, "inner_iterations": 10, "heartbeat_timeout": 30.0}


def test_placement_and_training_across_three_swarm_nodes(tmp_path: Path, monkeypatch):
    images = build_images(echo=QUIET)
    outer = docker_client()
    shared = tmp_path / "shared"  # mounted at the same path in every node: data and state dir
    corpus = dpkg_corpus(shared / "dpkg")
    name = f"m{secrets.token_hex(3)}"
    config = ClusterConfig(name=name, runtime="swarm", nodes=4, executors_per_node=1, data_dir=corpus,
                           state_dir=shared / "state", **TRAINING)
    with dind_swarm(outer, 3, name, tmp_path / "sockets", [shared], [images.redis, images.artm]) as nodes:
        manager = nodes[0].client()
        capacity = {"artm.capacity": "2"}
        manager.nodes.get(nodes[1].hostname).update({**manager.nodes.get(nodes[1].hostname).attrs["Spec"],
                                                     "Labels": capacity})
        monkeypatch.setenv("DOCKER_HOST", nodes[0].docker_host)
        # The nodes hold the images loaded above. Pin them: a source file edited since (the content tag
        # changes) would otherwise make `up` build new images inside the manager, which the workers lack.
        monkeypatch.setattr(swarm_runtime, "build_images", lambda **_options: images)
        cluster = Cluster(config)
        lines: list[str] = []
        try:
            result = cluster.up(detach=False, echo=lines.append)
            assert result.training == "finished", "\n".join(lines[-30:])
            assert "data checked on 2 other Swarm node(s): every file they need is readable" in lines
            hostname_of = {n.id: n.attrs["Description"]["Hostname"] for n in manager.nodes.list()}
            holder = {}
            for node in manager.nodes.list():
                span = (node.attrs["Spec"].get("Labels") or {}).get(f"{label_prefix(name)}vnodes")
                if span:
                    first, last = map(int, span.split("-"))
                    holder.update({v: node.attrs["Description"]["Hostname"] for v in range(first, last + 1)})
            # Capacities 1:2:1 over 4 virtual nodes, in hostname order.
            assert holder == {0: nodes[0].hostname, 1: nodes[1].hostname, 2: nodes[1].hostname,
                              3: nodes[2].hostname}
            placed = {}
            for service in manager.services.list(filters={"label": labels.selector(name, "swarm")}):
                spec_labels = service.attrs["Spec"]["Labels"]
                if spec_labels.get(labels.ROLE) not in ("redis", "executor"):
                    continue
                ran_on = {hostname_of[t["NodeID"]] for t in service.tasks() if t.get("NodeID")}
                placed[service.name] = (int(spec_labels[labels.NODE]), ran_on)
            assert len(placed) == 8
            for service_name, (vnode, ran_on) in placed.items():
                assert ran_on == {holder[vnode]}, (service_name, ran_on)
            status = cluster.status()
            rows = {row["hostname"]: row for row in status.to_dict()["swarm_nodes"]}
            assert rows[nodes[1].hostname]["vnodes"] == [1, 2]
            assert set(rows[nodes[1].hostname]["services"]) == {"redis-1", "executor-1", "redis-2", "executor-2"}
            scores = json.loads(cluster.state.scores.read_text())
        finally:
            print("\n".join(lines))
            if cluster.state.exists():
                cluster.down(echo=QUIET)
        assert swarm_leftovers(manager, name) == []
    monkeypatch.delenv("DOCKER_HOST")
    local = Cluster(config.replace(runtime="local", state_dir=tmp_path / "local", base_port=free_port_block(4)))
    try:
        local.up(detach=False, echo=QUIET)
        expected = json.loads(local.state.scores.read_text())
    finally:
        local.down(echo=QUIET)
    np.testing.assert_allclose(scores["perplexity"], expected["perplexity"], rtol=1e-4)
    assert not [c.name for c in outer.containers.list(all=True, filters={"label": f"{labels.CLUSTER}={name}"})]
