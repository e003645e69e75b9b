"""BigARTM-style views of a trained model and its scores: pandas DataFrames and a score tracker.

``phi_frame`` is ``ARTM.get_phi()``'s shape: one row per token, one column per topic
(``topic_0``...). The index is the token; with several modalities it is a MultiIndex
``(class_id, token)`` so equal tokens of different modalities stay apart. ``ScoreTracker`` is
``ARTM.score_tracker``'s: ``tracker["perplexity"].value`` (every pass) and ``.last_value``.
``theta_frame`` is documents x topics (the transpose of BigARTM's ``transform()``).
pandas is imported on first use (it is the optional ``analysis`` extra).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from artm_compose.dashboard.snapshot import per_pass_series
from artm_compose.data.batches import DEFAULT_CLASS
from artm_compose.errors import ConfigError

if TYPE_CHECKING:
    import pandas


def _pandas():
    try:
        import pandas
    except ImportError:
        raise ConfigError("DataFrames need pandas: pip install 'artm-compose[analysis]'") from None
    return pandas


@dataclass(frozen=True)
class ExportedModel:
    """The arrays of an ``export`` to ``.npz`` (see :mod:`artm_compose.engine.export`)."""

    phi: np.ndarray
    tokens: list[str]
    class_ids: list[str]
    topics: list[str]
    n_t: np.ndarray
    pass_number: int

    @classmethod
    def load(cls, path: Path) -> ExportedModel:
        with np.load(path) as arrays:
            return cls(phi=arrays["phi"], tokens=arrays["tokens"].tolist(), class_ids=arrays["class_ids"].tolist(),
                       topics=arrays["topics"].tolist(), n_t=arrays["n_t"], pass_number=int(arrays["pass"]))


def _selection(value: str | Sequence[str] | None) -> list[str] | None:
    return [value] if isinstance(value, str) else None if value is None else list(value)


def phi_frame(model: ExportedModel, topic_names: str | Sequence[str] | None = None,
              class_ids: str | Sequence[str] | None = None) -> pandas.DataFrame:
    """Phi as BigARTM's ``get_phi(topic_names, class_ids)`` returns it (a name or a list selects)."""
    pandas = _pandas()
    topics = _selection(topic_names)
    classes = _selection(class_ids)
    unknown = sorted(set(topics or ()) - set(model.topics))
    if unknown:
        raise ConfigError(f"topic_names: {', '.join(unknown)} not in the model ({model.topics[0]}..{model.topics[-1]})")
    rows = np.arange(len(model.tokens)) if classes is None else np.flatnonzero(np.isin(model.class_ids, classes))
    columns = [model.topics.index(t) for t in topics] if topics is not None else list(range(len(model.topics)))
    several = any(c != DEFAULT_CLASS for c in model.class_ids)
    tokens = [model.tokens[i] for i in rows]
    if several:
        index = pandas.MultiIndex.from_arrays([[model.class_ids[i] for i in rows], tokens], names=["class_id", "token"])
    else:
        index = pandas.Index(tokens, name="token")
    return pandas.DataFrame(model.phi[np.ix_(rows, columns)], index=index, columns=[model.topics[c] for c in columns])


THETA_NAMINGS = ("id", "title")


def theta_frame(theta: np.ndarray, items: np.ndarray, titles: Sequence[str], topics: Sequence[str],
                topic_names: str | Sequence[str] | None = None, naming: str = "id") -> pandas.DataFrame:
    """Theta as documents x topics: one row per document (indexed by item id, or by title with
    ``naming="title"``: BigARTM's ``theta_columns_naming``), one column per topic.

    BigARTM's ``transform``/``get_theta`` return the transpose (topics x documents, the documents as
    columns); ``.T`` of this frame is that layout.
    """
    pandas = _pandas()
    if naming not in THETA_NAMINGS:
        raise ConfigError(f"naming={naming!r}: choose one of {', '.join(THETA_NAMINGS)}")
    topics = list(topics)
    chosen = _selection(topic_names)
    unknown = sorted(set(chosen or ()) - set(topics))
    if unknown:
        raise ConfigError(f"topic_names: {', '.join(unknown)} not in the model ({topics[0]}..{topics[-1]})")
    columns = [topics.index(t) for t in chosen] if chosen is not None else list(range(len(topics)))
    index = (pandas.Index(np.asarray(items), name="item_id") if naming == "id"
             else pandas.Index(list(titles), name="title"))
    return pandas.DataFrame(theta[:, columns], index=index, columns=[topics[c] for c in columns])


@dataclass(frozen=True)
class ScoreSeries:
    """One score over the passes, as a BigARTM score tracker entry shows it."""

    name: str
    passes: list[int]
    value: list[float | None]

    @property
    def last_value(self) -> float | None:
        return self.value[-1] if self.value else None


class ScoreTracker(Mapping[str, ScoreSeries]):
    """Every per-pass series of a ``scores.json`` document by name: ``tracker["perplexity"].last_value``."""

    def __init__(self, scores: dict[str, Any]):
        first = int(scores.get("first_pass", 1))
        series = per_pass_series(scores)
        passes = list(range(first, first + len(scores.get("perplexity") or [])))
        self._series = {name: ScoreSeries(name, passes, values) for name, values in series.items()}

    def __getitem__(self, name: str) -> ScoreSeries:
        try:
            return self._series[name]
        except KeyError:
            raise KeyError(f"no score {name!r}; scores: {', '.join(self._series) or 'none yet'}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._series)

    def __len__(self) -> int:
        return len(self._series)

    def frame(self) -> pandas.DataFrame:
        """All series as one DataFrame indexed by pass."""
        pandas = _pandas()
        passes = next(iter(self._series.values())).passes if self._series else []
        return pandas.DataFrame({name: s.value for name, s in self._series.items()},
                                index=pandas.Index(passes, name="pass"))
