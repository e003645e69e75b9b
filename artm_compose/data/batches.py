"""Reading and writing BigARTM batches (``*.batch``: one serialized ``artm.Batch``, no header).

A batch is held in CSR form: the entries of item ``d`` are ``indptr[d]:indptr[d + 1]`` of
``token_index`` (indices into the batch's own ``tokens``) and ``weights`` (token counts).
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from artm_compose.data.artm_batch_pb2 import Batch as BatchMessage
from artm_compose.data.artm_batch_pb2 import DecodeError, Message
from artm_compose.errors import DataError

DEFAULT_CLASS = "@default_class"
BATCH_SUFFIX = ".batch"


@dataclass(frozen=True, eq=False)
class Batch:
    """One batch of documents in CSR layout over the batch's local vocabulary.

    ``name`` is the file name (what orders batches); ``path`` the file it was read from, if any.
    """

    name: str
    tokens: list[str]
    class_ids: list[str]
    item_ids: np.ndarray
    titles: list[str]
    indptr: np.ndarray
    token_index: np.ndarray
    weights: np.ndarray
    batch_id: str = field(default="")
    path: Path | None = field(default=None)

    @property
    def source(self) -> str:
        """What error messages call this batch: its file, or its name when built in memory."""
        return str(self.path) if self.path is not None else self.name

    @property
    def n_items(self) -> int:
        """Number of documents."""
        return len(self.item_ids)

    @property
    def nnz(self) -> int:
        """Number of (document, token) entries."""
        return len(self.token_index)

    @property
    def token_weight(self) -> float:
        """Sum of all token weights (the collection length n of this batch)."""
        return float(self.weights.sum(dtype=np.float64))


def make_batch(
    name: str,
    tokens: list[str],
    documents: list[tuple[int, str, np.ndarray, np.ndarray]],
    class_ids: list[str] | None = None,
    batch_id: str = "",
) -> Batch:
    """Build a Batch from ``(item_id, title, token_index, weights)`` per document."""
    lengths = np.fromiter((len(doc[2]) for doc in documents), np.int64, len(documents))
    indptr = np.zeros(len(documents) + 1, np.int64)
    np.cumsum(lengths, out=indptr[1:])
    token_index = np.concatenate([np.asarray(d[2], np.int32) for d in documents] or [np.zeros(0, np.int32)])
    weights = np.concatenate([np.asarray(d[3], np.float32) for d in documents] or [np.zeros(0, np.float32)])
    return Batch(
        name=name,
        tokens=list(tokens),
        class_ids=list(class_ids) if class_ids is not None else [DEFAULT_CLASS] * len(tokens),
        item_ids=np.fromiter((d[0] for d in documents), np.int64, len(documents)),
        titles=[d[1] for d in documents],
        indptr=indptr,
        token_index=token_index.astype(np.int32, copy=False),
        weights=weights.astype(np.float32, copy=False),
        batch_id=batch_id,
    )


def list_batches(directory: str | os.PathLike[str]) -> list[Path]:
    """The ``*.batch`` files of ``directory`` sorted by file name; other files are ignored."""
    path = Path(directory)
    if not path.is_dir():
        raise DataError(f"batch directory {path} does not exist or is not a directory")
    found = sorted((p for p in path.iterdir() if p.suffix == BATCH_SUFFIX and p.is_file()), key=lambda p: p.name)
    if not found:
        raise DataError(f"no *{BATCH_SUFFIX} files in {path}")
    return found


def read_batch(path: str | os.PathLike[str]) -> Batch:
    """Read one batch file; any inconsistency raises DataError naming the file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DataError(f"cannot read batch {path}: {error.strerror or error}") from error
    try:
        message = BatchMessage.FromString(data)
    except DecodeError as error:
        raise DataError(f"batch {path} is corrupt or truncated: {error}") from error
    return _from_message(message, path)


def _from_message(message: BatchMessage, path: Path) -> Batch:
    items = message.item
    if not items:
        raise DataError(f"batch {path} holds no items (empty or truncated file)")
    tokens = list(message.token)
    class_ids = list(message.class_id) or [DEFAULT_CLASS] * len(tokens)
    if len(class_ids) != len(tokens):
        raise DataError(f"batch {path} has {len(tokens)} tokens but {len(class_ids)} class ids")

    token_ids: list[int] = []
    weights: list[float] = []
    lengths = np.empty(len(items), np.int64)
    for position, item in enumerate(items):
        if item.transaction_token_id:
            ids, item_weights = _transaction_entries(item, path, position)
        else:
            ids, item_weights = item.token_id, item.token_weight
            if len(ids) != len(item_weights):
                raise DataError(
                    f"batch {path}: item #{position} (id {item.id}) has {len(ids)} token ids "
                    f"but {len(item_weights)} token weights"
                )
        token_ids.extend(ids)
        weights.extend(item_weights)
        lengths[position] = len(ids)
    token_index = np.array(token_ids, np.int32)
    weight_array = np.array(weights, np.float32)
    indptr = np.zeros(len(items) + 1, np.int64)
    np.cumsum(lengths, out=indptr[1:])
    _check_entries(path, token_index, weight_array, len(tokens))
    return Batch(
        name=path.name,
        tokens=tokens,
        class_ids=class_ids,
        item_ids=np.fromiter((item.id for item in items), np.int64, len(items)),
        titles=[item.title for item in items],
        indptr=indptr,
        token_index=token_index,
        weights=weight_array,
        batch_id=message.id,
        path=path,
    )


def _transaction_entries(item: Message, path: Path, position: int) -> tuple[list[int], list[float]]:
    """Entries of an item in the transaction layout, where every transaction must hold one token.

    A transaction of several tokens is a joint event BigARTM models differently from independent
    tokens; mapping it onto plain counts would change the model, so it is refused.
    """
    where = f"batch {path}: item #{position} (id {item.id})"
    if item.token_id:
        raise DataError(f"{where} mixes the plain (token_id) and transaction (transaction_token_id) layouts")
    token_ids = list(item.transaction_token_id)
    starts = list(item.transaction_start_index)
    if starts and starts[-1] != len(token_ids):
        starts.append(len(token_ids))
    if not starts or starts[0] != 0 or any(b <= a for a, b in zip(starts, starts[1:])):
        raise DataError(f"{where} has invalid transaction_start_index {list(item.transaction_start_index)[:10]}")
    n_transactions = len(starts) - 1
    if n_transactions != len(token_ids):
        longest = max(b - a for a, b in zip(starts, starts[1:]))
        raise DataError(
            f"{where} has multi-token transactions (up to {longest} tokens); only one token per "
            "transaction is supported"
        )
    weights = list(item.token_weight)
    if len(weights) != n_transactions:
        raise DataError(f"{where} has {n_transactions} transactions but {len(weights)} token weights")
    return token_ids, weights


def _check_entries(path: Path, token_index: np.ndarray, weights: np.ndarray, n_tokens: int) -> None:
    if len(token_index) and (token_index.min() < 0 or token_index.max() >= n_tokens):
        bad = int(token_index[(token_index < 0) | (token_index >= n_tokens)][0])
        raise DataError(f"batch {path} refers to token id {bad} but has only {n_tokens} tokens")
    if not np.all(np.isfinite(weights)) or (len(weights) and weights.min() < 0):
        bad = float(weights[~(np.isfinite(weights) & (weights >= 0))][0])
        raise DataError(f"batch {path} has an invalid token weight {bad}")


def write_batch(path: str | os.PathLike[str], batch: Batch) -> Path:
    """Write ``batch`` as BigARTM 0.9.2 does (plain layout, unpacked); atomic via a temporary file."""
    path = Path(path)
    message = BatchMessage()
    message.token.extend(batch.tokens)
    message.class_id.extend(batch.class_ids)
    message.id = batch.batch_id or str(uuid.uuid4())
    token_index = batch.token_index.tolist()
    weights = batch.weights.tolist()
    indptr = batch.indptr.tolist()
    if len(batch.item_ids) and (batch.item_ids.min() < -(2**31) or batch.item_ids.max() >= 2**31):
        raise DataError(f"cannot write batch {path}: item ids must fit in int32 (artm.Item.id)")
    for position, (item_id, title) in enumerate(zip(batch.item_ids.tolist(), batch.titles)):
        item = message.item.add()
        item.id = item_id
        if title:
            item.title = title
        begin, end = indptr[position], indptr[position + 1]
        item.token_id.extend(token_index[begin:end])
        item.token_weight.extend(weights[begin:end])
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        temporary.write_bytes(message.SerializeToString())
        temporary.replace(path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise DataError(f"cannot write batch {path}: {error.strerror or error}") from error
    return path
