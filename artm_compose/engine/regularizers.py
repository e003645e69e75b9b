"""BigARTM 0.9.2's regularizers and class weights, as plain specs and pure numpy.

Read in BigARTM's source (``src/artm/regularizer/*.cc``, ``core/phi_matrix_operations.cc``,
``core/processor.cc``) and checked against the wheel (tests/engine/test_engine_regularizers.py).
With the default (constant) transform and no dictionary:

- ``SmoothSparsePhiRegularizer``: ``r_wt = tau`` for the tokens of its ``class_ids`` (all classes
  when none) and its ``topic_names`` (all topics when none). ``tau > 0`` smooths, ``< 0`` sparsifies.
- ``DecorrelatorPhiRegularizer``: ``r_wt = -tau * p_wt * sum_{s != t} p_ws`` over its topics, with the
  phi the pass started from.
- ``SmoothSparseThetaRegularizer``: in every inner iteration ``r_td = tau * alpha_iter[i]`` on its
  topics (``alpha_iter`` defaults to ones), added to ``theta_td * n_td`` before theta is normalised.

Relative regularization (``gamma``, phi regularizers): tau is multiplied, per class and topic, by
``gamma n_t / r_t + (1 - gamma) n / r`` with n_t the positive column sums of n_wt over the class's tokens,
r_t those of the regularizer's |r_wt|, and n, r their sums over its topics (``relative_coefficients``).

M-step: ``p_wt = max(n_wt + r_wt, 0) / n_t`` with ``n_t`` the positive sums per topic *per class*
(every modality is normalised on its own); values below 1e-16 become 0. E-step: theta is
``max(theta * n_td + r_td, 0)`` normalised. Class weights (``class_ids``, as ``artm.ARTM(class_ids=)``)
multiply every token's n_dw; when they are given, tokens of classes not listed get weight 0.

Shorthand (CLI ``--regularizer`` and the master's flag): ``Type:key=value,key=value`` with lists
as ``a|b``, e.g. ``SmoothSparsePhiRegularizer:tau=-0.1,class_ids=@default_class|@tag``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from artm_compose.errors import ConfigError

SMOOTH_SPARSE_PHI = "SmoothSparsePhiRegularizer"
SMOOTH_SPARSE_THETA = "SmoothSparseThetaRegularizer"
DECORRELATOR_PHI = "DecorrelatorPhiRegularizer"

PHI_TYPES = (SMOOTH_SPARSE_PHI, DECORRELATOR_PHI)
THETA_TYPES = (SMOOTH_SPARSE_THETA,)
# The parameters each type takes (BigARTM's names); ``name`` is accepted and only labels it.
PARAMETERS = {
    SMOOTH_SPARSE_PHI: ("name", "tau", "gamma", "topic_names", "class_ids"),
    DECORRELATOR_PHI: ("name", "tau", "gamma", "topic_names", "class_ids"),
    SMOOTH_SPARSE_THETA: ("name", "tau", "topic_names", "alpha_iter"),
}
# BigARTM parameters refused by name rather than as unknown, so the message says why.
NOT_SUPPORTED = {"dictionary": "dictionaries in regularizers are not supported yet"}


@dataclass(frozen=True)
class Regularizer:
    """One regularizer: BigARTM's type name and parameters; empty tuples mean "all"."""

    type: str
    tau: float
    topic_names: tuple[str, ...] = ()
    class_ids: tuple[str, ...] = ()
    alpha_iter: tuple[float, ...] = ()
    name: str = ""
    gamma: float | None = None  # phi regularizers: BigARTM's relative regularization

    @property
    def label(self) -> str:
        return self.name or self.type

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"type": self.type, "tau": self.tau}
        if self.gamma is not None:
            data["gamma"] = self.gamma
        for key in ("topic_names", "class_ids", "alpha_iter"):
            if getattr(self, key):
                data[key] = list(getattr(self, key))
        if self.name:
            data["name"] = self.name
        return data

    def shorthand(self) -> str:
        """The ``Type:key=value,...`` form that :func:`parse_shorthand` reads back."""
        parts = [f"tau={self.tau!r}"] + ([f"gamma={self.gamma!r}"] if self.gamma is not None else [])
        for key in ("topic_names", "class_ids", "alpha_iter"):
            values = getattr(self, key)
            if values:
                parts.append(f"{key}=" + "|".join(repr(v) if isinstance(v, float) else v for v in values))
        if self.name:
            parts.append(f"name={self.name}")
        return f"{self.type}:" + ",".join(parts)


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool):
        raise ConfigError(f"{what}={value!r} is not a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{what}={value!r} is not a number") from None
    if not math.isfinite(number):
        raise ConfigError(f"{what}={value!r} is not a finite number")
    return number


def _names(value: Any, what: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [v for v in value.split("|") if v]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{what}={value!r} must be a list of names")
    return tuple(value)


def make_regularizer(data: Mapping[str, Any], where: str = "regularizer") -> Regularizer:
    """A Regularizer from a mapping (``type`` plus parameters); bad input raises ConfigError naming it."""
    kind = data.get("type")
    if kind not in PARAMETERS:
        raise ConfigError(f"{where}: unknown regularizer type {kind!r}; known: {', '.join(PARAMETERS)}")
    for key in data:
        if key == "type":
            continue
        if key in NOT_SUPPORTED:
            raise ConfigError(f"{where}: {kind} parameter {key}: {NOT_SUPPORTED[key]}")
        if key not in PARAMETERS[kind]:
            raise ConfigError(f"{where}: {kind} has no parameter {key!r}; it takes {', '.join(PARAMETERS[kind])}")
    if "tau" not in data:
        raise ConfigError(f"{where}: {kind} needs tau")
    alpha = data.get("alpha_iter", ())
    if isinstance(alpha, str):
        alpha = [a for a in alpha.split("|") if a]
    if not isinstance(alpha, (list, tuple)):
        raise ConfigError(f"{where}: alpha_iter={alpha!r} must be a list of numbers")
    name = data.get("name", "")
    if not isinstance(name, str):
        raise ConfigError(f"{where}: name={name!r} must be a string")
    return Regularizer(type=kind, tau=_number(data["tau"], f"{where}: {kind} tau"),
                       topic_names=_names(data.get("topic_names", ()), f"{where}: {kind} topic_names"),
                       class_ids=_names(data.get("class_ids", ()), f"{where}: {kind} class_ids"),
                       alpha_iter=tuple(_number(a, f"{where}: {kind} alpha_iter") for a in alpha), name=name,
                       gamma=None if data.get("gamma") is None else _number(data["gamma"], f"{where}: {kind} gamma"))


def parse_shorthand(text: str) -> Regularizer:
    """``Type:tau=-0.1,topic_names=a|b`` (or ``Type`` alone, which then lacks tau) as a Regularizer."""
    kind, _, rest = text.partition(":")
    data: dict[str, Any] = {"type": kind.strip()}
    for part in (p for p in rest.split(",") if p.strip()):
        key, equals, value = part.partition("=")
        if not equals:
            raise ConfigError(f"--regularizer {text!r}: {part!r} is not key=value")
        data[key.strip()] = value.strip()
    return make_regularizer(data, where=f"--regularizer {text!r}")


def parse_class_weight(text: str) -> tuple[str, float]:
    """``@tag=5`` as (class id, weight); the weight must be a number >= 0."""
    class_id, equals, value = text.partition("=")
    if not equals or not class_id.strip():
        raise ConfigError(f"--class-id {text!r}: expected CLASS=WEIGHT, e.g. @tag=5")
    weight = _number(value, f"--class-id {text!r}: weight")
    if weight < 0:
        raise ConfigError(f"--class-id {text!r}: weight {weight:g} must be >= 0")
    return class_id.strip(), weight


def check_class_weights(class_ids: Mapping[str, Any], where: str = "class_ids") -> dict[str, float]:
    """Class weights as floats >= 0, keyed by class id."""
    weights = {}
    for class_id, value in class_ids.items():
        if not isinstance(class_id, str) or not class_id:
            raise ConfigError(f"{where}: class id {class_id!r} must be a non-empty string")
        weight = _number(value, f"{where}: {class_id}")
        if weight < 0:
            raise ConfigError(f"{where}: {class_id} weight {weight:g} must be >= 0")
        weights[class_id] = weight
    return weights


def check_against_model(regularizers: Sequence[Regularizer], class_weights: Mapping[str, float],
                        topic_names: Sequence[str], classes: Sequence[str], inner: int | None = None) -> None:
    """Refuse topic names the model lacks, class ids no vocabulary entry carries, a wrong alpha_iter.

    ``inner`` (the E-step's inner iterations) is checked against ``alpha_iter`` when given.
    """
    topics, known = set(topic_names), set(classes)
    for class_id in class_weights:
        if class_id not in known:
            raise ConfigError(f"class_ids: no token of the vocabulary has class {class_id!r}; "
                              f"it has {', '.join(classes)}")
    for regularizer in regularizers:
        for topic in regularizer.topic_names:
            if topic not in topics:
                raise ConfigError(f"{regularizer.type}: topic {topic!r} is not a topic of the model "
                                  f"({topic_names[0]}..{topic_names[-1]})")
        for class_id in regularizer.class_ids:
            if class_id not in known:
                raise ConfigError(f"{regularizer.type}: no token of the vocabulary has class {class_id!r}; "
                                  f"it has {', '.join(classes)}")
        if inner is not None and regularizer.alpha_iter and len(regularizer.alpha_iter) != inner:
            raise ConfigError(f"{regularizer.type}: alpha_iter has {len(regularizer.alpha_iter)} values, "
                              f"the E-step runs {inner} inner iterations")


def topic_mask(regularizer: Regularizer, topic_names: Sequence[str]) -> np.ndarray:
    if not regularizer.topic_names:
        return np.ones(len(topic_names), dtype=bool)
    return np.isin(np.asarray(topic_names), regularizer.topic_names)


def class_mask(regularizer: Regularizer, row_classes: Sequence[str]) -> np.ndarray:
    if not regularizer.class_ids:
        return np.ones(len(row_classes), dtype=bool)
    return np.isin(np.asarray(row_classes), regularizer.class_ids)


def phi_terms(regularizers: Sequence[Regularizer], p_wt: np.ndarray, row_classes: Sequence[str],
              topic_names: Sequence[str]) -> list[tuple[Regularizer, np.ndarray]]:
    """Each phi regularizer's r_wt before tau (float64, rows x topics) for rows of the previous phi."""
    terms = []
    for regularizer in (r for r in regularizers if r.type in PHI_TYPES):
        term = np.zeros(p_wt.shape, dtype=np.float64)
        block = np.ix_(class_mask(regularizer, row_classes), topic_mask(regularizer, topic_names))
        if regularizer.type == SMOOTH_SPARSE_PHI:
            term[block] = 1.0
        else:  # DecorrelatorPhi: -p_wt * (sum over the other regularized topics of p_ws)
            p = p_wt[block].astype(np.float64)
            term[block] = -p * (p.sum(axis=1, keepdims=True) - p)
        terms.append((regularizer, term))
    return terms


def relative_sums(terms: Sequence[tuple[Regularizer, np.ndarray]], row_classes: Sequence[str],
                  classes: Sequence[str]) -> list[dict[str, list[float]]]:
    """Per term with gamma, per class: sum over the class's rows of |term| per topic (BigARTM's r_it)."""
    row_classes = np.asarray(row_classes)
    return [{c: np.abs(term[row_classes == c]).sum(axis=0).tolist() for c in classes}
            for regularizer, term in terms if regularizer.gamma is not None]


def relative_coefficients(regularizer: Regularizer, r_it: Mapping[str, Sequence[float]],
                          n_t: Mapping[str, Sequence[float]], topic_names: Sequence[str],
                          classes: Sequence[str]) -> dict[str, list[float]]:
    """BigARTM's relative regularization: per class and topic ``gamma n_t/r_it + (1 - gamma) n/r_i``, with
    n_t the positive column sums of n_wt and r_it those of |r_wt| over the class's tokens, n and r_i
    their sums over the regularized topics; classes outside the regularizer's get 0 (BigARTM skips them)."""
    topics = topic_mask(regularizer, topic_names)
    gamma = float(regularizer.gamma)
    result = {}
    for class_id in classes:
        if regularizer.class_ids and class_id not in regularizer.class_ids:
            result[class_id] = [0.0] * len(topic_names)
            continue
        n_class = np.asarray(n_t[class_id], dtype=np.float64)
        r_class = np.asarray(r_it[class_id], dtype=np.float64)
        n, r_i = n_class[topics].sum(), r_class[topics].sum()
        with np.errstate(divide="ignore", invalid="ignore"):
            coefficient = gamma * (n_class / r_class) + (1 - gamma) * (n / r_i)
        result[class_id] = np.where(topics & np.isfinite(coefficient), coefficient, 0.0).tolist()
    return result


def combine_terms(terms: Sequence[tuple[Regularizer, np.ndarray]], row_classes: Sequence[str],
                  coefficients: Sequence[Mapping[str, Sequence[float]]] = ()) -> np.ndarray | None:
    """r_wt: the sum of tau x term, terms with gamma also times their coefficients (in the order of
    :func:`relative_sums`); None when there are no phi regularizers."""
    if not terms:
        return None
    row_classes = np.asarray(row_classes)
    relative = iter(coefficients)
    r_wt = np.zeros(terms[0][1].shape, dtype=np.float64)
    for regularizer, term in terms:
        if regularizer.gamma is None:
            r_wt += regularizer.tau * term
            continue
        per_class = next(relative)
        factor = np.zeros(term.shape, dtype=np.float64)
        for class_id, values in per_class.items():
            factor[row_classes == class_id] = values
        r_wt += regularizer.tau * factor * term
    return r_wt


def relative_regularizers(regularizers: Sequence[Regularizer]) -> list[Regularizer]:
    """The phi regularizers with gamma, in order: the order of :func:`relative_sums` and of the coefficients."""
    return [r for r in regularizers if r.gamma is not None and r.type in PHI_TYPES]


def theta_additions(regularizers: Sequence[Regularizer], topic_names: Sequence[str], inner: int) -> np.ndarray:
    """r_td per inner iteration and topic (float32, inner x topics): what SmoothSparseTheta adds."""
    additions = np.zeros((inner, len(topic_names)), dtype=np.float32)
    for regularizer in regularizers:
        if regularizer.type not in THETA_TYPES:
            continue
        alpha = np.asarray(regularizer.alpha_iter or [1.0] * inner, dtype=np.float32)
        topics = topic_mask(regularizer, topic_names)
        additions[:, topics] += (alpha * np.float32(regularizer.tau))[:, None]
    return additions


def class_factors(classes: Sequence[str], class_weights: Mapping[str, float]) -> np.ndarray:
    """Each class's n_dw factor: its weight, 0 for classes not listed; all ones when no weights are given."""
    if not class_weights:
        return np.ones(len(classes), dtype=np.float32)
    return np.asarray([class_weights.get(c, 0.0) for c in classes], dtype=np.float32)

