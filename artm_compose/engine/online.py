"""Online EM as BigARTM 0.9.2's ``fit_online`` does it, spread over the executors.

BigARTM (``ARTM.fit_online`` and the master's online algorithm, read in its source and checked
against the wheel): the batches of a collection pass are cut into updates of ``update_every``
batches (the last one shorter). For update number ``k`` (counted from 1 over the model's whole life,
so a second pass goes on counting; a short last update counts as a whole one) every batch of the
update runs the E-step with the same phi, their counters are summed into ``n_hat``, and

    rho = (tau0 + k) ** -kappa,    n_wt <- (1 - rho) * n_wt + rho * n_hat,    phi = n_wt normalised

(regularizers, when there are any, act on the blended n_wt before normalisation). Before the first
update ``n_wt`` is the initial phi itself: BigARTM initialises its n_wt matrix exactly as its p_wt
(normalised random columns), so the initial phi keeps a weight ``prod(1 - rho)`` in later models.
The perplexity BigARTM reports per update is that update's documents under the phi they used.

Here: one update is ``update_every`` batches *of every executor*: each executor takes its next
``update_every`` batches (in file order within its batch range), all executors run their E-steps in
parallel with the same committed phi, the token-range owners blend their rows with ``rho`` and
normalise, and the master commits the new phi: one BigARTM update of up to
``executors x update_every`` batches. The updates of a pass are ``max over executors of
ceil(batches / update_every)``; an executor whose batches are used up sits the last ones out. The
perplexity of a pass is over all its documents, each under the phi its update used.

What depends on the topology: which batches share an update, so the executor count and the batch
ranges (a single executor gives BigARTM's ``fit_online(update_every=...)`` over the batches in file
order; E executors give ``fit_online`` with update ``k`` holding the k-th group of every executor's
batches). What does not: the node count, threads, timing and the order in which contributions arrive
(sums run in executor-id order).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from artm_compose.errors import ConfigError

if TYPE_CHECKING:  # the kernel (numba) loads only where documents are processed; config checks stay light
    from artm_compose.engine.corpus import LocalCorpus
    from artm_compose.engine.kernel import Documents

MODES = ("offline", "online")
# BigARTM 0.9.2's fit_online defaults.
DEFAULT_UPDATE_EVERY = 1
DEFAULT_TAU0 = 1024.0
DEFAULT_KAPPA = 0.7


def check_online(mode: str, update_every: int, tau0: float, kappa: float) -> None:
    """Refuse online parameters BigARTM's formulas cannot use, naming the value."""
    if mode not in MODES:
        raise ConfigError(f"mode={mode!r} is invalid: choose one of {', '.join(MODES)}")
    if isinstance(update_every, bool) or not isinstance(update_every, int) or update_every < 1:
        raise ConfigError(f"update_every={update_every!r} is invalid: a whole number of batches >= 1")
    for name, value in (("tau0", tau0), ("kappa", kappa)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ConfigError(f"{name}={value!r} is invalid: a finite number >= 0 (rho = (tau0 + k) ** -kappa "
                              f"must lie in (0, 1])")


def rho(tau0: float, kappa: float, update_count: int) -> float:
    """The weight of update ``update_count`` (1-based, over the model's life): BigARTM's apply weight."""
    return float((tau0 + update_count) ** -kappa)


def updates_in_pass(batch_counts: Sequence[int], update_every: int) -> int:
    """Updates in one pass: enough for the executor with the most batches."""
    return max((math.ceil(count / update_every) for count in batch_counts), default=0)


def update_batches(update: int, update_every: int, batch_count: int) -> tuple[int, int]:
    """An executor's local batch range ``[begin, end)`` in update ``update`` (0-based within the pass)."""
    return min(update * update_every, batch_count), min((update + 1) * update_every, batch_count)


@dataclass(frozen=True)
class Update:
    """One online update as the master sends it: its index in the pass, its count over the model's life."""

    index: int
    count: int
    update_every: int
    tau0: float
    kappa: float

    @property
    def apply_weight(self) -> float:
        return rho(self.tau0, self.kappa, self.count)

    def e_step_fields(self) -> dict[str, int]:
        return {"update": self.index, "update_every": self.update_every}

    def aggregate_fields(self) -> dict[str, float]:
        return {"apply": self.apply_weight, "decay": 1.0 - self.apply_weight}


def update_documents(corpus: LocalCorpus, update: int, update_every: int) -> tuple[Documents, np.ndarray]:
    """The documents of the executor's batches in ``update``, renumbered to the phi rows they use.

    Returns the documents (CSR over the used rows) and ``used``: indices into ``corpus.rows``.
    """
    from artm_compose.engine.kernel import Documents

    first, last = update_batches(update, update_every, len(corpus.batch_starts) - 1)
    doc_begin, doc_end = int(corpus.batch_starts[first]), int(corpus.batch_starts[last])
    docs = corpus.docs
    begin, end = int(docs.indptr[doc_begin]), int(docs.indptr[doc_end])
    used, local = np.unique(docs.rows[begin:end], return_inverse=True)
    subset = Documents(indptr=np.ascontiguousarray(docs.indptr[doc_begin:doc_end + 1] - begin),
                       rows=local.astype(np.int32).reshape(-1), weights=np.ascontiguousarray(docs.weights[begin:end]))
    return subset, used.astype(np.int64)


def blend(previous: np.ndarray, n_hat: np.ndarray, decay: float, apply: float) -> np.ndarray:
    """BigARTM's merge of counters: ``decay * previous + apply * n_hat`` (float64)."""
    return decay * np.asarray(previous, dtype=np.float64) + apply * np.asarray(n_hat, dtype=np.float64)


class OnlineSchedule:
    """The master's side: the updates of each pass and what they scored (``scores.json`` key ``online``).

    ``summary`` holds the parameters, the updates per pass, and each update's count, apply weight,
    log-likelihood, token weight and perplexity (BigARTM's per-synchronisation perplexity).
    """

    def __init__(self, update_every: int, tau0: float, kappa: float):
        check_online("online", update_every, tau0, kappa)
        self.update_every, self.tau0, self.kappa = update_every, float(tau0), float(kappa)
        self.count = 0
        self.summary: dict[str, object] = {"update_every": update_every, "tau0": self.tau0, "kappa": self.kappa,
                                           "updates_per_pass": [], "updates": []}

    def next_pass(self, batch_counts: Sequence[int]) -> list[Update]:
        """The updates of the next pass, for executors holding ``batch_counts`` batches (id order)."""
        updates = []
        for index in range(updates_in_pass(batch_counts, self.update_every)):
            self.count += 1
            updates.append(Update(index=index, count=self.count, update_every=self.update_every, tau0=self.tau0,
                                  kappa=self.kappa))
        self.summary["updates_per_pass"].append(len(updates))  # type: ignore[union-attr]
        return updates

    def record(self, update: Update, loglik: float, weight: float) -> None:
        perplexity = float(np.exp(-loglik / weight)) if weight > 0 else float("nan")
        self.summary["updates"].append({"count": update.count, "rho": update.apply_weight,  # type: ignore[union-attr]
                                        "loglik": loglik, "token_weight": weight, "perplexity": perplexity})
