from protos import common_pb2 as _common_pb2
from protos import records_pb2 as _records_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DeliveryQueueEntry(_message.Message):
    __slots__ = ("delivery", "received_at")
    DELIVERY_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_AT_FIELD_NUMBER: _ClassVar[int]
    delivery: _records_pb2.DeliveryInfo
    received_at: str
    def __init__(self, delivery: _Optional[_Union[_records_pb2.DeliveryInfo, _Mapping]] = ..., received_at: _Optional[str] = ...) -> None: ...

class DeliveryBatch(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[_records_pb2.DeliveryInfo]
    def __init__(self, items: _Optional[_Iterable[_Union[_records_pb2.DeliveryInfo, _Mapping]]] = ...) -> None: ...
