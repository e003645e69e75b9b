"""Batch format: the .proto, reading and writing, encodings, layouts and damaged files."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from artm_compose.data import artm_batch_pb2
from artm_compose.data.batches import DEFAULT_CLASS, Batch, list_batches, make_batch, read_batch, write_batch
from artm_compose.errors import DataError

PROTO = Path(artm_batch_pb2.__file__).with_name("artm_batch.proto")

_PROTO_TYPES = {"int32": 5, "float": 2, "string": 9, "int64": 3, "double": 1}


def _label(field: object) -> str:
    """The field's label; ``FieldDescriptor.label`` is deprecated in protobuf 6, ``is_repeated`` new in 5."""
    if hasattr(field, "is_repeated"):
        return "repeated" if field.is_repeated else "required" if field.is_required else "optional"
    return {1: "optional", 2: "required", 3: "repeated"}[field.label]


def _proto_fields() -> dict[str, dict[str, tuple[int, str, str]]]:
    """Fields declared in artm_batch.proto: message -> field name -> (number, label, type name)."""
    text = re.sub(r"//[^\n]*", "", PROTO.read_text())
    messages = {}
    for name, body in re.findall(r"message\s+(\w+)\s*\{([^}]*)\}", text):
        fields = re.findall(r"(optional|repeated|required)\s+([\w.]+)\s+(\w+)\s*=\s*(\d+)", body)
        messages[name] = {f: (int(num), label, kind) for label, kind, f, num in fields}
    return messages


def test_runtime_descriptor_matches_proto_file() -> None:
    declared = _proto_fields()
    assert set(declared) == {"Batch", "Item"}
    assert "proto2" in PROTO.read_text()
    for message_class in (artm_batch_pb2.Batch, artm_batch_pb2.Item):
        descriptor = message_class.DESCRIPTOR
        assert descriptor.full_name == f"artm.{descriptor.name}"
        runtime = {f.name: f for f in descriptor.fields}
        assert set(runtime) == set(declared[descriptor.name])
        for name, (number, label, kind) in declared[descriptor.name].items():
            field = runtime[name]
            assert (field.number, _label(field)) == (number, label), name
            if kind in _PROTO_TYPES:
                assert field.type == _PROTO_TYPES[kind], name
                assert not field.GetOptions().packed, name
            else:
                assert field.message_type.full_name == f"artm.{kind}", name


def test_field_numbers_are_bigartms() -> None:
    fields = _proto_fields()
    assert {k: v[0] for k, v in fields["Batch"].items()} == {
        "token": 1, "class_id": 2, "item": 3, "description": 4, "id": 5}
    assert {k: v[0] for k, v in fields["Item"].items()} == {
        "id": 1, "title": 3, "token_id": 4, "token_weight": 5, "transaction_token_id": 6,
        "transaction_start_index": 7}


def sample_batch(name: str = "sample.batch", n_items: int = 5, n_tokens: int = 7, seed: int = 1) -> Batch:
    """A small batch of random documents of varying lengths (at least one token each)."""
    rng = np.random.default_rng(seed)
    documents = []
    for item_id in range(n_items):
        length = int(rng.integers(1, n_tokens + 1))
        index = rng.choice(n_tokens, length, replace=False)
        documents.append((100 + item_id, f"doc {item_id}", index, rng.integers(1, 5, length).astype(np.float32)))
    return make_batch(name, [f"word{i}" for i in range(n_tokens)], documents, batch_id="b-1")


def assert_same_batch(a: Batch, b: Batch) -> None:
    assert a.tokens == b.tokens
    assert a.class_ids == b.class_ids
    assert a.titles == b.titles
    np.testing.assert_array_equal(a.item_ids, b.item_ids)
    np.testing.assert_array_equal(a.indptr, b.indptr)
    np.testing.assert_array_equal(a.token_index, b.token_index)
    np.testing.assert_array_equal(a.weights, b.weights)


def test_round_trip(tmp_path: Path) -> None:
    batch = sample_batch()
    write_batch(tmp_path / "a.batch", batch)
    back = read_batch(tmp_path / "a.batch")
    assert_same_batch(batch, back)
    assert back.name == "a.batch" and back.batch_id == "b-1"
    assert back.item_ids.dtype == np.int64 and back.indptr.dtype == np.int64
    assert back.token_index.dtype == np.int32 and back.weights.dtype == np.float32
    assert back.n_items == 5 and back.nnz == int(batch.indptr[-1])
    assert back.token_weight == pytest.approx(float(batch.weights.sum()))
    assert not list(tmp_path.glob(".*"))  # no temporary left behind


def test_written_batch_is_unpacked_like_bigartm(tmp_path: Path) -> None:
    tokens = ["alpha", "beta"]
    batch = make_batch("x", tokens, [(7, "", np.array([1, 0]), np.array([2.0, 1.0]))], batch_id="id")
    write_batch(tmp_path / "x.batch", batch)
    data = (tmp_path / "x.batch").read_bytes()
    # Item: id=7 (08 07), token_id 1 and 0 each with tag 0x20, weights each with tag 0x2d: unpacked.
    item = b"\x08\x07" + b"\x20\x01\x20\x00" + b"\x2d" + np.float32(2).tobytes() + b"\x2d" + np.float32(1).tobytes()
    expected = (
        b"\x0a\x05alpha\x0a\x04beta"
        + b"\x12\x0e@default_class" * 2
        + b"\x1a" + bytes([len(item)]) + item
        + b"\x2a\x02id"
    )
    assert data == expected


def _packed_batch_class() -> type:
    """artm.Batch with packed repeated scalars (what proto3 or [packed=true] writers produce)."""
    file_proto = descriptor_pb2.FileDescriptorProto.FromString(artm_batch_pb2.SERIALIZED)
    for message in file_proto.message_type:
        for field in message.field:
            if field.label == field.LABEL_REPEATED and field.type not in (field.TYPE_STRING, field.TYPE_MESSAGE):
                field.options.packed = True
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file_proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("artm.Batch"))


def _encode(batch: Batch, message, layout: str) -> bytes:
    """Serialize ``batch`` into ``message`` in one item layout: "plain", "transactions" or "transactions+end"."""
    message.token.extend(batch.tokens)
    if layout != "plain":
        message.class_id.extend(batch.class_ids)
    for position, item_id in enumerate(batch.item_ids.tolist()):
        item = message.item.add()
        item.id = item_id
        item.title = batch.titles[position]
        span = slice(batch.indptr[position], batch.indptr[position + 1])
        item.token_weight.extend(batch.weights[span].tolist())
        if layout == "plain":
            item.token_id.extend(batch.token_index[span].tolist())
            continue
        count = span.stop - span.start
        item.transaction_token_id.extend(batch.token_index[span].tolist())
        item.transaction_start_index.extend(range(count + 1 if layout == "transactions+end" else count))
    return message.SerializeToString()


def test_packed_encoding_reads_the_same(tmp_path: Path) -> None:
    batch = sample_batch(n_items=20, n_tokens=30)
    data = _encode(batch, _packed_batch_class()(), "plain")
    unpacked_path = write_batch(tmp_path / "unpacked.batch", batch)
    assert len(data) < len(unpacked_path.read_bytes())  # really a different encoding
    (tmp_path / "packed.batch").write_bytes(data)
    back = read_batch(tmp_path / "packed.batch")
    assert back.class_ids == [DEFAULT_CLASS] * len(batch.tokens)  # absent class ids mean the default class
    assert_same_batch(batch, back)


@pytest.mark.parametrize("layout", ["transactions", "transactions+end"])
def test_transaction_layout_with_single_token_transactions(tmp_path: Path, layout: str) -> None:
    batch = sample_batch(n_items=8, n_tokens=12)
    (tmp_path / "t.batch").write_bytes(_encode(batch, artm_batch_pb2.Batch(), layout))
    assert_same_batch(batch, read_batch(tmp_path / "t.batch"))


def test_multi_token_transaction_is_refused(tmp_path: Path) -> None:
    message = artm_batch_pb2.Batch()
    message.token.extend(["a", "b", "c"])
    item = message.item.add()
    item.id = 3
    item.transaction_token_id.extend([0, 1, 2])
    item.transaction_start_index.extend([0, 2, 3])
    item.token_weight.extend([1.0, 1.0])
    (tmp_path / "multi.batch").write_bytes(message.SerializeToString())
    with pytest.raises(DataError, match=r"multi\.batch.*item #0 \(id 3\).*multi-token"):
        read_batch(tmp_path / "multi.batch")


def test_mixed_layouts_in_one_item_are_refused(tmp_path: Path) -> None:
    message = artm_batch_pb2.Batch()
    message.token.extend(["a", "b"])
    item = message.item.add()
    item.token_id.append(0)
    item.token_weight.append(1.0)
    item.transaction_token_id.append(1)
    item.transaction_start_index.append(0)
    (tmp_path / "mixed.batch").write_bytes(message.SerializeToString())
    with pytest.raises(DataError, match=r"mixed\.batch.*mixes"):
        read_batch(tmp_path / "mixed.batch")


def test_truncated_batches_name_the_file(tmp_path: Path) -> None:
    data = write_batch(tmp_path / "whole.batch", sample_batch(n_items=30, n_tokens=40)).read_bytes()
    for cut in (len(data) // 2, len(data) - 1, 3):
        path = tmp_path / f"cut{cut}.batch"
        path.write_bytes(data[:cut])
        with pytest.raises(DataError, match=re.escape(str(path))):
            read_batch(path)


@pytest.mark.parametrize(
    "content",
    [b"", b"\xff\xff\xff\xff\xff", b"this is not a batch at all\n", b"\x1a\x05\x20\x05\x2d\x00\x00"],
)
def test_corrupt_batches_name_the_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.batch"
    path.write_bytes(content)
    with pytest.raises(DataError, match=re.escape(str(path))):
        read_batch(path)


def test_inconsistent_batches_are_refused(tmp_path: Path) -> None:
    cases = {}
    message = artm_batch_pb2.Batch()
    message.token.extend(["a"])
    item = message.item.add()
    item.token_id.extend([0, 1])
    item.token_weight.extend([1.0, 1.0])
    cases["token id 1 but has only 1 tokens"] = message.SerializeToString()
    item.token_id.pop()
    item.token_weight.append(2.0)
    cases["1 token ids but 3 token weights"] = message.SerializeToString()
    message = artm_batch_pb2.Batch()
    message.token.extend(["a", "b"])
    message.class_id.append(DEFAULT_CLASS)
    message.item.add().token_id.append(0)
    message.item[0].token_weight.append(1.0)
    cases["2 tokens but 1 class ids"] = message.SerializeToString()
    message = artm_batch_pb2.Batch()
    message.token.append("a")
    message.item.add().token_id.append(0)
    message.item[0].token_weight.append(float("nan"))
    cases["invalid token weight nan"] = message.SerializeToString()
    for expected, data in cases.items():
        path = tmp_path / "inconsistent.batch"
        path.write_bytes(data)
        with pytest.raises(DataError, match=re.escape(str(path)) + ".*" + re.escape(expected)):
            read_batch(path)


def test_missing_file_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nowhere.batch"):
        read_batch(tmp_path / "nowhere.batch")


def test_list_batches_sorts_by_name_and_ignores_other_files(tmp_path: Path) -> None:
    for name in ("b.batch", "a.batch", "c.batch"):
        write_batch(tmp_path / name, sample_batch())
    (tmp_path / "vocab.txt").write_text("x\n")
    (tmp_path / "notes.batch.bak").write_text("x\n")
    (tmp_path / "dir.batch").mkdir()
    assert [p.name for p in list_batches(tmp_path)] == ["a.batch", "b.batch", "c.batch"]


def test_list_batches_errors_name_the_directory(tmp_path: Path) -> None:
    (tmp_path / "vocab.txt").write_text("x\n")
    with pytest.raises(DataError, match=re.escape(f"no *.batch files in {tmp_path}")):
        list_batches(tmp_path)
    with pytest.raises(DataError, match="missing-dir"):
        list_batches(tmp_path / "missing-dir")


def test_write_refuses_item_ids_beyond_int32(tmp_path: Path) -> None:
    batch = make_batch("x", ["a"], [(2**31, "", np.array([0]), np.array([1.0]))])
    with pytest.raises(DataError, match="int32"):
        write_batch(tmp_path / "x.batch", batch)
