"""BigARTM 0.9.2's quality scores with their default parameters, as sums that split over executors.

Read in BigARTM's source (``src/artm/score/*.cc``) and checked against the wheel:

- ``perplexity``: ``exp(-raw / normalizer)`` over all tokens when the model has no class weights;
  with class weights ``exp(-sum_c raw_c / normalizer_c)`` over the weighted classes (raw and
  normalizer both carry the class weight). ``perplexity_by_class[c]`` is ``exp(-raw_c / normalizer_c)``
  (``PerplexityScore(class_ids=[c])``). Computed by the E-step with the phi the pass started from.
- ``sparsity_theta``: the share of theta values below 1e-37 over the pass's documents.
- ``sparsity_phi``: the share of ``@default_class`` phi values below 1e-37, after the pass.
- ``kernel_size``/``kernel_purity``/``kernel_contrast`` (TopicKernelScore, threshold 0.1, class
  ``@default_class``): with ``n_t`` the positive column sums of the pass's n_wt for that class and
  ``p(t|w) = p_wt n_t / sum_s p_ws n_s``, a topic's kernel is the tokens with ``p(t|w) >= 0.1``; its
  size, the sum of their p_wt (purity) and the mean of their p(t|w) (contrast, 0 for an empty
  kernel) are averaged over the topics.
- ``top_tokens``: the 10 ``@default_class`` tokens of highest p_wt per topic, at the end.

The token-range owners compute the phi-side sums over their rows (:func:`phi_partials`); the
master adds them in executor order (:func:`phi_scores`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from artm_compose.data.batches import DEFAULT_CLASS
from artm_compose.engine.chunks import row_blocks

# "all": every score; "basic": the ones the E-step yields for free (perplexity, sparsity_theta).
SCORE_SETS = ("all", "basic")
SCORE_CLASS = DEFAULT_CLASS
SPARSITY_EPS = 1e-37
KERNEL_THRESHOLD = 0.1
TOP_TOKENS = 10


def perplexity(class_loglik: Sequence[float], class_weight: Sequence[float], by_class: bool) -> float:
    """The pass's perplexity from per-class raw/normalizer sums (see the module docstring)."""
    raw = np.asarray(class_loglik, dtype=np.float64)
    normalizer = np.asarray(class_weight, dtype=np.float64)
    if by_class:
        present = normalizer > 0
        return float(np.exp(-(raw[present] / normalizer[present]).sum())) if present.any() else float("nan")
    total = normalizer.sum()
    return float(np.exp(-raw.sum() / total)) if total > 0 else float("nan")


def perplexity_by_class(classes: Sequence[str], class_loglik: Sequence[float],
                        class_weight: Sequence[float]) -> dict[str, float]:
    """``exp(-raw_c / normalizer_c)`` for every class with tokens in the pass."""
    return {c: float(np.exp(-raw / weight)) for c, raw, weight in zip(classes, class_loglik, class_weight)
            if weight > 0}


def class_positive_sums(values: np.ndarray, slots: np.ndarray, classes: int) -> np.ndarray:
    """BigARTM's n_t per class: per topic, the sum of the positive values of the rows whose class
    slot (``slots``, one per row) is that class; ``classes x topics``."""
    sums = np.zeros((classes, values.shape[1]), dtype=np.float64)
    for rows in row_blocks(len(values), values.shape[1]):
        block, block_slots = values[rows], slots[rows]
        positive = np.where(block > 0, block, 0.0)
        for slot in range(classes):
            sums[slot] += positive[block_slots == slot].sum(axis=0)
    return sums


def phi_partials(phi: np.ndarray, in_score_class: np.ndarray, kernel_n_t: np.ndarray) -> dict[str, Any]:
    """An owner's share of the phi scores: its rows of ``phi`` that are of the score class."""
    topics = phi.shape[1]
    n_t = np.asarray(kernel_n_t, dtype=np.float64)
    zero_tokens = class_tokens = 0
    size, purity, contrast = np.zeros(topics), np.zeros(topics), np.zeros(topics)
    for block in row_blocks(len(phi), topics):
        rows = phi[block][in_score_class[block]].astype(np.float64)
        weighted = rows * n_t
        p_w = weighted.sum(axis=1, keepdims=True)
        p_tw = np.divide(weighted, p_w, out=np.zeros_like(weighted), where=p_w > 0)
        kernel = p_tw >= KERNEL_THRESHOLD
        zero_tokens += int((np.abs(rows) < SPARSITY_EPS).sum())
        class_tokens += len(rows)
        size += kernel.sum(axis=0)
        purity += np.where(kernel, rows, 0.0).sum(axis=0)
        contrast += np.where(kernel, p_tw, 0.0).sum(axis=0)
    return {"zero_tokens": zero_tokens, "class_tokens": class_tokens, "kernel_size": size.tolist(),
            "kernel_purity": purity.tolist(), "kernel_contrast": contrast.tolist()}


def phi_scores(partials: Sequence[Mapping[str, Any]], topics: int) -> dict[str, float]:
    """sparsity_phi and the TopicKernelScore averages from the owners' partials."""
    zero = sum(p["zero_tokens"] for p in partials)
    tokens = sum(p["class_tokens"] for p in partials)
    size = np.zeros(topics)
    purity = np.zeros(topics)
    contrast = np.zeros(topics)
    for part in partials:
        size += part["kernel_size"]
        purity += part["kernel_purity"]
        contrast += part["kernel_contrast"]
    contrast = np.divide(contrast, size, out=np.zeros(topics), where=size > SPARSITY_EPS)
    return {"sparsity_phi": zero / (tokens * topics) if tokens else float("nan"),
            "kernel_size": float(size.mean()), "kernel_purity": float(purity.mean()),
            "kernel_contrast": float(contrast.mean())}


def top_tokens(phi: np.ndarray, tokens: Sequence[str], class_ids: Sequence[str],
               count: int = TOP_TOKENS) -> list[list[str]]:
    """Per topic, the ``count`` score-class tokens of highest p_wt (ties: vocabulary order)."""
    rows = np.flatnonzero(np.asarray(class_ids) == SCORE_CLASS)
    result = []
    for topic in range(phi.shape[1]):
        order = np.argsort(-phi[rows, topic], kind="stable")[:count]
        result.append([tokens[rows[i]] for i in order])
    return result
