"""A synthetic corpus of any size, sampled from an LDA-like generative model, streamed batch by batch.

The model: topic t's word distribution phi_t ~ Dirichlet(beta) over the ``vocab`` words (drawn
once); document d's topic mixture theta_d ~ Dirichlet(alpha); its length L_d is heavy-tailed
(1 plus a Lomax/Pareto II draw of shape 2 scaled to the mean length, so its variance is infinite;
capped at ``LENGTH_CAP`` times the mean); its L_d tokens each draw a topic from theta_d and a word
from that topic's phi. Words are named ``w000000`` ... in index order, all ``@default_class``.

Each batch is sampled with vectorised NumPy and written before the next one is drawn (only one
batch of tokens is in memory, besides phi and its cumulative sums: topics x vocab float64), from
its own random stream spawned from the seed, so a corpus is the same for the same arguments. The
directory also holds ``generating_phi.npz``: ``phi`` (float32, words x topics, the distribution
the tokens were drawn from), ``tokens``, ``class_ids``, ``topics``, ``alpha``, ``beta``, ``seed``;
an ``--init-phi`` / ``export`` file in the same layout.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from artm_compose.data.collection import CollectionStats, Document, write_collection
from artm_compose.data.vocab import make_vocab
from artm_compose.errors import ConfigError

SOURCE = "synth"
PHI_FILE = "generating_phi.npz"
LENGTH_SHAPE = 2.0
LENGTH_CAP = 100


@dataclass(frozen=True)
class SynthOptions:
    """What decides the corpus; validated on construction, recorded in corpus.json."""

    documents: int
    topics: int
    vocab: int
    mean_length: float = 100.0
    alpha: float = 0.1
    beta: float = 0.1
    seed: int = 1
    batch_size: int = 1000

    def __post_init__(self) -> None:
        for name in ("documents", "topics", "vocab", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"synth --{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        for name in ("mean_length", "alpha", "beta"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise ConfigError(f"synth --{name.replace('_', '-')} must be a positive number, got {value}")
        if self.topics > self.vocab:
            raise ConfigError(f"synth --topics {self.topics} exceeds --vocab {self.vocab}")


def word_names(vocab: int) -> list[str]:
    """``w000000``-style names that sort in index order."""
    width = max(6, len(str(vocab - 1)))
    return [f"w{index:0{width}d}" for index in range(vocab)]


def generating_phi(options: SynthOptions) -> np.ndarray:
    """Topics x vocab, float64, rows summing to 1 (the seed's first spawned stream)."""
    rng = np.random.default_rng(np.random.SeedSequence(options.seed).spawn(1)[0])
    return rng.dirichlet(np.full(options.vocab, options.beta), size=options.topics)


def _stacked_cdf(phi: np.ndarray) -> np.ndarray:
    """Cumulative sums of all topics in one increasing array: topic t's words cover [t, t + 1)."""
    cdf = np.cumsum(phi, axis=1)
    cdf[:, -1] = 1.0  # so that every draw in [t, t + 1) lands in topic t
    cdf += np.arange(phi.shape[0], dtype=np.float64)[:, None]
    return cdf.ravel()


def _lengths(rng: np.random.Generator, count: int, mean: float) -> np.ndarray:
    scale = mean * (LENGTH_SHAPE - 1.0)
    draws = 1.0 + np.floor(rng.pareto(LENGTH_SHAPE, count) * scale)
    return np.minimum(draws, LENGTH_CAP * mean).astype(np.int64)


def sample_batch(
    rng: np.random.Generator, cdf: np.ndarray, options: SynthOptions, first_item: int, count: int
) -> list[Document]:
    """``count`` documents with item ids from ``first_item``: distinct words with their counts."""
    topics, vocab = options.topics, options.vocab
    theta = rng.dirichlet(np.full(topics, options.alpha), size=count)
    per_topic = rng.multinomial(_lengths(rng, count, options.mean_length), theta)  # documents x topics
    # Tokens grouped by topic, then by document: their topic and document.
    token_topic = np.repeat(np.arange(topics), per_topic.sum(axis=0))
    token_doc = np.repeat(np.tile(np.arange(count), topics), per_topic.T.ravel())
    # A word for each token from its topic's phi: draws in [t, t + 1) searched in the stacked sums,
    # in sorted order (far faster to search), then put back in the draws' own (random) order.
    draws = token_topic + rng.random(len(token_topic))
    order = np.argsort(draws)
    words = np.empty(len(draws), dtype=np.int64)
    words[order] = np.searchsorted(cdf, draws[order], side="right") - token_topic[order] * vocab
    keys, counts = np.unique(token_doc * vocab + words, return_counts=True)
    doc_of_key = keys // vocab
    bounds = np.searchsorted(doc_of_key, np.arange(count + 1))
    word_index = (keys % vocab).astype(np.int32)
    weights = counts.astype(np.float32)
    return [
        Document(first_item + d, "", word_index[bounds[d]:bounds[d + 1]], weights[bounds[d]:bounds[d + 1]])
        for d in range(count)
    ]


def _documents(options: SynthOptions, cdf: np.ndarray) -> Iterator[Document]:
    streams = np.random.SeedSequence(options.seed).spawn(1 + -(-options.documents // options.batch_size))[1:]
    for position, stream in enumerate(streams):
        first = position * options.batch_size
        count = min(options.batch_size, options.documents - first)
        yield from sample_batch(np.random.default_rng(stream), cdf, options, first, count)


def synthesize(out_dir: str | os.PathLike[str], options: SynthOptions) -> CollectionStats:
    """Write the corpus (batches, vocab.txt, generating_phi.npz, corpus.json) into ``out_dir``."""
    phi = generating_phi(options)
    tokens = word_names(options.vocab)

    def write_phi(staging: Path) -> None:
        np.savez(staging / PHI_FILE, phi=np.ascontiguousarray(phi.T, dtype=np.float32), tokens=np.array(tokens),
                 class_ids=np.array(["@default_class"] * len(tokens)),
                 topics=np.array([f"topic_{t}" for t in range(options.topics)]),
                 alpha=options.alpha, beta=options.beta, seed=options.seed)

    return write_collection(out_dir, make_vocab(tokens, source=SOURCE), _documents(options, _stacked_cdf(phi)),
                            options.batch_size, SOURCE, asdict(options), before_manifest=write_phi)


__all__ = ["SynthOptions", "synthesize", "generating_phi", "sample_batch", "PHI_FILE"]
