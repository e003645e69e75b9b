"""Bring-up at several sizes: local virtual nodes (16, 64, 256) and Compose nodes to cluster_state:ok.

    .venv/bin/python benchmarks/bench_bringup.py [--local 16,64,256] [--runs 3] [--compose 4] \
        [--compose-runs 3] [--node-timeout-ms 15000]

Local: `Cluster.up` of the local runtime with no data (process start, seeded nodes.conf, bootstrap's
health check of every node), plus the CPU seconds the redis-server processes spent meanwhile: on 2
cores that, not our code, is the floor for 256 nodes. Compose: `up` from built images (built first if
missing, not timed), split at the moment `up` asks Docker to start the containers. Redis 7 keeps a
freshly started master in cluster_state:fail for 2 s (CLUSTER_WRITABLE_DELAY in cluster.c), so no
bring-up is faster than container start + 2 s. Medians; the load average is printed before each case.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from bench_bootstrap import free_base  # noqa: E402

from artm_compose.api import Cluster  # noqa: E402
from artm_compose.bootstrap import check_health, targets_from_plan  # noqa: E402
from artm_compose.config import ClusterConfig  # noqa: E402
from artm_compose.images.build import build_images  # noqa: E402
from artm_compose.processes import ProcessRecord  # noqa: E402
from artm_compose.state import read_password  # noqa: E402

QUIET = lambda _message: None  # noqa: E731


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of ``pids`` so far (``/proc/<pid>/stat`` fields 14 and 15)."""
    ticks = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def local_up(nodes: int, node_timeout_ms: int) -> tuple[float, float]:
    """Seconds of `up` to a healthy cluster, and CPU seconds of all redis-server processes by then."""
    with tempfile.TemporaryDirectory() as state:
        cluster = Cluster.from_config(None, runtime="local", nodes=nodes, base_port=free_base(nodes),
                                      state_dir=state, node_timeout_ms=node_timeout_ms)
        try:
            started = time.monotonic()
            cluster.up(echo=QUIET)
            seconds = time.monotonic() - started
            redis_cpu = cpu_seconds([ProcessRecord.load(p).pid for p in cluster.state.pids_dir.glob("redis-*.json")])
            health = check_health(targets_from_plan(cluster.plan), read_password(cluster.state.password_file))
            if not health.ok:
                raise SystemExit(f"not healthy after up: {health.problems[:5]}")
        finally:
            cluster.down(echo=QUIET)
    return seconds, redis_cpu


def compose_up(work: Path, nodes: int) -> tuple[float, float]:
    """Seconds of `up --runtime compose --nodes N` to "Redis Cluster ok", and of it after Docker was asked."""
    name = f"bring{secrets.token_hex(3)}"
    config = ClusterConfig(name=name, runtime="compose", nodes=nodes, state_dir=work / name)
    cluster = Cluster(config)
    marks: dict[str, float] = {}

    def echo(message: str) -> None:
        if message.startswith("starting ") and "start" not in marks:
            marks["start"] = time.monotonic()
        if message.startswith("Redis Cluster ok"):
            marks["ok"] = time.monotonic()

    try:
        started = time.monotonic()
        cluster.runtime.up(cluster.plan, detach=True, echo=echo)
        return marks["ok"] - started, marks["ok"] - marks["start"]
    finally:
        cluster.down(echo=QUIET, volumes=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--local", default="16,64,256", help="local node counts, comma-separated ('' to skip)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--compose", default="4", help="Compose node counts, comma-separated ('' to skip)")
    parser.add_argument("--compose-runs", type=int, default=3)
    parser.add_argument("--node-timeout-ms", type=int, default=15000,
                        help="cluster-node-timeout: every node pings every other at least every timeout/2")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores")
    for nodes in [int(n) for n in args.local.split(",") if n]:
        print(f"load average {load()}")
        runs = [local_up(nodes, args.node_timeout_ms) for _ in range(args.runs)]
        ups = [u for u, _ in runs]
        print(f"local {nodes} nodes: up to healthy median {statistics.median(ups):.2f} s (min {min(ups):.2f}, "
              f"max {max(ups):.2f}, {args.runs} runs); redis-server CPU by then median "
              f"{statistics.median(c for _, c in runs):.2f} s")
    if args.compose:
        build_images(echo=lambda message: print(message, file=sys.stderr))  # not timed
        with tempfile.TemporaryDirectory() as work:
            for nodes in [int(n) for n in args.compose.split(",") if n]:
                print(f"load average {load()}")
                runs = [compose_up(Path(work), nodes) for _ in range(args.compose_runs)]
                total = [t for t, _ in runs]
                print(f"compose {nodes} nodes: up to cluster_state:ok median {statistics.median(total):.2f} s "
                      f"(min {min(total):.2f}, max {max(total):.2f}, {args.compose_runs} runs), of which after "
                      f"asking Docker to start the containers {statistics.median(d for _, d in runs):.2f} s")


if __name__ == "__main__":
    main()
