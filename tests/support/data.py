"""Small real collections for the data tests, written as files in the formats users bring."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from artm_compose.data.batches import list_batches, read_batch
from artm_compose.data.vocab import read_vocab

# Five short real texts (Debian package descriptions, abridged); the fourth is empty on purpose.
TEXTS = [
    "0ad", "real time strategy game of ancient warfare game engine graphics",
    "bash", "bash is an sh compatible command language interpreter that executes commands read from "
            "the standard input or from a file",
    "curl", "command line tool for transferring data with url syntax supporting http https ftp",
    "empty", "",
    "gimp", "the gnu image manipulation program for photo retouching image composition and image authoring",
]
DOCUMENTS = list(zip(TEXTS[0::2], TEXTS[1::2]))


def document_counts() -> list[tuple[str, Counter[str]]]:
    """(name, word counts) of each document of DOCUMENTS."""
    return [(name, Counter(text.split())) for name, text in DOCUMENTS]


def write_vw(path: Path) -> Path:
    """DOCUMENTS as Vowpal Wabbit lines with ``token:count`` for repeated words."""
    lines = []
    for name, counts in document_counts():
        fields = [word if n == 1 else f"{word}:{n}" for word, n in counts.items()]
        lines.append(" ".join([name, *fields]))
    path.write_text("\n".join(lines) + "\n")
    return path


def write_uci(directory: Path, unused_words: tuple[str, ...] = ("zzunused",)) -> tuple[Path, Path]:
    """DOCUMENTS as UCI docword/vocab files (alphabetical vocabulary plus some words never used)."""
    counts = document_counts()
    words = sorted({w for _, c in counts for w in c} | set(unused_words))
    index = {w: i + 1 for i, w in enumerate(words)}
    entries = [(d + 1, index[w], n) for d, (_, c) in enumerate(counts) for w, n in c.items()]
    docword = directory / "docword.sample.txt"
    docword.write_text(
        f"{len(counts)}\n{len(words)}\n{len(entries)}\n" + "".join(f"{d} {w} {n}\n" for d, w, n in entries)
    )
    vocab = directory / "vocab.sample.txt"
    vocab.write_text("".join(f"{w}\n" for w in words))
    return docword, vocab


def collection_counts(directory: Path) -> list[tuple[int, str, dict[str, float]]]:
    """(item id, title, {token: weight}) of every document in a batch directory, in order."""
    documents = []
    for path in list_batches(directory):
        batch = read_batch(path)
        for d in range(batch.n_items):
            span = slice(batch.indptr[d], batch.indptr[d + 1])
            tokens = {batch.tokens[i]: float(w) for i, w in zip(batch.token_index[span], batch.weights[span])}
            documents.append((int(batch.item_ids[d]), batch.titles[d], tokens))
    return documents


def vocab_tokens(directory: Path) -> list[str]:
    """Tokens of the directory's vocab.txt, in line order."""
    return read_vocab(directory / "vocab.txt").tokens


def as_float_dict(counter: Counter[str]) -> dict[str, float]:
    """Counts as the float weights batches hold."""
    return {word: float(np.float32(n)) for word, n in counter.items()}


def write_dpkg_vw(path: Path) -> Path:
    """The installed packages (/var/lib/dpkg/status) as Vowpal Wabbit lines: words, then ``|@section``."""
    from artm_compose.data.debian import build_collection, parse_packages
    from artm_compose.data.dictionary_filter import DictionaryFilter
    from support.engine import DPKG_STATUS, dpkg_packages

    status = DPKG_STATUS.read_text(encoding="utf-8", errors="replace")
    sections = {package: [section] for package, section, _ in parse_packages(status) if section}
    tokens, class_ids, documents = build_collection(dpkg_packages(), {"@section": sections}, DictionaryFilter())
    lines = []
    for document in documents:
        fields = [document.title]
        section = None  # a new |class header wherever the class changes
        for index, weight in zip(document.vocab_index.tolist(), document.weights.tolist()):
            if class_ids[index] != section:
                section = class_ids[index]
                fields.append(f"|{section}")
            fields.append(f"{tokens[index]}:{weight:g}")
        lines.append(" ".join(fields))
    path.write_text("\n".join(lines) + "\n")
    return path
