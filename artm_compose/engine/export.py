"""Reading the committed model out of Redis and writing it where pandas and NumPy load it.

``.npz``: ``phi`` (float32, tokens x topics), ``tokens``, ``class_ids``, ``topics``, ``n_t``
(float64 per topic, NaN when the model came from a file), ``pass``.
``.csv``: a header ``token,topic_0,...`` and one row per token, as ``pandas.read_csv(path,
index_col=0)`` expects (``class_id,token,...`` with two index columns when the vocabulary has
several classes). Both are accepted back by ``--init-phi``.
"""

from __future__ import annotations

import csv
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
from redis.cluster import RedisCluster

from artm_compose.data.batches import DEFAULT_CLASS
from artm_compose.data.vocab import read_vocab
from artm_compose.engine import model_store as store
from artm_compose.engine.layout import Layout
from artm_compose.errors import ConfigError, DataError, TrainingError


# Rows read per round trip: whole blocks up to this many bytes, so a model of any size is read (and
# written out) in pieces, never as one pipeline whose replies all sit in memory at once.
EXPORT_CHUNK_BYTES = 8 * 1024 ** 2


def row_chunks(layout: Layout, chunk_bytes: int) -> Iterator[tuple[int, int]]:
    """Row ranges ``[begin, end)`` of whole blocks, each at most ``chunk_bytes`` (or one block)."""
    begin = 0
    for block in range(layout.blocks):
        first, stop = layout.block_rows(block)
        if stop > begin and (stop - begin) * layout.row_bytes > chunk_bytes and first > begin:
            yield begin, first
            begin = first
    if begin < layout.vocab_size:
        yield begin, layout.vocab_size


def committed_record(client: RedisCluster, cluster: str) -> store.ModelRecord:
    record = store.read_model_record(client, cluster)
    if record is None:
        raise TrainingError(f"cluster {cluster!r} holds no model in Redis (key {store.model_key(cluster)})")
    return record


def iter_model_rows(client: RedisCluster, record: store.ModelRecord, chunk_bytes: int | None = None
                    ) -> Iterator[tuple[int, np.ndarray]]:
    """``(first row, float32 rows)`` of the committed phi, one chunk of whole blocks per round trip.

    Phi has two buffers by generation parity: a training that commits two more generations while we
    read overwrites ours, so that is checked after the last chunk and refused rather than mixed.
    """
    for begin, end in row_chunks(record.layout, chunk_bytes or EXPORT_CHUNK_BYTES):
        yield begin, store.read_range(client, record.layout, record.generation, begin, end)
    now = committed_record(client, record.layout.cluster)
    if now.generation - record.generation >= 2:
        raise TrainingError(f"the model in Redis moved from generation {record.generation} to {now.generation} "
                            f"while it was read; read it again once the training has finished")


def read_model(client: RedisCluster, cluster: str) -> tuple[store.ModelRecord, np.ndarray]:
    """The committed model's record and its full phi (float32, vocabulary order)."""
    record = committed_record(client, cluster)
    phi = np.empty((record.layout.vocab_size, record.layout.topics), dtype=np.float32)
    for begin, rows in iter_model_rows(client, record):
        phi[begin:begin + len(rows)] = rows
    return record, phi


def topic_names(topics: int) -> list[str]:
    """BigARTM's default topic names."""
    return [f"topic_{t}" for t in range(topics)]


def export_model(client: RedisCluster, cluster: str, vocab_path: Path, out_path: Path,
                 chunk_bytes: int | None = None, extra: Mapping[str, np.ndarray] | None = None) -> Path:
    """Write the committed model to ``out_path`` (``.npz`` or ``.csv``), reading and writing phi in
    chunks of whole blocks of at most ``chunk_bytes`` (default ``EXPORT_CHUNK_BYTES``); returns the path.
    ``extra``: more ``.npz`` members (a checkpoint's, :mod:`artm_compose.engine.checkpoint`)."""
    out_path = Path(out_path)
    if out_path.suffix not in (".npz", ".csv"):
        raise ConfigError(f"export path {out_path}: use a .npz or .csv file name")
    vocab = read_vocab(vocab_path)
    record = committed_record(client, cluster)
    if len(vocab) != record.layout.vocab_size:
        raise DataError(f"vocabulary {vocab_path} has {len(vocab)} tokens, the model in Redis has "
                        f"{record.layout.vocab_size} rows")
    topics = topic_names(record.layout.topics)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    temporary = out_path.with_name(f".{out_path.stem}.tmp{out_path.suffix}")
    if out_path.suffix == ".npz":
        n_t = np.asarray(record.n_t if record.n_t is not None else [np.nan] * len(topics), dtype=np.float64)
        small = {"tokens": np.asarray(vocab.tokens), "class_ids": np.asarray(vocab.class_ids),
                 "topics": np.asarray(topics), "n_t": n_t, "pass": np.asarray(record.pass_number), **(extra or {})}
        _write_npz(temporary, small, record, client, chunk_bytes)
    else:
        several_classes = any(c != DEFAULT_CLASS for c in vocab.class_ids)
        with temporary.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow((["class_id", "token"] if several_classes else ["token"]) + topics)
            for begin, rows in iter_model_rows(client, record, chunk_bytes):
                for offset, row in enumerate(rows.tolist()):
                    class_id, token = vocab.class_ids[begin + offset], vocab.tokens[begin + offset]
                    writer.writerow(([class_id, token] if several_classes else [token]) + [repr(v) for v in row])
    temporary.replace(out_path)
    return out_path


def _write_npz(path: Path, small: dict[str, np.ndarray], record: store.ModelRecord, client: RedisCluster,
               chunk_bytes: int | None) -> None:
    """What ``np.savez`` writes, with phi streamed into its member chunk by chunk (never whole in memory)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        with archive.open("phi.npy", "w", force_zip64=True) as member:
            header = {"descr": np.lib.format.dtype_to_descr(np.dtype("<f4")), "fortran_order": False,
                      "shape": (record.layout.vocab_size, record.layout.topics)}
            np.lib.format.write_array_header_1_0(member, header)
            for _begin, rows in iter_model_rows(client, record, chunk_bytes):
                member.write(np.ascontiguousarray(rows, dtype="<f4").tobytes())
        for name, value in small.items():
            with archive.open(f"{name}.npy", "w") as member:
                np.lib.format.write_array(member, value, allow_pickle=False)
