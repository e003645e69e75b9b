"""An executor's documents: its batches read once, joined into one CSR over its own phi rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from artm_compose.data.batches import list_batches, read_batch
from artm_compose.data.vocab import Vocabulary, batch_in_vocab
from artm_compose.engine.kernel import Documents
from artm_compose.errors import DataError


@dataclass(frozen=True)
class LocalCorpus:
    """The documents of batches ``[begin, end)`` with tokens renumbered to ``rows``.

    ``rows`` are the sorted vocabulary indices the documents use; ``docs.rows[j]`` indexes
    into it, so an executor fetches and updates exactly these phi rows. Entries whose token is
    missing from the vocabulary are skipped and counted. ``item_ids`` and ``titles`` name the
    documents (theta's rows), ``batch_starts[i]`` is the first document of batch i (online updates).
    """

    docs: Documents
    rows: np.ndarray
    batch_names: tuple[str, ...]
    token_weight: float
    skipped_entries: int
    skipped_weight: float
    item_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    titles: tuple[str, ...] = ()
    batch_starts: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.int64))


def load_corpus(batches_dir: Path, vocab: Vocabulary, begin: int, end: int) -> LocalCorpus:
    """Read batches ``begin..end-1`` (in file-name order) of ``batches_dir``."""
    paths = list_batches(batches_dir)
    if not 0 <= begin <= end <= len(paths):
        raise DataError(f"batch range [{begin}, {end}) does not fit the {len(paths)} batches in {batches_dir}")
    indptrs, indices, weights = [np.zeros(1, dtype=np.int64)], [], []
    skipped_entries, skipped_weight, offset = 0, 0.0, 0
    item_ids, titles, starts = [np.zeros(0, dtype=np.int64)], [], [0]
    for path in paths[begin:end]:
        raw = read_batch(path)
        item_ids.append(raw.item_ids)
        titles.extend(raw.titles)
        starts.append(starts[-1] + raw.n_items)
        batch = batch_in_vocab(raw, vocab, skip_missing=True)
        indptrs.append(batch.indptr[1:] + offset)
        offset += int(batch.indptr[-1])
        indices.append(batch.vocab_index)
        weights.append(batch.weights)
        skipped_entries += batch.skipped_entries
        skipped_weight += batch.skipped_weight
    vocab_index = np.concatenate(indices) if indices else np.zeros(0, dtype=np.int32)
    rows, local = np.unique(vocab_index, return_inverse=True)
    weight_array = np.concatenate(weights).astype(np.float32) if weights else np.zeros(0, dtype=np.float32)
    docs = Documents(indptr=np.concatenate(indptrs), rows=local.astype(np.int32).reshape(-1),
                     weights=np.ascontiguousarray(weight_array))
    return LocalCorpus(docs=docs, rows=rows.astype(np.int64), batch_names=tuple(p.name for p in paths[begin:end]),
                       token_weight=float(weight_array.sum(dtype=np.float64)),
                       skipped_entries=skipped_entries, skipped_weight=skipped_weight,
                       item_ids=np.concatenate(item_ids).astype(np.int64), titles=tuple(titles),
                       batch_starts=np.asarray(starts, dtype=np.int64))
