from protos import common_pb2 as _common_pb2
from protos import records_pb2 as _records_pb2
from protos import prefecture_pb2 as _prefecture_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class FugoRequest(_message.Message):
    __slots__ = ("individual_number",)
    INDIVIDUAL_NUMBER_FIELD_NUMBER: _ClassVar[int]
    individual_number: str
    def __init__(self, individual_number: _Optional[str] = ...) -> None: ...

class FugoReply(_message.Message):
    __slots__ = ("fugo",)
    FUGO_FIELD_NUMBER: _ClassVar[int]
    fugo: str
    def __init__(self, fugo: _Optional[str] = ...) -> None: ...
