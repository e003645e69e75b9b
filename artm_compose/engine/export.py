"""Reading the committed model out of Redis and writing it where pandas and NumPy load it.

``.npz``: ``phi`` (float32, tokens x topics), ``tokens``, ``class_ids``, ``topics``, ``n_t``
(float64 per topic, NaN when the model came from a file), ``pass``.
``.csv``: a header ``token,topic_0,...`` and one row per token, as ``pandas.read_csv(path,
index_col=0)`` expects (``class_id,token,...`` with two index columns when the vocabulary has
several classes). Both are accepted back by ``--init-phi``.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from redis.cluster import RedisCluster

from artm_compose.data.batches import DEFAULT_CLASS
from artm_compose.data.vocab import read_vocab
from artm_compose.engine import model_store as store
from artm_compose.errors import ConfigError, DataError, TrainingError


def read_model(client: RedisCluster, cluster: str) -> tuple[store.ModelRecord, np.ndarray]:
    """The committed model's record and its full phi (float32, vocabulary order)."""
    record = store.read_model_record(client, cluster)
    if record is None:
        raise TrainingError(f"cluster {cluster!r} holds no model in Redis (key {store.model_key(cluster)})")
    phi = store.read_range(client, record.layout, record.generation, 0, record.layout.vocab_size)
    return record, phi


def topic_names(topics: int) -> list[str]:
    """BigARTM's default topic names."""
    return [f"topic_{t}" for t in range(topics)]


def export_model(client: RedisCluster, cluster: str, vocab_path: Path, out_path: Path) -> Path:
    """Write the committed model to ``out_path`` (``.npz`` or ``.csv``); returns the path."""
    out_path = Path(out_path)
    if out_path.suffix not in (".npz", ".csv"):
        raise ConfigError(f"export path {out_path}: use a .npz or .csv file name")
    vocab = read_vocab(vocab_path)
    record, phi = read_model(client, cluster)
    if len(vocab) != record.layout.vocab_size:
        raise DataError(f"vocabulary {vocab_path} has {len(vocab)} tokens, the model in Redis has "
                        f"{record.layout.vocab_size} rows")
    topics = topic_names(record.layout.topics)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    temporary = out_path.with_name(f".{out_path.stem}.tmp{out_path.suffix}")
    if out_path.suffix == ".npz":
        n_t = np.asarray(record.n_t if record.n_t is not None else [np.nan] * len(topics), dtype=np.float64)
        np.savez(temporary, phi=phi, tokens=np.asarray(vocab.tokens), class_ids=np.asarray(vocab.class_ids),
                 topics=np.asarray(topics), n_t=n_t, **{"pass": np.asarray(record.pass_number)})
    else:
        several_classes = any(c != DEFAULT_CLASS for c in vocab.class_ids)
        with temporary.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow((["class_id", "token"] if several_classes else ["token"]) + topics)
            for class_id, token, row in zip(vocab.class_ids, vocab.tokens, phi.tolist()):
                writer.writerow(([class_id, token] if several_classes else [token]) + [repr(v) for v in row])
    temporary.replace(out_path)
    return out_path
