"""`up --dashboard`: the dashboard started beside the cluster, on 127.0.0.1 only, and removed by `down`.

Locally it is a process of the cluster; in Compose a container of the cluster's network that looks at
the cluster from inside (Redis and heartbeats, no Docker there), published on the host's loopback.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from artm_compose.api import Cluster
from artm_compose.config import ClusterConfig
from artm_compose.errors import ConfigError
from artm_compose.images.build import build_images
from artm_compose.processes import port_free
from artm_compose.runtimes.compose.runtime import ComposeRuntime
from support.browser import artifacts_dir, requires_chromium, screenshot
from support.compose import QUIET, leftovers
from support.dashboard import check_metrics, check_training_page, get, snapshot_topics, vocabulary_of, wait_until
from support.engine import dpkg_corpus
from support.ports import free_port_block, requires_redis

TOPICS = 5
TRAIN_TIMEOUT = 300.0


def _passes(state: Path) -> int:
    try:
        return len(json.loads((state / "scores.json").read_text()).get("perplexity", []))
    except (OSError, ValueError):
        return 0


def test_dashboard_port_is_checked_with_the_config():
    with pytest.raises(ConfigError, match="dashboard_port=80"):
        ClusterConfig(dashboard=True, dashboard_port=80)


@pytest.mark.integration
@requires_redis
def test_local_up_dashboard_serves_until_down(local_cluster, tmp_path):
    port = free_port_block(1)
    echoed: list[str] = []
    cluster = local_cluster(nodes=2, name="dashup", up=False, dashboard=True, dashboard_port=port)
    cluster.up(detach=True, echo=echoed.append)
    url = f"http://127.0.0.1:{port}/"
    assert f"dashboard: {url}" in echoed
    status = json.loads(get(url + "api/status")[1])
    assert status["cluster"] == "dashup" and status["healthy"] is True, status
    pid = json.loads((cluster.state.pids_dir / "dashboard.json").read_text())["pid"]

    cluster.up(detach=True, echo=QUIET)  # idempotent: the same dashboard goes on serving
    assert json.loads((cluster.state.pids_dir / "dashboard.json").read_text())["pid"] == pid
    assert json.loads(get(url + "api/status")[1])["healthy"] is True

    cluster.down(echo=QUIET)
    wait_until(lambda: port_free(port), 10, f"port {port} to be free after down")


@pytest.mark.integration
@requires_redis
def test_local_up_dashboard_refuses_a_taken_port_before_starting(local_cluster):
    other = local_cluster(nodes=1, name="holder", up=False, dashboard=True, dashboard_port=free_port_block(1))
    other.up(detach=True, echo=QUIET)
    cluster = local_cluster(nodes=1, name="second", up=False, dashboard=True,
                            dashboard_port=other.config.dashboard_port)
    with pytest.raises(ConfigError, match=f"dashboard_port {other.config.dashboard_port} .* already in use"):
        cluster.up(detach=True, echo=QUIET)
    assert not (cluster.state.pids_dir.is_dir() and list(cluster.state.pids_dir.glob("*.json")))


@pytest.mark.containers
@requires_chromium
def test_compose_up_dashboard_in_chromium(tmp_path):
    build_images(echo=QUIET)
    corpus = dpkg_corpus(tmp_path / "dpkg")
    port = free_port_block(1)
    cluster = Cluster(ClusterConfig(name=f"dash{os.getpid()}", runtime="compose", state_dir=tmp_path / "state",
                                    data_dir=corpus, nodes=2, executors_per_node=1, topics=TOPICS,
                                    iterations=5000, heartbeat_timeout=5.0, dashboard=True, dashboard_port=port))
    echoed: list[str] = []
    try:
        cluster.up(detach=True, echo=echoed.append)
        url = f"http://127.0.0.1:{port}/"
        assert f"dashboard: {url}" in echoed
        wait_until(lambda: _passes(cluster.state.root) >= 3, TRAIN_TIMEOUT, "3 passes in scores.json")
        wait_until(lambda: snapshot_topics(url) == TOPICS, TRAIN_TIMEOUT,
                   "the dashboard's snapshot to hold the top tokens of a committed model")
        check_training_page(url, executors=2, nodes=2, topics=TOPICS, vocabulary=vocabulary_of(corpus))
        shot = screenshot(url, artifacts_dir() / "dashboard-compose.png")
        assert shot.stat().st_size > 20_000
        check_metrics(url, cluster=cluster.config.name, executors=2, nodes=2)
        status = json.loads(get(url + "api/status")[1])
        assert status["healthy"] is True and status["counts"]["executor"] == {"alive": 2, "total": 2}, status
    finally:
        ComposeRuntime(cluster.state).down(echo=QUIET, volumes=True)
    assert leftovers(cluster.config.name) == []
    wait_until(lambda: port_free(port), 10, f"port {port} to be free after down")
