"""Message classes for artm.Batch / artm.Item, built at import time from artm_batch.proto's descriptor.

No protoc-generated code: generated modules carry a protobuf runtime version check, while a
serialized FileDescriptorProto loads on every protobuf release from 4.21 to 6.x. The classes live
in a private descriptor pool so they never clash with another artm package in the process.

SERIALIZED is produced from artm_batch.proto (the source of truth; tests check they agree) with:
  python -m grpc_tools.protoc -I artm_compose/data --descriptor_set_out=/tmp/artm_batch.desc \\
      artm_compose/data/artm_batch.proto
  python -c "from google.protobuf import descriptor_pb2 as d; print(repr(d.FileDescriptorSet.FromString(
      open('/tmp/artm_batch.desc', 'rb').read()).file[0].SerializeToString()))"
"""

from google.protobuf import descriptor_pool, message_factory
from google.protobuf.message import DecodeError, Message

SERIALIZED = (
    b'\n\x10artm_batch.proto\x12\x04artm"\xd4\x01\n\x04Item\x12\x0e\n\x02id\x18\x01 \x01(\x05R\x02id\x12\x14\n\x05title\x18\x03 \x01(\tR\x05title\x12\x19\n\x08token_id\x18\x04 \x03(\x05R\x07tokenId\x12!\n\x0ctoken_weight\x18\x05 \x03(\x02R\x0btokenWeight\x120\n\x14transaction_token_id\x18\x06 \x03(\x05R\x12transactionTokenId\x126\n\x17transaction_start_index\x18\x07 \x03(\x05R\x15transactionStartIndex"\x8a\x01\n\x05Batch\x12\x14\n\x05token\x18\x01 \x03(\tR\x05token\x12\x19\n\x08class_id\x18\x02 \x03(\tR\x07classId\x12\x1e\n\x04item\x18\x03 \x03(\x0b2\n.artm.ItemR\x04item\x12 \n\x0bdescription\x18\x04 \x01(\tR\x0bdescription\x12\x0e\n\x02id\x18\x05 \x01(\tR\x02id'
)


def _message_classes() -> tuple[type[Message], type[Message]]:
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(SERIALIZED)
    batch_descriptor = pool.FindMessageTypeByName("artm.Batch")
    item_descriptor = pool.FindMessageTypeByName("artm.Item")
    get_class = getattr(message_factory, "GetMessageClass", None)
    if get_class is None:  # protobuf < 4.22 has only the factory API
        factory = message_factory.MessageFactory(pool)
        return factory.GetPrototype(batch_descriptor), factory.GetPrototype(item_descriptor)
    return get_class(batch_descriptor), get_class(item_descriptor)


Batch, Item = _message_classes()

__all__ = ["Batch", "Item", "DecodeError", "Message", "SERIALIZED"]
