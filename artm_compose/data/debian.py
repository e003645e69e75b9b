"""The real corpus every Debian machine can fetch: long package descriptions from ``Translation-en``.

``apt-get update`` runs into a scratch lists directory (the system's lists and caches are left
alone) with only the translation indexes enabled. One document per package name (the short
description line plus the long description); tokens are runs of lowercase letters of length >= 3
that are not stop words, and the vocabulary keeps words with df >= 5 and df <= 50% of documents.
Documents are ordered by package name; the vocabulary alphabetically.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import re
import subprocess
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from artm_compose.data.collection import (
    CollectionStats,
    Document,
    read_manifest,
    write_collection,
)
from artm_compose.data.stopwords import STOP_WORDS
from artm_compose.data.vocab import make_vocab
from artm_compose.errors import DataError

APT_TIMEOUT_SECONDS = 600
APT_HELPER = "/usr/lib/apt/apt-helper"
TRANSLATION_GLOB = "*_i18n_Translation-en*"
SOURCE = "debian-translation-en"
_WORD = re.compile(r"[a-z]+")


@dataclass(frozen=True)
class CorpusOptions:
    """What decides the corpus content; a cached corpus is reused only if these match."""

    max_docs: int | None = None
    batch_size: int = 1000
    min_df: int = 5
    max_df_ratio: float = 0.5

    def as_dict(self) -> dict[str, object]:
        return {"max_docs": self.max_docs, "batch_size": self.batch_size, "min_df": self.min_df,
                "max_df_ratio": self.max_df_ratio}


def tokenize(text: str) -> list[str]:
    """Lowercase letter runs of length >= 3 that are not stop words, in order."""
    return [word for word in _WORD.findall(text.lower()) if len(word) >= 3 and word not in STOP_WORDS]


def parse_translations(text: str) -> Iterator[tuple[str, str]]:
    """(package, description) per record of a Translation file; ``' .'`` paragraph marks dropped."""
    for record in text.split("\n\n"):
        package = None
        lines: list[str] = []
        in_description = False
        for line in record.split("\n"):
            if line.startswith(" ") and in_description:
                if line.strip() != ".":
                    lines.append(line.strip())
                continue
            in_description = False
            if line.startswith("Package:"):
                package = line[len("Package:"):].strip()
            elif line.startswith("Description-en:"):
                in_description = True
                lines.append(line[len("Description-en:"):].strip())
        if package and lines:
            yield package, "\n".join(lines)


def package_documents(texts: Iterable[str]) -> list[tuple[str, str]]:
    """One (package, description) per package name, sorted by name; the longest description wins."""
    chosen: dict[str, str] = {}
    for text in texts:
        for package, description in parse_translations(text):
            if len(description) > len(chosen.get(package, "")):
                chosen[package] = description
    return sorted(chosen.items())


def build_documents(
    packages: list[tuple[str, str]], min_df: int, max_df_ratio: float
) -> tuple[list[str], list[Document]]:
    """Vocabulary (alphabetical) and one Document per package; filtered-out documents come back empty."""
    counts = [Counter(tokenize(description)) for _, description in packages]
    df = Counter(word for document in counts for word in document)
    max_df = max_df_ratio * len(packages)
    words = sorted(word for word, n in df.items() if min_df <= n <= max_df)
    index = {word: position for position, word in enumerate(words)}
    documents = []
    for item_id, ((package, _), document) in enumerate(zip(packages, counts)):
        kept = [(index[word], n) for word, n in document.items() if word in index]
        documents.append(
            Document(
                item_id=item_id,
                title=package,
                vocab_index=np.fromiter((i for i, _ in kept), np.int32, len(kept)),
                weights=np.fromiter((n for _, n in kept), np.float32, len(kept)),
            )
        )
    return words, documents


def fetch_translations(scratch: Path) -> list[Path]:
    """Run ``apt-get update`` into ``scratch`` fetching only Translation-en; return the files it got."""
    lists = scratch / "lists"
    (lists / "partial").mkdir(parents=True, exist_ok=True)
    (scratch / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
    command = [
        "apt-get", "update",
        "-o", "Acquire::Languages=en",
        "-o", f"Dir::State::Lists={lists}",
        "-o", f"Dir::Cache={scratch / 'cache'}",
    ]
    for target in ("Packages", "DEP-11", "DEP-11-icons", "DEP-11-icons-small", "Contents-deb"):
        command += ["-o", f"Acquire::IndexTargets::deb::{target}::DefaultEnabled=false"]
    if os.geteuid() == 0:
        # apt drops to _apt for downloads, and _apt cannot write into a root-owned scratch directory.
        command += ["-o", "APT::Sandbox::User=root"]
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=APT_TIMEOUT_SECONDS,
            env={**os.environ, "LC_ALL": "C"}, check=False,
        )
    except FileNotFoundError as error:
        raise DataError("apt-get not found: the Debian corpus needs a Debian-based system") from error
    except subprocess.TimeoutExpired as error:
        raise DataError(f"apt-get update did not finish within {APT_TIMEOUT_SECONDS}s") from error
    found = sorted(path for path in lists.glob(TRANSLATION_GLOB) if path.is_file())
    if result.returncode != 0 or not found:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-5:])
        raise DataError(f"apt-get update fetched no Translation-en into {lists} (exit {result.returncode}): {tail}")
    return found


def read_index_file(path: Path) -> str:
    """Text of an apt index file stored plain or compressed (gz, xz, bz2 here; lz4/zst via apt-helper)."""
    openers = {".gz": gzip.open, ".xz": lzma.open, ".lzma": lzma.open, ".bz2": bz2.open}
    try:
        if path.suffix in openers:
            with openers[path.suffix](path, "rt", encoding="utf-8") as handle:
                return handle.read()
        if path.suffix in (".lz4", ".zst"):
            result = subprocess.run([APT_HELPER, "cat-file", str(path)], capture_output=True, timeout=120, check=False)
            if result.returncode != 0:
                raise DataError(f"cannot decompress {path}: {result.stderr.decode(errors='replace').strip()}")
            return result.stdout.decode("utf-8")
        return path.read_text(encoding="utf-8")
    except (OSError, EOFError, lzma.LZMAError, UnicodeDecodeError, subprocess.TimeoutExpired) as error:
        raise DataError(f"cannot read apt index file {path}: {error}") from error


def prepare_debian(out_dir: str | os.PathLike[str], options: CorpusOptions = CorpusOptions()) -> CollectionStats:
    """Build the Debian corpus in ``out_dir``, or reuse it when a complete one with these options is there."""
    out = Path(out_dir)
    manifest = read_manifest(out)
    if manifest is not None:
        if manifest.get("source") != SOURCE or manifest.get("options") != options.as_dict():
            raise DataError(
                f"{out} already holds a different corpus ({manifest.get('source')}, {manifest.get('options')}); "
                "remove it or choose another directory"
            )
        return CollectionStats(**manifest)
    if out.exists() and any(out.iterdir()):
        raise DataError(f"output directory {out} exists, is not empty and holds no complete corpus; remove it")
    if options.max_docs is not None and options.max_docs < 1:
        raise DataError(f"--max-docs must be at least 1, got {options.max_docs}")
    with tempfile.TemporaryDirectory(prefix="artm-compose-apt-") as scratch:
        texts = [read_index_file(path) for path in fetch_translations(Path(scratch))]
    packages = package_documents(texts)[: options.max_docs]
    words, documents = build_documents(packages, options.min_df, options.max_df_ratio)
    if not words:
        raise DataError(f"{SOURCE}: no word passes the df filter in {len(packages)} documents")
    return write_collection(
        out, make_vocab(words, source=SOURCE), documents, options.batch_size, SOURCE, options.as_dict()
    )


__all__ = ["CorpusOptions", "prepare_debian", "tokenize", "parse_translations"]
