"""Do passes stay as fast as the first over a long run? (issue 11, part 1: pass 100 within 10% of pass 1)

    .venv/bin/python benchmarks/bench_flat.py [--corpus DIR] [--topics 50] [--passes 100] [--executors 1]

Trains on the local runtime (one Redis node, ``--executors`` executors) for ``--passes`` passes and
prints the master's per-pass seconds: the first and last pass, the medians of the first and last ten
(single passes are noisy on a shared machine), their ratio, the same for the executors' CPU seconds, and what the final phi holds: the share of
float32 subnormal values and of values below 1e-30 (BigARTM's 1e-16 zero, ``engine.kernel.TINY``,
keeps both at 0; subnormal operands once made passes 1.8x slower by pass 60).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

from artm_compose.api import Cluster

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_engine import free_base  # noqa: E402 - the benchmarks share their port picking

WINDOW = 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=Path.home() / ".cache" / "artm-compose" / "debian")
    parser.add_argument("--topics", type=int, default=50)
    parser.add_argument("--passes", type=int, default=100)
    parser.add_argument("--executors", type=int, default=1)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-flat-") as work:
        cluster = Cluster.from_config(None, name="flat", runtime="local", nodes=1, executors_per_node=args.executors,
                                      base_port=free_base(1), state_dir=Path(work) / "state", data_dir=args.corpus,
                                      topics=args.topics, iterations=args.passes, seed=1, checkpoint_every=0,
                                      show_top_tokens=False)
        try:
            cluster.up(detach=False, echo=lambda _line: None)
            scores = json.loads(cluster.state.scores.read_text())
            seconds, cpu = scores["seconds"], scores["executor_cpu_seconds"]
            phi = cluster.get_phi().to_numpy(dtype=np.float32)
        finally:
            cluster.down(echo=lambda _line: None)
    tiny = np.finfo(np.float32).tiny
    first, last = statistics.median(seconds[:WINDOW]), statistics.median(seconds[-WINDOW:])
    print(f"load average {load:.2f} at the start, {os.getloadavg()[0]:.2f} at the end; {args.topics} topics, "
          f"{args.executors} executor(s), {len(seconds)} passes")
    print(f"pass 1 {seconds[0]:.3f} s, pass {len(seconds)} {seconds[-1]:.3f} s; median of passes 1-{WINDOW} "
          f"{first:.3f} s, of the last {WINDOW} {last:.3f} s: ratio {last / first:.3f}")
    cpu_first, cpu_last = statistics.median(cpu[:WINDOW]), statistics.median(cpu[-WINDOW:])
    print(f"executors' CPU seconds per pass (less sensitive to other load): median of passes 1-{WINDOW} "
          f"{cpu_first:.3f}, of the last {WINDOW} {cpu_last:.3f}: ratio {cpu_last / cpu_first:.3f}")
    print(f"final phi: {np.mean((phi != 0) & (np.abs(phi) < tiny)):.2%} subnormal, "
          f"{np.mean((phi != 0) & (np.abs(phi) < 1e-30)):.2%} nonzero below 1e-30, {np.mean(phi == 0):.2%} zero")


if __name__ == "__main__":
    main()
