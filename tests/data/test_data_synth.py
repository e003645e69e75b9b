"""The synthetic corpus: seeded, heavy-tailed lengths, streamed in bounded memory, and its topics recoverable."""

from __future__ import annotations

import json
import re
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from artm_compose.data.batches import list_batches, read_batch
from artm_compose.data.collection import MANIFEST
from artm_compose.data.commands import data_group
from artm_compose.data.synth import PHI_FILE, SynthOptions, synthesize
from artm_compose.data.vocab import read_vocab
from artm_compose.errors import ConfigError
from support.data import collection_counts
from support.ports import requires_redis


def test_same_seed_same_corpus_other_seed_other_corpus(tmp_path: Path) -> None:
    options = SynthOptions(documents=300, topics=4, vocab=200, mean_length=30, seed=7, batch_size=128)
    synthesize(tmp_path / "a", options)
    synthesize(tmp_path / "b", options)
    synthesize(tmp_path / "c", SynthOptions(**{**options.__dict__, "seed": 8}))
    assert collection_counts(tmp_path / "a") == collection_counts(tmp_path / "b")
    assert collection_counts(tmp_path / "a") != collection_counts(tmp_path / "c")
    with np.load(tmp_path / "a" / PHI_FILE) as a, np.load(tmp_path / "b" / PHI_FILE) as b:
        np.testing.assert_array_equal(a["phi"], b["phi"])


def test_layout_lengths_and_generating_phi(tmp_path: Path) -> None:
    options = SynthOptions(documents=5000, topics=6, vocab=300, mean_length=40, seed=2, batch_size=1000)
    stats = synthesize(tmp_path / "s", options)
    assert (stats.documents, stats.batches, stats.skipped_empty_documents) == (5000, 5, 0)
    assert [p.name for p in list_batches(tmp_path / "s")] == [f"{i:06d}.batch" for i in range(5)]
    vocab = read_vocab(tmp_path / "s" / "vocab.txt")
    assert vocab.tokens[:2] == ["w000000", "w000001"] and len(vocab) == 300
    lengths = np.array([sum(weights.values()) for _, _, weights in collection_counts(tmp_path / "s")])
    assert [item for item, _, _ in collection_counts(tmp_path / "s")] == list(range(5000))
    # heavy-tailed: mean near 40, median well below it, a few documents many times longer
    assert 34 < lengths.mean() < 46 and np.median(lengths) < 0.6 * lengths.mean()
    assert lengths.min() >= 1 and lengths.max() > 15 * lengths.mean()
    with np.load(tmp_path / "s" / PHI_FILE) as data:
        assert data["phi"].shape == (300, 6) and data["phi"].dtype == np.float32
        np.testing.assert_allclose(data["phi"].sum(axis=0), 1.0, rtol=1e-5)
        assert list(data["tokens"]) == vocab.tokens and list(data["topics"]) == [f"topic_{t}" for t in range(6)]
        phi = data["phi"].astype(np.float64)
    # The words follow the generating model: each word's share of the corpus is close to phi's average
    # weighted by the topics' shares, which the documents' Dirichlet(alpha) makes about equal.
    counts = np.zeros(300)
    for path in list_batches(tmp_path / "s"):
        batch = read_batch(path)
        local = np.array([vocab.index[("@default_class", t)] for t in batch.tokens])
        np.add.at(counts, local[batch.token_index], batch.weights)
    assert np.corrcoef(counts / counts.sum(), phi.mean(axis=1))[0, 1] > 0.9
    manifest = json.loads((tmp_path / "s" / MANIFEST).read_text())
    assert manifest["source"] == "synth" and manifest["options"]["seed"] == 2


def _peak_bytes(out: Path, documents: int) -> tuple[int, int]:
    """Peak traced memory while writing a corpus, and the bytes its entries take (int32 + float32)."""
    options = SynthOptions(documents=documents, topics=5, vocab=500, mean_length=40, seed=3, batch_size=50)
    tracemalloc.start()
    try:
        stats = synthesize(out, options)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak, 8 * stats.nonzeros


def test_memory_does_not_grow_with_the_corpus(tmp_path: Path) -> None:
    _peak_bytes(tmp_path / "warm", 100)  # first-use allocations (imports, caches) out of the way
    small, _ = _peak_bytes(tmp_path / "small", 1000)
    large, large_entries = _peak_bytes(tmp_path / "large", 12000)
    assert large < 1.5 * small and large < large_entries / 4, (small, large, large_entries)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--alpha", "0"], "synth --alpha must be a positive number, got 0.0"),
        (["--mean-length", "inf"], "synth --mean-length must be a positive number, got inf"),
        (["--topics", "50", "--vocab", "20"], "synth --topics 50 exceeds --vocab 20"),
    ],
)
def test_cli_refuses_bad_values(tmp_path: Path, arguments: list[str], message: str) -> None:
    base = {"--documents": "10", "--topics": "2", "--vocab": "30", "--out": str(tmp_path / "o")}
    for key, value in zip(arguments[::2], arguments[1::2]):
        base[key] = value
    result = CliRunner().invoke(data_group, ["synth", *[x for pair in base.items() for x in pair]])
    assert isinstance(result.exception, ConfigError) and re.search(re.escape(message), str(result.exception))
    assert not (tmp_path / "o").exists()


def test_cli_writes_a_corpus(tmp_path: Path) -> None:
    result = CliRunner().invoke(data_group, ["synth", "--documents", "50", "--topics", "3", "--vocab", "40",
                                             "--out", str(tmp_path / "o"), "--batch-size", "20"])
    assert result.exit_code == 0, result.output
    assert "50 documents in 3 batches, 40 tokens" in result.output and PHI_FILE in result.output


def match_topics(truth: np.ndarray, learned: np.ndarray) -> list[tuple[int, int]]:
    """Greedy one-to-one matching of phi columns by cosine similarity, best pairs first."""
    similarity = (truth / np.linalg.norm(truth, axis=0)).T @ (learned / np.linalg.norm(learned, axis=0))
    pairs = []
    for _ in range(truth.shape[1]):
        t, s = np.unravel_index(np.argmax(similarity), similarity.shape)
        pairs.append((int(t), int(s)))
        similarity[t, :] = similarity[:, s] = -np.inf
    return pairs


def total_variation(truth: np.ndarray, learned: np.ndarray) -> np.ndarray:
    """Per generating topic, the total variation distance to the learned topic matched to it."""
    return np.array([0.5 * np.abs(truth[:, t] - learned[:, s]).sum() for t, s in match_topics(truth, learned)])


@pytest.mark.integration
@requires_redis
def test_training_recovers_the_generating_topics(local_cluster, tmp_path: Path) -> None:
    """PLSA on a real local cluster (master and executor processes) finds the topics the corpus came from."""
    from artm_compose.engine.export import read_model
    from artm_compose.engine.initial import random_rows
    from support.engine import client_of, run_training

    corpus = tmp_path / "synth"
    synthesize(corpus, SynthOptions(documents=2000, topics=8, vocab=400, mean_length=60, alpha=0.1, beta=0.1,
                                    seed=11, batch_size=500))
    with np.load(corpus / PHI_FILE) as data:
        truth = data["phi"].astype(np.float64)
    cluster = local_cluster(nodes=1)
    scores, codes, training = run_training(cluster, corpus, tmp_path / "run", 1, 2, 240.0, topics=8, seed=5,
                                           iterations=30, inner_iterations=10, heartbeat_timeout=10.0)
    assert set(codes.values()) == {0}, (codes, training.log("master"))
    _, learned = read_model(client_of(cluster), "test")
    vocab = read_vocab(corpus / "vocab.txt")
    start = random_rows(vocab.tokens, vocab.class_ids, 5, 8)
    assert total_variation(truth, start / start.sum(axis=0)).min() > 0.5  # the start is far from every topic
    distances = total_variation(truth, learned.astype(np.float64))
    assert distances.max() < 0.1, distances  # every generating topic found, within 0.1 total variation
    assert scores["perplexity"][-1] < 0.5 * scores["perplexity"][0]
