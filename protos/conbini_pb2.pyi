from protos import common_pb2 as _common_pb2
from protos import kizon_pb2 as _kizon_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class UserSerial(_message.Message):
    __slots__ = ("serial", "resident_code")
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    serial: str
    resident_code: str
    def __init__(self, serial: _Optional[str] = ..., resident_code: _Optional[str] = ...) -> None: ...

class UserSerialBatch(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[UserSerial]
    def __init__(self, items: _Optional[_Iterable[_Union[UserSerial, _Mapping]]] = ...) -> None: ...

class CentreIssueRequest(_message.Message):
    __slots__ = ("serial", "kind", "challenge_id", "kiosk")
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    CHALLENGE_ID_FIELD_NUMBER: _ClassVar[int]
    KIOSK_FIELD_NUMBER: _ClassVar[int]
    serial: str
    kind: _kizon_pb2.CertificateKind
    challenge_id: str
    kiosk: str
    def __init__(self, serial: _Optional[str] = ..., kind: _Optional[_Union[_kizon_pb2.CertificateKind, str]] = ..., challenge_id: _Optional[str] = ..., kiosk: _Optional[str] = ...) -> None: ...
