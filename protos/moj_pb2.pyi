from protos import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ResidenceCardRecord(_message.Message):
    __slots__ = ("residence_card_number", "name_romaji", "nationality", "birth_date", "sex", "residence_status", "period_expiry_date", "municipality_code", "resident_code", "address", "status")
    RESIDENCE_CARD_NUMBER_FIELD_NUMBER: _ClassVar[int]
    NAME_ROMAJI_FIELD_NUMBER: _ClassVar[int]
    NATIONALITY_FIELD_NUMBER: _ClassVar[int]
    BIRTH_DATE_FIELD_NUMBER: _ClassVar[int]
    SEX_FIELD_NUMBER: _ClassVar[int]
    RESIDENCE_STATUS_FIELD_NUMBER: _ClassVar[int]
    PERIOD_EXPIRY_DATE_FIELD_NUMBER: _ClassVar[int]
    MUNICIPALITY_CODE_FIELD_NUMBER: _ClassVar[int]
    RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    residence_card_number: str
    name_romaji: str
    nationality: str
    birth_date: str
    sex: str
    residence_status: str
    period_expiry_date: str
    municipality_code: str
    resident_code: str
    address: str
    status: str
    def __init__(self, residence_card_number: _Optional[str] = ..., name_romaji: _Optional[str] = ..., nationality: _Optional[str] = ..., birth_date: _Optional[str] = ..., sex: _Optional[str] = ..., residence_status: _Optional[str] = ..., period_expiry_date: _Optional[str] = ..., municipality_code: _Optional[str] = ..., resident_code: _Optional[str] = ..., address: _Optional[str] = ..., status: _Optional[str] = ...) -> None: ...

class ResidenceChange(_message.Message):
    __slots__ = ("residence_card_number", "kind", "residence_status", "period_expiry_date", "new_card_number", "event_date")
    RESIDENCE_CARD_NUMBER_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    RESIDENCE_STATUS_FIELD_NUMBER: _ClassVar[int]
    PERIOD_EXPIRY_DATE_FIELD_NUMBER: _ClassVar[int]
    NEW_CARD_NUMBER_FIELD_NUMBER: _ClassVar[int]
    EVENT_DATE_FIELD_NUMBER: _ClassVar[int]
    residence_card_number: str
    kind: str
    residence_status: str
    period_expiry_date: str
    new_card_number: str
    event_date: str
    def __init__(self, residence_card_number: _Optional[str] = ..., kind: _Optional[str] = ..., residence_status: _Optional[str] = ..., period_expiry_date: _Optional[str] = ..., new_card_number: _Optional[str] = ..., event_date: _Optional[str] = ...) -> None: ...

class ImmigrationNotice(_message.Message):
    __slots__ = ("sequence", "municipality_code", "resident_code", "residence_card_number", "change", "notified_at")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    MUNICIPALITY_CODE_FIELD_NUMBER: _ClassVar[int]
    RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    RESIDENCE_CARD_NUMBER_FIELD_NUMBER: _ClassVar[int]
    CHANGE_FIELD_NUMBER: _ClassVar[int]
    NOTIFIED_AT_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    municipality_code: str
    resident_code: str
    residence_card_number: str
    change: ResidenceChange
    notified_at: str
    def __init__(self, sequence: _Optional[int] = ..., municipality_code: _Optional[str] = ..., resident_code: _Optional[str] = ..., residence_card_number: _Optional[str] = ..., change: _Optional[_Union[ResidenceChange, _Mapping]] = ..., notified_at: _Optional[str] = ...) -> None: ...

class ImmigrationNotices(_message.Message):
    __slots__ = ("notices", "last_id")
    NOTICES_FIELD_NUMBER: _ClassVar[int]
    LAST_ID_FIELD_NUMBER: _ClassVar[int]
    notices: _containers.RepeatedCompositeFieldContainer[ImmigrationNotice]
    last_id: int
    def __init__(self, notices: _Optional[_Iterable[_Union[ImmigrationNotice, _Mapping]]] = ..., last_id: _Optional[int] = ...) -> None: ...

class ImmigrationCursor(_message.Message):
    __slots__ = ("processed_up_to",)
    PROCESSED_UP_TO_FIELD_NUMBER: _ClassVar[int]
    processed_up_to: int
    def __init__(self, processed_up_to: _Optional[int] = ...) -> None: ...

class ImmigrationNoticeAck(_message.Message):
    __slots__ = ("applied_up_to", "refused")
    APPLIED_UP_TO_FIELD_NUMBER: _ClassVar[int]
    REFUSED_FIELD_NUMBER: _ClassVar[int]
    applied_up_to: int
    refused: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, applied_up_to: _Optional[int] = ..., refused: _Optional[_Iterable[str]] = ...) -> None: ...

class MunicipalityNotice(_message.Message):
    __slots__ = ("sequence", "municipality_code", "resident_code", "residence_card_number", "reason", "address", "household_number", "householder_name", "relationship", "name", "event_date")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    MUNICIPALITY_CODE_FIELD_NUMBER: _ClassVar[int]
    RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    RESIDENCE_CARD_NUMBER_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    HOUSEHOLD_NUMBER_FIELD_NUMBER: _ClassVar[int]
    HOUSEHOLDER_NAME_FIELD_NUMBER: _ClassVar[int]
    RELATIONSHIP_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    EVENT_DATE_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    municipality_code: str
    resident_code: str
    residence_card_number: str
    reason: str
    address: str
    household_number: str
    householder_name: str
    relationship: str
    name: str
    event_date: str
    def __init__(self, sequence: _Optional[int] = ..., municipality_code: _Optional[str] = ..., resident_code: _Optional[str] = ..., residence_card_number: _Optional[str] = ..., reason: _Optional[str] = ..., address: _Optional[str] = ..., household_number: _Optional[str] = ..., householder_name: _Optional[str] = ..., relationship: _Optional[str] = ..., name: _Optional[str] = ..., event_date: _Optional[str] = ...) -> None: ...

class ResidenceCardLoad(_message.Message):
    __slots__ = ("records",)
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[ResidenceCardRecord]
    def __init__(self, records: _Optional[_Iterable[_Union[ResidenceCardRecord, _Mapping]]] = ...) -> None: ...

class ResidenceCardKey(_message.Message):
    __slots__ = ("residence_card_number",)
    RESIDENCE_CARD_NUMBER_FIELD_NUMBER: _ClassVar[int]
    residence_card_number: str
    def __init__(self, residence_card_number: _Optional[str] = ...) -> None: ...
