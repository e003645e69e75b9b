"""The Debian corpus: parsing Translation files, tokenising, df filtering, caching; a real fetch (integration)."""

from __future__ import annotations

import gzip
import lzma
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from artm_compose.data.batches import list_batches, read_batch
from artm_compose.data.collection import MANIFEST
from artm_compose.data.debian import (
    CorpusOptions,
    build_documents,
    package_documents,
    parse_translations,
    prepare_debian,
    read_index_file,
    tokenize,
)
from artm_compose.data.vocab import read_vocab
from artm_compose.errors import DataError

# Two real records of bookworm's main/i18n/Translation-en (coreutils' list of commands shortened).
TRANSLATION = """\
Package: coreutils
Description-md5: d0d975dec3625409d24be1238cede238
Description-en: GNU core utilities
 This package contains the basic file, shell and text manipulation
 utilities which are expected to exist on every operating system.
 .
 Specifically, this package includes:
 arch base64 basename cat chcon chgrp chmod chown chroot cksum comm cp

Package: grep
Description-md5: f9188c5583d41955f3b3fe60b9d445f1
Description-en: GNU grep, egrep and fgrep
 'grep' is a utility to search for text in files; it can be used from the
 command line or in scripts.  Even if you don't want to use it, other packages
 on your system probably will.
 .
 The GNU family of grep utilities may be the "fastest grep in the west".
 GNU grep is based on a fast lazy-state deterministic matcher (about
 twice as fast as stock Unix egrep) hybridized with a Boyer-Moore-Gosper
 search for a fixed string that eliminates impossible text from being
 considered by the full regexp matcher without necessarily having to
 look at every character. The result is typically many times faster
 than Unix grep or egrep. (Regular expressions containing backreferencing
 will run more slowly, however.)
"""


def test_parse_translations_joins_short_and_long_description() -> None:
    records = list(parse_translations(TRANSLATION))
    assert [name for name, _ in records] == ["coreutils", "grep"]
    coreutils = records[0][1]
    assert coreutils.startswith("GNU core utilities\nThis package contains the basic file")
    assert "\n.\n" not in coreutils and "Description-md5" not in coreutils
    assert coreutils.endswith("chroot cksum comm cp")


def test_tokenize_real_paragraph() -> None:
    grep = dict(parse_translations(TRANSLATION))["grep"]
    tokens = tokenize(grep)
    assert tokens[:8] == ["gnu", "grep", "egrep", "fgrep", "grep", "utility", "search", "text"]
    assert all(re.fullmatch(r"[a-z]{3,}", t) for t in tokens)
    for dropped in ("is", "to", "the", "for", "and", "can", "from", "however", "will", "don", "it"):
        assert dropped not in tokens
    assert "boyer" in tokens and "moore" in tokens and "gosper" in tokens  # hyphens split words
    assert tokens.count("grep") == 6 and tokens.count("egrep") == 3
    coreutils = tokenize(dict(parse_translations(TRANSLATION))["coreutils"])
    assert "base" in coreutils and "cat" in coreutils and "cp" not in coreutils  # 'base64' -> 'base'


def test_package_documents_one_per_name_longest_wins() -> None:
    updated = "Package: grep\nDescription-en: GNU grep\n short\n"
    extra = "Package: aaa\nDescription-en: first by name\n"
    documents = package_documents([TRANSLATION, updated, extra])
    assert [name for name, _ in documents] == ["aaa", "coreutils", "grep"]
    assert documents[2][1].startswith("GNU grep, egrep and fgrep")


def test_build_documents_filters_by_document_frequency() -> None:
    packages = [(f"p{i}", text) for i, text in enumerate(
        ["alpha beta gamma", "alpha beta", "alpha delta", "alpha", "beta gamma gamma", "omega"]
    )]
    words, documents = build_documents(packages, min_df=2, max_df_ratio=0.5)
    # df: alpha 4 (> 3 = 50% of 6: dropped), beta 3, gamma 2, delta 1, omega 1.
    assert words == ["beta", "gamma"]
    assert [d.title for d in documents] == [f"p{i}" for i in range(6)]
    assert [d.item_id for d in documents] == list(range(6))
    pairs = [dict(zip(d.vocab_index.tolist(), d.weights.tolist())) for d in documents]
    assert pairs == [{0: 1.0, 1: 1.0}, {0: 1.0}, {}, {}, {0: 1.0, 1: 2.0}, {}]


def test_read_index_file_plain_gz_xz(tmp_path: Path) -> None:
    (tmp_path / "Translation-en").write_text(TRANSLATION)
    with gzip.open(tmp_path / "Translation-en.gz", "wt") as handle:
        handle.write(TRANSLATION)
    with lzma.open(tmp_path / "Translation-en.xz", "wt") as handle:
        handle.write(TRANSLATION)
    for name in ("Translation-en", "Translation-en.gz", "Translation-en.xz"):
        assert read_index_file(tmp_path / name) == TRANSLATION
    (tmp_path / "broken.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(DataError, match="broken.gz"):
        read_index_file(tmp_path / "broken.gz")


def test_prepare_refuses_a_foreign_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="holds no complete corpus"):
        prepare_debian(tmp_path, CorpusOptions(max_docs=10))


@pytest.mark.integration
def test_real_debian_corpus_small_and_cached(tmp_path: Path) -> None:
    """Fetches Translation-en with apt (network) into a scratch directory; 3000 packages."""
    if shutil.which("apt-get") is None:
        pytest.fail("apt-get is missing: the Debian corpus needs a Debian system")
    out = tmp_path / "debian"
    system_lists = {p.name: p.stat().st_mtime_ns for p in Path("/var/lib/apt/lists").iterdir()}
    stats = prepare_debian(out, CorpusOptions(max_docs=3000))
    assert {p.name: p.stat().st_mtime_ns for p in Path("/var/lib/apt/lists").iterdir()} == system_lists
    assert stats.documents + stats.skipped_empty_documents == 3000
    assert stats.batches == len(list_batches(out)) == -(-stats.documents // 1000)
    assert 1000 < stats.vocab_size < 10000 and stats.nonzeros > 20 * stats.documents
    batches = [read_batch(p) for p in list_batches(out)]
    assert sum(b.n_items for b in batches) == stats.documents
    assert sum(b.token_weight for b in batches) == pytest.approx(stats.token_weight)
    vocab = read_vocab(out / "vocab.txt")
    assert vocab.tokens == sorted(vocab.tokens) and len(vocab) == stats.vocab_size
    titles = [t for b in batches for t in b.titles]
    assert titles == sorted(titles)
    # df bounds hold over the written documents
    df = np.zeros(len(vocab))
    for batch in batches:
        local = np.array([vocab.index[("@default_class", t)] for t in batch.tokens])
        np.add.at(df, local[batch.token_index], 1)
    assert df.min() >= 5 and df.max() <= 0.5 * 3000

    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert prepare_debian(out, CorpusOptions(max_docs=3000)) == stats  # cached: nothing rewritten
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    with pytest.raises(DataError, match="already holds a different corpus"):
        prepare_debian(out, CorpusOptions(max_docs=2000))
    (out / MANIFEST).unlink()
    with pytest.raises(DataError, match="holds no complete corpus"):
        prepare_debian(out, CorpusOptions(max_docs=3000))
