from protos import common_pb2 as _common_pb2
from protos import records_pb2 as _records_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CardAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CARD_ACTION_UNSPECIFIED: _ClassVar[CardAction]
    APPLY: _ClassVar[CardAction]
    ISSUE: _ClassVar[CardAction]
    SUSPEND: _ClassVar[CardAction]
    LIFT: _ClassVar[CardAction]
    REVOKE: _ClassVar[CardAction]
    RETURN: _ClassVar[CardAction]
    RESET_PIN: _ClassVar[CardAction]
    TRANSFER: _ClassVar[CardAction]
    RECODE: _ClassVar[CardAction]
CARD_ACTION_UNSPECIFIED: CardAction
APPLY: CardAction
ISSUE: CardAction
SUSPEND: CardAction
LIFT: CardAction
REVOKE: CardAction
RETURN: CardAction
RESET_PIN: CardAction
TRANSFER: CardAction
RECODE: CardAction

class DeliveryQueueEntry(_message.Message):
    __slots__ = ("delivery", "received_at", "notice_printed_at")
    DELIVERY_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_AT_FIELD_NUMBER: _ClassVar[int]
    NOTICE_PRINTED_AT_FIELD_NUMBER: _ClassVar[int]
    delivery: _records_pb2.DeliveryInfo
    received_at: str
    notice_printed_at: str
    def __init__(self, delivery: _Optional[_Union[_records_pb2.DeliveryInfo, _Mapping]] = ..., received_at: _Optional[str] = ..., notice_printed_at: _Optional[str] = ...) -> None: ...

class DeliveryBatch(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[_records_pb2.DeliveryInfo]
    def __init__(self, items: _Optional[_Iterable[_Union[_records_pb2.DeliveryInfo, _Mapping]]] = ...) -> None: ...

class CardRequest(_message.Message):
    __slots__ = ("action", "resident_code", "municipality_code", "pin", "reason", "former_resident_code", "user_public_key")
    ACTION_FIELD_NUMBER: _ClassVar[int]
    RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    MUNICIPALITY_CODE_FIELD_NUMBER: _ClassVar[int]
    PIN_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    FORMER_RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    USER_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    action: CardAction
    resident_code: str
    municipality_code: str
    pin: str
    reason: str
    former_resident_code: str
    user_public_key: bytes
    def __init__(self, action: _Optional[_Union[CardAction, str]] = ..., resident_code: _Optional[str] = ..., municipality_code: _Optional[str] = ..., pin: _Optional[str] = ..., reason: _Optional[str] = ..., former_resident_code: _Optional[str] = ..., user_public_key: _Optional[bytes] = ...) -> None: ...

class CardStatus(_message.Message):
    __slots__ = ("card_number", "resident_code", "municipality_code", "state", "pin_locked", "pin_failures", "updated_at", "user_certificate", "user_certificate_serial")
    CARD_NUMBER_FIELD_NUMBER: _ClassVar[int]
    RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    MUNICIPALITY_CODE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PIN_LOCKED_FIELD_NUMBER: _ClassVar[int]
    PIN_FAILURES_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    USER_CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    USER_CERTIFICATE_SERIAL_FIELD_NUMBER: _ClassVar[int]
    card_number: str
    resident_code: str
    municipality_code: str
    state: str
    pin_locked: bool
    pin_failures: int
    updated_at: str
    user_certificate: bytes
    user_certificate_serial: str
    def __init__(self, card_number: _Optional[str] = ..., resident_code: _Optional[str] = ..., municipality_code: _Optional[str] = ..., state: _Optional[str] = ..., pin_locked: _Optional[bool] = ..., pin_failures: _Optional[int] = ..., updated_at: _Optional[str] = ..., user_certificate: _Optional[bytes] = ..., user_certificate_serial: _Optional[str] = ...) -> None: ...

class UserCertificateQuery(_message.Message):
    __slots__ = ("serial",)
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    serial: str
    def __init__(self, serial: _Optional[str] = ...) -> None: ...

class UserCertificateStatus(_message.Message):
    __slots__ = ("status", "municipality_code")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MUNICIPALITY_CODE_FIELD_NUMBER: _ClassVar[int]
    status: str
    municipality_code: str
    def __init__(self, status: _Optional[str] = ..., municipality_code: _Optional[str] = ...) -> None: ...

class PinCheck(_message.Message):
    __slots__ = ("card_number", "pin")
    CARD_NUMBER_FIELD_NUMBER: _ClassVar[int]
    PIN_FIELD_NUMBER: _ClassVar[int]
    card_number: str
    pin: str
    def __init__(self, card_number: _Optional[str] = ..., pin: _Optional[str] = ...) -> None: ...
