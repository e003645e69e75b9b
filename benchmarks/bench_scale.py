"""Scale: training on synthetic corpora of growing size and topic count, 4 executors, local runtime.

    nice .venv/bin/python benchmarks/bench_scale.py --documents 50000,200000,500000 --topics 100,500 \
        [--vocab 50000] [--passes 2] [--nodes 2] [--executors-per-node 2] [--json OUT.jsonl]

Per point: `data synth --documents D --mean-length 100 --vocab V --topics 20` (the generating topic count
does not change the cost), then `up` with T topics and P passes. Printed (one JSON line per point): tokens,
seconds per pass (median), executor CPU seconds per pass, bytes moved per pass (Redis client traffic)
and the minimum, Redis `used_memory_peak` per node, executor peak RSS (VmHWM, polled), the plan's
estimates (artm_compose.memory) and the load average; then power-law fits of seconds per pass against
tokens (per topic count) and against topics (per size): exponent and constant from a least-squares
line in log-log space.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from bench_bootstrap import free_base  # noqa: E402

from artm_compose.api import Cluster  # noqa: E402
from artm_compose.data.synth import SynthOptions, synthesize  # noqa: E402
from artm_compose.memory import executor_memory, redis_node_memory  # noqa: E402
from artm_compose.redis_client import node_client  # noqa: E402
from artm_compose.state import read_password  # noqa: E402


def poll_vmhwm(cluster: Cluster, stop: threading.Event, peaks: dict[str, int]) -> None:
    while not stop.is_set():
        for path in cluster.state.pids_dir.glob("executor-*.json") if cluster.state.pids_dir.exists() else []:
            try:
                status = Path(f"/proc/{json.loads(path.read_text())['pid']}/status").read_text()
            except (OSError, ValueError, KeyError):
                continue
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    peaks[path.stem] = max(peaks.get(path.stem, 0), int(line.split()[1]) * 1024)
        time.sleep(0.1)


def one_point(corpus: Path, state: Path, args: argparse.Namespace, topics: int) -> dict:
    nodes = args.nodes
    cluster = Cluster.from_config(None, name="scale", runtime="local", nodes=nodes,
                                  executors_per_node=args.executors_per_node, base_port=free_base(nodes),
                                  state_dir=state, data_dir=corpus, topics=topics, iterations=args.passes,
                                  show_top_tokens=False)
    plan = cluster.plan
    point = {"tokens": plan.data.token_weight, "nonzeros": plan.data.nonzeros, "vocab": plan.data.vocab_size,
             "topics": topics, "executors": len(plan.executors), "nodes": nodes,
             "load_before": os.getloadavg()[0],
             "redis_estimate_mb": [round(m.total / 1e6, 1) for m in redis_node_memory(plan)],
             "executor_estimate_mb": [round(m.total / 1e6, 1) for m in executor_memory(plan)]}
    peaks: dict[str, int] = {}
    stop = threading.Event()
    poller = threading.Thread(target=poll_vmhwm, args=(cluster, stop, peaks))
    poller.start()
    try:
        cluster.up(detach=False, echo=lambda _line: None)
        scores = json.loads(cluster.state.scores.read_text())
        password = read_password(cluster.state.password_file)
        point["redis_peak_mb"] = [round(int(node_client(n.host, n.port, password).info("memory")["used_memory_peak"]) / 1e6, 1)
                                  for n in plan.nodes]
    finally:
        stop.set()
        poller.join()
        cluster.down(echo=lambda _line: None)
    point.update({
        "seconds_per_pass": statistics.median(scores["seconds"]),
        "pass_seconds": scores["seconds"],
        "executor_cpu_per_pass": statistics.median(scores["executor_cpu_seconds"]),
        "bytes_moved_mb": round(statistics.median(scores["bytes_moved"]) / 1e6, 2),
        "bytes_minimum_mb": round(statistics.median(scores["bytes_minimum"]) / 1e6, 2),
        "executor_peak_mb": [round(peaks.get(e.name, 0) / 1e6, 1) for e in plan.executors],
        "load_after": os.getloadavg()[0],
    })
    return point


def power_fit(xs: list[float], ys: list[float]) -> tuple[float, float] | None:
    """``y = c * x^k`` by least squares in log-log space: (k, c); None with fewer than 2 distinct x."""
    if len(set(xs)) < 2:
        return None
    lx, ly = [math.log(x) for x in xs], [math.log(y) for y in ys]
    mx, my = statistics.fmean(lx), statistics.fmean(ly)
    k = sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sum((a - mx) ** 2 for a in lx)
    return k, math.exp(my - k * mx)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", default="50000,200000,500000")
    parser.add_argument("--topics", default="100,500")
    parser.add_argument("--vocab", type=int, default=50000)
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--executors-per-node", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also append the points here (JSON lines)")
    args = parser.parse_args()
    points = []
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as scratch:
        for documents in [int(d) for d in args.documents.split(",")]:
            corpus = Path(scratch) / f"synth-{documents}"
            synthesize(corpus, SynthOptions(documents=documents, topics=20, vocab=args.vocab, mean_length=100.0))
            for topics in [int(t) for t in args.topics.split(",")]:
                point = one_point(corpus, Path(scratch) / f"state-{documents}-{topics}", args, topics)
                point["documents"] = documents
                points.append(point)
                print(json.dumps(point), flush=True)
                if args.json:
                    with args.json.open("a") as out:
                        out.write(json.dumps(point) + "\n")
            shutil.rmtree(corpus)
    for topics in sorted({p["topics"] for p in points}):
        chosen = [p for p in points if p["topics"] == topics]
        fit = power_fit([p["tokens"] for p in chosen], [p["seconds_per_pass"] for p in chosen])
        if fit:
            print(f"{topics} topics: seconds per pass = {fit[1]:.3g} * tokens^{fit[0]:.2f}")
    for documents in sorted({p["documents"] for p in points}):
        chosen = [p for p in points if p["documents"] == documents]
        fit = power_fit([p["topics"] for p in chosen], [p["seconds_per_pass"] for p in chosen])
        if fit:
            print(f"{documents} documents: seconds per pass = {fit[1]:.3g} * topics^{fit[0]:.2f}")


if __name__ == "__main__":
    main()
