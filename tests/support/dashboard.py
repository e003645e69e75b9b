"""What a person sees on a live dashboard: the checks shared by the local and the container tests."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from support.browser import Element, dump_dom


def wait_until(condition, timeout: float, what: str):
    """``condition()``'s first true value, polled; fails naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.2)


def get(url: str) -> tuple[str, str]:
    """(content type, body) of ``url``."""
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.headers.get("Content-Type", ""), response.read().decode()


def snapshot_topics(url: str) -> int:
    """How many topics' top tokens the dashboard's snapshot holds (0 while it cannot be reached)."""
    try:
        return len(json.loads(get(url + "api/snapshot")[1])["model"]["topics"])
    except OSError:
        return 0


def check_training_page(url: str, *, executors: int, nodes: int, topics: int, vocabulary: set[str],
                        passes: int = 3) -> Element:
    """The page of a cluster that trains: curves, live executors with progress, healthy Redis nodes
    holding every slot, and ten vocabulary tokens per topic. Returns the page for further checks."""
    page = dump_dom(url)
    assert page.find_all("body")[0].attrs.get("data-loaded") == "yes", "the page's script did not draw a snapshot"
    perplexity = page.find_all("figure", "chart", data_series="perplexity")
    assert perplexity, "no perplexity chart"
    assert len(perplexity[0].find_all("circle", "point")) >= passes and perplexity[0].find_all("path", "curve")
    for series in ("seconds", "bytes_moved"):
        assert page.find_all("figure", "chart", data_series=series), f"no {series} chart"
    training = page.find_all(data_field="training")[0].text
    assert "iterations" in training, training

    rows = page.find_all("tr", "executor")
    assert len(rows) == executors
    assert all(row.attrs["data-alive"] == "yes" for row in rows), [row.text for row in rows]
    for row in rows:
        bar = row.find_all(role="progressbar")[0]
        assert int(bar.attrs["aria-valuemax"]) > 0, f"{row.text}: no document share in the heartbeat"
        assert 0 <= int(bar.attrs["aria-valuenow"]) <= int(bar.attrs["aria-valuemax"])

    redis = page.find_all("tr", "redis-node")
    assert len(redis) == nodes
    assert all(n.attrs["data-role"] == "primary" and n.attrs["data-health"] == "ok" for n in redis)
    assert sum(int(n.find_all("td", "slots")[0].text.split()[0]) for n in redis) == 16384
    assert all(int(n.find_all("td", "memory")[0].attrs["data-bytes"]) > 0 for n in redis)
    assert all(int(n.find_all("td", "keys")[0].text) > 0 for n in redis)

    shown = page.find_all("div", "topic")
    assert [t.attrs["data-topic"] for t in shown] == [f"topic_{t}" for t in range(topics)]
    for topic in shown:
        tokens = [li.text for li in topic.find_all("li", "token")]
        assert len(tokens) == 10 and set(tokens) <= vocabulary, tokens
    return page


def check_metrics(url: str, *, cluster: str, executors: int, nodes: int, passes: int = 3) -> None:
    """``/metrics`` parses as Prometheus text and holds the training's and the Redis nodes' gauges."""
    content_type, text = get(url + "metrics")
    assert content_type.startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name in ("artm_training_pass", "artm_perplexity", "artm_pass_seconds", "artm_pass_bytes",
                 "artm_executors_alive", "artm_redis_memory_bytes"):
        assert name in families and families[name].type == "gauge", f"{name} missing from /metrics"
    assert families["artm_executors_alive"].samples[0].value == executors
    assert families["artm_training_pass"].samples[0].value >= passes
    assert families["artm_perplexity"].samples[0].value > 1
    memory = {s.labels["node"]: s.value for s in families["artm_redis_memory_bytes"].samples}
    assert len(memory) == nodes and all(v > 0 for v in memory.values())
    assert {s.labels["cluster"] for s in families["artm_perplexity"].samples} == {cluster}


def vocabulary_of(corpus: Path) -> set[str]:
    return set((corpus / "vocab.txt").read_text().split())
