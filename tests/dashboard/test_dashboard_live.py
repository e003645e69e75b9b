"""The dashboard in a real headless Chromium while a local cluster trains, and after it stopped."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from support.browser import artifacts_dir, dump_dom, requires_chromium, screenshot
from support.ports import requires_redis
from support.engine import dpkg_corpus

TOPICS = 6
NODES = 2
EXECUTORS_PER_NODE = 2
START_TIMEOUT = 30.0
TRAIN_TIMEOUT = 240.0


def _wait(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.2)


def _get(url: str) -> tuple[str, str]:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.headers.get("Content-Type", ""), response.read().decode()


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
        found = _wait(lambda: re.search(r"http://127\.0\.0\.1:\d+/", (tmp_path / "dashboard.log").read_text()),
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
    _wait(lambda: _passes(cluster.state.scores) >= 3, TRAIN_TIMEOUT, f"3 passes in {cluster.state.scores}")
    _wait(lambda: len(json.loads(_get(url + "api/snapshot")[1])["model"]["topics"]) == TOPICS, TRAIN_TIMEOUT,
          "the snapshot to hold the top tokens of a committed model")

    page = dump_dom(url)
    assert page.find_all("body")[0].attrs.get("data-loaded") == "yes", "the page's script did not draw a snapshot"
    perplexity = page.find_all("figure", "chart", data_series="perplexity")
    assert perplexity, "no perplexity chart"
    assert len(perplexity[0].find_all("circle", "point")) >= 3 and perplexity[0].find_all("path", "curve")
    for series in ("seconds", "bytes_moved"):
        assert page.find_all("figure", "chart", data_series=series), f"no {series} chart"
    training = page.find_all(data_field="training")[0].text
    assert "iterations" in training, training

    executors = page.find_all("tr", "executor")
    assert len(executors) == NODES * EXECUTORS_PER_NODE
    assert all(row.attrs["data-alive"] == "yes" for row in executors), [row.text for row in executors]
    for row in executors:
        bar = row.find_all(role="progressbar")[0]
        assert int(bar.attrs["aria-valuemax"]) > 0, f"{row.text}: no document share in the heartbeat"
        assert 0 <= int(bar.attrs["aria-valuenow"]) <= int(bar.attrs["aria-valuemax"])

    nodes = page.find_all("tr", "redis-node")
    assert [n.attrs["data-address"] for n in nodes] == [f"127.0.0.1:{cluster.config.base_port + i}"
                                                        for i in range(NODES)]
    assert all(n.attrs["data-role"] == "primary" and n.attrs["data-health"] == "ok" for n in nodes)
    assert sum(int(n.find_all("td", "slots")[0].text.split()[0]) for n in nodes) == 16384
    assert all(int(n.find_all("td", "memory")[0].attrs["data-bytes"]) > 0 for n in nodes)
    assert all(int(n.find_all("td", "keys")[0].text) > 0 for n in nodes)

    topics = page.find_all("div", "topic")
    assert [t.attrs["data-topic"] for t in topics] == [f"topic_{t}" for t in range(TOPICS)]
    vocabulary = set((corpus / "vocab.txt").read_text().split())
    for topic in topics:
        tokens = [li.text for li in topic.find_all("li", "token")]
        assert len(tokens) == 10 and set(tokens) <= vocabulary, tokens

    shot = screenshot(url, artifacts_dir() / "dashboard.png")
    assert shot.stat().st_size > 20_000

    content_type, text = _get(url + "metrics")
    assert content_type.startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name in ("artm_training_pass", "artm_perplexity", "artm_pass_seconds", "artm_pass_bytes",
                 "artm_executors_alive", "artm_redis_memory_bytes"):
        assert name in families and families[name].type == "gauge", f"{name} missing from /metrics"
    assert families["artm_executors_alive"].samples[0].value == NODES * EXECUTORS_PER_NODE
    assert families["artm_training_pass"].samples[0].value >= 3
    assert families["artm_perplexity"].samples[0].value > 1
    memory = {s.labels["node"]: s.value for s in families["artm_redis_memory_bytes"].samples}
    assert len(memory) == NODES and all(v > 0 for v in memory.values())
    assert {s.labels["cluster"] for s in families["artm_perplexity"].samples} == {cluster.config.name}

    _, status = _get(url + "api/status")
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
