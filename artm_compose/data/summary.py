"""What the planner needs to know about a data directory: batch sizes and token frequencies."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass(frozen=True, eq=False)
class DataSummary:
    """Per-batch and per-token total weights of a batches directory and its vocabulary.

    ``batch_weights[i]`` is the total token weight of ``batch_names[i]`` (names sorted as the
    engine orders batches); ``token_weights[j]`` is the collection weight of vocabulary line j.
    """

    batches_dir: Path
    vocab_path: Path
    batch_names: tuple[str, ...]
    batch_weights: np.ndarray
    token_weights: np.ndarray
    items: int = 0
    nonzeros: int = 0
    skipped_tokens: int = field(default=0)

    @property
    def batch_count(self) -> int:
        return len(self.batch_names)

    @property
    def vocab_size(self) -> int:
        return len(self.token_weights)

    @property
    def token_weight(self) -> float:
        return float(self.batch_weights.sum())


def summarize(batches_dir: Path, vocab_path: Path) -> DataSummary:
    """Read every batch once and total its weights per batch and per vocabulary token."""
    from artm_compose.data.batches import list_batches, read_batch
    from artm_compose.data.vocab import batch_in_vocab, read_vocab

    vocab = read_vocab(vocab_path)
    paths = list_batches(batches_dir)
    token_weights = np.zeros(len(vocab), dtype=np.float64)
    batch_weights = np.zeros(len(paths), dtype=np.float64)
    items = nonzeros = skipped = 0
    for position, path in enumerate(paths):
        batch = batch_in_vocab(read_batch(path), vocab, skip_missing=True)
        token_weights += np.bincount(batch.vocab_index, weights=batch.weights, minlength=len(vocab))
        batch_weights[position] = float(batch.weights.sum(dtype=np.float64))
        skipped += batch.skipped_entries
        items += len(batch.indptr) - 1
        nonzeros += len(batch.vocab_index)
    return DataSummary(
        batches_dir=Path(batches_dir),
        vocab_path=Path(vocab_path),
        batch_names=tuple(p.name for p in paths),
        batch_weights=batch_weights,
        token_weights=token_weights,
        items=items,
        nonzeros=nonzeros,
        skipped_tokens=skipped,
    )
