"""Time the compose runtime from built images: `up --nodes 4` to cluster_state:ok and to the first
finished training pass, and the memory of every container at rest.

    .venv/bin/python benchmarks/bench_compose.py [--runs 3] [--nodes 4] [--executors-per-node 2] \
        [--data DIR] [--topics 20] [--json OUT.json]

Images are built first if missing (not timed: see `artm-compose build` for build times); `up` checks them
again by content, so run this from a checkout nobody edits meanwhile (else `up` rebuilds). Each run uses
a fresh cluster name and state directory and is taken down with `down` (also timed). Without --data a
real corpus is made from this machine's package descriptions (/var/lib/dpkg/status).

- up to cluster_state:ok: `up --data` on nothing says "Redis Cluster ok" once the bootstrap saw every
  node report cluster_state:ok with all 16384 slots assigned (network, containers, bootstrap included).
- up to the first pass: the same `up`, detached, until the master prints its first finished pass
  (executors and master started, data loaded, one E-step, aggregation and normalisation).
- memory: `docker stats` of every container: of the executors and the master during training, of a
  Redis-only cluster at rest, and of the same cluster at rest after a training (the model in Redis).
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
from artm_compose.docker_access import docker_client
from artm_compose.images.build import build_images
from artm_compose.runtimes.compose.runtime import ComposeRuntime

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


def first_pass_seconds(cluster: str, started: float) -> float:
    """Seconds from ``started`` until the master of ``cluster`` prints its first finished pass."""
    master = docker_client().containers.get(f"artm-{cluster}-master")
    seen = b""
    for chunk in master.logs(stream=True, follow=True):
        seen = seen[-64:] + chunk
        if b"pass 1:" in seen:
            return time.monotonic() - started
        if time.monotonic() - started > FIRST_PASS_TIMEOUT:
            raise SystemExit(f"no finished pass within {FIRST_PASS_TIMEOUT:g} s")
    raise SystemExit(f"the master ended without a finished pass:\n{master.logs(tail=20).decode()}")


def wait_master(cluster: str) -> None:
    master = docker_client().containers.get(f"artm-{cluster}-master")
    if master.wait(timeout=FIRST_PASS_TIMEOUT)["StatusCode"] != 0:
        raise SystemExit(f"the master failed:\n{master.logs(tail=20).decode()}")


def config_for(work: Path, args: argparse.Namespace, data: Path | None) -> ClusterConfig:
    name = f"bench{secrets.token_hex(3)}"
    return ClusterConfig(name=name, runtime="compose", nodes=args.nodes, executors_per_node=args.executors_per_node,
                         state_dir=work / name, data_dir=data, topics=args.topics, iterations=10, allow_idle=True)


def from_nothing(work: Path, args: argparse.Namespace, data: Path) -> dict[str, Any]:
    """`up --data` on nothing: when `up` reports cluster_state:ok, and when the first pass is done."""
    config = config_for(work, args, data)
    cluster = Cluster(config)
    plan = cluster.plan  # reading the batches is not part of the timing
    marks: dict[str, float] = {}

    def echo(message: str) -> None:
        if message.startswith("Redis Cluster ok"):
            marks["ok"] = time.monotonic()

    figures: dict[str, Any] = {"cluster": config.name}
    try:
        started = time.monotonic()
        result = cluster.runtime.up(plan, detach=True, echo=echo)
        figures["up_to_cluster_ok_s"] = round(marks["ok"] - started, 2)
        figures["bootstrap_s"] = result.bootstrap_seconds
        figures["up_to_first_pass_s"] = round(first_pass_seconds(config.name, started), 2)
        figures["memory_training_mib"] = {k: v for k, v in cluster_memory(config.name).items()
                                          if k.startswith(("executor", "master"))}
        wait_master(config.name)
    finally:
        started = time.monotonic()
        ComposeRuntime(cluster.state).down(echo=QUIET, volumes=True)
        figures["down_s"] = round(time.monotonic() - started, 2)
    return figures


def at_rest(work: Path, args: argparse.Namespace, data: Path) -> dict[str, Any]:
    """Memory at rest: a Redis-only cluster, then the same cluster after a training (model in Redis)."""
    config = config_for(work, args, None)
    figures: dict[str, Any] = {}
    try:
        Cluster(config).up(detach=True, echo=QUIET)
        figures["memory_empty_mib"] = cluster_memory(config.name)
        Cluster(config.replace(data_dir=data)).up(detach=False, echo=QUIET)
        figures["memory_after_training_mib"] = cluster_memory(config.name)
    finally:
        ComposeRuntime(Cluster(config).state).down(echo=QUIET, volumes=True)
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
            figures = from_nothing(work, args, data)
            runs.append(figures)
            print(f"run {number + 1}: " + json.dumps(figures), flush=True)
        rest = at_rest(work, args, data)
        print("at rest: " + json.dumps(rest), flush=True)
    load = os.getloadavg()
    summary = {key: {"median": statistics.median(r[key] for r in runs), "min": min(r[key] for r in runs),
                     "max": max(r[key] for r in runs)}
               for key in ("up_to_cluster_ok_s", "bootstrap_s", "up_to_first_pass_s", "down_s")}
    report = {"nodes": args.nodes, "executors_per_node": args.executors_per_node, "runs": runs, "at_rest": rest,
              "summary": summary,
              "load_average": [round(x, 2) for x in load], "cpus": os.cpu_count()}
    print(json.dumps(summary, indent=2))
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPU(s)")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
