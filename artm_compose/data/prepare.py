"""UCI Bag-of-Words and Vowpal Wabbit text -> batches + vocab.txt (+ corpus.json).

UCI: ``docword.*.txt`` (header lines D, W, NNZ; then ``docID wordID count``, 1-based) with
``vocab.*.txt`` (line w is word w; ``token class_id`` lines allowed). Item ids are the docIDs.
VW: one document per line, ``name token token:count |@class token ...``; a ``|name`` section
switches the class id of the tokens after it (``@default_class`` before any, and after a bare ``|``,
as BigARTM's parser has it). Item ids count lines from 0; titles are the document names. Where
BigARTM's BatchVectorizer repeats an item entry for a token given twice, we sum them (the same
counts), and a ``token:0`` entry is dropped rather than written with weight 0.

Both: repeated (document, token) pairs are summed, documents without tokens are skipped and
counted, and the written vocabulary keeps only tokens that occur (as BigARTM's dictionary gathered
from batches does), in the input's order. A dictionary filter (see dictionary_filter) drops the
tokens it rejects from the vocabulary and from the batches alike.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from artm_compose.data.batches import DEFAULT_CLASS
from artm_compose.data.collection import CollectionStats, Document, write_collection
from artm_compose.data.dictionary_filter import DictionaryFilter, filter_collection
from artm_compose.data.vocab import make_vocab, read_vocab
from artm_compose.errors import DataError


def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"cannot read {what} {path}: {error}") from error


def _uci_header(path: Path, lines: list[str]) -> tuple[int, int, int]:
    if len(lines) < 3:
        raise DataError(f"UCI docword {path}: expected three header lines (D, W, NNZ), got {len(lines)} lines")
    header = []
    for number, line in enumerate(lines[:3], start=1):
        try:
            header.append(int(line.strip()))
        except ValueError:
            raise DataError(f"UCI docword {path} line {number}: expected one integer, got {line.strip()!r}") from None
    return header[0], header[1], header[2]


def _uci_entries(path: Path, lines: list[str]) -> np.ndarray:
    """The body as an (n, 3) float64 array; a malformed line raises DataError naming it."""
    body = [line for line in lines[3:] if line.strip()]
    try:
        values = np.array(" ".join(body).split(), dtype=np.float64)
    except ValueError:
        values = None
    if values is None or len(values) != 3 * len(body):
        for number, line in enumerate(lines[3:], start=4):
            fields = line.split()
            if fields and (len(fields) != 3 or not all(_is_number(f) for f in fields)):
                raise DataError(f"UCI docword {path} line {number}: expected 'docID wordID count', got {line.strip()!r}")
        raise DataError(f"UCI docword {path}: the entries are not all numbers")
    return values.reshape(-1, 3)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_uci(docword: Path, vocab: Path) -> tuple[list[str], list[str], list[Document]]:
    """Tokens and class ids of the words that occur, and the documents (empty ones included) over them."""
    vocabulary = read_vocab(vocab)
    lines = _read_text(docword, "UCI docword").splitlines()
    n_docs, n_words, n_nonzeros = _uci_header(docword, lines)
    if n_words != len(vocabulary):
        raise DataError(f"UCI docword {docword} declares W={n_words} words but {vocab} has {len(vocabulary)}")
    entries = _uci_entries(docword, lines)
    if len(entries) != n_nonzeros:
        raise DataError(f"UCI docword {docword} declares NNZ={n_nonzeros} but holds {len(entries)} entries")
    docs, words, counts = entries[:, 0], entries[:, 1], entries[:, 2]
    for name, column, limit in (("docID", docs, n_docs), ("wordID", words, n_words)):
        bad = (column < 1) | (column > limit) | (column != np.floor(column))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"UCI docword {docword} entry {row + 1}: {name} {column[row]:g} outside 1..{limit}"
            )
    if (counts < 0).any() or not np.isfinite(counts).all():
        row = int(np.flatnonzero(~(counts >= 0))[0])
        raise DataError(f"UCI docword {docword} entry {row + 1}: invalid count {counts[row]:g}")
    keep = counts > 0
    doc_index = docs[keep].astype(np.int64) - 1
    word_index = words[keep].astype(np.int64) - 1
    used, word_index = np.unique(word_index, return_inverse=True)
    documents = _group_documents(doc_index, word_index.astype(np.int64), counts[keep], n_docs)
    tokens = [vocabulary.tokens[i] for i in used]
    class_ids = [vocabulary.class_ids[i] for i in used]
    return tokens, class_ids, documents


def _group_documents(doc_index: np.ndarray, word_index: np.ndarray, counts: np.ndarray, n_docs: int) -> list[Document]:
    """One Document per docID 1..n_docs (empty ones included), repeated words summed, file order kept."""
    width = int(word_index.max(initial=0)) + 1
    unique_keys, first, inverse = np.unique(doc_index * width + word_index, return_index=True, return_inverse=True)
    summed = np.bincount(inverse, weights=counts).astype(np.float32)
    unique_docs = unique_keys // width
    order = np.lexsort((first, unique_docs))  # by document, then by first appearance in the file
    unique_docs, unique_words, summed = unique_docs[order], (unique_keys % width)[order].astype(np.int32), summed[order]
    starts = np.searchsorted(unique_docs, np.arange(n_docs + 1))
    return [
        Document(d + 1, "", unique_words[starts[d]:starts[d + 1]], summed[starts[d]:starts[d + 1]])
        for d in range(n_docs)
    ]


def _vw_lines(path: Path) -> Iterator[tuple[int, str]]:
    try:
        with path.open(encoding="utf-8") as handle:
            yield from enumerate(handle, start=1)
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"cannot read Vowpal Wabbit file {path}: {error}") from error


def read_vw(path: Path) -> tuple[list[str], list[str], list[Document]]:
    """Tokens and class ids in order of first appearance, and the documents (empty ones included)."""
    index: dict[tuple[str, str], int] = {}
    documents: list[Document] = []
    for number, line in _vw_lines(path):
        fields = line.split()
        if not fields:
            continue
        if fields[0].startswith("|"):
            raise DataError(f"Vowpal Wabbit file {path} line {number}: the line starts with a section, not a document name")
        counts: dict[int, float] = {}
        class_id = DEFAULT_CLASS
        for field in fields[1:]:
            if field.startswith("|"):
                class_id = field[1:] or DEFAULT_CLASS
                continue
            token, _, count_text = field.partition(":")
            count = _vw_count(path, number, field, count_text)
            if count == 0:  # a zero count must not put a token that never occurs into the vocabulary
                continue
            position = index.setdefault((class_id, token), len(index))
            counts[position] = counts.get(position, 0.0) + count
        documents.append(
            Document(
                item_id=len(documents),
                title=fields[0],
                vocab_index=np.fromiter(counts.keys(), np.int32, len(counts)),
                weights=np.fromiter(counts.values(), np.float32, len(counts)),
            )
        )
    if not documents:
        raise DataError(f"Vowpal Wabbit file {path} holds no documents")
    keys = list(index)
    return [k[1] for k in keys], [k[0] for k in keys], documents


def _vw_count(path: Path, number: int, field: str, text: str) -> float:
    if not field.partition(":")[0]:
        raise DataError(f"Vowpal Wabbit file {path} line {number}: empty token in {field!r}")
    if ":" not in field:
        return 1.0
    try:
        count = float(text)
    except ValueError:
        count = float("nan")
    if not np.isfinite(count) or count < 0:
        raise DataError(f"Vowpal Wabbit file {path} line {number}: invalid count in {field!r}")
    return count


def prepare_uci(
    docword: str | os.PathLike[str], vocab: str | os.PathLike[str], out_dir: str | os.PathLike[str],
    batch_size: int = 1000, dictionary_filter: DictionaryFilter = DictionaryFilter(),
) -> CollectionStats:
    """Convert a UCI Bag-of-Words collection into batches of ``batch_size`` documents in ``out_dir``."""
    tokens, class_ids, documents = read_uci(Path(docword), Path(vocab))
    return _write(out_dir, tokens, class_ids, documents, batch_size, f"uci:{Path(docword).name}",
                  {"batch_size": batch_size, "docword": str(docword), "vocab": str(vocab)}, dictionary_filter)


def prepare_vw(
    path: str | os.PathLike[str], out_dir: str | os.PathLike[str], batch_size: int = 1000,
    dictionary_filter: DictionaryFilter = DictionaryFilter(),
) -> CollectionStats:
    """Convert a Vowpal Wabbit text file into batches of ``batch_size`` documents in ``out_dir``."""
    tokens, class_ids, documents = read_vw(Path(path))
    return _write(out_dir, tokens, class_ids, documents, batch_size, f"vw:{Path(path).name}",
                  {"batch_size": batch_size, "input": str(path)}, dictionary_filter)


def _write(
    out_dir: str | os.PathLike[str], tokens: list[str], class_ids: list[str], documents: list[Document],
    batch_size: int, source: str, options: dict[str, object], dictionary_filter: DictionaryFilter,
) -> CollectionStats:
    if not tokens:
        raise DataError(f"{source}: all {len(documents)} documents are empty")
    tokens, class_ids, documents = filter_collection(tokens, class_ids, documents, dictionary_filter)
    if not tokens:
        raise DataError(f"{source}: no token passes the dictionary filter {dictionary_filter.describe()}")
    if dictionary_filter:
        options = {**options, "dictionary_filter": dictionary_filter.describe()}
    return write_collection(out_dir, make_vocab(tokens, class_ids, source=source), documents, batch_size,
                            source, options)
