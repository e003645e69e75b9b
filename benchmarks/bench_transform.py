"""The cost of ``transform`` (theta of a collection under a trained model) against BigARTM 0.9.2's.

    .venv/bin/python benchmarks/bench_transform.py [--corpus DIR] [--topics 50] [--passes 3] \
        [--executors 1,2] [--processors 1,2] [--runs 3] [--json OUT.json]

A model is trained on the local runtime (one Redis node, ``--executors`` executors) and exported; the
same phi is then given to BigARTM (``scripts/bigartm_reference.py transform``, ``ARTM.transform`` on the
batches, ``--processors`` threads, timed around the call: reading the batches and building the
DataFrame included). Ours is ``Runtime.transform`` (what ``artm-compose transform`` runs, timed around
it: phi read from Redis, batches read, the E-step of every share in parallel, theta.npz written). Both
use 10 document passes. Figures: median seconds of ``--runs`` runs, seconds per million tokens (token
weight of the collection), and the ratio against BigARTM measured in the same run; theta's largest
absolute difference from BigARTM's is checked too.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from artm_compose.api import Cluster
from artm_compose.engine.transform import Theta

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_engine import REFERENCE_PYTHON, ROOT, free_base  # noqa: E402 - the engine benchmark's helpers


def train(corpus: Path, state: Path, executors: int, topics: int, passes: int) -> Cluster:
    """A trained local cluster (left up for transform)."""
    cluster = Cluster.from_config(None, name="benchtheta", runtime="local", nodes=1, executors_per_node=executors,
                                  base_port=free_base(1), state_dir=state, data_dir=corpus, topics=topics,
                                  iterations=passes, inner_iterations=10, seed=1, show_top_tokens=False,
                                  allow_idle=True)
    cluster.up(detach=False, echo=lambda line: print(f"    {line}", flush=True))
    return cluster


def ours(cluster: Cluster, out: Path, runs: int) -> tuple[list[float], Theta]:
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        cluster.runtime.transform(out)
        seconds.append(time.perf_counter() - started)
    return seconds, Theta.load(out)


def bigartm(corpus: Path, phi: Path, out: Path, processors: int, runs: int) -> tuple[list[float], Theta]:
    seconds = []
    for _ in range(runs):
        result = subprocess.run([str(REFERENCE_PYTHON), str(ROOT / "scripts" / "bigartm_reference.py"), "transform",
                                 "--batches", str(corpus), "--phi", str(phi), "--inner", "10", "--processors",
                                 str(processors), "--npz", str(out)], capture_output=True, text=True, timeout=3600)
        if result.returncode != 0:
            raise SystemExit(f"BigARTM failed: {result.stderr}")
        with np.load(out) as arrays:
            seconds.append(float(arrays["seconds"]))
    return seconds, Theta.load(out)


def by_item(theta: Theta) -> np.ndarray:
    return theta.theta[np.argsort(theta.items, kind="stable")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=Path.home() / ".cache" / "artm-compose" / "debian")
    parser.add_argument("--topics", type=int, default=50)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--executors", default="1,2")
    parser.add_argument("--processors", default="1,2")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if not REFERENCE_PYTHON.exists():
        raise SystemExit("no .venv-ref: run scripts/setup_reference.sh")
    info = json.loads((args.corpus / "corpus.json").read_text())
    millions = info["token_weight"] / 1e6
    print(f"corpus {args.corpus}: {info['documents']} documents, token weight {info['token_weight']:.0f}; "
          f"{args.topics} topics, model trained {args.passes} passes, 10 document passes", flush=True)
    report: dict = {"corpus": info, "topics": args.topics, "runs": args.runs, "ours": {}, "bigartm": {},
                    "load_average_before": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="bench-transform-") as scratch:
        work = Path(scratch)
        phi = None
        reference = None
        for executors in [int(e) for e in args.executors.split(",")]:
            print(f"ours, {executors} executor(s): training", flush=True)
            cluster = train(args.corpus, work / f"state-{executors}", executors, args.topics, args.passes)
            try:
                if phi is None:
                    phi = cluster.export(work / "phi.npz")
                    for processors in [int(p) for p in args.processors.split(",")]:
                        print(f"BigARTM 0.9.2 transform, {processors} processor(s)", flush=True)
                        seconds, reference = bigartm(args.corpus, phi, work / "bigartm.npz", processors, args.runs)
                        report["bigartm"][processors] = {"seconds": seconds}
                print(f"ours, {executors} executor(s): transform", flush=True)
                seconds, theta = ours(cluster, work / "theta.npz", args.runs)
                report["ours"][executors] = {"seconds": seconds}
                if executors == 1:  # same seed, same phi: the 1-executor model is the one BigARTM got
                    report["max_abs_difference"] = float(np.abs(by_item(theta) - by_item(reference)).max())
            finally:
                cluster.down(echo=lambda _line: None)
    report["load_average_after"] = os.getloadavg()
    print(f"\nload average (1, 5, 15 min) before {report['load_average_before']}, after "
          f"{report['load_average_after']} on {os.cpu_count()} CPUs")
    for name, results in (("BigARTM p=", report["bigartm"]), ("ours e=", report["ours"])):
        for parallel, result in results.items():
            median = statistics.median(result["seconds"])
            result.update(median=median, seconds_per_million_tokens=median / millions)
            print(f"{name}{parallel}: median {median:.3f} s ({', '.join(f'{s:.3f}' for s in result['seconds'])}), "
                  f"{median / millions:.3f} s per million tokens")
    for parallel in sorted(set(report["bigartm"]) & set(report["ours"])):
        ratio = report["bigartm"][parallel]["median"] / report["ours"][parallel]["median"]
        print(f"ours/BigARTM at {parallel} core(s): {ratio:.2f}x faster")
    if "max_abs_difference" in report:
        print(f"theta max abs difference from BigARTM's (1 executor): {report['max_abs_difference']:.2e}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
