"""Theta of any batches from the committed model: BigARTM's ``ARTM.transform``, on the cluster's data.

The committed phi is read from Redis once; the batches are split into shares as training splits
them (the executors' batch ranges for the training data, the same number of even shares for other
data), and each share's documents run the E-step kernel (``keep_theta``: BigARTM's
``num_document_passes`` inner iterations from a uniform theta, BigARTM's 1e-16 zero) in its own
thread (the kernel releases the GIL), so shares compute in parallel. A document's theta depends on
its words and phi only, never on the split, so any topology gives the same theta bit for bit.

Tokens missing from the model's vocabulary are skipped, as BigARTM skips tokens its model lacks.

Files: ``.npz`` holds ``theta`` (float32, documents x topics, in batch file order then item order),
``items`` (int64 item ids), ``titles`` (str; empty strings where a batch has none) and ``topics``;
``.csv`` has a header ``item_id,title,topic_0,...`` and one row per document, so
``pandas.read_csv(path, index_col=0)`` gives documents x topics indexed by item id.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from redis.cluster import RedisCluster

from artm_compose.data.batches import list_batches
from artm_compose.data.vocab import Vocabulary, read_vocab
from artm_compose.engine.corpus import load_corpus
from artm_compose.engine.export import read_model, topic_names
from artm_compose.engine.kernel import e_step
from artm_compose.errors import ConfigError, DataError
from artm_compose.ranges import Range, even_ranges

THETA_SUFFIXES = (".npz", ".csv")


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


def theta_of_share(batches_dir: Path, vocab: Vocabulary, phi: np.ndarray, share: Range, inner: int,
                   topics: list[str]) -> Theta:
    """The E-step of one share's documents with the full phi (vocabulary order)."""
    corpus = load_corpus(batches_dir, vocab, share[0], share[1])
    result = e_step(corpus.docs, phi[corpus.rows], inner, keep_theta=True)
    assert result.theta is not None
    return Theta(theta=result.theta, items=corpus.item_ids, titles=list(corpus.titles), topics=topics,
                 skipped_weight=corpus.skipped_weight)


def transform(client: RedisCluster, cluster: str, vocab_path: Path, batches_dir: Path, shares: Sequence[Range],
              inner: int, parallel: int) -> Theta:
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
    with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(shares)))) as pool:
        parts = list(pool.map(lambda share: theta_of_share(batches_dir, vocab, phi, share, inner, topics), shares))
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
