from protos import common_pb2 as _common_pb2
from protos import cs_pb2 as _cs_pb2
from protos import identity_pb2 as _identity_pb2
from protos import records_pb2 as _records_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
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

class FugoBatch(_message.Message):
    __slots__ = ("individual_numbers",)
    INDIVIDUAL_NUMBERS_FIELD_NUMBER: _ClassVar[int]
    individual_numbers: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, individual_numbers: _Optional[_Iterable[str]] = ...) -> None: ...

class FugoAssignments(_message.Message):
    __slots__ = ("fugo",)
    class FugoEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    FUGO_FIELD_NUMBER: _ClassVar[int]
    fugo: _containers.ScalarMap[str, str]
    def __init__(self, fugo: _Optional[_Mapping[str, str]] = ...) -> None: ...

class FugoSampleRequest(_message.Message):
    __slots__ = ("tenant", "count")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    count: int
    def __init__(self, tenant: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...

class FugoSample(_message.Message):
    __slots__ = ("fugo",)
    FUGO_FIELD_NUMBER: _ClassVar[int]
    fugo: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, fugo: _Optional[_Iterable[str]] = ...) -> None: ...

class PoolRequest(_message.Message):
    __slots__ = ("municipality_code", "count")
    MUNICIPALITY_CODE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    municipality_code: str
    count: int
    def __init__(self, municipality_code: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...
