"""Time the compose runtime from built images: `up --nodes 4` to cluster_state:ok and to the first
finished training pass, and the memory of every container at rest.

    .venv/bin/python benchmarks/bench_compose.py [--runs 3] [--nodes 4] [--executors-per-node 2] \
        [--data DIR] [--topics 20] [--json OUT.json]

Images are built first if missing (not timed: see `artm-compose build` for build times); `up` checks them
again by content, so run this from a checkout nobody edits meanwhile (else `up` rebuilds). Each run uses
a fresh cluster name and state directory and is taken down with `down` (also timed). Without --data a
real corpus is made from this machine's package descriptions (/var/lib/dpkg/status).

- up to cluster_state:ok: `up` without data returns once the bootstrap saw every node report
  cluster_state:ok with all 16384 slots assigned (start of containers, network, bootstrap included).
- up to the first pass: `up` with data, detached, then the time the master prints its first pass
  (numba compiles the kernel in every fresh executor container: that is part of it).
- memory at rest: `docker stats` (no stream) of every container of the cluster after `up` without data,
  then of the executors and the master once training has finished its first pass.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from artm_compose import labels
from artm_compose.api import Cluster
from artm_compose.config import ClusterConfig
from artm_compose.docker_env import docker_client
from artm_compose.images.build import build_images
from artm_compose.runtimes.compose import ComposeRuntime

FIRST_PASS_TIMEOUT = 900.0
QUIET = lambda _message: None  # noqa: E731


def cluster_memory(cluster: str) -> dict[str, float]:
    """Memory in MiB (usage minus page cache, as `docker stats` shows it) of each running container."""
    client = docker_client()
    found = client.containers.list(filters={"label": labels.selector(cluster, "compose")})
    with ThreadPoolExecutor(max_workers=8) as pool:
        samples = list(pool.map(lambda c: (c, c.stats(stream=False, one_shot=True)["memory_stats"]), found))
    memory = {}
    for container, stats in samples:
        if "usage" not in stats:  # exited since it was listed
            continue
        cache = stats.get("stats", {}).get("inactive_file", stats.get("stats", {}).get("cache", 0))
        memory[container.labels["com.docker.compose.service"]] = round((stats["usage"] - cache) / 2 ** 20, 1)
    return dict(sorted(memory.items()))


def run_once(work: Path, nodes: int, executors_per_node: int, data: Path, topics: int) -> dict[str, Any]:
    """One cluster: up without data (to cluster_state:ok), memory at rest, training to its first pass, down."""
    name = f"bench{secrets.token_hex(3)}"
    config = ClusterConfig(name=name, runtime="compose", nodes=nodes, executors_per_node=executors_per_node,
                           state_dir=work / name, topics=topics, iterations=10, allow_idle=True)
    figures: dict[str, Any] = {"cluster": name}
    try:
        started = time.monotonic()
        result = Cluster(config).up(detach=True, echo=QUIET)
        figures["up_to_cluster_ok_s"] = round(time.monotonic() - started, 2)
        figures["bootstrap_s"] = result.bootstrap_seconds
        figures["memory_at_rest_mib"] = cluster_memory(name)
        trainer = Cluster(config.replace(data_dir=data))
        plan = trainer.plan  # reading the batches is not part of the timing
        started = time.monotonic()
        trainer.runtime.up(plan, detach=True, echo=QUIET)
        figures["training_started_s"] = round(time.monotonic() - started, 2)
        master = docker_client().containers.get(f"artm-{name}-master")
        seen = b""
        for chunk in master.logs(stream=True, follow=True):
            seen = seen[-64:] + chunk
            if b"pass 1:" in seen:
                figures["up_to_first_pass_s"] = round(time.monotonic() - started, 2)
                break
            if time.monotonic() - started > FIRST_PASS_TIMEOUT:
                raise SystemExit(f"no finished pass within {FIRST_PASS_TIMEOUT:g} s")
        if "up_to_first_pass_s" not in figures:
            raise SystemExit(f"the master ended without a finished pass:\n{master.logs(tail=20).decode()}")
        figures["memory_training_mib"] = {k: v for k, v in cluster_memory(name).items()
                                          if k.startswith(("executor", "master"))}
        master.wait(timeout=FIRST_PASS_TIMEOUT)
    finally:
        started = time.monotonic()
        ComposeRuntime(Cluster(config).state).down(echo=QUIET, volumes=True)
        figures["down_s"] = round(time.monotonic() - started, 2)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--executors-per-node", type=int, default=2)
    parser.add_argument("--data", type=Path, help="batches directory [default: made from dpkg descriptions]")
    parser.add_argument("--topics", type=int, default=20)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    build_images(echo=lambda message: print(message, file=sys.stderr))
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        data = args.data
        if data is None:
            sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
            from engine_support import dpkg_corpus
            data = dpkg_corpus(work / "dpkg")
        runs = []
        for number in range(args.runs):
            figures = run_once(work, args.nodes, args.executors_per_node, data, args.topics)
            runs.append(figures)
            print(f"run {number + 1}: " + json.dumps(figures), flush=True)
    load = os.getloadavg()
    summary = {key: {"median": statistics.median(r[key] for r in runs), "min": min(r[key] for r in runs),
                     "max": max(r[key] for r in runs)}
               for key in ("up_to_cluster_ok_s", "bootstrap_s", "up_to_first_pass_s", "down_s")}
    report = {"nodes": args.nodes, "executors_per_node": args.executors_per_node, "runs": runs, "summary": summary,
              "load_average": [round(x, 2) for x in load], "cpus": os.cpu_count()}
    print(json.dumps(summary, indent=2))
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPU(s)")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
