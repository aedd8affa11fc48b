from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class ResidentKey(_message.Message):
    __slots__ = ("resident_code",)
    RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    resident_code: str
    def __init__(self, resident_code: _Optional[str] = ...) -> None: ...

class UpdateAck(_message.Message):
    __slots__ = ("accepted", "update_sequence", "detail")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    UPDATE_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    accepted: bool
    update_sequence: int
    detail: str
    def __init__(self, accepted: _Optional[bool] = ..., update_sequence: _Optional[int] = ..., detail: _Optional[str] = ...) -> None: ...

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
