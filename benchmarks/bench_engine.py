"""Our engine against BigARTM 0.9.2 on the real Debian corpus (SYSTEM.md section 4).

    .venv/bin/python benchmarks/bench_engine.py [--corpus DIR] [--topics 50] [--passes 10] \
        [--processors 1,2] [--executors 1,2] [--threads 1] [--regularized] [--json OUT.json]

``--regularized``: both train ARTM instead of PLSA, on the corpus with modalities (``data debian
--modalities``): the three regularizers of :data:`REGULARIZERS` and the class weights of
:data:`CLASS_WEIGHTS`, all scores on.

Both start from the same initial phi (ours, seeded per token, exported after ``--iterations 0``
and given to BigARTM through ``scripts/bigartm_reference.py fit --init-phi``), so the per-pass
perplexities are comparable as well as the times. BigARTM runs ``fit_offline`` one pass at a
time with ``--processors`` threads; ours runs on the local runtime (``artm-compose up --runtime
local``: one Redis node and ``--executors`` executor processes of ``--threads`` E-step threads
each), timed by the master per pass (E-step, aggregation, normalisation and commit, Redis traffic included).
Throughput = token weight / median seconds per pass. Bytes moved per pass are the Redis nodes'
client traffic (``INFO stats``), next to the minimum the pass needs (see
``artm_compose.engine.model_store.minimum_pass_bytes``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from artm_compose.api import Cluster
from artm_compose.config import CLUSTER_BUS_OFFSET
from artm_compose.engine.export import export_model
from artm_compose.processes import port_free
from artm_compose.redis_client import cluster_client, read_addresses
from artm_compose.state import read_password

ROOT = Path(__file__).resolve().parents[1]
REFERENCE_PYTHON = ROOT / ".venv-ref" / "bin" / "python"
PORT_FLOOR, PORT_CEILING = 15000, 32768 - CLUSTER_BUS_OFFSET
REGULARIZERS = [{"type": "SmoothSparsePhiRegularizer", "tau": -0.05, "class_ids": ["@default_class"]},
                {"type": "SmoothSparseThetaRegularizer", "tau": -0.1},
                {"type": "DecorrelatorPhiRegularizer", "tau": 1e5}]
CLASS_WEIGHTS = {"@default_class": 1.0, "@section": 5.0, "@tag": 5.0}


def free_base(count: int) -> int:
    for base in range(PORT_FLOOR, PORT_CEILING - count, 89):
        if all(port_free(p) for i in range(count) for p in (base + i, base + i + CLUSTER_BUS_OFFSET)):
            return base
    raise SystemExit(f"no free block of {count} ports")


def ours(corpus: Path, state: Path, executors: int, topics: int, passes: int, init_phi: Path | None,
         export_to: Path | None = None, regularized: bool = False, threads: int = 1) -> dict:
    """One training on the local runtime; the master's scores (and optionally the exported model)."""
    model = {"regularizers": REGULARIZERS, "class_ids": CLASS_WEIGHTS} if regularized and passes else {}
    cluster = Cluster.from_config(None, name="bench", runtime="local", nodes=1, executors_per_node=executors,
                                  base_port=free_base(1), state_dir=state, data_dir=corpus, topics=topics,
                                  iterations=passes, inner_iterations=10, seed=1, init_phi=init_phi, threads=threads,
                                  show_top_tokens=False, allow_idle=True, **model)
    try:
        cluster.up(detach=False, echo=lambda line: print(f"    {line}", flush=True))
        scores = json.loads(cluster.state.scores.read_text())
        if export_to is not None:
            client = cluster_client(read_addresses(cluster.state.addresses), read_password(cluster.state.password_file))
            export_model(client, "bench", corpus / "vocab.txt", export_to)
    finally:
        cluster.down(echo=lambda _line: None)
    return scores


def bigartm(corpus: Path, work: Path, processors: int, topics: int, passes: int, init_phi: Path,
            regularized: bool = False) -> dict:
    """BigARTM's scores, plus ``cpu_seconds_per_pass``: the CPU time of a run of ``passes`` minus
    that of a run of none (start-up, dictionary, initialisation), divided by ``passes``."""
    cpu = []
    for count in (passes, 0):
        out = work / f"bigartm-{processors}-{count}.json"
        argv = [str(REFERENCE_PYTHON), str(ROOT / "scripts" / "bigartm_reference.py"), "fit", "--batches",
                str(corpus), "--topics", str(topics), "--passes", str(count), "--inner", "10", "--processors",
                str(processors), "--init-phi", str(init_phi), "--json", str(out)]
        if regularized:
            argv += ["--regularizers", json.dumps(REGULARIZERS), "--class-ids", json.dumps(CLASS_WEIGHTS)]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        result = subprocess.run(argv, capture_output=True, text=True, timeout=3600)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if result.returncode != 0:
            raise SystemExit(f"BigARTM failed: {result.stderr}")
        cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    scores = json.loads((work / f"bigartm-{processors}-{passes}.json").read_text())
    scores["cpu_seconds_per_pass"] = (cpu[0] - cpu[1]) / passes
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=Path.home() / ".cache" / "artm-compose" / "debian")
    parser.add_argument("--topics", type=int, default=50)
    parser.add_argument("--passes", type=int, default=10)
    parser.add_argument("--processors", default="1,2")
    parser.add_argument("--executors", default="1,2")
    parser.add_argument("--threads", type=int, default=1, help="E-step threads of each of our executors")
    parser.add_argument("--regularized", action="store_true",
                        help="three regularizers and weighted modalities (the corpus needs --modalities)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if not (args.corpus / "vocab.txt").exists():
        print(f"fetching the Debian corpus into {args.corpus} ...", flush=True)
        subprocess.run([str(Path(sys.executable).with_name("artm-compose")), "data", "debian", "--out",
                        str(args.corpus), *(["--modalities"] if args.regularized else [])], check=True)
    if not REFERENCE_PYTHON.exists():
        raise SystemExit("no .venv-ref: run scripts/setup_reference.sh")
    corpus_info = json.loads((args.corpus / "corpus.json").read_text())
    print(f"{args.threads} E-step thread(s) per executor of ours")
    print(f"corpus {args.corpus}: {corpus_info['documents']} documents, {corpus_info['vocab_size']} tokens, "
          f"token weight {corpus_info['token_weight']:.0f}; {args.topics} topics, {args.passes} passes, 10 inner")
    if args.regularized:
        print(f"regularizers {json.dumps(REGULARIZERS)}, class weights {json.dumps(CLASS_WEIGHTS)}")
    report: dict = {"corpus": corpus_info, "topics": args.topics, "passes": args.passes, "bigartm": {}, "ours": {},
                    "threads": args.threads,
                    "regularized": args.regularized,
                    "load_average_before": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="bench-engine-") as scratch:
        work = Path(scratch)
        init_phi = work / "init.npz"
        print("initial phi (ours, --iterations 0)", flush=True)
        ours(args.corpus, work / "state-init", 1, args.topics, 0, None, export_to=init_phi)
        for processors in [int(p) for p in args.processors.split(",")]:
            print(f"BigARTM 0.9.2, {processors} processor(s)", flush=True)
            started = time.monotonic()
            report["bigartm"][processors] = bigartm(args.corpus, work, processors, args.topics, args.passes, init_phi,
                                                    args.regularized)
            print(f"    {time.monotonic() - started:.1f} s in all", flush=True)
        for executors in [int(e) for e in args.executors.split(",")]:
            print(f"ours, {executors} executor(s)", flush=True)
            report["ours"][executors] = ours(args.corpus, work / f"state-{executors}", executors, args.topics,
                                             args.passes, init_phi, regularized=args.regularized,
                                             threads=args.threads)
    report["load_average_after"] = os.getloadavg()
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")


def throughput(token_weight: float, seconds: list[float]) -> float:
    return token_weight / statistics.median(seconds)


def cpu_per_pass(result: dict) -> float:
    """CPU seconds of one pass: BigARTM's process, or the sum over our executors (master excluded)."""
    if "cpu_seconds_per_pass" in result:
        return result["cpu_seconds_per_pass"]
    return statistics.median(result["executor_cpu_seconds"])


def print_report(report: dict) -> None:
    weight = report["corpus"]["token_weight"]
    columns = [(f"BigARTM p={p}", r) for p, r in report["bigartm"].items()]
    columns += [(f"ours e={e}", r) for e, r in report["ours"].items()]
    print(f"\nload average (1, 5, 15 min) before {report['load_average_before']}, after {report['load_average_after']} "
          f"on {os.cpu_count()} CPUs: wall times include contention, CPU times much less so")
    print("\npass " + "".join(f"| {name:>24} " for name, _ in columns))
    print("     " + "".join(f"| {'perplexity':>12} {'seconds':>11} " for _ in columns))
    for number in range(report["passes"]):
        print(f"{number + 1:>4} " + "".join(f"| {r['perplexity'][number]:>12.4f} {r['seconds'][number]:>11.3f} "
                                            for _, r in columns))
    print()
    for name, result in columns:
        rate = throughput(weight, result["seconds"])
        cpu = cpu_per_pass(result)
        print(f"{name:>14}: median {statistics.median(result['seconds']):.3f} s/pass, {rate / 1e6:.2f}M tokens/s; "
              f"{cpu:.3f} CPU s/pass, {weight / cpu / 1e6:.2f}M tokens per CPU second")
    for parallel in sorted(set(report["bigartm"]) & set(report["ours"])):
        theirs, mine = report["bigartm"][parallel], report["ours"][parallel]
        ratio = throughput(weight, mine["seconds"]) / throughput(weight, theirs["seconds"])
        cpu_ratio = cpu_per_pass(theirs) / cpu_per_pass(mine)
        gap = np.max(np.abs(np.array(mine["perplexity"]) / np.array(theirs["perplexity"]) - 1))
        print(f"ours/BigARTM at {parallel} core(s): throughput {ratio:.2f}x (wall), {cpu_ratio:.2f}x (per CPU "
              f"second); perplexity max rel. difference {gap:.2e}")
    for executors, result in report["ours"].items():
        moved, minimum = statistics.median(result["bytes_moved"]), statistics.median(result["bytes_minimum"])
        print(f"ours e={executors}: {moved / 1e6:.2f} MB moved per pass, minimum {minimum / 1e6:.2f} MB "
              f"({moved / minimum:.3f}x)")


if __name__ == "__main__":
    main()
