#!/usr/bin/env python3
"""How fast ``artm-compose data synth`` writes a corpus, and in how much memory.

Runs the command as a child process (once per ``--topics`` value, ``--repeats`` times each) into a
temporary directory that is removed afterwards, and prints per run: tokens, non-zeros, wall and CPU
seconds, tokens per wall and per CPU second, the child's peak RSS, bytes written; then the medians and
the load average before and after.

  .venv/bin/python benchmarks/bench_synth.py --documents 500000 --mean-length 100 --vocab 50000 --topics 100 500
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_once(args: argparse.Namespace, topics: int, scratch: Path) -> dict[str, float]:
    out = scratch / f"synth-{topics}"
    command = [str(Path(sys.executable).with_name("artm-compose")), "data", "synth", "--documents",
               str(args.documents), "--mean-length", str(args.mean_length), "--topics", str(topics), "--vocab",
               str(args.vocab), "--seed", str(args.seed), "--out", str(out)]
    start = time.perf_counter()
    usage = wait_with_usage(subprocess.Popen(command, stdout=subprocess.DEVNULL), args.timeout, command)
    wall = time.perf_counter() - start
    manifest = json.loads((out / "corpus.json").read_text())
    written = sum(path.stat().st_size for path in out.iterdir())
    shutil.rmtree(out)
    cpu = usage.ru_utime + usage.ru_stime
    tokens = float(manifest["token_weight"])
    return {"topics": topics, "tokens": tokens, "nonzeros": manifest["nonzeros"], "wall_s": wall, "cpu_s": cpu,
            "tokens_per_wall_s": tokens / wall, "tokens_per_cpu_s": tokens / cpu,
            "peak_rss_mb": usage.ru_maxrss / 1024, "written_mb": written / 1e6}


def wait_with_usage(process: subprocess.Popen, timeout: float, command: list[str]) -> resource.struct_rusage:
    """Wait for ``process`` (killed after ``timeout`` s) and return its own resource usage."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            if os.waitstatus_to_exitcode(status) != 0:
                raise SystemExit(f"failed ({os.waitstatus_to_exitcode(status)}): {' '.join(command)}")
            return usage
        if time.monotonic() > deadline:
            process.kill()
            process.wait()
            raise SystemExit(f"did not finish within {timeout} s: {' '.join(command)}")
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=500_000)
    parser.add_argument("--mean-length", type=float, default=100.0)
    parser.add_argument("--vocab", type=int, default=50_000)
    parser.add_argument("--topics", type=int, nargs="+", default=[100, 500])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=3600.0)
    parser.add_argument("--scratch", type=Path, default=None, help="where the corpora are written (then removed)")
    args = parser.parse_args()
    load_before = os.getloadavg()
    scratch = Path(tempfile.mkdtemp(prefix="bench-synth-", dir=args.scratch))
    try:
        for topics in args.topics:
            runs = [run_once(args, topics, scratch) for _ in range(args.repeats)]
            for run in runs:
                print(json.dumps({key: round(value, 3) if isinstance(value, float) else value
                                  for key, value in run.items()}))
            median = {key: statistics.median(run[key] for run in runs)
                      for key in ("wall_s", "cpu_s", "tokens_per_wall_s", "tokens_per_cpu_s")}
            print(f"topics {topics}: {runs[0]['tokens'] / 1e6:.1f}M tokens, {runs[0]['nonzeros'] / 1e6:.1f}M "
                  f"non-zeros; median {median['wall_s']:.1f} s wall, {median['cpu_s']:.1f} s CPU, "
                  f"{median['tokens_per_wall_s'] / 1e6:.2f}M tokens/s wall, "
                  f"{median['tokens_per_cpu_s'] / 1e6:.2f}M tokens per CPU second")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"load average before {load_before[0]:.1f}, after {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
