"""Theta of any batches from the committed model: BigARTM's ``ARTM.transform``, on the cluster's data.

The committed phi is read from Redis once; the batches are split into shares as training splits
them (the executors' batch ranges for the training data, the same number of even shares for other
data), and each share's documents run the E-step kernel (``keep_theta``: BigARTM's
``num_document_passes`` inner iterations from a uniform theta, BigARTM's 1e-16 zero) in a forked
process of its own (reading batches holds the GIL, so threads would not overlap), so shares compute
in parallel. A document's theta depends on
its words and phi only, never on the split, so any topology gives the same theta bit for bit.

Tokens missing from the model's vocabulary are skipped, as BigARTM skips tokens its model lacks.
The class weights and theta regularizers the model was trained with apply here too, as BigARTM's
``transform`` applies the model's (``ThetaSettings``).

Files: ``.npz`` holds ``theta`` (float32, documents x topics, in batch file order then item order),
``items`` (int64 item ids), ``titles`` (str; empty strings where a batch has none) and ``topics``;
``.csv`` has a header ``item_id,title,topic_0,...`` and one row per document, so
``pandas.read_csv(path, index_col=0)`` gives documents x topics indexed by item id.
"""

from __future__ import annotations

import csv
import functools
import multiprocessing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
from redis.cluster import RedisCluster

from artm_compose.data.batches import list_batches
from artm_compose.data.vocab import Vocabulary, read_vocab
from artm_compose.engine.corpus import load_corpus
from artm_compose.engine.export import read_model, topic_names
from artm_compose.engine.kernel import e_step, warm_up
from artm_compose.engine.model_inputs import e_step_inputs
from artm_compose.engine.regularizers import Regularizer, make_regularizer
from artm_compose.errors import ArtmComposeError, ConfigError, DataError
from artm_compose.ranges import Range, even_ranges

THETA_SUFFIXES = (".npz", ".csv")
# A child has sent its theta; its exit after that is immediate.
SHARE_EXIT_TIMEOUT = 30.0


@dataclass(frozen=True)
class Theta:
    """Theta of a set of documents, with what names its rows and columns."""

    theta: np.ndarray  # float32, documents x topics
    items: np.ndarray  # int64 item ids, one per row
    titles: list[str]  # one per row ("" where the batch has none)
    topics: list[str]
    skipped_weight: float = 0.0  # token weight of words the model does not have

    @classmethod
    def load(cls, path: Path) -> Theta:
        """Read a ``.npz`` written by :func:`write_theta`."""
        with np.load(path) as arrays:
            return cls(theta=arrays["theta"], items=arrays["items"], titles=arrays["titles"].tolist(),
                       topics=arrays["topics"].tolist())


def check_theta_path(out: Path) -> None:
    """Refuse an output name we cannot write before anything runs."""
    if Path(out).suffix not in THETA_SUFFIXES:
        raise ConfigError(f"theta output {out}: use a .npz or .csv file name")


def transform_shares(batch_count: int, training_ranges: Sequence[Range], same_data: bool) -> list[Range]:
    """The shares of ``batch_count`` batches: training's batch ranges for the training data (non-empty
    ones), else as many even shares as training had executors."""
    if same_data and training_ranges and training_ranges[-1][1] == batch_count:
        return [tuple(r) for r in training_ranges if r[0] < r[1]]  # type: ignore[misc]
    return [r for r in even_ranges(batch_count, max(1, len(training_ranges))) if r[0] < r[1]]


@dataclass(frozen=True)
class ThetaSettings:
    """The model's class weights and theta regularizers, which BigARTM's transform applies too."""

    class_weights: Mapping[str, float] = field(default_factory=dict)
    regularizers: Sequence[Regularizer] = ()

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ThetaSettings:
        """From a recorded config (``cluster.json``): its ``class_ids`` and ``regularizers``."""
        return cls(class_weights=dict(config.get("class_ids") or {}),
                   regularizers=tuple(make_regularizer(r) for r in config.get("regularizers") or ()))


def theta_of_share(batches_dir: Path, vocab: Vocabulary, phi: np.ndarray, share: Range, *, inner: int,
                   topics: list[str], settings: ThetaSettings = ThetaSettings()) -> Theta:
    """The E-step of one share's documents with the full phi (vocabulary order)."""
    corpus = load_corpus(batches_dir, vocab, share[0], share[1])
    classes = list(dict.fromkeys(vocab.class_ids))
    slot = {c: i for i, c in enumerate(classes)}
    row_slots = np.asarray([slot[vocab.class_ids[r]] for r in corpus.rows], dtype=np.int32)
    docs, modalities = e_step_inputs(corpus.docs, row_slots, classes, settings.class_weights, settings.regularizers,
                                     topics, inner)
    result = e_step(docs, phi[corpus.rows], inner, keep_theta=True, modalities=modalities)
    assert result.theta is not None
    return Theta(theta=result.theta, items=corpus.item_ids, titles=list(corpus.titles), topics=topics,
                 skipped_weight=corpus.skipped_weight)


def in_processes(work: Callable[[Range], Theta], shares: list[Range], parallel: int) -> list[Theta]:
    """``work`` of every share in forked processes, ``parallel`` at a time; the results in share order.

    Reading batches is Python work that holds the GIL, so threads would not overlap it; forked children
    inherit phi and the vocabulary without copying them and send back only their theta.
    """
    warm_up()  # compiled once here, inherited by every child
    context = multiprocessing.get_context("fork")
    results: list[Theta] = []
    for first in range(0, len(shares), parallel):
        running = []
        for share in shares[first:first + parallel]:
            receiver, sender = context.Pipe(duplex=False)
            child = context.Process(target=_share_child, args=(work, share, sender), daemon=True)
            child.start()
            sender.close()
            running.append((share, child, receiver))
        for share, child, receiver in running:
            try:
                outcome, value = receiver.recv()
            except EOFError:
                outcome, value = "error", f"the process of batches {share} ended with exit code {child.exitcode}"
            finally:
                child.join(timeout=SHARE_EXIT_TIMEOUT)
            if outcome == "error":
                raise DataError(f"transform of batches [{share[0]}, {share[1]}): {value}")
            results.append(value)
    return results


def _share_child(work: Callable[[Range], Theta], share: Range, sender: Connection) -> None:
    """In a forked child: one share's theta (or its error) through ``sender``."""
    try:
        sender.send(("ok", work(share)))
    except BaseException as error:  # noqa: BLE001 - reported to the parent, which raises
        sender.send(("error", str(error) if isinstance(error, ArtmComposeError) else f"{type(error).__name__}: {error}"))
    finally:
        sender.close()


def transform(client: RedisCluster, cluster: str, vocab_path: Path, batches_dir: Path, shares: Sequence[Range],
              inner: int, parallel: int, settings: ThetaSettings = ThetaSettings()) -> Theta:
    """Theta of every document of ``batches_dir`` under the committed model, ``parallel`` shares at a time."""
    vocab = read_vocab(vocab_path)
    record, phi = read_model(client, cluster)
    if len(vocab) != record.layout.vocab_size:
        raise DataError(f"vocabulary {vocab_path} has {len(vocab)} tokens, the model in Redis has "
                        f"{record.layout.vocab_size} rows")
    batch_count = len(list_batches(batches_dir))
    if not shares or shares[0][0] != 0 or shares[-1][1] != batch_count:
        raise DataError(f"transform shares {list(shares)} do not cover the {batch_count} batches of {batches_dir}")
    topics = topic_names(record.layout.topics)
    work = functools.partial(theta_of_share, batches_dir, vocab, phi, inner=inner, topics=topics, settings=settings)
    parts = in_processes(work, list(shares), parallel) if parallel > 1 and len(shares) > 1 else [work(s) for s in shares]
    return Theta(theta=np.concatenate([p.theta for p in parts]), items=np.concatenate([p.items for p in parts]),
                 titles=[title for p in parts for title in p.titles], topics=topics,
                 skipped_weight=sum(p.skipped_weight for p in parts))


def write_theta(theta: Theta, out: Path) -> Path:
    """Write ``theta`` to ``out`` (``.npz`` or ``.csv``, see the module's docstring); atomically."""
    out = Path(out)
    check_theta_path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(f".{out.stem}.tmp{out.suffix}")
    if out.suffix == ".npz":
        np.savez(temporary, theta=theta.theta.astype(np.float32), items=theta.items.astype(np.int64),
                 titles=np.asarray(theta.titles, dtype=str), topics=np.asarray(theta.topics))
    else:
        with temporary.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["item_id", "title", *theta.topics])
            for item, title, row in zip(theta.items.tolist(), theta.titles, theta.theta.tolist()):
                writer.writerow([item, title, *(repr(v) for v in row)])
    temporary.replace(out)
    return out
