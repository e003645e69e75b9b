"""Vocabulary file and mapping batch tokens onto it."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from artm_compose.data.batches import DEFAULT_CLASS, make_batch, read_batch, write_batch
from artm_compose.data.vocab import (
    batch_in_vocab,
    local_to_vocab,
    make_vocab,
    read_vocab,
    write_vocab,
)
from artm_compose.errors import DataError


def test_read_plain_and_class_entries(tmp_path: Path) -> None:
    path = tmp_path / "vocab.txt"
    path.write_text("apple\nbanana @fruit\r\ncherry\napple @fruit")
    vocab = read_vocab(path)
    assert vocab.tokens == ["apple", "banana", "cherry", "apple"]
    assert vocab.class_ids == [DEFAULT_CLASS, "@fruit", DEFAULT_CLASS, "@fruit"]
    assert vocab.index[(DEFAULT_CLASS, "cherry")] == 2
    assert vocab.index[("@fruit", "apple")] == 3
    assert len(vocab) == 4


def test_write_read_round_trip(tmp_path: Path) -> None:
    vocab = make_vocab(["x", "y", "z"], [DEFAULT_CLASS, "@tag", DEFAULT_CLASS])
    path = write_vocab(tmp_path / "v.txt", vocab)
    assert path.read_text() == "x\ny @tag\nz\n"
    back = read_vocab(path)
    assert (back.tokens, back.class_ids) == (vocab.tokens, vocab.class_ids)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("a\nb\na\n", "line 3: duplicate token 'a' (class @default_class), first on line 1"),
        ("a\n\nb\n", "line 2: expected 'token' or 'token class_id'"),
        ("a\nb c d\n", "line 2: expected 'token' or 'token class_id', got 'b c d'"),
        ("", "is empty"),
    ],
)
def test_vocabulary_errors_name_file_and_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad_vocab.txt"
    path.write_text(content)
    with pytest.raises(DataError, match=re.escape(str(path)) + ".*" + re.escape(message)):
        read_vocab(path)


def test_unreadable_vocabulary(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="absent.txt"):
        read_vocab(tmp_path / "absent.txt")
    (tmp_path / "latin1.txt").write_bytes(b"caf\xe9\n")
    with pytest.raises(DataError, match="latin1.txt"):
        read_vocab(tmp_path / "latin1.txt")


def test_write_refuses_tokens_with_whitespace(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="entry 2 \\('two words'"):
        write_vocab(tmp_path / "v.txt", make_vocab(["one", "two words"]))


def _batch() -> object:
    tokens = ["gamma", "alpha", "omega", "beta"]
    documents = [
        (1, "", np.array([0, 1, 2]), np.array([1.0, 2.0, 3.0])),
        (2, "", np.array([2]), np.array([5.0])),
        (3, "", np.array([3, 0]), np.array([1.0, 4.0])),
    ]
    return make_batch("local.batch", tokens, documents)


def test_local_to_vocab_maps_by_token_and_class() -> None:
    vocab = make_vocab(["alpha", "beta", "gamma", "omega"])
    np.testing.assert_array_equal(local_to_vocab(_batch(), vocab), [2, 0, 3, 1])
    other_class = make_vocab(["alpha", "beta", "gamma", "omega"], ["@x"] * 4)
    with pytest.raises(DataError, match="'gamma' \\(class @default_class\\) is not in the vocabulary"):
        local_to_vocab(_batch(), other_class)


def test_missing_token_is_an_error_naming_batch_and_token() -> None:
    vocab = make_vocab(["alpha", "beta", "gamma"])
    with pytest.raises(DataError, match=r"batch local\.batch: token 'omega' .*\(1 missing tokens"):
        batch_in_vocab(_batch(), vocab)


def test_missing_tokens_are_a_counted_skip() -> None:
    vocab = make_vocab(["alpha", "beta", "gamma"])
    mapped = batch_in_vocab(_batch(), vocab, skip_missing=True)
    assert mapped.skipped_tokens == ["omega"]
    assert mapped.skipped_entries == 2
    assert mapped.skipped_weight == 8.0
    np.testing.assert_array_equal(mapped.indptr, [0, 2, 2, 4])
    np.testing.assert_array_equal(mapped.vocab_index, [2, 0, 1, 2])
    np.testing.assert_array_equal(mapped.weights, [1.0, 2.0, 1.0, 4.0])


def test_batch_in_vocab_without_missing_tokens() -> None:
    vocab = make_vocab(["omega", "gamma", "beta", "alpha"])
    mapped = batch_in_vocab(_batch(), vocab)
    assert (mapped.skipped_tokens, mapped.skipped_entries, mapped.skipped_weight) == ([], 0, 0.0)
    np.testing.assert_array_equal(mapped.vocab_index, [1, 3, 0, 0, 2, 1])
    np.testing.assert_array_equal(mapped.indptr, [0, 3, 4, 6])


def test_missing_token_error_names_the_batch_file(tmp_path: Path) -> None:
    path = write_batch(tmp_path / "000007.batch", _batch())
    batch = read_batch(path)
    assert (batch.name, batch.path) == ("000007.batch", path)
    with pytest.raises(DataError, match=re.escape(f"batch {path}: token 'omega'")):
        batch_in_vocab(batch, make_vocab(["alpha", "beta", "gamma"]))
    assert batch_in_vocab(batch, make_vocab(["alpha", "beta", "gamma", "omega"])).path == path
