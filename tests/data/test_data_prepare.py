"""UCI / Vowpal Wabbit preparation, the collection writer and the ``data`` commands."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from artm_compose.data.batches import list_batches, read_batch
from artm_compose.data.collection import MANIFEST
from artm_compose.data.commands import data_group
from artm_compose.data.prepare import prepare_uci, prepare_vw
from artm_compose.data.summary import summarize
from artm_compose.errors import DataError
from support.data import as_float_dict, collection_counts, document_counts, vocab_tokens, write_uci, write_vw


def test_uci_prepare(tmp_path: Path) -> None:
    docword, vocab = write_uci(tmp_path)
    stats = prepare_uci(docword, vocab, tmp_path / "out", batch_size=2)
    counts = document_counts()
    non_empty = [(d + 1, c) for d, (_, c) in enumerate(counts) if c]
    assert (stats.documents, stats.batches, stats.skipped_empty_documents) == (4, 2, 1)
    assert stats.nonzeros == sum(len(c) for _, c in non_empty)
    assert stats.token_weight == sum(sum(c.values()) for _, c in non_empty)
    assert [p.name for p in list_batches(tmp_path / "out")] == ["000000.batch", "000001.batch"]
    # UCI item ids are the docIDs; titles stay empty, as BigARTM's own parser leaves them.
    assert collection_counts(tmp_path / "out") == [(d, "", as_float_dict(c)) for d, c in non_empty]
    words = sorted({w for _, c in counts for w in c})
    assert vocab_tokens(tmp_path / "out") == words  # the unused word is dropped, order kept
    assert stats.vocab_size == len(words)
    manifest = json.loads((tmp_path / "out" / MANIFEST).read_text())
    assert manifest["documents"] == 4 and manifest["source"] == "uci:docword.sample.txt"


def test_uci_sums_repeated_pairs_and_drops_zero_counts(tmp_path: Path) -> None:
    (tmp_path / "vocab.txt").write_text("alpha\nbeta\ngamma\n")
    (tmp_path / "docword.txt").write_text("2\n3\n5\n1 1 2\n1 2 0\n1 1 3\n2 3 1\n2 2 1\n")
    prepare_uci(tmp_path / "docword.txt", tmp_path / "vocab.txt", tmp_path / "out")
    assert collection_counts(tmp_path / "out") == [(1, "", {"alpha": 5.0}), (2, "", {"gamma": 1.0, "beta": 1.0})]


def test_uci_with_class_ids_in_vocab(tmp_path: Path) -> None:
    (tmp_path / "vocab.txt").write_text("apple\napple @tag\n")
    (tmp_path / "docword.txt").write_text("1\n2\n2\n1 1 1\n1 2 2\n")
    prepare_uci(tmp_path / "docword.txt", tmp_path / "vocab.txt", tmp_path / "out")
    batch = read_batch(tmp_path / "out" / "000000.batch")
    assert list(zip(batch.class_ids, batch.tokens)) == [("@default_class", "apple"), ("@tag", "apple")]
    assert (tmp_path / "out" / "vocab.txt").read_text() == "apple\napple @tag\n"


@pytest.mark.parametrize(
    ("docword", "message"),
    [
        ("2\n3\n", "expected three header lines"),
        ("2\nthree\n1\n1 1 1\n", "line 2: expected one integer, got 'three'"),
        ("2\n4\n1\n1 1 1\n", "declares W=4 words but"),
        ("2\n3\n2\n1 1 1\n", "declares NNZ=2 but holds 1 entries"),
        ("2\n3\n2\n1 1 1\n2 x 1\n", "line 5: expected 'docID wordID count', got '2 x 1'"),
        ("2\n3\n2\n1 1 1\n2 1\n", "line 5: expected 'docID wordID count', got '2 1'"),
        ("2\n3\n1\n3 1 1\n", "entry 1: docID 3 outside 1..2"),
        ("2\n3\n1\n1 0 1\n", "entry 1: wordID 0 outside 1..3"),
        ("2\n3\n1\n1 1 -2\n", "entry 1: invalid count -2"),
        ("2\n3\n0\n", "all 2 documents are empty"),
    ],
)
def test_uci_errors_name_the_file(tmp_path: Path, docword: str, message: str) -> None:
    (tmp_path / "vocab.txt").write_text("a\nb\nc\n")
    (tmp_path / "docword.txt").write_text(docword)
    with pytest.raises(DataError, match=re.escape(message)):
        prepare_uci(tmp_path / "docword.txt", tmp_path / "vocab.txt", tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["docword.txt", "vocab.txt"]  # nothing half-written


def test_vw_prepare(tmp_path: Path) -> None:
    stats = prepare_vw(write_vw(tmp_path / "sample.vw"), tmp_path / "out", batch_size=3)
    counts = document_counts()
    assert (stats.documents, stats.batches, stats.skipped_empty_documents) == (4, 2, 1)
    expected = [(d, name, as_float_dict(c)) for d, (name, c) in enumerate(counts) if c]
    assert collection_counts(tmp_path / "out") == expected
    first_seen = list(dict.fromkeys(w for _, c in counts for w in c))
    assert vocab_tokens(tmp_path / "out") == first_seen


def test_vw_classes_counts_and_repeats(tmp_path: Path) -> None:
    (tmp_path / "c.vw").write_text(
        "d1 apple apple:2.5 |@tag apple:1 red |@default_class pear\n\n"
        "d2 |@tag red:0 blue:0\n"
        "d3 pear:1e0\n"
    )
    stats = prepare_vw(tmp_path / "c.vw", tmp_path / "out")
    assert stats.skipped_empty_documents == 1
    batch = read_batch(tmp_path / "out" / "000000.batch")
    entries = {
        (batch.class_ids[i], batch.tokens[i]): float(w)
        for i, w in zip(batch.token_index[: batch.indptr[1]], batch.weights[: batch.indptr[1]])
    }
    assert entries == {("@default_class", "apple"): 3.5, ("@tag", "apple"): 1.0, ("@tag", "red"): 1.0,
                       ("@default_class", "pear"): 1.0}
    assert batch.titles == ["d1", "d3"]
    assert (tmp_path / "out" / "vocab.txt").read_text() == "apple\napple @tag\nred @tag\npear\n"


def test_vw_bare_section_is_the_default_class(tmp_path: Path) -> None:
    (tmp_path / "c.vw").write_text("d1 |@tag red | pear |words x\n")
    prepare_vw(tmp_path / "c.vw", tmp_path / "out")
    batch = read_batch(tmp_path / "out" / "000000.batch")
    assert list(zip(batch.class_ids, batch.tokens)) == [("@tag", "red"), ("@default_class", "pear"), ("words", "x")]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("d1 a:x\n", "line 1: invalid count in 'a:x'"),
        ("d1 a\nd2 b:-1\n", "line 2: invalid count in 'b:-1'"),
        ("d1 a\nd2 :3\n", "line 2: empty token in ':3'"),
        ("d1 a\nd2 b:\n", "line 2: invalid count in 'b:'"),
        ("|@tag a b\n", "line 1: the line starts with a section"),
        ("\n\n", "holds no documents"),
        ("d1\nd2\n", "all 2 documents are empty"),
    ],
)
def test_vw_errors_name_file_and_line(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "bad.vw").write_text(content)
    with pytest.raises(DataError, match=re.escape(message)):
        prepare_vw(tmp_path / "bad.vw", tmp_path / "out")


def test_output_directory_must_be_empty(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(DataError, match=re.escape(f"output directory {tmp_path / 'out'} exists and is not empty")):
        prepare_vw(write_vw(tmp_path / "s.vw"), tmp_path / "out")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "s.vw"]  # no staging directory left
    (tmp_path / "empty").mkdir()
    prepare_vw(tmp_path / "s.vw", tmp_path / "empty")
    assert (tmp_path / "empty" / MANIFEST).is_file()


def test_summarize_uses_the_reader(tmp_path: Path) -> None:
    stats = prepare_vw(write_vw(tmp_path / "s.vw"), tmp_path / "out", batch_size=2)
    summary = summarize(tmp_path / "out", tmp_path / "out" / "vocab.txt")
    assert summary.batch_count == stats.batches and summary.items == stats.documents
    assert summary.nonzeros == stats.nonzeros and summary.token_weight == stats.token_weight
    assert summary.skipped_tokens == 0
    np.testing.assert_allclose(summary.token_weights.sum(), stats.token_weight)
    image = vocab_tokens(tmp_path / "out").index("image")
    assert summary.token_weights[image] == 3.0


def test_cli_prepare_and_info(tmp_path: Path) -> None:
    runner = CliRunner()
    docword, vocab = write_uci(tmp_path)
    result = runner.invoke(data_group, ["prepare", "--uci", str(docword), str(vocab), "--out", str(tmp_path / "u"),
                                        "--batch-size", "3"])
    assert result.exit_code == 0, result.output
    assert "4 documents in 2 batches" in result.output and "1 empty documents skipped" in result.output
    result = runner.invoke(data_group, ["info", str(tmp_path / "u"), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert (info["batches"], info["items"], info["tokens_missing_from_vocab"]) == (2, 4, 0)
    assert info["token_weight"] == info["manifest"]["token_weight"]
    text = runner.invoke(data_group, ["info", str(tmp_path / "u")])
    assert "items: 4" in text.output and "nonzeros:" in text.output


def test_cli_prepare_needs_exactly_one_source(tmp_path: Path) -> None:
    result = CliRunner().invoke(data_group, ["prepare", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "exactly one of --uci" in result.output


def test_info_counts_tokens_missing_from_vocab(tmp_path: Path) -> None:
    prepare_vw(write_vw(tmp_path / "s.vw"), tmp_path / "out")
    (tmp_path / "out" / "vocab.txt").write_text("image\n")
    result = CliRunner().invoke(data_group, ["info", str(tmp_path / "out"), "--json"])
    info = json.loads(result.output)
    assert info["vocab_size"] == 1 and info["tokens_missing_from_vocab"] == info["distinct_tokens"] - 1
