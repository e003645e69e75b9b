"""Writing a whole collection (batches + vocab.txt + corpus.json) into a directory, atomically.

Documents arrive as vocabulary indices with weights; each batch gets its own local vocabulary in
order of first appearance, as BigARTM's BatchVectorizer writes it. The directory is built next to
its final place and renamed into it, with the manifest ``corpus.json`` written last, so a directory
holding a manifest is complete.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from artm_compose.data.batches import BATCH_SUFFIX, make_batch, write_batch
from artm_compose.data.vocab import Vocabulary, write_vocab
from artm_compose.errors import DataError

MANIFEST = "corpus.json"
VOCAB_FILE = "vocab.txt"


@dataclass(frozen=True)
class Document:
    """One document: its id and title, and its distinct vocabulary indices with their counts."""

    item_id: int
    title: str
    vocab_index: np.ndarray
    weights: np.ndarray


@dataclass(frozen=True)
class CollectionStats:
    """What a written collection holds; stored in the manifest."""

    documents: int
    batches: int
    vocab_size: int
    nonzeros: int
    token_weight: float
    skipped_empty_documents: int
    source: str
    options: dict[str, object]


def batch_name(position: int) -> str:
    """File name of the batch at ``position``: sorting by name keeps the document order."""
    return f"{position:06d}{BATCH_SUFFIX}"


def write_collection(
    out_dir: str | os.PathLike[str],
    vocabulary: Vocabulary,
    documents: Iterable[Document],
    batch_size: int,
    source: str,
    options: dict[str, object],
    skipped_empty_documents: int = 0,
    before_manifest: Callable[[Path], None] | None = None,
) -> CollectionStats:
    """Write ``documents`` as batches of ``batch_size`` plus vocab.txt and corpus.json into ``out_dir``.

    ``out_dir`` must not exist or be empty. Documents without entries are skipped and counted.
    ``before_manifest`` may add files: it gets the staging directory before the manifest is written.
    """
    if batch_size < 1:
        raise DataError(f"batch size must be at least 1, got {batch_size}")
    out = Path(out_dir)
    _require_empty(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        stats = _write_into(staging, vocabulary, documents, batch_size, source, options, skipped_empty_documents,
                            before_manifest)
        if out.exists():
            out.rmdir()
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return stats


def _require_empty(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DataError(f"output directory {out} exists and is not empty; remove it or choose another")


def _write_into(
    staging: Path,
    vocabulary: Vocabulary,
    documents: Iterable[Document],
    batch_size: int,
    source: str,
    options: dict[str, object],
    skipped: int,
    before_manifest: Callable[[Path], None] | None,
) -> CollectionStats:
    written = batches = nonzeros = 0
    token_weight = 0.0
    pending: list[Document] = []
    for document in documents:
        if len(document.vocab_index) == 0:
            skipped += 1
            continue
        pending.append(document)
        if len(pending) == batch_size:
            token_weight += _flush(staging / batch_name(batches), vocabulary, pending)
            written, batches, nonzeros = written + len(pending), batches + 1, nonzeros + _nnz(pending)
            pending = []
    if pending:
        token_weight += _flush(staging / batch_name(batches), vocabulary, pending)
        written, batches, nonzeros = written + len(pending), batches + 1, nonzeros + _nnz(pending)
    if written == 0:
        raise DataError(f"{source}: no non-empty documents to write")
    write_vocab(staging / VOCAB_FILE, vocabulary)
    stats = CollectionStats(
        documents=written,
        batches=batches,
        vocab_size=len(vocabulary),
        nonzeros=nonzeros,
        token_weight=token_weight,
        skipped_empty_documents=skipped,
        source=source,
        options=options,
    )
    if before_manifest is not None:
        before_manifest(staging)
    (staging / MANIFEST).write_text(json.dumps(asdict(stats), indent=2) + "\n")
    return stats


def _nnz(documents: list[Document]) -> int:
    return sum(len(d.vocab_index) for d in documents)


def _flush(path: Path, vocabulary: Vocabulary, documents: list[Document]) -> float:
    """Write one batch with a local vocabulary in order of first appearance; return its token weight."""
    all_index = np.concatenate([d.vocab_index for d in documents])
    unique, first_seen = np.unique(all_index, return_index=True)
    local_order = unique[np.argsort(first_seen, kind="stable")]
    to_local = np.empty(len(vocabulary), np.int32)
    to_local[local_order] = np.arange(len(local_order), dtype=np.int32)
    order = local_order.tolist()  # Python ints index lists far faster than NumPy scalars
    batch = make_batch(
        path.name,
        [vocabulary.tokens[i] for i in order],
        [(d.item_id, d.title, to_local[d.vocab_index], d.weights) for d in documents],
        class_ids=[vocabulary.class_ids[i] for i in order],
        batch_id=str(uuid.uuid4()),
    )
    write_batch(path, batch)
    return batch.token_weight


def read_manifest(out_dir: str | os.PathLike[str]) -> dict[str, object] | None:
    """The manifest of a complete collection in ``out_dir``, or None when there is none."""
    path = Path(out_dir) / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise DataError(f"corpus manifest {path} is unreadable: {error}") from error
    if not isinstance(manifest, dict):
        raise DataError(f"corpus manifest {path} is not a JSON object")
    return manifest
