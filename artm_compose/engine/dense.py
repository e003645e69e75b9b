"""A plain dense NumPy implementation of BigARTM's offline PLSA pass, for checking the kernel.

Everything is float64 and matrix-shaped (documents x words), so it is only for small corpora;
the tests compare the compiled kernel and the distributed engine against it.
"""

from __future__ import annotations

import numpy as np


def dense_pass(counts: np.ndarray, phi: np.ndarray, inner: int) -> tuple[np.ndarray, float, float]:
    """One E-step over ``counts`` (documents x words) with ``phi`` (words x topics).

    Returns ``(n_wt, loglik, token_weight)`` computed as SYSTEM.md section 3 states the pass.
    """
    counts = np.asarray(counts, dtype=np.float64)
    phi = np.asarray(phi, dtype=np.float64)
    theta = np.full((counts.shape[0], phi.shape[1]), 1.0 / phi.shape[1])
    present = counts > 0
    for _ in range(inner):
        p = theta @ phi.T
        ratio = np.divide(counts, p, out=np.zeros_like(counts), where=present & (p > 0))
        theta = theta * (ratio @ phi)
        totals = theta.sum(axis=1, keepdims=True)
        theta = np.divide(theta, totals, out=theta, where=totals > 0)
    p = theta @ phi.T
    used = present & (p > 0)
    ratio = np.divide(counts, p, out=np.zeros_like(counts), where=used)
    nwt = phi * (ratio.T @ theta)
    loglik = float((counts[used] * np.log(p[used])).sum())
    return nwt, loglik, float(counts[used].sum())


def normalize_columns(nwt: np.ndarray) -> np.ndarray:
    """The M-step: phi = n_wt / n_t (column sums), zero columns left at zero."""
    totals = nwt.sum(axis=0, keepdims=True)
    return np.divide(nwt, totals, out=np.zeros_like(nwt, dtype=np.float64), where=totals > 0)


def dense_fit(counts: np.ndarray, phi: np.ndarray, passes: int, inner: int) -> tuple[np.ndarray, list[float]]:
    """``passes`` offline passes from ``phi``: the final phi and the perplexity of each pass."""
    perplexities = []
    for _ in range(passes):
        nwt, loglik, weight = dense_pass(counts, phi, inner)
        perplexities.append(float(np.exp(-loglik / weight)))
        phi = normalize_columns(nwt)
    return phi, perplexities
