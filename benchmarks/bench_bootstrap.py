"""Time the local runtime: `artm-compose up --runtime local --nodes 4` to cluster_state:ok, and plan +
bootstrap of many local virtual nodes (256 by default).

    .venv/bin/python benchmarks/bench_bootstrap.py [--runs 5] [--big 256] [--big-node-timeout-ms 15000]

Each run uses a fresh state directory and a free port block, and is torn down with `down`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from artm_compose.api import Cluster
from artm_compose.bootstrap import check_health, targets_from_plan
from artm_compose.config import CLUSTER_BUS_OFFSET
from artm_compose.processes import port_free
from artm_compose.state import read_password

PORT_FLOOR, PORT_CEILING = 12000, 32768 - CLUSTER_BUS_OFFSET


def free_base(count: int) -> int:
    """The first base port from the floor whose node and bus ports are all free."""
    for base in range(PORT_FLOOR, PORT_CEILING - count, 97):
        if all(port_free(p) for i in range(count) for p in (base + i, base + i + CLUSTER_BUS_OFFSET)):
            return base
    raise SystemExit(f"no free block of {count} ports")


def cli_up_seconds(nodes: int) -> tuple[float, float]:
    """Wall time of the installed `artm-compose up` to a healthy cluster, and of the following `down`."""
    script = Path(sys.executable).with_name("artm-compose")
    with tempfile.TemporaryDirectory() as state:
        argv = [str(script), "up", "--runtime", "local", "--nodes", str(nodes), "--base-port",
                str(free_base(nodes)), "--state-dir", state]
        started = time.monotonic()
        up = subprocess.run(argv, capture_output=True, text=True, timeout=300)
        up_seconds = time.monotonic() - started
        try:
            if up.returncode != 0 or "cluster_state ok" not in up.stdout:
                raise SystemExit(f"up failed: {up.stderr or up.stdout}")
        finally:
            started = time.monotonic()
            subprocess.run([str(script), "down", "--state-dir", state], capture_output=True, timeout=300)
            down_seconds = time.monotonic() - started
    return up_seconds, down_seconds


def api_up(nodes: int, node_timeout_ms: int = 5000) -> dict[str, float]:
    """In-process figures: plan, up (start + bootstrap to healthy), bootstrap alone, down."""
    with tempfile.TemporaryDirectory() as state:
        started = time.monotonic()
        cluster = Cluster.from_config(None, runtime="local", nodes=nodes, base_port=free_base(nodes), state_dir=state,
                                      node_timeout_ms=node_timeout_ms)
        cluster.plan  # computed here and cached: what `plan` costs
        plan_seconds = time.monotonic() - started
        try:
            started = time.monotonic()
            result = cluster.up(echo=lambda _m: None)
            up_seconds = time.monotonic() - started
            health = check_health(targets_from_plan(cluster.plan), read_password(cluster.state.password_file))
            if not health.ok:
                raise SystemExit(f"not healthy after up: {health.problems[:5]}")
        finally:
            started = time.monotonic()
            cluster.down(echo=lambda _m: None)
            down_seconds = time.monotonic() - started
    return {"plan": plan_seconds, "up": up_seconds, "bootstrap": result.bootstrap_seconds or 0.0,
            "down": down_seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of the 4-node case (median reported)")
    parser.add_argument("--big", type=int, default=256, help="node count of the large case (0 to skip)")
    parser.add_argument("--big-node-timeout-ms", type=int, default=15000,
                        help="cluster-node-timeout of the large case: every node pings every other at least "
                             "every timeout/2, so the bus traffic grows as nodes^2 / timeout")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")

    cli_runs = [cli_up_seconds(4) for _ in range(args.runs)]
    ups = [u for u, _ in cli_runs]
    print(f"artm-compose up --runtime local --nodes 4 (CLI, to cluster_state:ok): median {statistics.median(ups):.2f} s"
          f" (min {min(ups):.2f}, max {max(ups):.2f}, {args.runs} runs); down median "
          f"{statistics.median(d for _, d in cli_runs):.2f} s")
    api_runs = [api_up(4) for _ in range(args.runs)]
    for key in ("plan", "up", "bootstrap", "down"):
        values = [run[key] for run in api_runs]
        print(f"  4 nodes, API {key:<9}: median {statistics.median(values):.3f} s")
    if args.big:
        big = api_up(args.big, args.big_node_timeout_ms)
        print(f"{args.big} local nodes (cluster-node-timeout {args.big_node_timeout_ms} ms): plan {big['plan']:.3f} s, up {big['up']:.2f} s "
              f"(bootstrap {big['bootstrap']:.2f} s), down {big['down']:.2f} s")


if __name__ == "__main__":
    main()
