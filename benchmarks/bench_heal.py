"""Time from killing an executor to the next committed pass, on the local runtime (issue 10).

    .venv/bin/python benchmarks/bench_heal.py [--corpus DIR] [--topics 50] [--heartbeat-timeout 10] [--runs 3]

Each run trains (2 nodes x 2 executors) in the background, SIGKILLs executor 1 (the process itself,
under its supervisor) in the middle of pass 4, and measures from the kill: when the master noticed
(its progress turns to ``recovery``), and when the interrupted pass was committed after the redo. The
target is at most the heartbeat timeout plus one pass. The median pass time of the same run is printed
beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from artm_compose.api import Cluster
from artm_compose.engine.protocol import read_progress
from artm_compose.redis_client import cluster_client, read_addresses
from artm_compose.state import read_password
from artm_compose.waiting import wait_until

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_engine import free_base  # noqa: E402 - the benchmarks share their port picking

KILL_PASS = 4


def wait(condition, timeout: float, what: str):
    """Poll finely: the figures are the times these waits end."""
    return wait_until(condition, timeout, what, interval=0.01)


def one_run(corpus: Path, state: Path, topics: int, heartbeat: float) -> dict:
    cluster = Cluster.from_config(None, name="heal", runtime="local", nodes=2, executors_per_node=2,
                                  base_port=free_base(2), state_dir=state, data_dir=corpus, topics=topics,
                                  iterations=KILL_PASS + 4, seed=1, heartbeat_timeout=heartbeat,
                                  show_top_tokens=False)
    try:
        cluster.up(detach=True, echo=lambda _line: None)
        client = cluster_client(read_addresses(cluster.state.addresses), read_password(cluster.state.password_file))
        progress = wait(lambda: (lambda p: p if p.get("pass") == KILL_PASS and p.get("phase") == "e-step" else None)(
            read_progress(client, "heal")), 600, f"pass {KILL_PASS}")
        os.kill(int(progress["executors"]["1"]["pid"]), signal.SIGKILL)
        killed = time.monotonic()
        wait(lambda: read_progress(client, "heal").get("state") == "recovery", 600, "the master to notice")
        noticed = time.monotonic() - killed
        wait(lambda: (lambda p: p.get("pass", 0) > KILL_PASS or (p.get("pass") == KILL_PASS and
                                                                 p.get("phase") == "committed"))(
            read_progress(client, "heal")), 600, f"pass {KILL_PASS} committed after the redo")
        committed = time.monotonic() - killed
        wait(lambda: read_progress(client, "heal").get("state") in ("done", "failed"), 600, "the end of the run")
        scores = json.loads(cluster.state.scores.read_text())
        client.close()
    finally:
        cluster.down(echo=lambda _line: None)
    return {"noticed": noticed, "committed": committed, "pass_seconds": statistics.median(scores["seconds"]),
            "restarts": scores["restarts"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=Path.home() / ".cache" / "artm-compose" / "debian")
    parser.add_argument("--topics", type=int, default=50)
    parser.add_argument("--heartbeat-timeout", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if not (args.corpus / "vocab.txt").exists():
        subprocess.run([str(Path(sys.executable).with_name("artm-compose")), "data", "debian", "--out",
                        str(args.corpus)], check=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-heal-") as scratch:
        for number in range(args.runs):
            result = one_run(args.corpus, Path(scratch) / f"state-{number}", args.topics, args.heartbeat_timeout)
            print(f"run {number + 1}: noticed {result['noticed']:.2f} s after the kill, pass {KILL_PASS} committed "
                  f"{result['committed']:.2f} s after it (median pass {result['pass_seconds']:.2f} s; waited "
                  f"{result['restarts'][0]['seconds']:.2f} s for the executor to come back)", flush=True)
            results.append(result)
    noticed = statistics.median(r["noticed"] for r in results)
    committed = statistics.median(r["committed"] for r in results)
    pass_seconds = statistics.median(r["pass_seconds"] for r in results)
    target = args.heartbeat_timeout + pass_seconds
    print(f"median: noticed {noticed:.2f} s, next committed pass {committed:.2f} s after the kill; target "
          f"(heartbeat timeout {args.heartbeat_timeout:g} s + one pass {pass_seconds:.2f} s) {target:.2f} s: "
          f"{'met' if committed <= target else 'NOT met'}")


if __name__ == "__main__":
    main()
