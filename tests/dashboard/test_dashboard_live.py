"""The dashboard in a real headless Chromium while a local cluster trains, and after it stopped."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support.browser import artifacts_dir, dump_dom, requires_chromium, screenshot
from support.dashboard import check_metrics, check_training_page, get, snapshot_topics, vocabulary_of, wait_until
from support.ports import requires_redis
from support.engine import dpkg_corpus

TOPICS = 6
NODES = 2
EXECUTORS_PER_NODE = 2
START_TIMEOUT = 30.0
TRAIN_TIMEOUT = 240.0


def _passes(scores_path: Path) -> int:
    try:
        return len(json.loads(scores_path.read_text()).get("perplexity", []))
    except (OSError, ValueError):
        return 0


@pytest.fixture
def dashboard(tmp_path):
    """Start ``artm-compose dashboard`` for a state directory; yields its base URL."""
    processes = []

    def start(*state_dirs: Path) -> str:
        script = Path(sys.executable).with_name("artm-compose")
        argv = [str(script), "dashboard", "--port", "0"]
        for state_dir in state_dirs:
            argv += ["--state-dir", str(state_dir)]
        log = (tmp_path / "dashboard.log").open("w")
        processes.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, text=True))
        found = wait_until(lambda: re.search(r"http://127\.0\.0\.1:\d+/", (tmp_path / "dashboard.log").read_text()),
                           START_TIMEOUT, "the dashboard to print its URL")
        return found.group(0)

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.integration
@requires_redis
@requires_chromium
def test_dashboard_shows_a_training_cluster_in_chromium(local_cluster, dashboard, tmp_path):
    corpus = dpkg_corpus(tmp_path / "dpkg")
    # Enough passes to be still training while the browser looks; the test stops it with `down`.
    cluster = local_cluster(nodes=NODES, name=f"dash{time.monotonic_ns() % 100000}", data_dir=corpus,
                            executors_per_node=EXECUTORS_PER_NODE, topics=TOPICS, iterations=5000,
                            heartbeat_timeout=5.0)
    url = dashboard(cluster.state.root)
    wait_until(lambda: _passes(cluster.state.scores) >= 3, TRAIN_TIMEOUT, f"3 passes in {cluster.state.scores}")
    wait_until(lambda: snapshot_topics(url) == TOPICS, TRAIN_TIMEOUT,
               "the snapshot to hold the top tokens of a committed model")

    page = check_training_page(url, executors=NODES * EXECUTORS_PER_NODE, nodes=NODES, topics=TOPICS,
                               vocabulary=vocabulary_of(corpus))
    nodes = page.find_all("tr", "redis-node")
    assert [n.attrs["data-address"] for n in nodes] == [f"127.0.0.1:{cluster.config.base_port + i}"
                                                        for i in range(NODES)]
    shot = screenshot(url, artifacts_dir() / "dashboard.png")
    assert shot.stat().st_size > 20_000
    check_metrics(url, cluster=cluster.config.name, executors=NODES * EXECUTORS_PER_NODE, nodes=NODES)

    _, status = get(url + "api/status")
    assert json.loads(status)["healthy"] is True

    plotted = subprocess.run([str(Path(sys.executable).with_name("artm-compose")), "plot", "--state-dir",
                              str(cluster.state.root), "--out", str(artifacts_dir() / "scores.png")],
                             capture_output=True, text=True, timeout=120)
    assert plotted.returncode == 0, plotted.stderr
    assert (artifacts_dir() / "scores.png").stat().st_size > 20_000

    # After the cluster is gone the page still shows what is known: curves, nodes down, last top tokens.
    cluster.down(echo=lambda _message: None)
    page = dump_dom(url)
    assert page.find_all("figure", "chart", data_series="perplexity")
    assert [n.attrs["data-health"] for n in page.find_all("tr", "redis-node")] == ["down"] * NODES
    assert len(page.find_all("div", "topic")) == TOPICS
    assert "unhealthy" in page.find_all(data_field="health")[0].text
