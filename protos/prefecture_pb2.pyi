from protos import common_pb2 as _common_pb2
from protos import records_pb2 as _records_pb2
from protos import cs_pb2 as _cs_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class IdentityUpdateBatch(_message.Message):
    __slots__ = ("municipality_code", "updates")
    MUNICIPALITY_CODE_FIELD_NUMBER: _ClassVar[int]
    UPDATES_FIELD_NUMBER: _ClassVar[int]
    municipality_code: str
    updates: _containers.RepeatedCompositeFieldContainer[_cs_pb2.IdentityUpdate]
    def __init__(self, municipality_code: _Optional[str] = ..., updates: _Optional[_Iterable[_Union[_cs_pb2.IdentityUpdate, _Mapping]]] = ...) -> None: ...
