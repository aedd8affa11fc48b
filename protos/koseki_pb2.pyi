from protos import common_pb2 as _common_pb2
from protos import identity_pb2 as _identity_pb2
from protos import kizon_pb2 as _kizon_pb2
from protos import records_pb2 as _records_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FamilyMember(_message.Message):
    __slots__ = ("resident_code", "surname", "given_name", "surname_kana", "given_name_kana", "reading_confirmed", "birth_date", "sex", "status", "removal_reason", "relationship", "spouse", "surname_before_marriage", "surname_kana_before_marriage")
    RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    SURNAME_FIELD_NUMBER: _ClassVar[int]
    GIVEN_NAME_FIELD_NUMBER: _ClassVar[int]
    SURNAME_KANA_FIELD_NUMBER: _ClassVar[int]
    GIVEN_NAME_KANA_FIELD_NUMBER: _ClassVar[int]
    READING_CONFIRMED_FIELD_NUMBER: _ClassVar[int]
    BIRTH_DATE_FIELD_NUMBER: _ClassVar[int]
    SEX_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REMOVAL_REASON_FIELD_NUMBER: _ClassVar[int]
    RELATIONSHIP_FIELD_NUMBER: _ClassVar[int]
    SPOUSE_FIELD_NUMBER: _ClassVar[int]
    SURNAME_BEFORE_MARRIAGE_FIELD_NUMBER: _ClassVar[int]
    SURNAME_KANA_BEFORE_MARRIAGE_FIELD_NUMBER: _ClassVar[int]
    resident_code: str
    surname: str
    given_name: str
    surname_kana: str
    given_name_kana: str
    reading_confirmed: bool
    birth_date: str
    sex: str
    status: str
    removal_reason: str
    relationship: str
    spouse: str
    surname_before_marriage: str
    surname_kana_before_marriage: str
    def __init__(self, resident_code: _Optional[str] = ..., surname: _Optional[str] = ..., given_name: _Optional[str] = ..., surname_kana: _Optional[str] = ..., given_name_kana: _Optional[str] = ..., reading_confirmed: _Optional[bool] = ..., birth_date: _Optional[str] = ..., sex: _Optional[str] = ..., status: _Optional[str] = ..., removal_reason: _Optional[str] = ..., relationship: _Optional[str] = ..., spouse: _Optional[str] = ..., surname_before_marriage: _Optional[str] = ..., surname_kana_before_marriage: _Optional[str] = ...) -> None: ...

class FamilyRegister(_message.Message):
    __slots__ = ("register_number", "honseki", "hittousha", "members", "status")
    REGISTER_NUMBER_FIELD_NUMBER: _ClassVar[int]
    HONSEKI_FIELD_NUMBER: _ClassVar[int]
    HITTOUSHA_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    register_number: str
    honseki: str
    hittousha: str
    members: _containers.RepeatedCompositeFieldContainer[FamilyMember]
    status: str
    def __init__(self, register_number: _Optional[str] = ..., honseki: _Optional[str] = ..., hittousha: _Optional[str] = ..., members: _Optional[_Iterable[_Union[FamilyMember, _Mapping]]] = ..., status: _Optional[str] = ...) -> None: ...

class AnnexEntry(_message.Message):
    __slots__ = ("resident_code", "address", "address_since", "municipality_code", "reason", "recorded_at")
    RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_SINCE_FIELD_NUMBER: _ClassVar[int]
    MUNICIPALITY_CODE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    RECORDED_AT_FIELD_NUMBER: _ClassVar[int]
    resident_code: str
    address: str
    address_since: str
    municipality_code: str
    reason: str
    recorded_at: str
    def __init__(self, resident_code: _Optional[str] = ..., address: _Optional[str] = ..., address_since: _Optional[str] = ..., municipality_code: _Optional[str] = ..., reason: _Optional[str] = ..., recorded_at: _Optional[str] = ...) -> None: ...

class AnnexHistory(_message.Message):
    __slots__ = ("resident_code", "register_number", "entries")
    RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    REGISTER_NUMBER_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    resident_code: str
    register_number: str
    entries: _containers.RepeatedCompositeFieldContainer[AnnexEntry]
    def __init__(self, resident_code: _Optional[str] = ..., register_number: _Optional[str] = ..., entries: _Optional[_Iterable[_Union[AnnexEntry, _Mapping]]] = ...) -> None: ...

class MarriageRequest(_message.Message):
    __slots__ = ("husband", "wife", "surname_of", "new_honseki", "same_household", "notification_date", "notifier")
    HUSBAND_FIELD_NUMBER: _ClassVar[int]
    WIFE_FIELD_NUMBER: _ClassVar[int]
    SURNAME_OF_FIELD_NUMBER: _ClassVar[int]
    NEW_HONSEKI_FIELD_NUMBER: _ClassVar[int]
    SAME_HOUSEHOLD_FIELD_NUMBER: _ClassVar[int]
    NOTIFICATION_DATE_FIELD_NUMBER: _ClassVar[int]
    NOTIFIER_FIELD_NUMBER: _ClassVar[int]
    husband: str
    wife: str
    surname_of: str
    new_honseki: str
    same_household: bool
    notification_date: str
    notifier: _records_pb2.Requester
    def __init__(self, husband: _Optional[str] = ..., wife: _Optional[str] = ..., surname_of: _Optional[str] = ..., new_honseki: _Optional[str] = ..., same_household: _Optional[bool] = ..., notification_date: _Optional[str] = ..., notifier: _Optional[_Union[_records_pb2.Requester, _Mapping]] = ...) -> None: ...

class DivorceRequest(_message.Message):
    __slots__ = ("resident_code", "new_honseki", "separate_household", "notification_date", "notifier")
    RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    NEW_HONSEKI_FIELD_NUMBER: _ClassVar[int]
    SEPARATE_HOUSEHOLD_FIELD_NUMBER: _ClassVar[int]
    NOTIFICATION_DATE_FIELD_NUMBER: _ClassVar[int]
    NOTIFIER_FIELD_NUMBER: _ClassVar[int]
    resident_code: str
    new_honseki: str
    separate_household: bool
    notification_date: str
    notifier: _records_pb2.Requester
    def __init__(self, resident_code: _Optional[str] = ..., new_honseki: _Optional[str] = ..., separate_household: _Optional[bool] = ..., notification_date: _Optional[str] = ..., notifier: _Optional[_Union[_records_pb2.Requester, _Mapping]] = ...) -> None: ...

class TransferRequest(_message.Message):
    __slots__ = ("register_number", "new_honseki", "notification_date", "notifier")
    REGISTER_NUMBER_FIELD_NUMBER: _ClassVar[int]
    NEW_HONSEKI_FIELD_NUMBER: _ClassVar[int]
    NOTIFICATION_DATE_FIELD_NUMBER: _ClassVar[int]
    NOTIFIER_FIELD_NUMBER: _ClassVar[int]
    register_number: str
    new_honseki: str
    notification_date: str
    notifier: _records_pb2.Requester
    def __init__(self, register_number: _Optional[str] = ..., new_honseki: _Optional[str] = ..., notification_date: _Optional[str] = ..., notifier: _Optional[_Union[_records_pb2.Requester, _Mapping]] = ...) -> None: ...

class ReadingRequest(_message.Message):
    __slots__ = ("resident_code", "surname_kana", "given_name_kana", "notification_date", "notifier")
    RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    SURNAME_KANA_FIELD_NUMBER: _ClassVar[int]
    GIVEN_NAME_KANA_FIELD_NUMBER: _ClassVar[int]
    NOTIFICATION_DATE_FIELD_NUMBER: _ClassVar[int]
    NOTIFIER_FIELD_NUMBER: _ClassVar[int]
    resident_code: str
    surname_kana: str
    given_name_kana: str
    notification_date: str
    notifier: _records_pb2.Requester
    def __init__(self, resident_code: _Optional[str] = ..., surname_kana: _Optional[str] = ..., given_name_kana: _Optional[str] = ..., notification_date: _Optional[str] = ..., notifier: _Optional[_Union[_records_pb2.Requester, _Mapping]] = ...) -> None: ...

class DeathNotification(_message.Message):
    __slots__ = ("resident_code", "death_date", "notification_date", "notifier")
    RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    DEATH_DATE_FIELD_NUMBER: _ClassVar[int]
    NOTIFICATION_DATE_FIELD_NUMBER: _ClassVar[int]
    NOTIFIER_FIELD_NUMBER: _ClassVar[int]
    resident_code: str
    death_date: str
    notification_date: str
    notifier: _records_pb2.Requester
    def __init__(self, resident_code: _Optional[str] = ..., death_date: _Optional[str] = ..., notification_date: _Optional[str] = ..., notifier: _Optional[_Union[_records_pb2.Requester, _Mapping]] = ...) -> None: ...

class FamilyRegisterReply(_message.Message):
    __slots__ = ("registers", "notice_sequence")
    REGISTERS_FIELD_NUMBER: _ClassVar[int]
    NOTICE_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    registers: _containers.RepeatedCompositeFieldContainer[FamilyRegister]
    notice_sequence: int
    def __init__(self, registers: _Optional[_Iterable[_Union[FamilyRegister, _Mapping]]] = ..., notice_sequence: _Optional[int] = ...) -> None: ...

class FamilyRegisterKey(_message.Message):
    __slots__ = ("register_number", "resident_code")
    REGISTER_NUMBER_FIELD_NUMBER: _ClassVar[int]
    RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    register_number: str
    resident_code: str
    def __init__(self, register_number: _Optional[str] = ..., resident_code: _Optional[str] = ...) -> None: ...

class FamilyRegisterLoad(_message.Message):
    __slots__ = ("registers", "annex")
    REGISTERS_FIELD_NUMBER: _ClassVar[int]
    ANNEX_FIELD_NUMBER: _ClassVar[int]
    registers: _containers.RepeatedCompositeFieldContainer[FamilyRegister]
    annex: _containers.RepeatedCompositeFieldContainer[AnnexEntry]
    def __init__(self, registers: _Optional[_Iterable[_Union[FamilyRegister, _Mapping]]] = ..., annex: _Optional[_Iterable[_Union[AnnexEntry, _Mapping]]] = ...) -> None: ...

class FamilyRegisterNotice(_message.Message):
    __slots__ = ("sequence", "kind", "resident_code", "surname", "surname_kana", "given_name_kana", "honseki", "hittousha", "join_household_of", "relationship", "separate_household", "event_date", "notification_date", "notifier", "register_number")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    SURNAME_FIELD_NUMBER: _ClassVar[int]
    SURNAME_KANA_FIELD_NUMBER: _ClassVar[int]
    GIVEN_NAME_KANA_FIELD_NUMBER: _ClassVar[int]
    HONSEKI_FIELD_NUMBER: _ClassVar[int]
    HITTOUSHA_FIELD_NUMBER: _ClassVar[int]
    JOIN_HOUSEHOLD_OF_FIELD_NUMBER: _ClassVar[int]
    RELATIONSHIP_FIELD_NUMBER: _ClassVar[int]
    SEPARATE_HOUSEHOLD_FIELD_NUMBER: _ClassVar[int]
    EVENT_DATE_FIELD_NUMBER: _ClassVar[int]
    NOTIFICATION_DATE_FIELD_NUMBER: _ClassVar[int]
    NOTIFIER_FIELD_NUMBER: _ClassVar[int]
    REGISTER_NUMBER_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    kind: str
    resident_code: str
    surname: str
    surname_kana: str
    given_name_kana: str
    honseki: str
    hittousha: str
    join_household_of: str
    relationship: str
    separate_household: bool
    event_date: str
    notification_date: str
    notifier: _records_pb2.Requester
    register_number: str
    def __init__(self, sequence: _Optional[int] = ..., kind: _Optional[str] = ..., resident_code: _Optional[str] = ..., surname: _Optional[str] = ..., surname_kana: _Optional[str] = ..., given_name_kana: _Optional[str] = ..., honseki: _Optional[str] = ..., hittousha: _Optional[str] = ..., join_household_of: _Optional[str] = ..., relationship: _Optional[str] = ..., separate_household: _Optional[bool] = ..., event_date: _Optional[str] = ..., notification_date: _Optional[str] = ..., notifier: _Optional[_Union[_records_pb2.Requester, _Mapping]] = ..., register_number: _Optional[str] = ...) -> None: ...

class FamilyRegisterNoticeBatch(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[FamilyRegisterNotice]
    def __init__(self, items: _Optional[_Iterable[_Union[FamilyRegisterNotice, _Mapping]]] = ...) -> None: ...

class FamilyRegisterNoticeAck(_message.Message):
    __slots__ = ("applied_up_to", "refused")
    APPLIED_UP_TO_FIELD_NUMBER: _ClassVar[int]
    REFUSED_FIELD_NUMBER: _ClassVar[int]
    applied_up_to: int
    refused: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, applied_up_to: _Optional[int] = ..., refused: _Optional[_Iterable[str]] = ...) -> None: ...

class AnnexNoticeBatch(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[_identity_pb2.AnnexNotice]
    def __init__(self, items: _Optional[_Iterable[_Union[_identity_pb2.AnnexNotice, _Mapping]]] = ...) -> None: ...

class AnnexCurrent(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[AnnexEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[AnnexEntry, _Mapping]]] = ...) -> None: ...

class AnnexCurrentRequest(_message.Message):
    __slots__ = ("after_resident_code", "limit")
    AFTER_RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    after_resident_code: str
    limit: int
    def __init__(self, after_resident_code: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...
