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
run in float32 on explicit 16-lane vectors (``engine.simd``) with fused multiply-adds; their
summation order is fixed by the code (not by timing), so results are reproducible run to run.
n_wt is accumulated in float64 and rounded to float32 once at the end; the log-likelihood and
token weight are float64. No fast-math
flag lets zeros, infinities or logs deviate from IEEE.

Layout: phi is copied once per E-step into rows of ``padded`` values (the topics, then zeros up
to a multiple of ``LANES``), values below ``TINY`` zeroed (``padded_phi``). A document is a list
of row offsets, its length rounded up to four words with words of weight 0 (so ratio 0). Each
inner iteration makes two sweeps over the document's rows (a few KiB, in L1): the dot products
``p_dw``, four words at a time so that theta is loaded once for four rows and the four sums are
reduced by one shuffle tree; then ``n_td = sum_w (n_dw / p_dw) phi_w``, with the divisions
done 16 at a time before, and the sums held in registers over all words (``_topic_sums``).
Padded topics have zero phi, so their p_dw terms, n_td and theta stay zero.

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

from artm_compose.engine import simd
from artm_compose.engine.simd import LANES
from artm_compose.ranges import balanced_ranges

# Reassociation and FMA contraction only, for the scalar loops (the vector code is explicit).
_FASTMATH = {"reassoc", "contract"}
# Words per step of the loops over a document (see "Layout" above).
WORDS = 4
# BigARTM's zero: phi and theta values below it are set to 0 (see "Zero threshold" above).
TINY = np.float32(1e-16)
# BigARTM's default eps of its sparsity scores: values below it count as zeros.
SPARSITY_EPS = np.float32(1e-37)
# The kernel aligns its vector data to this many bytes.
CACHE_LINE = 64
# Documents per kernel call: small enough to tick the heartbeat often, large enough to be free.
CHUNK_DOCUMENTS = 2000


@numba.njit(cache=True, nogil=True, fastmath=_FASTMATH, boundscheck=False)
def _estep_range(indptr, rows, weights, phi, padded, topics, inner, nwt, theta_out, doc_begin, doc_end,
                 theta_add, row_class, by_class, stats, theta, ntd):  # pragma: no cover - jitted
    """E-step of documents ``[doc_begin, doc_end)``: adds to ``nwt`` and to ``stats``.

    ``phi`` is the padded, flushed phi (see ``padded_phi``) as one flat array of rows of
    ``padded`` values; ``nwt`` (float64) has the same layout. ``theta_out`` is either empty (0 rows) or has a row per document of the whole
    CSR: the final theta of document d goes to row d. ``theta_add`` holds r_td of inner iteration
    i at ``i * padded``. ``stats`` (see ``Stats``) gets the perplexity sums per class
    (``row_class`` of each local row; the unigram fallback normalises by class when
    ``by_class``) and the counts of zero words and zero theta values. ``theta`` and ``ntd``:
    scratch of ``padded`` values each, starting on a cache line.
    """
    classes = (len(stats) - 2) // 2
    document_weight = np.zeros(classes, dtype=np.float64)
    longest = 0
    for d in range(doc_begin, doc_end):
        longest = max(longest, indptr[d + 1] - indptr[d])
    longest = (longest + LANES - 1) // LANES * LANES  # whole vectors
    offset = np.zeros(longest, dtype=np.int64)  # where each word's phi row starts in ``phi``
    weight = np.zeros(longest, dtype=np.float32)  # n_dw, zero after the document's words
    p = np.zeros(longest, dtype=np.float32)
    ratio = np.zeros(longest, dtype=np.float32)
    uniform = np.float32(1.0) / np.float32(topics)
    keep_theta = theta_out.shape[0] > 0
    for d in range(doc_begin, doc_end):
        begin = indptr[d]
        length = indptr[d + 1] - begin
        steps = (length + WORDS - 1) // WORDS * WORDS
        for i in range(length):
            offset[i] = rows[begin + i] * padded
            weight[i] = weights[begin + i]
        for i in range(length, steps):  # padding words: any row (the first); n_dw = 0 makes their ratio 0
            offset[i] = 0
        for i in range(length, (length + LANES - 1) // LANES * LANES):  # as far as the divisions read
            weight[i] = 0.0
        for t in range(topics):
            theta[t] = uniform
        for t in range(topics, padded):
            theta[t] = 0.0
        for iteration in range(inner + 1):
            _word_probabilities(phi, offset, steps, theta, padded, p)
            for i in range(0, steps, LANES):
                simd.store(ratio, i, simd.ratio(simd.load(weight, i), simd.load(p, i)))
            if iteration == inner:
                break
            _topic_sums(phi, offset, ratio, steps, padded, ntd)
            _update_theta(theta, ntd, theta_add, iteration * padded, padded)
        for c in range(classes):
            document_weight[c] = 0.0
        for i in range(length):
            n = weight[i]
            if n > 0.0:
                document_weight[row_class[rows[begin + i]] if by_class else 0] += n
        for i in range(length):
            n = weight[i]
            if n == 0.0:
                continue
            c = row_class[rows[begin + i]]
            stats[classes + c] += n
            if p[i] == 0.0:  # BigARTM's perplexity falls back to the document's unigram model
                stats[c] += n * math.log(n / document_weight[c if by_class else 0])
                stats[2 * classes] += 1.0
                continue
            stats[c] += n * math.log(p[i])
            scale = simd.splat(ratio[i])
            row = offset[i]
            for k in range(0, padded, LANES):
                simd.add_to_f64(nwt, row + k, simd.mul(simd.mul(scale, simd.load(phi, row + k)), simd.load(theta, k)))
        for t in range(topics):
            if theta[t] < SPARSITY_EPS:
                stats[2 * classes + 1] += 1.0
        if keep_theta:
            for t in range(topics):
                theta_out[d, t] = theta[t]


@numba.njit(cache=True, nogil=True, boundscheck=False, inline="always")
def _word_probabilities(phi, offset, steps, theta, padded, p):  # pragma: no cover - jitted
    """``p_dw = sum_t phi_wt theta_t`` of a document's words (``steps``, a multiple of four).

    Four words at a time: four vector sums over the topics (theta read once for the four),
    reduced together by one shuffle tree.
    """
    for i in range(0, steps, WORDS):
        a, b, c, e = offset[i], offset[i + 1], offset[i + 2], offset[i + 3]
        sa, sb, sc, se = simd.zero(), simd.zero(), simd.zero(), simd.zero()
        for k in range(0, padded, LANES):
            th = simd.load(theta, k)
            sa = simd.fma(simd.load(phi, a + k), th, sa)
            sb = simd.fma(simd.load(phi, b + k), th, sb)
            sc = simd.fma(simd.load(phi, c + k), th, sc)
            se = simd.fma(simd.load(phi, e + k), th, se)
        simd.totals4(p, i, sa, sb, sc, se)


@numba.njit(cache=True, nogil=True, boundscheck=False, inline="always")
def _topic_sums(phi, offset, ratio, steps, padded, ntd):  # pragma: no cover - jitted
    """``n_td = sum_w ratio_w phi_w`` over a document's words (``steps``, a multiple of four).

    The sums stay in registers over all words, four vectors (64 topics) at a time, each as four
    partial sums (words i mod 4) so that a fused multiply-add seldom waits for the previous one;
    the last topics (fewer than 64) go one vector at a time.
    """
    k = 0
    while k + 4 * LANES <= padded:
        a0, a1, a2, a3 = simd.zero(), simd.zero(), simd.zero(), simd.zero()
        b0, b1, b2, b3 = simd.zero(), simd.zero(), simd.zero(), simd.zero()
        c0, c1, c2, c3 = simd.zero(), simd.zero(), simd.zero(), simd.zero()
        e0, e1, e2, e3 = simd.zero(), simd.zero(), simd.zero(), simd.zero()
        for i in range(0, steps, WORDS):
            a0, a1, a2, a3 = _add_row(phi, offset[i] + k, ratio[i], a0, a1, a2, a3)
            b0, b1, b2, b3 = _add_row(phi, offset[i + 1] + k, ratio[i + 1], b0, b1, b2, b3)
            c0, c1, c2, c3 = _add_row(phi, offset[i + 2] + k, ratio[i + 2], c0, c1, c2, c3)
            e0, e1, e2, e3 = _add_row(phi, offset[i + 3] + k, ratio[i + 3], e0, e1, e2, e3)
        simd.store(ntd, k, simd.add(simd.add(a0, b0), simd.add(c0, e0)))
        simd.store(ntd, k + LANES, simd.add(simd.add(a1, b1), simd.add(c1, e1)))
        simd.store(ntd, k + 2 * LANES, simd.add(simd.add(a2, b2), simd.add(c2, e2)))
        simd.store(ntd, k + 3 * LANES, simd.add(simd.add(a3, b3), simd.add(c3, e3)))
        k += 4 * LANES
    while k < padded:
        s0, s1, s2, s3 = simd.zero(), simd.zero(), simd.zero(), simd.zero()
        for i in range(0, steps, WORDS):
            s0 = simd.fma(simd.load(phi, offset[i] + k), simd.splat(ratio[i]), s0)
            s1 = simd.fma(simd.load(phi, offset[i + 1] + k), simd.splat(ratio[i + 1]), s1)
            s2 = simd.fma(simd.load(phi, offset[i + 2] + k), simd.splat(ratio[i + 2]), s2)
            s3 = simd.fma(simd.load(phi, offset[i + 3] + k), simd.splat(ratio[i + 3]), s3)
        simd.store(ntd, k, simd.add(simd.add(s0, s1), simd.add(s2, s3)))
        k += LANES


@numba.njit(cache=True, nogil=True, boundscheck=False, inline="always")
def _add_row(phi, at, scale, s0, s1, s2, s3):  # pragma: no cover - jitted
    """The four sums plus ``scale`` times the 64 values of ``phi`` from ``at``."""
    factor = simd.splat(scale)
    return (simd.fma(simd.load(phi, at), factor, s0), simd.fma(simd.load(phi, at + LANES), factor, s1),
            simd.fma(simd.load(phi, at + 2 * LANES), factor, s2), simd.fma(simd.load(phi, at + 3 * LANES), factor, s3))


@numba.njit(cache=True, nogil=True, boundscheck=False, inline="always")
def _update_theta(theta, ntd, theta_add, add_at, padded):  # pragma: no cover - jitted
    """BigARTM's NormalizeThetaAgent: max(theta * n_td + r_td, 0), normalised, and
    values below ``TINY`` set to zero. Padding topics stay zero (their n_td and r_td are zero)."""
    positive = simd.zero()
    for k in range(0, padded, LANES):
        value = simd.fma(simd.load(theta, k), simd.load(ntd, k), simd.load(theta_add, add_at + k))
        simd.store(theta, k, value)
        positive = simd.add(positive, simd.keep_at_least(value, np.float32(0.0)))
    total = simd.total(positive)
    inverse = simd.splat(np.float32(1.0) / total if total > 0.0 else np.float32(0.0))
    for k in range(0, padded, LANES):
        simd.store(theta, k, simd.keep_at_least(simd.mul(simd.load(theta, k), inverse), TINY))


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

    nwt: np.ndarray  # float32 (summed in float64, rounded once), local rows x topics
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
    topics = phi.shape[1]
    padded = -(-topics // LANES) * LANES
    flat_phi = padded_phi(phi, padded)
    ranges = split_documents(docs.indptr, threads) if docs.count else []
    buffers = [aligned_zeros(len(phi) * padded, np.float64) for _ in ranges]
    classes = modalities.classes
    stats = [np.zeros(2 * classes + 2, dtype=np.float64) for _ in ranges]
    theta = np.zeros((docs.count, topics) if keep_theta else (0, topics), dtype=np.float32)
    row_class = (np.zeros(phi.shape[0], dtype=np.int32) if modalities.row_class is None
                 else np.ascontiguousarray(modalities.row_class, dtype=np.int32))
    theta_add = aligned_zeros(max(inner, 1) * padded, np.float32)
    if modalities.theta_add is not None:
        theta_add.reshape(-1, padded)[:inner, :topics] = modalities.theta_add[:inner]

    def run(index: int) -> None:
        begin, end = ranges[index]
        scratch = aligned_zeros(padded, np.float32), aligned_zeros(padded, np.float32)
        for first in range(begin, end, chunk_documents):
            _estep_range(docs.indptr, docs.rows, docs.weights, flat_phi, padded, topics, inner, buffers[index],
                         theta, first, min(first + chunk_documents, end), theta_add, row_class,
                         modalities.by_class, stats[index], *scratch)
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
    if not buffers:
        buffers = [np.zeros(len(phi) * padded, dtype=np.float64)]
    for extra in buffers[1:]:
        buffers[0] += extra
    total = np.zeros(2 * classes + 2, dtype=np.float64)
    for part in stats:
        total += part
    return EStepResult(nwt=_narrow_in_place(buffers[0], len(phi), padded, topics),
                       class_loglik=total[:classes], class_weight=total[classes:2 * classes],
                       zero_words=int(total[2 * classes]), zero_theta=int(total[2 * classes + 1]),
                       theta=theta if keep_theta else None)


def aligned_zeros(size: int, dtype: type) -> np.ndarray:
    """A 1-D zero array whose data starts on a cache line (the kernel's vectors span whole lines)."""
    itemsize = np.dtype(dtype).itemsize
    raw = np.zeros(size + CACHE_LINE // itemsize, dtype=dtype)
    skip = (-raw.ctypes.data % CACHE_LINE) // itemsize
    return raw[skip:skip + size]


def padded_phi(phi: np.ndarray, padded: int) -> np.ndarray:
    """The kernel's phi: rows of ``padded`` float32 values (zeros after the topics) as one flat array,
    values below ``TINY`` set to zero."""
    flat = aligned_zeros(len(phi) * padded, np.float32)
    _copy_flushed(np.asarray(phi, dtype=np.float32), flat, padded)
    return flat


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _copy_flushed(phi, flat, padded):  # pragma: no cover - jitted
    """``flat[r * padded + t] = phi[r, t]``, or 0 below ``TINY`` (in place: no mask as large as phi)."""
    rows, topics = phi.shape
    for r in range(rows):
        for t in range(topics):
            value = phi[r, t]
            flat[r * padded + t] = value if value >= TINY else np.float32(0.0)


def _narrow_in_place(buffer: np.ndarray, rows: int, padded: int, topics: int) -> np.ndarray:
    """The padded float64 n_wt in ``buffer`` as a ``rows x topics`` float32 array in the same memory.

    Rounded once, after all the sums. The executor keeps float32 increments anyway, and writing
    them over the float64 buffer keeps the E-step's peak memory at what it was with float64
    results (phi, the kernel's phi, one float64 buffer).
    """
    narrow = buffer.view(np.float32)[:rows * topics]
    _narrow(buffer, narrow, rows, padded, topics)
    return narrow.reshape(rows, topics)


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _narrow(wide, narrow, rows, padded, topics):  # pragma: no cover - jitted
    """``narrow[r * topics + t] = wide[r * padded + t]``; ``narrow`` may overlap the start of ``wide``:
    element i of ``narrow`` overwrites (half of) element i // 2 of ``wide``, read before (i // 2 <= i)."""
    for r in range(rows):
        for t in range(topics):
            narrow[r * topics + t] = np.float32(wide[r * padded + t])


def normalise_rows(nwt: np.ndarray, n_t: np.ndarray) -> np.ndarray:
    """The M-step for rows of n_wt (+ r_wt): ``phi = max(n_wt, 0) / n_t`` as float32, BigARTM's way.

    ``n_t`` is per topic, or per row and topic (each row's class normaliser). Where ``n_t <= 0``
    phi is zero; values below ``TINY`` (negative ones included) become zero (see the module's
    "Zero threshold").
    """
    nwt = np.ascontiguousarray(nwt, dtype=np.float64)
    n_t = np.ascontiguousarray(n_t, dtype=np.float64)
    phi = np.empty(nwt.shape, dtype=np.float32)
    _normalise(nwt, n_t.reshape(-1, nwt.shape[1]), phi)
    return phi


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _normalise(nwt, n_t, phi):  # pragma: no cover - jitted
    """``normalise_rows`` in one pass, without temporaries; ``n_t`` has one row, or one per row of nwt."""
    per_row = n_t.shape[0] > 1
    for r in range(nwt.shape[0]):
        normaliser = n_t[r if per_row else 0]
        for t in range(nwt.shape[1]):
            if normaliser[t] > 0.0:
                value = np.float32(nwt[r, t] / normaliser[t])
                phi[r, t] = np.float32(0.0) if value < TINY else value
            else:
                phi[r, t] = 0.0


def warm_up() -> None:
    """Compile (or load from NUMBA_CACHE_DIR) the kernel before timing or heartbeats start."""
    docs = Documents(indptr=np.array([0, 1], dtype=np.int64), rows=np.zeros(1, dtype=np.int32),
                     weights=np.ones(1, dtype=np.float32))
    e_step(docs, np.ones((1, 2), dtype=np.float32), inner=1)
    normalise_rows(np.ones((1, 2)), np.ones(2))
