"""The real corpus every Debian machine can fetch: long package descriptions from ``Translation-en``.

``apt-get update`` runs into a scratch lists directory (the system's lists and caches are left
alone) with only the translation indexes enabled (and the ``Packages`` indexes for modalities). One
document per package name (the short description line plus the long description); tokens are runs
of lowercase letters of length >= 3 that are not stop words. The dictionary filter (BigARTM's
meanings, see dictionary_filter) defaults to ``min_df 5`` and ``max_df_rate 0.5``. Documents are
ordered by package name; the vocabulary by modality (words, ``@section``, ``@tag``), then
alphabetically.

Modalities (``CorpusOptions.modalities``): ``@section`` holds the package's ``Section`` and ``@tag``
its debtags (the ``Tag:`` field of the ``Packages`` index), each with weight 1. A debtag
``facet::value`` becomes the token ``facet__value``: every ':' is written '_' (':' cannot appear in a
Vowpal Wabbit token; debtags never contain '_', so the mapping reverses exactly). Over several
``Packages`` records of one package, its tags are their union and its section the most common one
(ties: the first alphabetically). Packages without a ``Packages`` record get no such tokens.
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
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from artm_compose.data.batches import DEFAULT_CLASS
from artm_compose.data.collection import (
    CollectionStats,
    Document,
    read_manifest,
    write_collection,
)
from artm_compose.data.dictionary_filter import DictionaryFilter, filter_collection
from artm_compose.data.stopwords import STOP_WORDS
from artm_compose.data.vocab import make_vocab
from artm_compose.errors import ConfigError, DataError

APT_TIMEOUT_SECONDS = 600
APT_HELPER = "/usr/lib/apt/apt-helper"
TRANSLATION_GLOB = "*_i18n_Translation-en*"
PACKAGES_GLOB = "*_binary-*_Packages*"
SOURCE = "debian-translation-en"
SECTION_CLASS = "@section"
TAG_CLASS = "@tag"
MODALITIES = (SECTION_CLASS, TAG_CLASS)
DEFAULT_FILTER = DictionaryFilter({"min_df": {None: 5}, "max_df_rate": {None: 0.5}})
_WORD = re.compile(r"[a-z]+")


@dataclass(frozen=True)
class CorpusOptions:
    """What decides the corpus content; a cached corpus is reused only if these match."""

    max_docs: int | None = None
    batch_size: int = 1000
    dictionary_filter: DictionaryFilter = field(default=DEFAULT_FILTER)
    modalities: bool = False

    def as_dict(self) -> dict[str, object]:
        options: dict[str, object] = {"max_docs": self.max_docs, "batch_size": self.batch_size}
        if self.dictionary_filter == DEFAULT_FILTER:
            # How manifests described the default filter before it was configurable: they stay valid.
            options.update(min_df=5, max_df_ratio=0.5)
        else:
            options["dictionary_filter"] = self.dictionary_filter.describe()
        if self.modalities:
            options["modalities"] = list(MODALITIES)
        return options


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


def debtag_token(tag: str) -> str:
    """A debtag as a token: ':' (not allowed in a Vowpal Wabbit token) becomes '_'."""
    return tag.replace(":", "_")


def parse_packages(text: str) -> Iterator[tuple[str, str | None, list[str]]]:
    """(package, section or None, debtags) per record of a Packages index."""
    for record in text.split("\n\n"):
        fields: dict[str, str] = {}
        name = None
        for line in record.split("\n"):
            if line.startswith((" ", "\t")) and name is not None:
                fields[name] += " " + line.strip()
            elif ":" in line:
                name, _, value = line.partition(":")
                fields[name] = value.strip()
        if fields.get("Package"):
            tags = [tag.strip() for tag in fields.get("Tag", "").split(",") if tag.strip()]
            yield fields["Package"], fields.get("Section") or None, tags


def package_modalities(texts: Iterable[str]) -> dict[str, dict[str, list[str]]]:
    """{"@section": {package: [section]}, "@tag": {package: [tag tokens, sorted]}} over Packages indexes."""
    sections: dict[str, Counter[str]] = {}
    tags: dict[str, set[str]] = {}
    for text in texts:
        for package, section, package_tags in parse_packages(text):
            if section:
                sections.setdefault(package, Counter())[section] += 1
            if package_tags:
                tags.setdefault(package, set()).update(debtag_token(tag) for tag in package_tags)
    return {
        SECTION_CLASS: {p: [min(c, key=lambda s: (-c[s], s))] for p, c in sections.items()},
        TAG_CLASS: {p: sorted(t) for p, t in tags.items()},
    }


def build_collection(
    packages: list[tuple[str, str]],
    modalities: Mapping[str, Mapping[str, list[str]]],
    dictionary_filter: DictionaryFilter,
) -> tuple[list[str], list[str], list[Document]]:
    """Tokens, class ids and one Document per package (words, then each modality's tokens with weight 1).

    Documents the filter leaves without tokens come back empty.
    """
    classes = [DEFAULT_CLASS, *modalities]
    counts = [  # per package, per class: token -> count, in order of first appearance
        [Counter(tokenize(description)), *(Counter(values.get(package, ())) for values in modalities.values())]
        for package, description in packages
    ]
    keys = [(class_id, token) for position, class_id in enumerate(classes)
            for token in sorted({token for document in counts for token in document[position]})]
    index = [{} for _ in classes]
    for position, (class_id, token) in enumerate(keys):
        index[classes.index(class_id)][token] = position
    documents = []
    for item_id, ((package, _), document) in enumerate(zip(packages, counts)):
        size = sum(len(part) for part in document)
        positions = (lookup[token] for lookup, part in zip(index, document) for token in part)
        weights = (n for part in document for n in part.values())
        documents.append(Document(item_id=item_id, title=package, vocab_index=np.fromiter(positions, np.int32, size),
                                  weights=np.fromiter(weights, np.float32, size)))
    return filter_collection([k[1] for k in keys], [k[0] for k in keys], documents, dictionary_filter)


def build_documents(
    packages: list[tuple[str, str]], min_df: int, max_df_ratio: float
) -> tuple[list[str], list[Document]]:
    """Words (alphabetical) with df >= min_df and df < max_df_ratio * N, and one Document per package."""
    bounds = DictionaryFilter({"min_df": {None: min_df}, "max_df_rate": {None: max_df_ratio}})
    words, _, documents = build_collection(packages, {}, bounds)
    return words, documents


def fetch_indexes(scratch: Path, packages: bool = False) -> tuple[list[Path], list[Path]]:
    """Run ``apt-get update`` into ``scratch`` fetching Translation-en (and Packages when asked).

    Returns the Translation files and the Packages files it got.
    """
    lists = scratch / "lists"
    (lists / "partial").mkdir(parents=True, exist_ok=True)
    (scratch / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
    command = [
        "apt-get", "update",
        "-o", "Acquire::Languages=en",
        "-o", f"Dir::State::Lists={lists}",
        "-o", f"Dir::Cache={scratch / 'cache'}",
    ]
    skipped = ("DEP-11", "DEP-11-icons", "DEP-11-icons-small", "Contents-deb") + (() if packages else ("Packages",))
    for target in skipped:
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
    indexes = sorted(path for path in lists.glob(PACKAGES_GLOB) if path.is_file()) if packages else []
    if result.returncode != 0 or not found or (packages and not indexes):
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-5:])
        what = "Translation-en" if not found else "Packages index"
        raise DataError(f"apt-get update fetched no {what} into {lists} (exit {result.returncode}): {tail}")
    return found, indexes


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
    classes = {DEFAULT_CLASS, *(MODALITIES if options.modalities else ())}
    unknown = options.dictionary_filter.class_ids - classes
    if unknown:
        raise ConfigError(f"dictionary filter names class id {sorted(unknown)[0]!r}; this corpus has "
                          f"{', '.join(sorted(classes))}{'' if options.modalities else ' (add --modalities)'}")
    with tempfile.TemporaryDirectory(prefix="artm-compose-apt-") as scratch:
        translations, indexes = fetch_indexes(Path(scratch), packages=options.modalities)
        texts = [read_index_file(path) for path in translations]
        modalities = package_modalities(read_index_file(path) for path in indexes) if options.modalities else {}
    packages = package_documents(texts)[: options.max_docs]
    tokens, class_ids, documents = build_collection(packages, modalities, options.dictionary_filter)
    if not tokens:
        raise DataError(f"{SOURCE}: no token passes the dictionary filter in {len(packages)} documents")
    return write_collection(
        out, make_vocab(tokens, class_ids, source=SOURCE), documents, options.batch_size, SOURCE, options.as_dict()
    )


__all__ = ["CorpusOptions", "prepare_debian", "tokenize", "parse_translations", "parse_packages"]
