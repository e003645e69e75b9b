"""Time from killing an executor (local runtime), the master or a Redis primary (Compose) to the next
committed pass (issue 10).

    .venv/bin/python benchmarks/bench_heal.py [--corpus DIR] [--topics 50] [--heartbeat-timeout 10] [--runs 3]
                                              [--kill executor|master|redis]

Each run trains (2 nodes x 2 executors; ``redis``: 3 nodes with one replica each x 1 executor) in the
background and, in the middle of pass 4, SIGKILLs ``executor``: executor 1 of a local cluster (the process
itself, under its supervisor), or ``master``: the master container's process of a Compose cluster (its
restart policy brings it back, and it resumes the run), or ``docker kill``s ``redis``: the container of
Redis primary redis-1 (Redis Cluster promotes its replica after cluster-node-timeout, 5 s). It measures
from the kill: when the master noticed (executor: its progress turns to ``recovery``; master: the
restarted master took the run over, its progress names its new run; redis: the cluster serves every slot
again and the master redoes the pass, its progress turns to ``recovery``), and when the interrupted pass
was committed after the redo. The target is at most the heartbeat timeout plus one pass. The median pass
time of the same run is printed beside it.
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
from datetime import datetime
from pathlib import Path

from artm_compose.api import Cluster
from artm_compose.runtimes.compose.compose_file import container_name
from artm_compose.docker_access import docker_client
from artm_compose.engine.protocol import read_progress
from artm_compose.redis_client import cluster_client, read_addresses
from artm_compose.state import read_password
from artm_compose.waiting import wait_until

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from bench_engine import free_base  # noqa: E402 - the benchmarks share their port picking
from support.compose import host_client  # noqa: E402 - Redis of a Compose cluster, reached from this host

KILL_PASS = 4


def wait(condition, timeout: float, what: str):
    """Poll finely: the figures are the times these waits end."""
    return wait_until(condition, timeout, what, interval=0.01)


def past_kill_pass(progress: dict) -> bool:
    """Whether the run has committed the pass that the kill interrupted."""
    return progress.get("pass", 0) > KILL_PASS or (progress.get("pass") == KILL_PASS and
                                                   progress.get("phase") == "committed")


def one_run(corpus: Path, state: Path, topics: int, heartbeat: float, kill: str) -> dict:
    name = f"heal{os.getpid()}"
    compose = kill in ("master", "redis")
    # Redis Cluster fails a primary over by a majority vote of the primaries: three at least.
    layout = dict(nodes=3, replicas=1, executors_per_node=1) if kill == "redis" else dict(nodes=2, executors_per_node=2)
    cluster = Cluster.from_config(None, name=name, runtime="compose" if compose else "local", **layout,
                                  base_port=7000 if compose else free_base(2), state_dir=state,
                                  data_dir=corpus, topics=topics, iterations=KILL_PASS + 4, seed=1,
                                  heartbeat_timeout=heartbeat, show_top_tokens=False)
    try:
        cluster.up(detach=True, echo=lambda _line: None)
        client = (host_client(name, cluster.state, cluster.config.base_port) if compose else
                  cluster_client(read_addresses(cluster.state.addresses), read_password(cluster.state.password_file)))
        progress = wait(lambda: (lambda p: p if p.get("pass") == KILL_PASS and p.get("phase") == "e-step" else None)(
            read_progress(client, name)), 600, f"pass {KILL_PASS}")
        master = docker_client().containers.get(container_name(cluster.plan, "master")) if kill == "master" else None
        if kill == "redis":
            docker_client().containers.get(container_name(cluster.plan, "redis-1")).kill()
        else:
            os.kill(master.attrs["State"]["Pid"] if master else int(progress["executors"]["1"]["pid"]), signal.SIGKILL)
        killed, killed_at = time.monotonic(), time.time()
        if kill == "master":
            wait(lambda: read_progress(client, name).get("run") not in (None, progress["run"]), 600,
                 "the restarted master to take the run over")
        noticed: float | None = time.monotonic() - killed
        if kill != "master":
            # A quick recovery can begin and end between two reads of the progress (a read may itself wait on
            # the killed address): then only the commit is timed.
            seen = wait(lambda: (lambda p: p if p.get("state") == "recovery" or past_kill_pass(p) else None)(
                read_progress(client, name)), 600, "the master to notice")
            noticed = time.monotonic() - killed if seen.get("state") == "recovery" else None
        wait(lambda: past_kill_pass(read_progress(client, name)), 600, f"pass {KILL_PASS} committed after the redo")
        committed = time.monotonic() - killed
        wait(lambda: read_progress(client, name).get("state") in ("done", "failed"), 600, "the end of the run")
        scores = json.loads(cluster.state.scores.read_text())
        client.close()
        if master is not None:  # when Docker had started the master again (its clock is this host's)
            master.reload()
            restarted = datetime.fromisoformat(master.attrs["State"]["StartedAt"]).timestamp() - killed_at
    finally:
        cluster.down(echo=lambda _line: None)
    healed = {"executor": scores["restarts"], "master": scores["resumed"], "redis": scores["failovers"]}[kill]
    assert len(healed) == 1, scores
    return {"noticed": noticed, "committed": committed, "pass_seconds": statistics.median(scores["seconds"]),
            "healed": healed[0], "restarted": restarted if master is not None else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=Path.home() / ".cache" / "artm-compose" / "debian")
    parser.add_argument("--topics", type=int, default=50)
    parser.add_argument("--heartbeat-timeout", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--kill", choices=("executor", "master", "redis"), default="executor",
                        help="executor: of a local cluster; master, redis (a primary, --replicas 1): of a Compose "
                             "cluster")
    args = parser.parse_args()
    if not (args.corpus / "vocab.txt").exists():
        subprocess.run([str(Path(sys.executable).with_name("artm-compose")), "data", "debian", "--out",
                        str(args.corpus)], check=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-heal-") as scratch:
        for number in range(args.runs):
            result = one_run(args.corpus, Path(scratch) / f"state-{number}", args.topics, args.heartbeat_timeout,
                             args.kill)
            if args.kill == "master":
                detail = (f"container started again {result['restarted']:.2f} s after the kill; resumed from pass "
                          f"{result['healed']['pass']}")
            elif args.kill == "redis":
                detail = (f"the master waited {result['healed']['seconds']:.2f} s for the failover and the executors' "
                          f"return to the committed model")
            else:
                detail = f"waited {result['healed']['seconds']:.2f} s for the executor to come back"
            noticed = "-" if result["noticed"] is None else f"{result['noticed']:.2f} s"
            print(f"run {number + 1}: noticed {noticed} after the kill, pass {KILL_PASS} committed "
                  f"{result['committed']:.2f} s after it (median pass {result['pass_seconds']:.2f} s; {detail})",
                  flush=True)
            results.append(result)
    seen = [r["noticed"] for r in results if r["noticed"] is not None]
    noticed = statistics.median(seen) if seen else float("nan")
    committed = statistics.median(r["committed"] for r in results)
    pass_seconds = statistics.median(r["pass_seconds"] for r in results)
    target = args.heartbeat_timeout + pass_seconds
    print(f"median: noticed {noticed:.2f} s, next committed pass {committed:.2f} s after the kill; target "
          f"(heartbeat timeout {args.heartbeat_timeout:g} s + one pass {pass_seconds:.2f} s) {target:.2f} s: "
          f"{'met' if committed <= target else 'NOT met'}")


if __name__ == "__main__":
    main()
