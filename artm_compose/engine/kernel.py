"""The E-step of offline PLSA exactly as BigARTM computes it, compiled with numba.

Per document d (SYSTEM.md section 3): theta_d starts uniform (1/T); ``inner`` times
``p_dw = sum_t phi_wt theta_td`` and ``theta_td <- theta_td * sum_w n_dw phi_wt / p_dw + r_td``
(r_td: theta regularizers, ``engine.regularizers``), then theta_d is clipped at zero and normalised.
With the final theta, ``n_wt += n_dw phi_wt theta_td / p_dw`` and the document adds
``n_dw ln p_dw`` to the log-likelihood of the word's class. Words with ``p_dw == 0`` add nothing to
n_wt, as in BigARTM, and the log-likelihood takes BigARTM's unigram fallback for them
(``n_dw / n_d``). Words of weight 0 (classes without weight) count nowhere.

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
# BigARTM's default eps of its sparsity scores: values below it count as zeros.
SPARSITY_EPS = np.float32(1e-37)
# Documents per kernel call: small enough to tick the heartbeat often, large enough to be free.
CHUNK_DOCUMENTS = 2000


@numba.njit(cache=True, nogil=True, fastmath=_FASTMATH, boundscheck=False)
def _estep_range(indptr, rows, weights, phi, inner, nwt, theta_out, doc_begin, doc_end,
                 theta_add, row_class, by_class, stats):  # pragma: no cover - jitted
    """E-step of documents ``[doc_begin, doc_end)``: adds to ``nwt`` and to ``stats``.

    ``theta_out`` is either empty (0 rows) or has a row per document of the whole CSR: the
    final theta of document d goes to row d. ``theta_add[i, t]`` is r_td of inner iteration i.
    ``stats`` (see ``Stats``) gets the perplexity sums per class (``row_class`` of each local row;
    the unigram fallback normalises by class when ``by_class``) and the counts of zero words and
    zero theta values.
    """
    topics = phi.shape[1]
    classes = (len(stats) - 2) // 2
    document_weight = np.zeros(classes, dtype=np.float64)
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
            # BigARTM's NormalizeThetaAgent: max(theta * n_td + r_td, 0), normalised.
            total = np.float32(0.0)
            for t in range(topics):
                theta[t] = theta[t] * ntd[t] + theta_add[iteration, t]
                if theta[t] > 0.0:
                    total += theta[t]
            inverse = np.float32(1.0) / total if total > 0.0 else np.float32(0.0)
            for t in range(topics):
                value = theta[t] * inverse
                theta[t] = value if value >= TINY else np.float32(0.0)
        for c in range(classes):
            document_weight[c] = 0.0
        for i in range(length):
            n = weights[begin + i]
            if n > 0.0:
                document_weight[row_class[rows[begin + i]] if by_class else 0] += n
        for i in range(length):
            n = weights[begin + i]
            if n == 0.0:
                continue
            c = row_class[rows[begin + i]]
            stats[classes + c] += n
            if p[i] == 0.0:  # BigARTM's perplexity falls back to the document's unigram model
                stats[c] += n * math.log(n / document_weight[c if by_class else 0])
                stats[2 * classes] += 1.0
                continue
            stats[c] += n * math.log(p[i])
            scale = ratio[i]
            out = nwt[rows[begin + i]]
            for t in range(topics):
                out[t] += scale * local[i, t] * theta[t]
        for t in range(topics):
            if theta[t] < SPARSITY_EPS:
                stats[2 * classes + 1] += 1.0
        if keep_theta:
            for t in range(topics):
                theta_out[d, t] = theta[t]


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
class Modalities:
    """What the E-step needs to know of classes and theta regularizers.

    ``row_class`` (int32 per local phi row) indexes ``classes`` perplexity slots; ``by_class``: the
    unigram fallback of a zero p_dw normalises within the word's class (BigARTM does when the
    model has class weights). ``theta_add``: r_td per inner iteration and topic (float32).
    """

    row_class: np.ndarray | None = None
    classes: int = 1
    by_class: bool = False
    theta_add: np.ndarray | None = None


@dataclass(frozen=True)
class EStepResult:
    """What one E-step over an executor's documents yields.

    ``class_loglik[c]`` is BigARTM's perplexity ``raw`` of class slot c (sum n_dw ln p_dw, a zero
    p_dw replaced by the document's unigram probability), ``class_weight[c]`` its ``normalizer``
    (sum n_dw).
    """

    nwt: np.ndarray  # float64, local rows x topics
    class_loglik: np.ndarray  # float64 per class slot
    class_weight: np.ndarray  # float64 per class slot
    zero_words: int  # words with p_dw == 0 (perplexity's zero_words)
    zero_theta: int  # theta values below SPARSITY_EPS (sparsity_theta's zero_topics)
    theta: np.ndarray | None = None  # float32, documents x topics, when asked for

    @property
    def loglik(self) -> float:
        return float(self.class_loglik.sum())

    @property
    def token_weight(self) -> float:
        return float(self.class_weight.sum())


def split_documents(indptr: np.ndarray, parts: int) -> list[tuple[int, int]]:
    """Contiguous non-empty document ranges with about equal non-zero counts, at most ``parts``."""
    return [r for r in balanced_ranges(np.diff(indptr), parts) if r[0] < r[1]]


def e_step(docs: Documents, phi: np.ndarray, inner: int, threads: int = 1,
           tick: Callable[[], None] | None = None, chunk_documents: int = CHUNK_DOCUMENTS,
           keep_theta: bool = False, done: Callable[[int], None] | None = None,
           modalities: Modalities = Modalities()) -> EStepResult:
    """Run the E-step over all documents; ``threads`` > 1 splits documents into contiguous ranges.

    Each thread accumulates its own n_wt buffer; the buffers are added in range order, so the
    result depends on the thread count (at float64 rounding level) but never on timing. The
    kernel runs on at most ``chunk_documents`` documents at a time and calls ``tick`` after
    each chunk (the executor's liveness signal, see the heartbeat in ``protocol``), and ``done``
    with the chunk's document count (progress; called from the worker threads). With
    ``keep_theta`` the result also holds each document's final theta.
    """
    phi = np.ascontiguousarray(phi, dtype=np.float32)
    topics = phi.shape[1]
    ranges = split_documents(docs.indptr, threads) if docs.count else []
    buffers = [np.zeros(phi.shape, dtype=np.float64) for _ in ranges]
    classes = modalities.classes
    stats = [np.zeros(2 * classes + 2, dtype=np.float64) for _ in ranges]
    theta = np.zeros((docs.count, topics) if keep_theta else (0, topics), dtype=np.float32)
    row_class = (np.zeros(phi.shape[0], dtype=np.int32) if modalities.row_class is None
                 else np.ascontiguousarray(modalities.row_class, dtype=np.int32))
    theta_add = np.zeros((max(inner, 1), topics), dtype=np.float32)
    if modalities.theta_add is not None:
        theta_add[:inner] = modalities.theta_add[:inner]

    def run(index: int) -> None:
        begin, end = ranges[index]
        for first in range(begin, end, chunk_documents):
            _estep_range(docs.indptr, docs.rows, docs.weights, phi, inner, buffers[index], theta,
                         first, min(first + chunk_documents, end), theta_add, row_class, modalities.by_class,
                         stats[index])
            if tick is not None:
                tick()
            if done is not None:
                done(min(first + chunk_documents, end) - first)

    if len(ranges) <= 1:
        for i in range(len(ranges)):
            run(i)
    else:
        with ThreadPoolExecutor(max_workers=len(ranges)) as pool:
            list(pool.map(run, range(len(ranges))))
    nwt = buffers[0] if buffers else np.zeros(phi.shape, dtype=np.float64)
    for extra in buffers[1:]:
        nwt += extra
    total = np.zeros(2 * classes + 2, dtype=np.float64)
    for part in stats:
        total += part
    return EStepResult(nwt=nwt, class_loglik=total[:classes], class_weight=total[classes:2 * classes],
                       zero_words=int(total[2 * classes]), zero_theta=int(total[2 * classes + 1]),
                       theta=theta if keep_theta else None)


def normalise_rows(nwt: np.ndarray, n_t: np.ndarray) -> np.ndarray:
    """The M-step for rows of n_wt (+ r_wt): ``phi = max(n_wt, 0) / n_t`` as float32, BigARTM's way.

    ``n_t`` is per topic, or per row and topic (each row's class normaliser). Where ``n_t <= 0``
    phi is zero; values below ``TINY`` (negative ones included) become zero (see the module's
    "Zero threshold").
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
