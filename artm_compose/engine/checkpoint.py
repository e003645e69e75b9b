"""Checkpoints: the committed model and its run's scores in the state directory, for a Redis that loses
its data.

Every ``--checkpoint-every`` passes the master writes the model it has just committed as a phi export
(``.npz``, :mod:`artm_compose.engine.export`: read from Redis and written in chunks) with four more
members: ``run``, ``last_pass`` (the run's final pass), ``scores`` (the run's scores up to that
pass, JSON) and ``executors`` (the executors training it and their ranges, as the model record lists
them after take-overs and scales, JSON). It is one file, replaced by a rename, so a checkpoint is whole or absent.

A master that finds no model in Redis (every node lost its data) and a checkpoint of an unfinished run
with its topic count and vocabulary goes on with that run and those executors: it writes the checkpoint's phi into Redis as
the committed model, in its own layout, and the executors load it as they do after a lost master; the
passes after the checkpoint are redone, bit for bit as the first time (phi is all the state a pass
starts from offline). A run that ends removes its checkpoint, and a master starting a new run removes an
earlier run's, so a later loss never goes back to a run that is over.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from redis.cluster import RedisCluster

from artm_compose.data.vocab import Vocabulary
from artm_compose.engine import model_store as store
from artm_compose.engine.export import EXPORT_CHUNK_BYTES, export_model, row_chunks
from artm_compose.engine.layout import Layout
from artm_compose.errors import DataError

@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint file's contents."""

    run: str
    pass_number: int
    last_pass: int
    n_t: list[float] | None
    scores: dict[str, Any]
    tokens: list[tuple[str, str]]
    phi: np.ndarray  # float32, vocabulary x topics
    executors: store.Assignment | None = None  # None: a checkpoint written before they were recorded

    @property
    def finished(self) -> bool:
        return self.pass_number >= self.last_pass


def write_checkpoint(client: RedisCluster, cluster: str, vocab_path: Path, path: Path, *, last_pass: int,
                     scores: dict[str, Any], executors: store.Assignment) -> float:
    """Write the committed model, ``scores`` and ``executors`` to ``path``; the seconds it took."""
    started = time.perf_counter()
    export_model(client, cluster, vocab_path, path, extra={
        "run": np.asarray(scores["run"]), "last_pass": np.asarray(last_pass),
        "scores": np.asarray(json.dumps(scores)),
        "executors": np.asarray(json.dumps(store.executors_to_dict(executors)))})
    return time.perf_counter() - started


def read_checkpoint(path: Path) -> Checkpoint:
    try:
        with np.load(path, allow_pickle=False) as data:
            n_t = np.asarray(data["n_t"], dtype=np.float64)
            return Checkpoint(run=str(data["run"]), pass_number=int(data["pass"]), last_pass=int(data["last_pass"]),
                              n_t=None if np.isnan(n_t).any() else n_t.tolist(),
                              scores=json.loads(str(data["scores"])),
                              tokens=list(zip((str(c) for c in data["class_ids"]), (str(t) for t in data["tokens"]))),
                              phi=np.asarray(data["phi"], dtype=np.float32),
                              executors=(store.executors_from_dict(json.loads(str(data["executors"])))
                                         if "executors" in data else None))
    except (OSError, ValueError, KeyError) as error:
        raise DataError(f"checkpoint {path} cannot be read: {error}") from error


def mismatch(checkpoint: Checkpoint, vocab: Vocabulary, topics: int) -> str | None:
    """Why ``checkpoint`` cannot go on in a run of ``topics`` topics over ``vocab``; None when it can."""
    if checkpoint.phi.shape[1] != topics:
        return f"it has {checkpoint.phi.shape[1]} topics, this run {topics}"
    if checkpoint.tokens != list(zip(vocab.class_ids, vocab.tokens)):
        return f"its {len(checkpoint.tokens)} tokens are not this run's vocabulary of {len(vocab)}"
    return None


def restore(client: RedisCluster, layout: Layout, checkpoint: Checkpoint, run: str) -> store.ModelRecord:
    """Write the checkpoint's phi into Redis as the committed model of ``run`` in ``layout``."""
    record = store.ModelRecord(generation=0, pass_number=checkpoint.pass_number, layout=layout, run=run,
                               n_t=checkpoint.n_t)
    for begin, end in row_chunks(layout, EXPORT_CHUNK_BYTES):
        store.write_range(client, layout, record.generation, begin, checkpoint.phi[begin:end])
    store.commit_model(client, record)
    return record
