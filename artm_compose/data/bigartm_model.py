"""A trained model in the directory layout BigARTM 0.9.2's ``artm.load_artm_model(path)`` reads.

So a model trained on a cluster goes on training on one machine with the real library::

    model = artm.load_artm_model("exported")       # an artm.ARTM, initialised
    model.get_phi()                                 # our phi, to the last float32 bit
    model.fit_offline(batch_vectorizer, num_collection_passes=5)

What ``load_artm_model`` reads (``artm/artm_model.py`` of 0.9.2) and what we write:

* ``parameters.bin``: a pickled dict of the ``ARTM(...)`` arguments and state (topic names,
  class ids with weights, document passes, seed, model names ``pwt``/``nwt``, passes done,
  ``initialized``), plus regularizers and scores as ``{name: [config type, serialized config]}``:
  both empty here (our training used none), so the loaded model has no score tracker entries;
* ``p_wt.bin`` and ``n_wt.bin``: each the format of the library's ``MasterComponent::ExportModel``
  (``ImportModel`` reads it): one byte 0 (format version), then chunks, each the decimal byte
  length of a serialized ``artm.TopicModel`` message (as C++ ``ostream << size_t`` writes it)
  followed by the message. A message holds ``name``, ``num_topics``, ``topic_name``, and for a
  run of tokens ``token``, ``class_id`` and ``token_weights`` (one ``FloatArray`` of T values per
  token: the dense layout, no ``topic_indices``). ``ImportModel`` reads a number with ``>>``, so a
  message must not start with a digit or white space: ours starts with field 1 (byte 0x0A), read
  by ``read`` right after the digits, never by ``>>``;
* ``score_tracker.bin``: the score tracker in the same framing; just the version byte (no scores);
* ``parameters.json``: the same parameters for people (not read back).

``n_wt`` is phi times the committed n_t (exactly the counters of the last pass, there being no
regularizers); a model that came from a phi file has no n_t and gets ``n_wt = phi``. Offline
training (``fit_offline``) recomputes n_wt from scratch every pass, so only online training
would see the difference.

The TopicModel message is encoded here by hand (protobuf wire format, a handful of fields),
checked by loading it into the real library (tests/test_api_bigartm.py).
"""

from __future__ import annotations

import json
import pickle
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from artm_compose.errors import ConfigError

BIGARTM_VERSION = "0.9.2"
PWT_NAME = "pwt"
NWT_NAME = "nwt"
# Tokens per TopicModel message, as the library chunks its own exports (100 MiB / topics).
CHUNK_VALUES = 100 * 1024 * 1024
# The pickle protocol Python 2 builds of BigARTM read too.
PICKLE_PROTOCOL = 2
_LENGTH_DELIMITED = 2
_VARINT = 0


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(field: int, wire_type: int) -> bytes:
    return _varint(field << 3 | wire_type)


def _bytes_field(field: int, data: bytes) -> bytes:
    return _key(field, _LENGTH_DELIMITED) + _varint(len(data)) + data


def _float_array(values: np.ndarray) -> bytes:
    """``artm.FloatArray``: field 1, packed little-endian float32."""
    return _bytes_field(1, np.ascontiguousarray(values, dtype="<f4").tobytes())


def topic_model_message(name: str, topic_names: list[str], tokens: list[str], class_ids: list[str],
                        values: np.ndarray) -> bytes:
    """A serialized ``artm.TopicModel`` (dense) for ``tokens`` x topics ``values``."""
    parts = [_bytes_field(1, name.encode()), _key(2, _VARINT) + _varint(len(topic_names))]
    parts += [_bytes_field(3, topic.encode()) for topic in topic_names]
    parts += [_bytes_field(4, token.encode()) for token in tokens]
    parts += [_bytes_field(5, _float_array(row)) for row in values]
    parts += [_bytes_field(6, class_id.encode()) for class_id in class_ids]
    return b"".join(parts)


def model_file_bytes(name: str, topic_names: list[str], tokens: list[str], class_ids: list[str],
                     values: np.ndarray) -> bytes:
    """The whole ``ExportModel`` file: version byte, then length-prefixed TopicModel chunks."""
    per_chunk = max(1, CHUNK_VALUES // max(1, len(topic_names)))
    out = [b"\x00"]
    for begin in range(0, len(tokens), per_chunk):
        end = begin + per_chunk
        message = topic_model_message(name, topic_names, tokens[begin:end], class_ids[begin:end], values[begin:end])
        out.append(str(len(message)).encode() + message)
    return b"".join(out)


def parameters(topic_names: list[str], class_ids: list[str], *, document_passes: int, seed: int, threads: int,
               passes_done: int) -> dict[str, Any]:
    """The ``parameters.bin`` dict ``load_artm_model`` passes to ``ARTM(...)`` and restores."""
    return {
        "version": BIGARTM_VERSION, "creation_time": str(datetime.now()), "num_processors": threads,
        "cache_theta": False, "num_document_passes": document_passes, "reuse_theta": False,
        "theta_columns_naming": "id", "seed": seed, "show_progress_bars": False, "topic_names": list(topic_names),
        "class_ids": {class_id: 1.0 for class_id in dict.fromkeys(class_ids)}, "model_pwt": PWT_NAME,
        "model_nwt": NWT_NAME, "theta_name": None, "synchronizations_processed": passes_done,
        "num_online_processed_batches": 0, "initialized": True, "regularizers": {}, "scores": {},
    }


def write_bigartm_model(out_dir: Path, *, phi: np.ndarray, tokens: list[str], class_ids: list[str],
                        topic_names: list[str], n_t: np.ndarray | None, document_passes: int, seed: int,
                        threads: int, passes_done: int) -> Path:
    """Write the model into the new directory ``out_dir`` (it must not exist, as for BigARTM's dump)."""
    out_dir = Path(out_dir)
    if out_dir.exists():
        raise ConfigError(f"export directory {out_dir} already exists; BigARTM's layout needs a new directory")
    if phi.shape != (len(tokens), len(topic_names)) or len(class_ids) != len(tokens):
        raise ConfigError(f"phi of shape {phi.shape} does not match {len(tokens)} tokens x {len(topic_names)} topics")
    phi = np.asarray(phi, dtype=np.float32)
    known_n_t = n_t is not None and np.all(np.isfinite(n_t))
    nwt = phi * np.asarray(n_t, dtype=np.float32)[None, :] if known_n_t else phi
    params = parameters(topic_names, class_ids, document_passes=document_passes, seed=seed, threads=threads,
                        passes_done=passes_done)
    # Written beside the target and renamed: a half-written directory never looks like a model.
    temporary = out_dir.with_name(f".{out_dir.name}.tmp")
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True)
    try:
        (temporary / "p_wt.bin").write_bytes(model_file_bytes(PWT_NAME, topic_names, tokens, class_ids, phi))
        (temporary / "n_wt.bin").write_bytes(model_file_bytes(NWT_NAME, topic_names, tokens, class_ids, nwt))
        (temporary / "score_tracker.bin").write_bytes(b"\x00")
        with (temporary / "parameters.bin").open("wb") as handle:
            pickle.dump(params, handle, protocol=PICKLE_PROTOCOL)
        (temporary / "parameters.json").write_text(json.dumps(params, indent=1) + "\n")
        temporary.rename(out_dir)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return out_dir
