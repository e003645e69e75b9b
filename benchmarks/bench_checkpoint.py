"""The cost of a checkpoint against a pass, on the local runtime (issue 10).

    .venv/bin/python benchmarks/bench_checkpoint.py [--corpus DIR] [--topics 50,200] [--passes 12]

Each run trains (1 node x 2 executors) with ``--checkpoint-every 1``, so every pass but the last writes
one; the master records each checkpoint's seconds and bytes in scores.json. Printed per topic count:
the median pass, the median checkpoint, their ratio, and the share of the passes' time that a checkpoint
every N passes adds (``DEFAULT_CHECKPOINT_EVERY`` and 1).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

from artm_compose.api import Cluster
from artm_compose.config import DEFAULT_CHECKPOINT_EVERY

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_engine import free_base  # noqa: E402 - the benchmarks share their port picking


def one_run(corpus: Path, state: Path, topics: int, passes: int) -> dict:
    cluster = Cluster.from_config(None, name="ckpt", runtime="local", nodes=1, executors_per_node=2,
                                  base_port=free_base(1), state_dir=state, data_dir=corpus, topics=topics,
                                  iterations=passes, seed=1, checkpoint_every=1, show_top_tokens=False)
    try:
        cluster.up(detach=False, echo=lambda _line: None)
        return json.loads(cluster.state.scores.read_text())
    finally:
        cluster.down(echo=lambda _line: None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=Path.home() / ".cache" / "artm-compose" / "debian")
    parser.add_argument("--topics", default="50,200")
    parser.add_argument("--passes", type=int, default=12)
    args = parser.parse_args()
    print(f"load average at the start: {os.getloadavg()[0]:.2f}")
    for topics in (int(t) for t in args.topics.split(",")):
        with tempfile.TemporaryDirectory(prefix="bench-ckpt-") as work:
            scores = one_run(args.corpus, Path(work) / "state", topics, args.passes)
        pass_seconds = statistics.median(scores["seconds"])
        checkpoint_seconds = statistics.median(c["seconds"] for c in scores["checkpoints"])
        size = scores["checkpoints"][-1]["bytes"]
        shares = ", ".join(f"every {n}: {100 * checkpoint_seconds / (n * pass_seconds):.1f}%"
                           for n in (DEFAULT_CHECKPOINT_EVERY, 1))
        print(f"{topics} topics: pass {pass_seconds:.3f} s, checkpoint {checkpoint_seconds:.3f} s "
              f"({size / 1e6:.1f} MB, {len(scores['checkpoints'])} written), ratio {checkpoint_seconds / pass_seconds:.3f}; "
              f"added to the passes' time {shares}")


if __name__ == "__main__":
    main()
