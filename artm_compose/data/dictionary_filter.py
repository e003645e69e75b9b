"""Dictionary filtering before training, with the meanings of BigARTM's ``artm.Dictionary.filter``.

For a token, df is the number of documents holding it and N the number of documents holding any
token (BigARTM's ``num_items``). A token is kept when ``df >= min_df``, ``df < max_df``,
``df >= min_df_rate * N`` and ``df < max_df_rate * N`` (the upper bounds are strict, as in
BigARTM, so a rate above 1 keeps everything; rates are multiplied in float32, as BigARTM does). ``max_dictionary_size`` M then applies
to the tokens that passed: when more than M passed, let c be the (M+1)-th largest df among them;
every token with ``df <= c`` goes, so ties at the cut all go and fewer than M may remain.

Scopes: a value without a class id applies to every modality; ``@tag=2`` applies to the tokens of
``@tag`` and wins over a value without class id. ``max_dictionary_size`` with a class id bounds
that modality's tokens (what BigARTM's cut gives on a dictionary of that modality alone: its
``filter(class_id=..., max_dictionary_size=M)`` would cut the whole dictionary); without one, the
whole dictionary, last, as BigARTM's ``filter(max_dictionary_size=M)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from artm_compose.data.collection import Document
from artm_compose.errors import ConfigError

# Bound kinds (the option names with '_'); max_dictionary_size is a whole number >= 1, the others numbers >= 0.
KINDS = ("min_df", "max_df", "min_df_rate", "max_df_rate", "max_dictionary_size")
ALL_CLASSES = "*"  # how a value without class id is written in corpus.json


@dataclass(frozen=True)
class DictionaryFilter:
    """Bounds per kind (see KINDS) and per class id; the class id None means every modality."""

    bounds: Mapping[str, Mapping[str | None, float]] = field(default_factory=dict)

    def value(self, kind: str, class_id: str | None) -> float | None:
        """The bound of ``kind`` for ``class_id``: its own value, else the one for every modality."""
        per_class = self.bounds.get(kind, {})
        return per_class.get(class_id, per_class.get(None))

    @property
    def class_ids(self) -> set[str]:
        """The class ids the bounds name."""
        return {c for per_class in self.bounds.values() for c in per_class if c is not None}

    def __bool__(self) -> bool:
        return any(self.bounds.values())

    def merged(self, other: DictionaryFilter) -> DictionaryFilter:
        """These bounds with ``other``'s replacing them where both give the same kind and scope."""
        kinds = dict.fromkeys([*self.bounds, *other.bounds])
        return DictionaryFilter({kind: {**self.bounds.get(kind, {}), **other.bounds.get(kind, {})} for kind in kinds})

    def describe(self) -> dict[str, dict[str, float]]:
        """JSON-able form for corpus.json: {kind: {class id or '*': value}}, in a stable order."""
        return {
            kind: {ALL_CLASSES if c is None else c: v for c, v in sorted(per_class.items(), key=_scope_order)}
            for kind, per_class in self.bounds.items() if per_class
        }

    def keep(self, class_ids: Sequence[str], df: np.ndarray, n_documents: int) -> np.ndarray:
        """Boolean mask of the tokens (given by class id and df) that pass the filter."""
        unknown = self.class_ids - set(class_ids)
        if unknown:
            raise ConfigError(
                f"dictionary filter names class id {sorted(unknown)[0]!r}, which no document carries "
                f"(classes: {', '.join(sorted(set(class_ids)))})"
            )
        df = np.asarray(df, dtype=np.float32)
        classes = np.asarray(class_ids, dtype=object)
        n = np.float32(n_documents)
        keep = np.ones(len(df), dtype=bool)
        for class_id in dict.fromkeys(class_ids):
            members = classes == class_id
            of_class = df[members]
            passed = np.ones(len(of_class), dtype=bool)
            for kind, lower, scaled in (("min_df", True, False), ("max_df", False, False),
                                        ("min_df_rate", True, True), ("max_df_rate", False, True)):
                bound = self.value(kind, class_id)
                if bound is None:
                    continue
                limit = np.float32(bound) * n if scaled else np.float32(bound)
                passed &= (of_class >= limit) if lower else (of_class < limit)
            size = self.bounds.get("max_dictionary_size", {}).get(class_id)
            if size is not None:
                passed &= _within_size(of_class, passed, int(size))
            keep[members] = passed
        total = self.bounds.get("max_dictionary_size", {}).get(None)
        if total is not None:
            keep &= _within_size(df, keep, int(total))
        return keep


def _scope_order(item: tuple[str | None, float]) -> tuple[int, str]:
    return (0, "") if item[0] is None else (1, item[0])


def _within_size(df: np.ndarray, passed: np.ndarray, size: int) -> np.ndarray:
    """BigARTM's size cut: with more than ``size`` passed tokens, drop those with df <= the (size+1)-th largest."""
    if passed.sum() <= size:
        return passed
    cut = np.sort(df[passed])[::-1][size]
    return passed & (df > cut)


def filter_collection(
    tokens: list[str], class_ids: list[str], documents: list[Document], dictionary_filter: DictionaryFilter
) -> tuple[list[str], list[str], list[Document]]:
    """Drop the tokens the filter rejects from the vocabulary and from every document (order kept).

    Documents left without tokens stay in the list, empty: the collection writer skips and counts them.
    """
    if not dictionary_filter:
        return tokens, class_ids, documents
    df = np.zeros(len(tokens), dtype=np.int64)
    for document in documents:
        df[document.vocab_index] += 1
    n_documents = sum(1 for document in documents if len(document.vocab_index))
    keep = dictionary_filter.keep(class_ids, df, n_documents)
    new_index = np.cumsum(keep, dtype=np.int64).astype(np.int32) - 1
    filtered = []
    for document in documents:
        kept = keep[document.vocab_index]
        filtered.append(Document(document.item_id, document.title, new_index[document.vocab_index[kept]],
                                 document.weights[kept]))
    chosen = np.flatnonzero(keep)
    return [tokens[i] for i in chosen], [class_ids[i] for i in chosen], filtered


def parse_filter(options: Mapping[str, Sequence[str]]) -> DictionaryFilter:
    """A DictionaryFilter from option values: ``{"min_df": ["5", "@tag=2"], ...}``.

    Each value is ``NUMBER`` (every modality) or ``CLASS_ID=NUMBER``; a bad number, an empty class
    id or a scope given twice raises ConfigError naming the option and the value.
    """
    bounds: dict[str, dict[str | None, float]] = {}
    for kind, values in options.items():
        if kind not in KINDS:
            raise ConfigError(f"unknown dictionary filter {kind!r}; known: {', '.join(KINDS)}")
        per_class: dict[str | None, float] = {}
        for text in values:
            class_id, number = _parse_scoped(kind, text)
            if class_id in per_class:
                scope = f"class id {class_id}" if class_id is not None else "every modality"
                raise ConfigError(f"{_option(kind)} given twice for {scope}: {text!r}")
            per_class[class_id] = number
        if per_class:
            bounds[kind] = per_class
    return DictionaryFilter(bounds)


def _option(kind: str) -> str:
    return "--" + kind.replace("_", "-")


def _parse_scoped(kind: str, text: str) -> tuple[str | None, float]:
    class_id, separator, number_text = text.rpartition("=")
    if separator and (not class_id or class_id != class_id.strip() or any(c.isspace() for c in class_id)):
        raise ConfigError(f"{_option(kind)} {text!r}: the class id before '=' is empty or holds whitespace")
    integer = kind == "max_dictionary_size"
    try:
        number = float(number_text)
    except ValueError:
        number = math.nan
    what = "a whole number >= 1" if integer else "a number >= 0"
    bad = not math.isfinite(number) or number < (1 if integer else 0) or (integer and number != int(number))
    if bad:
        raise ConfigError(f"{_option(kind)} {text!r}: expected {what}{' or CLASS_ID=VALUE' if not separator else ''}")
    return (class_id if separator else None), (int(number) if integer else number)


__all__ = ["DictionaryFilter", "filter_collection", "parse_filter", "KINDS"]
