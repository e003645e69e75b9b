"""Initial phi: seeded per token, and read from our export or a pandas CSV by token."""

from __future__ import annotations

import numpy as np
import pytest

from artm_compose.data.vocab import make_vocab
from artm_compose.engine.initial import phi_rows_for, random_rows, read_phi_file
from artm_compose.errors import DataError

TOKENS = ["apple", "banana", "cherry", "date", "elder"]


def test_random_rows_depend_on_token_and_seed_only():
    classes = ["@default_class"] * 5
    full = random_rows(TOKENS, classes, seed=7, topics=6)
    assert full.shape == (5, 6) and full.min() >= 0 and full.max() < 1
    # Any executor computing any subset gets the same rows.
    assert np.array_equal(random_rows(TOKENS[2:4], classes[2:4], seed=7, topics=6), full[2:4])
    assert np.array_equal(random_rows(TOKENS[::-1], classes, seed=7, topics=6), full[::-1])
    assert not np.array_equal(random_rows(TOKENS, classes, seed=8, topics=6), full)
    other_class = random_rows(TOKENS, ["@tags"] * 5, seed=7, topics=6)
    assert not np.any(other_class == full)
    # Values look uniform: not all equal, topics differ.
    assert len(np.unique(full)) == full.size


def test_npz_and_pandas_style_csv_give_rows_in_vocabulary_order(tmp_path):
    vocab = make_vocab(TOKENS)
    phi = np.arange(15, dtype=np.float32).reshape(5, 3) / 100
    order = [3, 0, 4, 1, 2]
    np.savez(tmp_path / "m.npz", phi=phi[order], tokens=np.asarray([TOKENS[i] for i in order]))
    (tmp_path / "m.csv").write_text(",topic_0,topic_1,topic_2\n" + "".join(
        f"{TOKENS[i]},{float(phi[i, 0])},{float(phi[i, 1])},{float(phi[i, 2])}\n" for i in order))
    for name in ("m.npz", "m.csv"):
        np.testing.assert_allclose(phi_rows_for(vocab, 0, 5, tmp_path / name, 3), phi, rtol=1e-7)
        np.testing.assert_allclose(phi_rows_for(vocab, 1, 3, tmp_path / name, 3), phi[1:3], rtol=1e-7)


def test_missing_tokens_and_wrong_topic_count_are_named(tmp_path):
    vocab = make_vocab(TOKENS)
    (tmp_path / "m.csv").write_text("token,topic_0,topic_1\napple,0.5,0.5\ncherry,0.5,0.5\n")
    with pytest.raises(DataError, match=r"lacks 3 vocabulary token\(s\): 'banana', 'date', 'elder'"):
        phi_rows_for(vocab, 0, 5, tmp_path / "m.csv", 2)
    with pytest.raises(DataError, match="has 2 topics, the model has 3"):
        phi_rows_for(vocab, 0, 1, tmp_path / "m.csv", 3)
    assert phi_rows_for(vocab, 2, 3, tmp_path / "m.csv", 2).tolist() == [[0.5, 0.5]]
    with pytest.raises(DataError, match="does not exist"):
        read_phi_file(tmp_path / "nope.csv")
    (tmp_path / "bad.csv").write_text("token,topic_0\napple,x\n")
    with pytest.raises(DataError, match="bad.csv line 2"):
        read_phi_file(tmp_path / "bad.csv")
    (tmp_path / "m.txt").write_text("")
    with pytest.raises(DataError, match="expected a .npz"):
        read_phi_file(tmp_path / "m.txt")
