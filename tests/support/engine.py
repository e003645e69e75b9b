"""Helpers for the engine tests: a small real corpus and master/executor processes on a local cluster."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from artm_compose.config import ClusterConfig
from artm_compose.data.collection import write_collection
from artm_compose.data.debian import build_collection, build_documents, package_modalities
from artm_compose.data.dictionary_filter import DictionaryFilter
from artm_compose.data.vocab import make_vocab
from artm_compose.engine.kernel import Documents
from artm_compose.engine.launch import executor_argv, master_argv
from artm_compose.plan import Plan, make_plan
from artm_compose.redis_client import cluster_client, node_client, read_addresses
from artm_compose.runtimes.local.runtime import LOOPBACK
from artm_compose.state import read_password

DPKG_STATUS = Path("/var/lib/dpkg/status")


def dpkg_packages(path: Path = DPKG_STATUS) -> list[tuple[str, str]]:
    """(package, description) of every package installed on this machine, sorted by name."""
    packages: dict[str, str] = {}
    for record in path.read_text(encoding="utf-8", errors="replace").split("\n\n"):
        name, lines, in_description = None, [], False
        for line in record.split("\n"):
            if line.startswith(" ") and in_description:
                lines.append(line.strip())
                continue
            in_description = False
            if line.startswith("Package:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("Description:"):
                in_description = True
                lines.append(line.split(":", 1)[1].strip())
        if name and lines:
            packages[name] = "\n".join(lines)
    return sorted(packages.items())


def dpkg_corpus(out_dir: Path, batch_size: int = 100, min_df: int = 3) -> Path:
    """A real corpus from the descriptions of the installed packages (/var/lib/dpkg/status)."""
    words, documents = build_documents(dpkg_packages(), min_df=min_df, max_df_ratio=0.5)
    write_collection(out_dir, make_vocab(words), documents, batch_size=batch_size, source="dpkg-status",
                     options={"min_df": min_df})
    return out_dir


def dpkg_multimodal_corpus(out_dir: Path, batch_size: int = 100) -> Path:
    """The dpkg corpus with a second modality, ``@section`` (each package's Section), as `data debian
    --modalities` makes it from the Packages indexes."""
    sections = {"@section": package_modalities([DPKG_STATUS.read_text(encoding="utf-8", errors="replace")])["@section"]}
    bounds = DictionaryFilter({"min_df": {None: 3}, "max_df_rate": {"@default_class": 0.5}})
    tokens, class_ids, documents = build_collection(dpkg_packages(), sections, bounds)
    write_collection(out_dir, make_vocab(tokens, class_ids), documents, batch_size=batch_size,
                     source="dpkg-status", options={"modalities": ["@section"]})
    return out_dir


@dataclass
class Training:
    """Master and executor processes of one run, logging to files; ``stop`` kills what is left."""

    plan: Plan
    master: subprocess.Popen | None
    executors: dict[int, subprocess.Popen]
    logs: Path
    scores: Path
    executor_argvs: dict[int, list[str]] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    master_argv: list[str] = field(default_factory=list)

    def start_master(self) -> None:
        """Start (or start again: the log is appended to) the master with its command line."""
        self.master = _spawn("master", self.master_argv, self.logs / "master.log", self.env)

    def start_executors(self) -> None:
        for executor in self.executor_argvs:
            self.start_executor(executor)

    def start_executor(self, executor: int) -> None:
        """Start (or start again: the log is appended to) executor ``executor`` with its command line."""
        self.executors[executor] = _spawn("executor", self.executor_argvs[executor],
                                          self.logs / f"executor-{executor}.log", self.env)

    def wait_master(self, timeout: float) -> int:
        try:
            return self.master.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"master did not exit within {timeout} s; log:\n{self.log('master')}") from None

    def wait_all(self, timeout: float) -> dict[str, int]:
        deadline = time.monotonic() + timeout
        codes = {"master": self.wait_master(timeout)}
        for executor, process in self.executors.items():
            try:
                codes[f"executor-{executor}"] = process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                raise AssertionError(f"executor {executor} did not exit; log:\n{self.log(f'executor-{executor}')}")
        return codes

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text()

    def stop(self) -> None:
        for process in [self.master, *self.executors.values()]:
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGKILL)
                process.wait(timeout=10)


def start_training(cluster, data_dir: Path, work: Path, *, nodes: int, executors_per_node: int,
                   start_executors: bool = True, startup_timeout: float | None = None, **config) -> Training:
    """Start the executors (unless told not to) and the master for ``cluster`` (a running local
    cluster, any node count: executors of node k talk to node k mod its size first) on ``data_dir``."""
    plan = training_plan(cluster, data_dir, nodes=nodes, executors_per_node=executors_per_node, **config)
    addresses = [line.split() for line in cluster.state.addresses.read_text().splitlines() if line.strip()]
    password = cluster.state.training_password_file
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    extra = ["--startup-timeout", str(startup_timeout)] if startup_timeout else []
    argvs = {e: extra + argv for e, argv in executor_argvs(cluster, plan, data_dir).items()}
    scores = work / "scores.json"
    host, port = addresses[0]
    argv = extra + master_argv(plan, redis_host=host, redis_port=int(port), password_file=password,
                               batches_dir=data_dir, vocab_path=data_dir / "vocab.txt", scores_path=scores,
                               checkpoint_path=work / "checkpoint.npz")
    training = Training(plan=plan, master=None, executors={}, logs=logs, scores=scores, executor_argvs=argvs, env=env,
                        master_argv=argv)
    if start_executors:
        training.start_executors()
    training.start_master()
    return training


def training_plan(cluster, data_dir: Path, *, nodes: int, executors_per_node: int, **config) -> Plan:
    """The plan of a training on ``cluster`` (a running local cluster) with these executors."""
    base = cluster.config
    return make_plan(ClusterConfig(name=base.name, runtime="local", nodes=nodes, executors_per_node=executors_per_node,
                                   base_port=base.base_port, state_dir=base.state_dir, data_dir=data_dir, **config),
                     addressing=LOOPBACK)


def executor_argvs(cluster, plan: Plan, data_dir: Path) -> dict[int, list[str]]:
    """The executors' command lines of ``plan`` on ``cluster`` (executors of node k talk to node k mod its size)."""
    addresses = [line.split() for line in cluster.state.addresses.read_text().splitlines() if line.strip()]
    argvs = {}
    for executor in plan.executors:
        host, port = addresses[executor.node % len(addresses)]
        argvs[executor.id] = executor_argv(plan, executor, redis_host=host, redis_port=int(port),
                                           password_file=cluster.state.training_password_file, batches_dir=data_dir,
                                           vocab_path=data_dir / "vocab.txt")
    return argvs
def acl_denials(cluster, *, skip: tuple[str, ...] = ()) -> list[dict]:
    """What the Redis instances of a running local cluster (but those named in ``skip``) refused by their ACL
    (``ACL LOG``), as the admin sees it."""
    password = read_password(cluster.state.password_file)
    return [entry for node in cluster.plan.redis_nodes if node.name not in skip
            for entry in node_client(node.host, node.port, password).execute_command("ACL", "LOG")]


def client_of(cluster):
    """A cluster client of a running local cluster (from its state directory)."""
    return cluster_client(read_addresses(cluster.state.addresses), read_password(cluster.state.password_file))


def run_training(cluster, data_dir: Path, work: Path, nodes: int, executors_per_node: int, timeout: float,
                 **config) -> tuple[dict | None, dict[str, int], Training]:
    """Run one training to its end: (scores or None, exit codes, training)."""
    training = start_training(cluster, data_dir, work, nodes=nodes, executors_per_node=executors_per_node,
                              allow_idle=True, **config)
    try:
        codes = training.wait_all(timeout)
    finally:
        training.stop()
    scores = json.loads(training.scores.read_text()) if training.scores.exists() else None
    return scores, codes, training


def assert_healed_by_one_failover(healed: dict, clean: dict, echoed: list[str]) -> None:
    """The scores of a run that lost a Redis primary once (``echoed``: what `up` said while following it):
    one failover, nothing else redone, and the uninterrupted run's perplexities (``clean``'s)."""
    assert len(healed["failovers"]) == 1 and healed["restarts"] == healed["resumed"] == healed["taken_over"] == [], \
        (healed["failovers"], healed["restarts"], healed["resumed"], [e for e in echoed if "topic_" not in e])
    assert healed["perplexity"] == pytest.approx(clean["perplexity"], rel=1e-6, abs=0)
    assert any(line.startswith("Redis failed during pass") for line in echoed), echoed


def _spawn(program: str, argv: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    with log.open("ab") as handle:
        return subprocess.Popen([sys.executable, "-m", f"artm_compose.engine.{program}", *argv],
                                stdout=handle, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def dense_counts(docs: Documents, columns: int) -> np.ndarray:
    counts = np.zeros((docs.count, columns))
    for d in range(docs.count):
        span = slice(docs.indptr[d], docs.indptr[d + 1])
        np.add.at(counts[d], docs.rows[span], docs.weights[span])
    return counts


def theta_here(batches: Path, vocab: Path, phi: np.ndarray, inner: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Theta of every document of ``batches`` under ``phi`` by the kernel in this process, and the item ids."""
    from artm_compose.data.batches import list_batches
    from artm_compose.data.vocab import read_vocab
    from artm_compose.engine.corpus import load_corpus
    from artm_compose.engine.kernel import e_step

    corpus = load_corpus(batches, read_vocab(vocab), 0, len(list_batches(batches)))
    result = e_step(corpus.docs, phi[corpus.rows], inner=inner, keep_theta=True)
    return result.theta, corpus.item_ids
