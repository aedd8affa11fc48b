from protos import common_pb2 as _common_pb2
from protos import cs_pb2 as _cs_pb2
from protos import identity_pb2 as _identity_pb2
from protos import records_pb2 as _records_pb2
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

class PoolRequest(_message.Message):
    __slots__ = ("municipality_code", "count")
    MUNICIPALITY_CODE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    municipality_code: str
    count: int
    def __init__(self, municipality_code: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...
