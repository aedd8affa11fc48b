from protos import kizon_pb2 as _kizon_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BeginRequest(_message.Message):
    __slots__ = ("user_certificate",)
    USER_CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    user_certificate: bytes
    def __init__(self, user_certificate: _Optional[bytes] = ...) -> None: ...

class Challenge(_message.Message):
    __slots__ = ("challenge_id", "nonce", "expires_at")
    CHALLENGE_ID_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    challenge_id: str
    nonce: bytes
    expires_at: str
    def __init__(self, challenge_id: _Optional[str] = ..., nonce: _Optional[bytes] = ..., expires_at: _Optional[str] = ...) -> None: ...

class CompleteRequest(_message.Message):
    __slots__ = ("challenge_id", "signature", "municipality_code", "kind")
    CHALLENGE_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    MUNICIPALITY_CODE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    challenge_id: str
    signature: bytes
    municipality_code: str
    kind: _kizon_pb2.CertificateKind
    def __init__(self, challenge_id: _Optional[str] = ..., signature: _Optional[bytes] = ..., municipality_code: _Optional[str] = ..., kind: _Optional[_Union[_kizon_pb2.CertificateKind, str]] = ...) -> None: ...
