from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ResidentKey(_message.Message):
    __slots__ = ("resident_code",)
    RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    resident_code: str
    def __init__(self, resident_code: _Optional[str] = ...) -> None: ...

class ResidentKeys(_message.Message):
    __slots__ = ("resident_codes",)
    RESIDENT_CODES_FIELD_NUMBER: _ClassVar[int]
    resident_codes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, resident_codes: _Optional[_Iterable[str]] = ...) -> None: ...

class UpdateAck(_message.Message):
    __slots__ = ("accepted", "update_sequence", "detail", "applied")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    UPDATE_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    accepted: bool
    update_sequence: int
    detail: str
    applied: int
    def __init__(self, accepted: _Optional[bool] = ..., update_sequence: _Optional[int] = ..., detail: _Optional[str] = ..., applied: _Optional[int] = ...) -> None: ...

class Empty(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ConsistencyRequest(_message.Message):
    __slots__ = ("municipality_code", "prefixes", "ranges", "deep")
    MUNICIPALITY_CODE_FIELD_NUMBER: _ClassVar[int]
    PREFIXES_FIELD_NUMBER: _ClassVar[int]
    RANGES_FIELD_NUMBER: _ClassVar[int]
    DEEP_FIELD_NUMBER: _ClassVar[int]
    municipality_code: str
    prefixes: _containers.RepeatedScalarFieldContainer[str]
    ranges: bool
    deep: bool
    def __init__(self, municipality_code: _Optional[str] = ..., prefixes: _Optional[_Iterable[str]] = ..., ranges: _Optional[bool] = ..., deep: _Optional[bool] = ...) -> None: ...

class RangeDigest(_message.Message):
    __slots__ = ("prefix", "records", "high", "low")
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    HIGH_FIELD_NUMBER: _ClassVar[int]
    LOW_FIELD_NUMBER: _ClassVar[int]
    prefix: str
    records: int
    high: int
    low: int
    def __init__(self, prefix: _Optional[str] = ..., records: _Optional[int] = ..., high: _Optional[int] = ..., low: _Optional[int] = ...) -> None: ...

class DigestBatch(_message.Message):
    __slots__ = ("resident_codes", "digests", "ranges")
    RESIDENT_CODES_FIELD_NUMBER: _ClassVar[int]
    DIGESTS_FIELD_NUMBER: _ClassVar[int]
    RANGES_FIELD_NUMBER: _ClassVar[int]
    resident_codes: _containers.RepeatedScalarFieldContainer[str]
    digests: _containers.RepeatedScalarFieldContainer[bytes]
    ranges: _containers.RepeatedCompositeFieldContainer[RangeDigest]
    def __init__(self, resident_codes: _Optional[_Iterable[str]] = ..., digests: _Optional[_Iterable[bytes]] = ..., ranges: _Optional[_Iterable[_Union[RangeDigest, _Mapping]]] = ...) -> None: ...

class EchoRequest(_message.Message):
    __slots__ = ("payload",)
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    payload: bytes
    def __init__(self, payload: _Optional[bytes] = ...) -> None: ...

class EchoReply(_message.Message):
    __slots__ = ("payload",)
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    payload: bytes
    def __init__(self, payload: _Optional[bytes] = ...) -> None: ...
