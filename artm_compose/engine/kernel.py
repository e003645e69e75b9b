"""The E-step of offline PLSA exactly as BigARTM computes it, compiled with numba.

Per document d (SYSTEM.md section 3): theta_d starts uniform (1/T); ``inner`` times
``p_dw = sum_t phi_wt theta_td`` and ``theta_td <- theta_td * sum_w n_dw phi_wt / p_dw``, then
theta_d is normalised. With the final theta, ``n_wt += n_dw phi_wt theta_td / p_dw`` and the
document adds ``n_dw ln p_dw`` to the log-likelihood. Words with ``p_dw == 0`` are skipped, as
BigARTM skips them.

Zero threshold: BigARTM sets every phi value below 1e-16 to zero when it normalises n_wt (and again
when a processor copies phi rows), and every theta value below 1e-16 to zero when it normalises
theta. The kernel does the same (``TINY``). Besides giving BigARTM's answer, this keeps float32
subnormal numbers out of the sums: products of values >= 1e-16 are >= 1e-32, far above float32's
smallest normal number, and subnormal operands cost this CPU a microcode assist each (passes got
several times slower as phi filled with them).

Precision: phi and theta are float32 (as in BigARTM); the dot products and the theta update
run in float32 with ``reassoc``/``contract`` fast-math flags only, which lets LLVM vectorise the
sums over topics (AVX2 FMA); the summation order then depends on the compiled code and the
machine, never on timing, so results are reproducible run to run. n_wt is accumulated in
float64 and the log-likelihood and token weight in float64. ``nnan``/``ninf`` stay off, so
zeros and logs behave as IEEE says.

Layout: a document's phi rows are copied next to each other (rows padded to a multiple of
``LANES`` topics, the row count to a multiple of four); each inner iteration then takes four words
at a time through two sweeps over that block: first the four dot products ``p_dw`` (so theta is
read once per four words), then, after the divisions ``n_dw / p_dw`` are done together in a
separate loop, the four words' ``ratio * phi_w`` added to n_td in one pass over it. Keeping the
division out of the topic loops matters: with ``reassoc`` LLVM otherwise rewrites
``(n / p) * phi_wt`` into a vector division per topic.

Rows: ``rows[j]`` is the executor-local row of phi for non-zero j (the executor fetches only
the phi rows its batches need and renumbers tokens to them), so ``phi`` and ``nwt`` hold
exactly the touched rows, contiguous, one row per token.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable
from dataclasses import dataclass

import numba
import numpy as np

from artm_compose.ranges import balanced_ranges

# Reassociation and FMA contraction only: enough to vectorise the reductions over topics.
_FASTMATH = {"reassoc", "contract"}
# float32 lanes of an AVX2 register: topic loops are padded to a multiple of this.
LANES = 8
# Words per step of the inner loops (see "Layout" above).
WORDS = 4
# BigARTM's zero: phi and theta values below it are set to 0 (see "Zero threshold" above).
TINY = np.float32(1e-16)
# Documents per kernel call: small enough to tick the heartbeat often, large enough to be free.
CHUNK_DOCUMENTS = 2000


@numba.njit(cache=True, nogil=True, fastmath=_FASTMATH, boundscheck=False)
def _estep_range(indptr, rows, weights, phi, inner, nwt, theta_out, doc_begin, doc_end):  # pragma: no cover - jitted
    """E-step of documents ``[doc_begin, doc_end)``: adds to ``nwt``, returns (loglik, weight).

    ``theta_out`` is either empty (0 rows) or has a row per document of the whole CSR: the
    final theta of document d goes to row d.
    """
    topics = phi.shape[1]
    # Topic loops run over a multiple of the vector width; the padding stays zero in the
    # document's phi copy, so it adds nothing to p_dw and theta stays zero there.
    padded = (topics + LANES - 1) // LANES * LANES
    longest = 0
    for d in range(doc_begin, doc_end):
        longest = max(longest, indptr[d + 1] - indptr[d])
    longest = (longest + WORDS - 1) // WORDS * WORDS
    local = np.zeros((longest, padded), dtype=np.float32)
    p = np.zeros(longest, dtype=np.float32)
    ratio = np.zeros(longest, dtype=np.float32)
    theta = np.zeros(padded, dtype=np.float32)
    ntd = np.zeros(padded, dtype=np.float32)
    uniform = np.float32(1.0) / np.float32(topics)
    keep_theta = theta_out.shape[0] > 0
    loglik = 0.0
    weight = 0.0
    for d in range(doc_begin, doc_end):
        begin = indptr[d]
        length = indptr[d + 1] - begin
        steps = (length + WORDS - 1) // WORDS * WORDS
        for i in range(length):
            row = phi[rows[begin + i]]
            for t in range(topics):
                value = row[t]
                local[i, t] = value if value >= TINY else np.float32(0.0)
        for i in range(length, steps):  # padding words: zero phi, zero ratio
            for t in range(padded):
                local[i, t] = 0.0
            ratio[i] = 0.0
        for t in range(topics):
            theta[t] = uniform
        for iteration in range(inner + 1):
            for i in range(0, steps, WORDS):
                ra, rb, rc, re = local[i], local[i + 1], local[i + 2], local[i + 3]
                sa = sb = sc = se = np.float32(0.0)
                for t in range(padded):
                    th = theta[t]
                    sa += ra[t] * th
                    sb += rb[t] * th
                    sc += rc[t] * th
                    se += re[t] * th
                p[i], p[i + 1], p[i + 2], p[i + 3] = sa, sb, sc, se
            for i in range(length):
                ratio[i] = weights[begin + i] / p[i] if p[i] > 0.0 else np.float32(0.0)
            if iteration == inner:
                break
            for t in range(padded):
                ntd[t] = 0.0
            for i in range(0, steps, WORDS):
                ra, rb, rc, re = local[i], local[i + 1], local[i + 2], local[i + 3]
                a, b, c, e = ratio[i], ratio[i + 1], ratio[i + 2], ratio[i + 3]
                for t in range(padded):
                    ntd[t] += ra[t] * a + rb[t] * b + rc[t] * c + re[t] * e
            total = np.float32(0.0)
            for t in range(padded):
                theta[t] *= ntd[t]
                total += theta[t]
            if total > 0.0:
                inverse = np.float32(1.0) / total
                for t in range(padded):
                    value = theta[t] * inverse
                    theta[t] = value if value >= TINY else np.float32(0.0)
        for i in range(length):
            if p[i] == 0.0:
                continue
            n = weights[begin + i]
            loglik += n * math.log(p[i])
            weight += n
            scale = ratio[i]
            out = nwt[rows[begin + i]]
            for t in range(topics):
                out[t] += scale * local[i, t] * theta[t]
        if keep_theta:
            for t in range(topics):
                theta_out[d, t] = theta[t]
    return loglik, weight


@dataclass(frozen=True)
class Documents:
    """Documents in CSR form over executor-local phi rows.

    ``indptr`` (int64, documents + 1), ``rows`` (int32 local row per non-zero), ``weights``
    (float32 n_dw per non-zero).
    """

    indptr: np.ndarray
    rows: np.ndarray
    weights: np.ndarray

    @property
    def count(self) -> int:
        return len(self.indptr) - 1


@dataclass(frozen=True)
class EStepResult:
    """What one E-step over an executor's documents yields."""

    nwt: np.ndarray  # float64, local rows x topics
    loglik: float  # sum n_dw ln p_dw over words with p_dw > 0
    token_weight: float  # sum n_dw over the same words
    theta: np.ndarray | None = None  # float32, documents x topics, when asked for


def split_documents(indptr: np.ndarray, parts: int) -> list[tuple[int, int]]:
    """Contiguous non-empty document ranges with about equal non-zero counts, at most ``parts``."""
    return [r for r in balanced_ranges(np.diff(indptr), parts) if r[0] < r[1]]


def e_step(docs: Documents, phi: np.ndarray, inner: int, threads: int = 1,
           tick: Callable[[], None] | None = None, chunk_documents: int = CHUNK_DOCUMENTS,
           keep_theta: bool = False, done: Callable[[int], None] | None = None) -> EStepResult:
    """Run the E-step over all documents; ``threads`` > 1 splits documents into contiguous ranges.

    Each thread accumulates its own n_wt buffer; the buffers are added in range order, so the
    result depends on the thread count (at float64 rounding level) but never on timing. The
    kernel runs on at most ``chunk_documents`` documents at a time and calls ``tick`` after
    each chunk (the executor's liveness signal, see the heartbeat in ``protocol``), and ``done``
    with the chunk's document count (progress; called from the worker threads). With
    ``keep_theta`` the result also holds each document's final theta.
    """
    phi = np.ascontiguousarray(phi, dtype=np.float32)
    ranges = split_documents(docs.indptr, threads) if docs.count else []
    buffers = [np.zeros(phi.shape, dtype=np.float64) for _ in ranges]
    theta = np.zeros((docs.count, phi.shape[1]) if keep_theta else (0, phi.shape[1]), dtype=np.float32)

    def run(index: int) -> tuple[float, float]:
        begin, end = ranges[index]
        loglik = weight = 0.0
        for first in range(begin, end, chunk_documents):
            part = _estep_range(docs.indptr, docs.rows, docs.weights, phi, inner, buffers[index], theta,
                                first, min(first + chunk_documents, end))
            loglik += part[0]
            weight += part[1]
            if tick is not None:
                tick()
            if done is not None:
                done(min(first + chunk_documents, end) - first)
        return loglik, weight

    if len(ranges) <= 1:
        partial = [run(i) for i in range(len(ranges))]
    else:
        with ThreadPoolExecutor(max_workers=len(ranges)) as pool:
            partial = list(pool.map(run, range(len(ranges))))
    nwt = buffers[0] if buffers else np.zeros(phi.shape, dtype=np.float64)
    for extra in buffers[1:]:
        nwt += extra
    return EStepResult(nwt=nwt, loglik=sum(p[0] for p in partial), token_weight=sum(p[1] for p in partial),
                       theta=theta if keep_theta else None)


def normalise_rows(nwt: np.ndarray, n_t: np.ndarray) -> np.ndarray:
    """The M-step for rows of n_wt: ``phi = n_wt / n_t`` as float32, BigARTM's way.

    Topics with ``n_t <= 0`` get zero columns; values below ``TINY`` become zero (see the
    module's "Zero threshold").
    """
    safe = np.where(n_t > 0, n_t, 1.0)
    phi = np.where(n_t > 0, nwt / safe, 0.0).astype(np.float32)
    phi[phi < TINY] = 0.0
    return phi


def warm_up() -> None:
    """Compile (or load from NUMBA_CACHE_DIR) the kernel before timing or heartbeats start."""
    docs = Documents(indptr=np.array([0, 1], dtype=np.int64), rows=np.zeros(1, dtype=np.int32),
                     weights=np.ones(1, dtype=np.float32))
    e_step(docs, np.ones((1, 2), dtype=np.float32), inner=1)
