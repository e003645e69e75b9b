"""The vocabulary file, and mapping a batch's local tokens onto it.

Format: one entry per line, ``token`` or ``token class_id`` separated by whitespace (a missing
class id means ``@default_class``). The 0-based line number is the token's index, used for token
ranges and phi rows. Batch tokens are matched to entries by (class id, token). UTF-8; a final
newline is optional; blank lines, extra fields and duplicate entries are errors naming the line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from artm_compose.data.batches import DEFAULT_CLASS, Batch
from artm_compose.errors import DataError


@dataclass(frozen=True, eq=False)
class Vocabulary:
    """Tokens in index order with their class ids; ``index`` maps (class id, token) to the index."""

    tokens: list[str]
    class_ids: list[str]
    index: dict[tuple[str, str], int] = field(repr=False)

    def __len__(self) -> int:
        return len(self.tokens)


def make_vocab(tokens: list[str], class_ids: list[str] | None = None, source: str = "vocabulary") -> Vocabulary:
    """Build a Vocabulary; a duplicate (class id, token) raises DataError naming both positions."""
    class_ids = list(class_ids) if class_ids is not None else [DEFAULT_CLASS] * len(tokens)
    if len(class_ids) != len(tokens):
        raise DataError(f"{source}: {len(tokens)} tokens but {len(class_ids)} class ids")
    index: dict[tuple[str, str], int] = {}
    for position, key in enumerate(zip(class_ids, tokens)):
        first = index.setdefault(key, position)
        if first != position:
            raise DataError(
                f"{source} line {position + 1}: duplicate token {key[1]!r} (class {key[0]}), first on line {first + 1}"
            )
    return Vocabulary(tokens=list(tokens), class_ids=class_ids, index=index)


def read_vocab(path: str | os.PathLike[str]) -> Vocabulary:
    """Read a vocabulary file (see the module docstring for the format)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"cannot read vocabulary {path}: {error}") from error
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    tokens: list[str] = []
    class_ids: list[str] = []
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields or len(fields) > 2:
            raise DataError(f"vocabulary {path} line {number}: expected 'token' or 'token class_id', got {line!r}")
        tokens.append(fields[0])
        class_ids.append(fields[1] if len(fields) == 2 else DEFAULT_CLASS)
    if not tokens:
        raise DataError(f"vocabulary {path} is empty")
    return make_vocab(tokens, class_ids, source=f"vocabulary {path}")


def write_vocab(path: str | os.PathLike[str], vocabulary: Vocabulary) -> Path:
    """Write one token per line, adding the class id only where it is not ``@default_class``."""
    path = Path(path)
    for number, (token, class_id) in enumerate(zip(vocabulary.tokens, vocabulary.class_ids), start=1):
        if token.split() != [token] or class_id.split() != [class_id]:
            raise DataError(
                f"cannot write vocabulary {path}: entry {number} ({token!r}, class {class_id!r}) is empty "
                "or contains whitespace"
            )
    lines = (
        token if class_id == DEFAULT_CLASS else f"{token} {class_id}"
        for token, class_id in zip(vocabulary.tokens, vocabulary.class_ids)
    )
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        temporary.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
        temporary.replace(path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise DataError(f"cannot write vocabulary {path}: {error.strerror or error}") from error
    return path


@dataclass(frozen=True, eq=False)
class VocabBatch:
    """A batch whose entries point at vocabulary indices instead of the batch's local tokens.

    ``skipped_tokens`` are the batch tokens missing from the vocabulary (only when skipping);
    ``skipped_entries`` and ``skipped_weight`` count the (document, token) entries dropped for them.
    """

    name: str
    path: Path | None
    indptr: np.ndarray
    vocab_index: np.ndarray
    weights: np.ndarray
    skipped_tokens: list[str]
    skipped_entries: int
    skipped_weight: float


def local_to_vocab(batch: Batch, vocabulary: Vocabulary, skip_missing: bool = False) -> np.ndarray:
    """Vocabulary index of each of the batch's local tokens (int32); -1 for missing ones when skipping.

    Without ``skip_missing`` a token missing from the vocabulary raises DataError naming the batch
    and the token.
    """
    lookup = vocabulary.index.get
    mapping = np.fromiter(
        (lookup(key, -1) for key in zip(batch.class_ids, batch.tokens)), np.int32, len(batch.tokens)
    )
    if not skip_missing and len(mapping) and mapping.min() < 0:
        missing = int(np.flatnonzero(mapping < 0)[0])
        count = int((mapping < 0).sum())
        raise DataError(
            f"batch {batch.source}: token {batch.tokens[missing]!r} (class {batch.class_ids[missing]}) "
            f"is not in the vocabulary ({count} missing tokens in this batch)"
        )
    return mapping


def batch_in_vocab(batch: Batch, vocabulary: Vocabulary, skip_missing: bool = False) -> VocabBatch:
    """Re-express the batch's entries as vocabulary indices (see local_to_vocab for missing tokens)."""
    mapping = local_to_vocab(batch, vocabulary, skip_missing)
    vocab_index = mapping[batch.token_index]
    missing_tokens = [batch.tokens[i] for i in np.flatnonzero(mapping < 0)]
    if not missing_tokens:
        return VocabBatch(batch.name, batch.path, batch.indptr, vocab_index, batch.weights, [], 0, 0.0)
    keep = vocab_index >= 0
    kept_before = np.concatenate(([0], np.cumsum(keep, dtype=np.int64)))
    return VocabBatch(
        name=batch.name,
        path=batch.path,
        indptr=kept_before[batch.indptr],
        vocab_index=vocab_index[keep],
        weights=batch.weights[keep],
        skipped_tokens=missing_tokens,
        skipped_entries=int((~keep).sum()),
        skipped_weight=float(batch.weights[~keep].sum(dtype=np.float64)),
    )
