"""The compiled E-step against the dense NumPy reference, on a small real corpus."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from artm_compose.data.vocab import read_vocab
from artm_compose.engine.corpus import load_corpus
from artm_compose.engine.dense import dense_fit, dense_pass, normalize_columns
from artm_compose.engine.kernel import Documents, e_step, normalise_rows, split_documents
from support.engine import DPKG_STATUS, dense_counts, dpkg_corpus

pytestmark = pytest.mark.skipif(not DPKG_STATUS.exists(), reason="needs /var/lib/dpkg/status for a real corpus")


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory) -> Path:
    return dpkg_corpus(tmp_path_factory.mktemp("engine") / "dpkg")


def random_phi(rows: int, topics: int, seed: int = 0) -> np.ndarray:
    phi = np.random.default_rng(seed).random((rows, topics)).astype(np.float32)
    return (phi / phi.sum(axis=0)).astype(np.float32)


def test_one_pass_matches_the_dense_reference(corpus_dir):
    vocab = read_vocab(corpus_dir / "vocab.txt")
    corpus = load_corpus(corpus_dir, vocab, 0, 8)
    phi = random_phi(len(corpus.rows), 12)
    result = e_step(corpus.docs, phi, inner=10)
    counts = dense_counts(corpus.docs, len(corpus.rows))
    nwt, loglik, weight = dense_pass(counts, phi.astype(np.float64), inner=10)
    assert weight == pytest.approx(corpus.token_weight) and result.token_weight == pytest.approx(weight)
    assert result.loglik == pytest.approx(loglik, rel=1e-6)
    assert np.abs(result.nwt - nwt).max() <= 1e-5 * nwt.max()


def test_ten_passes_keep_phi_within_1e5_of_the_reference(corpus_dir):
    vocab = read_vocab(corpus_dir / "vocab.txt")
    corpus = load_corpus(corpus_dir, vocab, 0, 8)
    phi0 = random_phi(len(corpus.rows), 8, seed=3)
    phi = phi0
    perplexities = []
    for _ in range(10):
        result = e_step(corpus.docs, phi, inner=5)
        perplexities.append(np.exp(-result.loglik / result.token_weight))
        phi = normalize_columns(result.nwt).astype(np.float32)
    expected_phi, expected = dense_fit(dense_counts(corpus.docs, len(corpus.rows)), phi0.astype(np.float64), 10, 5)
    np.testing.assert_allclose(perplexities, expected, rtol=1e-5)
    assert np.abs(phi - expected_phi).max() < 1e-5
    assert perplexities[-1] < perplexities[0] * 0.5  # it really learns


def test_threads_split_documents_and_agree(corpus_dir):
    vocab = read_vocab(corpus_dir / "vocab.txt")
    corpus = load_corpus(corpus_dir, vocab, 0, 8)
    phi = random_phi(len(corpus.rows), 10)
    one = e_step(corpus.docs, phi, inner=10)
    ticks = []
    three = e_step(corpus.docs, phi, inner=10, threads=3, tick=lambda: ticks.append(1), chunk_documents=50)
    assert len(ticks) >= corpus.docs.count // 50
    assert three.loglik == pytest.approx(one.loglik, rel=1e-12)
    np.testing.assert_allclose(three.nwt, one.nwt, rtol=1e-12, atol=1e-12)
    again = e_step(corpus.docs, phi, inner=10, threads=3, chunk_documents=50)
    assert np.array_equal(again.nwt, three.nwt)  # same thread count: bit for bit


def test_split_documents_balances_nonzeros():
    indptr = np.array([0, 10, 11, 12, 30, 31, 40], dtype=np.int64)
    assert split_documents(indptr, 2) == [(0, 3), (3, 6)]  # 12 and 28 non-zeros: the best cut
    for parts in (1, 3, 100):
        ranges = split_documents(indptr, parts)
        assert ranges[0][0] == 0 and ranges[-1][1] == 6 and len(ranges) <= min(parts, 6)
        assert all(a[1] == b[0] and a[0] < a[1] for a, b in zip(ranges, ranges[1:]))


def test_zero_probability_words_take_bigartms_unigram_fallback():
    # Word 1 has phi = 0 in every topic: it gets no counts, and the perplexity takes the
    # document's unigram probability n_dw / n_d for it (BigARTM's PerplexityScore, no dictionary).
    phi = np.array([[0.5, 0.5], [0.0, 0.0], [0.5, 0.5]], dtype=np.float32)
    docs = Documents(indptr=np.array([0, 3], dtype=np.int64), rows=np.array([0, 1, 2], dtype=np.int32),
                     weights=np.array([1.0, 4.0, 2.0], dtype=np.float32))
    result = e_step(docs, phi, inner=3)
    assert result.token_weight == 7.0 and result.zero_words == 1
    assert result.loglik == pytest.approx(3 * np.log(0.5) + 4 * np.log(4 / 7))
    assert np.all(result.nwt[1] == 0)
    np.testing.assert_allclose(result.nwt.sum(), 3.0)


def dense_theta(counts: np.ndarray, phi: np.ndarray, inner: int) -> np.ndarray:
    """Each document's theta after ``inner`` iterations, in float64 (as ``dense_pass`` computes it)."""
    theta = np.full((counts.shape[0], phi.shape[1]), 1.0 / phi.shape[1])
    for _ in range(inner):
        p = theta @ phi.T
        ratio = np.divide(counts, p, out=np.zeros_like(counts), where=(counts > 0) & (p > 0))
        theta = theta * (ratio @ phi)
        theta /= theta.sum(axis=1, keepdims=True)
    return theta


def test_theta_output_is_each_documents_final_theta(corpus_dir):
    vocab = read_vocab(corpus_dir / "vocab.txt")
    corpus = load_corpus(corpus_dir, vocab, 0, 4)
    phi = random_phi(len(corpus.rows), 9, seed=5)
    result = e_step(corpus.docs, phi, inner=6, threads=2, chunk_documents=40, keep_theta=True)
    assert result.theta.shape == (corpus.docs.count, 9) and result.theta.dtype == np.float32
    expected = dense_theta(dense_counts(corpus.docs, len(corpus.rows)), phi.astype(np.float64), 6)
    assert np.abs(result.theta - expected).max() < 1e-5
    assert e_step(corpus.docs, phi, inner=6).theta is None
    np.testing.assert_allclose(e_step(corpus.docs, phi, inner=6, threads=2, chunk_documents=40).nwt, result.nwt,
                               rtol=0, atol=0)  # asking for theta changes nothing else


def test_values_below_1e16_count_as_zero_like_bigartm():
    # BigARTM zeroes phi and theta values below 1e-16; a 1e-20 in phi is a 0 for the kernel.
    docs = Documents(indptr=np.array([0, 3], dtype=np.int64), rows=np.array([0, 1, 2], dtype=np.int32),
                     weights=np.array([2.0, 1.0, 3.0], dtype=np.float32))
    phi = np.array([[0.5, 1e-20, 0.2], [0.3, 0.6, 0.3], [0.2, 0.4, 0.5]], dtype=np.float32)
    flushed = phi.copy()
    flushed[0, 1] = 0.0
    tiny, zero = e_step(docs, phi, inner=4, keep_theta=True), e_step(docs, flushed, inner=4, keep_theta=True)
    np.testing.assert_array_equal(tiny.nwt, zero.nwt)
    np.testing.assert_array_equal(tiny.theta, zero.theta)
    assert tiny.nwt[0, 1] == 0.0


def test_normalise_rows_zeroes_tiny_values_and_empty_topics():
    nwt = np.array([[4.0, 0.0, 1e-17], [6.0, 0.0, 1.0]])
    phi = normalise_rows(nwt, nwt.sum(axis=0))
    assert phi.dtype == np.float32
    np.testing.assert_allclose(phi, [[0.4, 0.0, 0.0], [0.6, 0.0, 1.0]], rtol=1e-7)
