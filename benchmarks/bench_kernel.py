"""The E-step kernel alone: FLOP rate against the core's measured FMA peak, and thread scaling.

    .venv/bin/python benchmarks/bench_kernel.py --corpus DIR [--topics 50,200] [--inner 10] [--repeats 3]

Peak: a numba loop of 256 independent float32 chains ``x = x * s + c`` (fastmath, so LLVM emits packed
FMAs for this machine's widest vectors: 16 registers of 16 lanes with AVX-512, enough independent
chains to cover the FMA latency on both FMA pipes), timed in CPU seconds on one thread: 2 FLOPs per
element and step. Kernel: ``engine.kernel.e_step`` on the whole corpus with a random phi, timed in CPU seconds
(1 thread) and wall seconds (1 and 2 threads). FLOPs counted per non-zero and topic: 2 (one FMA) for
each of the inner + 1 dot products p_dw and the inner n_td updates, plus 3 for the final n_wt:
(2 (inner + 1) + 2 inner + 3) T. Padding topics and exp/log are not counted, so this is a lower
bound of the work done.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numba
import numpy as np

from artm_compose.data.batches import list_batches
from artm_compose.data.vocab import read_vocab
from artm_compose.engine.corpus import load_corpus
from artm_compose.engine.kernel import e_step

# 96 chains (6 AVX-512 registers) were latency-bound here: 200 GFLOP/s against 267 with 256.
CHAINS = 256


@numba.njit(fastmath=True)
def _fma_chains(start: np.ndarray, scale: np.float32, shift: np.float32, steps: int) -> np.ndarray:  # pragma: no cover
    x = start.copy()
    for _ in range(steps):
        for t in range(CHAINS):
            x[t] = x[t] * scale + shift
    return x


def fma_peak(steps: int = 8_000_000, repeats: int = 3) -> float:
    """Best float32 FLOP/s of one thread (CPU time)."""
    start = np.full(CHAINS, 0.5, dtype=np.float32)
    _fma_chains(start, np.float32(0.999), np.float32(0.001), 10)
    best = 0.0
    for _ in range(repeats):
        began = time.process_time()
        _fma_chains(start, np.float32(0.999), np.float32(0.001), steps)
        best = max(best, 2 * CHAINS * steps / (time.process_time() - began))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--topics", default="50,200")
    parser.add_argument("--inner", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    peak = fma_peak()
    print(f"FMA peak, one thread: {peak / 1e9:.1f} GFLOP/s (float32, CPU time)")
    vocab = read_vocab(args.corpus / "vocab.txt")
    corpus = load_corpus(args.corpus, vocab, 0, len(list_batches(args.corpus)))
    docs, nonzeros = corpus.docs, len(corpus.docs.rows)
    rng = np.random.default_rng(1)
    for topics in [int(t) for t in args.topics.split(",")]:
        phi = rng.random((len(corpus.rows), topics), dtype=np.float32)
        phi /= phi.sum(axis=0)
        e_step(docs, phi, args.inner, 1)  # compile and warm
        flops = nonzeros * topics * (2 * (args.inner + 1) + 2 * args.inner + 3)
        cpu, wall1, wall2 = [], [], []
        for _ in range(args.repeats):
            began_cpu, began = time.process_time(), time.perf_counter()
            e_step(docs, phi, args.inner, 1)
            cpu.append(time.process_time() - began_cpu)
            wall1.append(time.perf_counter() - began)
            began = time.perf_counter()
            e_step(docs, phi, args.inner, 2)
            wall2.append(time.perf_counter() - began)
        rate = flops / statistics.median(cpu)
        print(f"{topics} topics: E-step {statistics.median(cpu):.3f} CPU s ({corpus.token_weight / statistics.median(cpu) / 1e6:.2f}M "
              f"tokens per CPU second), {rate / 1e9:.1f} GFLOP/s = {rate / peak:.1%} of the FMA peak; wall "
              f"1 thread {statistics.median(wall1):.3f} s, 2 threads {statistics.median(wall2):.3f} s "
              f"({statistics.median(wall1) / statistics.median(wall2):.2f}x)")


if __name__ == "__main__":
    main()
