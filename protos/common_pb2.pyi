from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable
from typing import ClassVar as _ClassVar, Optional as _Optional

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
    __slots__ = ("municipality_code",)
    MUNICIPALITY_CODE_FIELD_NUMBER: _ClassVar[int]
    municipality_code: str
    def __init__(self, municipality_code: _Optional[str] = ...) -> None: ...

class DigestBatch(_message.Message):
    __slots__ = ("resident_codes", "digests")
    RESIDENT_CODES_FIELD_NUMBER: _ClassVar[int]
    DIGESTS_FIELD_NUMBER: _ClassVar[int]
    resident_codes: _containers.RepeatedScalarFieldContainer[str]
    digests: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, resident_codes: _Optional[_Iterable[str]] = ..., digests: _Optional[_Iterable[bytes]] = ...) -> None: ...

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
