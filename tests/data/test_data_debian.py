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
    DEFAULT_FILTER,
    CorpusOptions,
    build_collection,
    build_documents,
    debtag_token,
    package_documents,
    package_modalities,
    parse_packages,
    parse_translations,
    prepare_debian,
    read_index_file,
    tokenize,
)
from artm_compose.data.dictionary_filter import DictionaryFilter, parse_filter
from artm_compose.data.vocab import read_vocab
from artm_compose.errors import ConfigError, DataError

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
    words, documents = build_documents(packages, min_df=2, max_df_ratio=0.6)
    # df: alpha 4 (not < 3.6 = 60% of 6: dropped), beta 3, gamma 2, delta 1, omega 1.
    assert words == ["beta", "gamma"]
    assert [d.title for d in documents] == [f"p{i}" for i in range(6)]
    assert [d.item_id for d in documents] == list(range(6))
    pairs = [dict(zip(d.vocab_index.tolist(), d.weights.tolist())) for d in documents]
    assert pairs == [{0: 1.0, 1: 1.0}, {0: 1.0}, {}, {}, {0: 1.0, 1: 2.0}, {}]
    # the upper bound is strict, as BigARTM's max_df_rate: beta's df 3 is not < 50% of 6
    assert build_documents(packages, min_df=2, max_df_ratio=0.5)[0] == ["gamma"]


# Three real records of bookworm's main/binary-amd64/Packages (fields the corpus does not use dropped),
# and grep again as bookworm-security might carry it, with another section and one more tag.
PACKAGES = """\
Package: 0ad
Version: 0.0.26-3
Tag: game::strategy, interface::graphical, interface::x11, role::program,
 uitoolkit::sdl, uitoolkit::wxwidgets, use::gameplaying,
 x11::application
Section: games
Priority: optional

Package: gcc
Version: 4:12.2.0-3
Tag: devel::compiler, devel::lang:c, devel::library, implemented-in::c,
 interface::commandline, role::devel-lib, role::metapackage,
 role::program, suite::gnu, works-with::software:source
Section: devel

Package: grep
Version: 3.8-5
Tag: implemented-in::c, interface::commandline, role::program,
 scope::utility, suite::gnu, use::filtering, use::searching,
 works-with::file, works-with::text
Section: utils

Package: coreutils
Section: utils
"""
UPDATE = "Package: grep\nSection: admin\nTag: made-of::man\n"


def test_parse_packages_fields_and_continuation_lines() -> None:
    records = {package: (section, tags) for package, section, tags in parse_packages(PACKAGES)}
    assert records["0ad"] == ("games", ["game::strategy", "interface::graphical", "interface::x11",
                                        "role::program", "uitoolkit::sdl", "uitoolkit::wxwidgets",
                                        "use::gameplaying", "x11::application"])
    assert records["coreutils"] == ("utils", [])
    assert "devel::lang:c" in records["gcc"][1] and len(records["gcc"][1]) == 10


def test_debtags_become_vw_tokens_reversibly() -> None:
    assert debtag_token("works-with::software:source") == "works-with__software_source"
    assert debtag_token("devel::lang:c++") == "devel__lang_c++"
    assert debtag_token("role::program").replace("_", ":") == "role::program"


def test_package_modalities_union_of_tags_most_common_section() -> None:
    modalities = package_modalities([PACKAGES, UPDATE, PACKAGES])
    assert modalities["@section"]["grep"] == ["utils"]  # two records say utils, one admin
    assert modalities["@tag"]["grep"][:2] == ["implemented-in__c", "interface__commandline"]
    assert "made-of__man" in modalities["@tag"]["grep"] and len(modalities["@tag"]["grep"]) == 10
    assert "coreutils" not in modalities["@tag"] and modalities["@section"]["coreutils"] == ["utils"]
    assert package_modalities([UPDATE, "Package: grep\nSection: utils\n"])["@section"]["grep"] == ["admin"]  # tie


def test_build_collection_with_modalities() -> None:
    packages = package_documents([TRANSLATION])
    modalities = package_modalities([PACKAGES])
    tokens, class_ids, documents = build_collection(packages, modalities, DictionaryFilter())
    words = sorted({w for _, text in packages for w in tokenize(text)})
    sections, tags = ["utils"], sorted(modalities["@tag"]["grep"])
    assert tokens == words + sections + tags  # by modality, then alphabetically
    assert class_ids == ["@default_class"] * len(words) + ["@section"] + ["@tag"] * len(tags)
    grep = documents[1]
    keys = [(class_ids[i], tokens[i]) for i in grep.vocab_index]
    assert keys[:3] == [("@default_class", "gnu"), ("@default_class", "grep"), ("@default_class", "egrep")]
    assert keys[-len(tags) - 1:] == [("@section", "utils")] + [("@tag", t) for t in tags]
    assert grep.weights[-1] == 1.0
    coreutils = [(class_ids[i], tokens[i]) for i in documents[0].vocab_index]
    assert [k for k in coreutils if k[0] != "@default_class"] == [("@section", "utils")]
    # @tag alone filtered: tags in both documents only (none: coreutils has no tags)
    tokens, class_ids, _ = build_collection(packages, modalities, parse_filter({"min_df": ["@tag=2"]}))
    assert "@tag" not in class_ids and tokens[-1] == "utils"


def test_default_options_keep_their_manifest_description() -> None:
    """Corpora cached before the filter options existed must still be recognised."""
    assert CorpusOptions(max_docs=600, batch_size=250).as_dict() == {
        "max_docs": 600, "batch_size": 250, "min_df": 5, "max_df_ratio": 0.5}
    same = CorpusOptions(dictionary_filter=DEFAULT_FILTER.merged(parse_filter({"min_df": ["5"]})))
    assert same.as_dict() == CorpusOptions().as_dict()
    other = CorpusOptions(dictionary_filter=DEFAULT_FILTER.merged(parse_filter({"min_df": ["@tag=2"]})),
                          modalities=True)
    assert other.as_dict()["dictionary_filter"] == {"min_df": {"*": 5, "@tag": 2.0}, "max_df_rate": {"*": 0.5}}
    assert other.as_dict()["modalities"] == ["@section", "@tag"]


def test_filter_on_a_modality_the_corpus_lacks_is_refused_before_fetching(tmp_path: Path) -> None:
    options = CorpusOptions(dictionary_filter=parse_filter({"min_df": ["@tag=2"]}))
    with pytest.raises(ConfigError, match="class id '@tag'.*add --modalities"):
        prepare_debian(tmp_path / "out", options)
    assert not (tmp_path / "out").exists()


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


@pytest.mark.integration
def test_real_debian_corpus_with_modalities(tmp_path: Path) -> None:
    """Fetches Translation-en and the Packages indexes (network); 3000 packages with @section and @tag."""
    out = tmp_path / "debian"
    options = CorpusOptions(max_docs=3000, modalities=True,
                            dictionary_filter=DEFAULT_FILTER.merged(parse_filter({"min_df": ["@tag=2"]})))
    stats = prepare_debian(out, options)
    vocab = read_vocab(out / "vocab.txt")
    classes = set(vocab.class_ids)
    assert classes == {"@default_class", "@section", "@tag"}
    tags = [t for t, c in zip(vocab.tokens, vocab.class_ids) if c == "@tag"]
    sections = [t for t, c in zip(vocab.tokens, vocab.class_ids) if c == "@section"]
    assert "role__program" in tags and all(":" not in t for t in tags) and len(tags) > 100
    assert "games" in sections and 20 < len(sections) < 100
    batches = [read_batch(p) for p in list_batches(out)]
    per_class: dict[str, float] = {}
    section_docs = 0
    for batch in batches:
        local = np.array(batch.class_ids)[batch.token_index]
        for d in range(batch.n_items):
            section_docs += int((local[batch.indptr[d]:batch.indptr[d + 1]] == "@section").sum() == 1)
        for c in classes:
            per_class[c] = per_class.get(c, 0.0) + float(batch.weights[local == c].sum())
    assert section_docs > 0.9 * stats.documents  # nearly every package has a Section, exactly one
    assert per_class["@tag"] > stats.documents  # several debtags per tagged package
    # the words are the default corpus's words
    plain = prepare_debian(tmp_path / "plain", CorpusOptions(max_docs=3000))
    words = [t for t, c in zip(vocab.tokens, vocab.class_ids) if c == "@default_class"]
    assert words == read_vocab(tmp_path / "plain" / "vocab.txt").tokens and plain.documents == stats.documents
