"""``/metrics``: snapshots in the Prometheus text exposition format (version 0.0.4), all gauges.

Every sample carries the label ``cluster`` (and ``state_dir``, since two state directories may
hold clusters of the same name); Redis samples add ``node`` (its address). A value that is not
known yet (no pass finished, a node that does not answer) is left out rather than made up.

One dashboard may show many clusters, so the cluster is a label of each series, as exporters that
look at several things do; never ``instance`` or ``job``, which Prometheus sets for the scraped
target. ``artm_cluster_info`` (always 1) carries what describes a cluster but would only multiply
series on every other metric (its runtime), to be joined on ``cluster``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PREFIX = "artm_"


@dataclass
class Gauge:
    name: str
    help: str
    samples: list[tuple[dict[str, str], float]] = field(default_factory=list)

    def add(self, labels: dict[str, str], value: float | int | None) -> None:
        if value is not None and not (isinstance(value, float) and math.isnan(value)):
            self.samples.append((labels, float(value)))


_GAUGES = {
    "cluster_info": "Always 1; labels describe the cluster (runtime)",
    "up": "1 if the cluster's state directory could be read",
    "healthy": "1 if every Redis node is up, the cluster state is ok and all slots are assigned",
    "training_pass": "The pass the training is in (or last finished)",
    "training_passes": "Passes this run was asked for",
    "training_failed": "1 if the last run stopped with an error",
    "perplexity": "Perplexity of the last finished pass",
    "pass_seconds": "Wall-clock seconds of the last finished pass",
    "pass_bytes": "Bytes moved through Redis in the last finished pass",
    "score": "Last value of every other per-pass score in scores.json, by name",
    "passes_finished": "Passes recorded in scores.json",
    "executors": "Executors planned",
    "executors_alive": "Executors with a live heartbeat or process",
    "executor_restarts": "Restarts of an executor this dashboard has seen (new instance ids)",
    "executor_documents_done": "Documents an executor has E-stepped in the current pass",
    "executor_documents": "Documents in an executor's share",
    "redis_up": "1 if the Redis node answers",
    "redis_memory_bytes": "used_memory of the Redis node",
    "redis_keys": "Keys in the Redis node",
    "redis_slots": "Hash slots the Redis node serves",
}
_BUILT_IN_SERIES = {"perplexity", "seconds", "bytes_moved"}


def render_metrics(snapshots: Iterable[dict[str, Any]]) -> str:
    gauges = {name: Gauge(PREFIX + name, text) for name, text in _GAUGES.items()}
    for snapshot in snapshots:
        _collect(snapshot, gauges)
    lines: list[str] = []
    for gauge in gauges.values():
        if not gauge.samples:
            continue
        lines.append(f"# HELP {gauge.name} {gauge.help}")
        lines.append(f"# TYPE {gauge.name} gauge")
        for labels, value in gauge.samples:
            lines.append(f"{gauge.name}{_labels(labels)} {_number(value)}")
    return "\n".join(lines) + "\n"


def _collect(snapshot: dict[str, Any], gauges: dict[str, Gauge]) -> None:
    base = {"cluster": str(snapshot.get("cluster") or ""), "state_dir": str(snapshot.get("state_dir", ""))}
    if snapshot.get("runtime"):
        gauges["cluster_info"].add({**base, "runtime": str(snapshot["runtime"])}, 1)
    gauges["up"].add(base, 0 if snapshot.get("error") else 1)
    if snapshot.get("error"):
        return
    status = snapshot.get("status") or {}
    if "healthy" in status:
        gauges["healthy"].add(base, int(bool(status["healthy"])))
    training = snapshot.get("training") or {}
    gauges["training_pass"].add(base, training.get("pass"))
    gauges["training_passes"].add(base, training.get("passes"))
    gauges["training_failed"].add(base, int(training.get("state") == "failed"))
    series = (snapshot.get("scores") or {}).get("series") or {}
    for name, metric in (("perplexity", "perplexity"), ("seconds", "pass_seconds"), ("bytes_moved", "pass_bytes")):
        gauges[metric].add(base, _last(series.get(name)))
    gauges["passes_finished"].add(base, len(series.get("perplexity") or []))
    for name, values in sorted(series.items()):
        if name not in _BUILT_IN_SERIES:
            gauges["score"].add({**base, "score": name}, _last(values))
    executors = snapshot.get("executors") or []
    if executors:
        gauges["executors"].add(base, len(executors))
        gauges["executors_alive"].add(base, sum(1 for e in executors if e.get("alive")))
    for executor in executors:
        labels = {**base, "executor": str(executor["id"])}
        gauges["executor_restarts"].add(labels, executor.get("restarts"))
        gauges["executor_documents_done"].add(labels, executor.get("documents_done"))
        gauges["executor_documents"].add(labels, executor.get("documents"))
    for node in (snapshot.get("redis") or {}).get("nodes") or []:
        labels = {**base, "node": str(node.get("address"))}
        gauges["redis_up"].add(labels, 0 if node.get("error") else 1)
        gauges["redis_memory_bytes"].add(labels, node.get("used_memory"))
        gauges["redis_keys"].add(labels, node.get("keys"))
        gauges["redis_slots"].add(labels, node.get("slot_count"))


def _last(values: list[float | None] | None) -> float | None:
    return next((v for v in reversed(values or []) if v is not None), None)


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    escaped = (f'{key}="{_escape(value)}"' for key, value in labels.items())
    return "{" + ",".join(escaped) + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(int(value)) if value.is_integer() and abs(value) < 2 ** 53 else repr(value)
