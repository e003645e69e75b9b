"""Initial phi rows: seeded per token (topology-independent), or taken from a file.

Random rows: token ``(class_id, keyword)`` gets the 64-bit key ``blake2b(seed, class_id,
keyword)``; topic t's value is ``splitmix64(key + (t + 1) * golden)`` scaled to [0, 1). Every
executor computes the same row for the same token, without talking to anyone, so the initial
model does not depend on the topology. The columns are then normalised to sum to 1 (the
master adds the owners' per-topic sums).

Files (``--init-phi``): our ``.npz`` export (``phi``, ``tokens``, optional ``class_ids``), or a
CSV as pandas writes ``ARTM.get_phi().to_csv()``: a header row, then the token in the first
column (or class id and token in the first two, for a two-level index) and one column per topic.
Rows are matched to the vocabulary by (class id, token); values are used as given.
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np

from artm_compose.data.batches import DEFAULT_CLASS
from artm_compose.data.vocab import Vocabulary
from artm_compose.errors import DataError

_GOLDEN64 = np.uint64(0x9E3779B97F4A7C15)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    x = x + _GOLDEN64
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def token_keys(tokens: list[str], class_ids: list[str], seed: int) -> np.ndarray:
    """The 64-bit key of each token: a hash of the seed, its class id and its keyword."""
    keys = np.empty(len(tokens), dtype=np.uint64)
    for i, (class_id, token) in enumerate(zip(class_ids, tokens)):
        digest = hashlib.blake2b(f"{seed}\x1f{class_id}\x1f{token}".encode(), digest_size=8).digest()
        keys[i] = int.from_bytes(digest, "little")
    return keys


def random_rows(tokens: list[str], class_ids: list[str], seed: int, topics: int) -> np.ndarray:
    """Unnormalised initial rows in [0, 1), float64, ``len(tokens) x topics``."""
    keys = token_keys(tokens, class_ids, seed)
    steps = np.arange(1, topics + 1, dtype=np.uint64) * _GOLDEN64
    with np.errstate(over="ignore"):
        bits = _splitmix64(keys[:, None] + steps[None, :])
    return (bits >> np.uint64(11)).astype(np.float64) * 2.0 ** -53


def read_phi_file(path: Path) -> tuple[list[tuple[str, str]], np.ndarray]:
    """The (class id, token) of each row and the values (float32 rows x topics) of a phi file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"initial phi file {path} does not exist")
    if path.suffix == ".npz":
        return _read_npz(path)
    if path.suffix == ".csv":
        return _read_csv(path)
    raise DataError(f"initial phi file {path}: expected a .npz (our export) or .csv (pandas get_phi().to_csv())")


def _read_npz(path: Path) -> tuple[list[tuple[str, str]], np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            phi = np.asarray(data["phi"], dtype=np.float32)
            tokens = [str(t) for t in data["tokens"]]
            class_ids = [str(c) for c in data["class_ids"]] if "class_ids" in data else [DEFAULT_CLASS] * len(tokens)
    except (OSError, ValueError, KeyError) as error:
        raise DataError(f"initial phi file {path} is not a phi export (.npz with phi and tokens): {error}") from error
    if phi.ndim != 2 or phi.shape[0] != len(tokens):
        raise DataError(f"initial phi file {path}: phi has shape {phi.shape} for {len(tokens)} tokens")
    return list(zip(class_ids, tokens)), phi


def _read_csv(path: Path) -> tuple[list[tuple[str, str]], np.ndarray]:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            lines = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DataError(f"cannot read initial phi file {path}: {error}") from error
    if len(lines) < 2:
        raise DataError(f"initial phi file {path} holds no rows")
    header = lines[0]
    # pandas leaves the index columns' header cells empty unless the index has names.
    index_columns = 2 if len(header) > 1 and header[1] in ("", "token") and header[0] in ("", "class_id") else 1
    width = len(header) - index_columns
    keys, values = [], []
    for number, line in enumerate(lines[1:], start=2):
        if len(line) != len(header):
            raise DataError(f"initial phi file {path} line {number}: {len(line)} fields, the header has {len(header)}")
        keys.append((line[0], line[1]) if index_columns == 2 else (DEFAULT_CLASS, line[0]))
        try:
            values.append([float(v) for v in line[index_columns:]])
        except ValueError as error:
            raise DataError(f"initial phi file {path} line {number}: {error}") from error
    return keys, np.asarray(values, dtype=np.float32).reshape(len(keys), width)


def phi_rows_for(vocab: Vocabulary, begin: int, end: int, path: Path, topics: int) -> np.ndarray:
    """Rows ``[begin, end)`` of the vocabulary taken from the phi file, float32.

    Raises DataError naming the file and the vocabulary tokens it lacks, or a topic-count mismatch.
    """
    keys, phi = read_phi_file(path)
    if phi.shape[1] != topics:
        raise DataError(f"initial phi file {path} has {phi.shape[1]} topics, the model has {topics}")
    position = {key: i for i, key in enumerate(keys)}
    wanted = list(zip(vocab.class_ids[begin:end], vocab.tokens[begin:end]))
    found = [position.get(key, -1) for key in wanted]
    missing = [key[1] for key, i in zip(wanted, found) if i < 0]
    if missing:
        shown = ", ".join(repr(t) for t in missing[:10])
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        raise DataError(f"initial phi file {path} lacks {len(missing)} vocabulary token(s): {shown}{more}")
    if not np.all(np.isfinite(phi)) or (phi.size and phi.min() < 0):
        raise DataError(f"initial phi file {path} holds negative or non-finite values")
    return np.ascontiguousarray(phi[np.asarray(found, dtype=np.int64)]) if found else np.zeros((0, topics), np.float32)


def check_phi_file(path: Path, vocab: Vocabulary, topics: int, *, continue_fitting: bool = False) -> None:
    """Everything the executors would find wrong with ``--init-phi``, found before anything starts:
    the file, its format, its topic count and the vocabulary tokens it lacks (DataError naming them)."""
    if continue_fitting:
        raise DataError(f"init_phi={str(path)!r} and continue_fitting exclude each other: the model to go on "
                        f"from is the one held in Redis")
    phi_rows_for(vocab, 0, len(vocab), path, topics)
