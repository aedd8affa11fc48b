from protos import records_pb2 as _records_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ResidentChange(_message.Message):
    __slots__ = ("record",)
    RECORD_FIELD_NUMBER: _ClassVar[int]
    record: _records_pb2.ResidentRecord
    def __init__(self, record: _Optional[_Union[_records_pb2.ResidentRecord, _Mapping]] = ...) -> None: ...

class AtenaReply(_message.Message):
    __slots__ = ("unified_atena_number", "fugo")
    UNIFIED_ATENA_NUMBER_FIELD_NUMBER: _ClassVar[int]
    FUGO_FIELD_NUMBER: _ClassVar[int]
    unified_atena_number: str
    fugo: str
    def __init__(self, unified_atena_number: _Optional[str] = ..., fugo: _Optional[str] = ...) -> None: ...

class AtenaKey(_message.Message):
    __slots__ = ("unified_atena_number",)
    UNIFIED_ATENA_NUMBER_FIELD_NUMBER: _ClassVar[int]
    unified_atena_number: str
    def __init__(self, unified_atena_number: _Optional[str] = ...) -> None: ...

class AtenaEntry(_message.Message):
    __slots__ = ("unified_atena_number", "individual_number", "atena_number", "fugo")
    UNIFIED_ATENA_NUMBER_FIELD_NUMBER: _ClassVar[int]
    INDIVIDUAL_NUMBER_FIELD_NUMBER: _ClassVar[int]
    ATENA_NUMBER_FIELD_NUMBER: _ClassVar[int]
    FUGO_FIELD_NUMBER: _ClassVar[int]
    unified_atena_number: str
    individual_number: str
    atena_number: str
    fugo: str
    def __init__(self, unified_atena_number: _Optional[str] = ..., individual_number: _Optional[str] = ..., atena_number: _Optional[str] = ..., fugo: _Optional[str] = ...) -> None: ...

class ResidentChangeBatch(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[ResidentChange]
    def __init__(self, items: _Optional[_Iterable[_Union[ResidentChange, _Mapping]]] = ...) -> None: ...

class AtenaReplies(_message.Message):
    __slots__ = ("replies",)
    REPLIES_FIELD_NUMBER: _ClassVar[int]
    replies: _containers.RepeatedCompositeFieldContainer[AtenaReply]
    def __init__(self, replies: _Optional[_Iterable[_Union[AtenaReply, _Mapping]]] = ...) -> None: ...

class OfficeQuery(_message.Message):
    __slots__ = ("unified_atena_number", "atena_number", "individual_number")
    UNIFIED_ATENA_NUMBER_FIELD_NUMBER: _ClassVar[int]
    ATENA_NUMBER_FIELD_NUMBER: _ClassVar[int]
    INDIVIDUAL_NUMBER_FIELD_NUMBER: _ClassVar[int]
    unified_atena_number: str
    atena_number: str
    individual_number: str
    def __init__(self, unified_atena_number: _Optional[str] = ..., atena_number: _Optional[str] = ..., individual_number: _Optional[str] = ...) -> None: ...

class OfficeRecord(_message.Message):
    __slots__ = ("unified_atena_number", "atena_number", "name_kanji", "name_kana", "birth_date", "sex", "address", "household_number", "relationship", "elector", "current", "individual_number", "jimu")
    UNIFIED_ATENA_NUMBER_FIELD_NUMBER: _ClassVar[int]
    ATENA_NUMBER_FIELD_NUMBER: _ClassVar[int]
    NAME_KANJI_FIELD_NUMBER: _ClassVar[int]
    NAME_KANA_FIELD_NUMBER: _ClassVar[int]
    BIRTH_DATE_FIELD_NUMBER: _ClassVar[int]
    SEX_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    HOUSEHOLD_NUMBER_FIELD_NUMBER: _ClassVar[int]
    RELATIONSHIP_FIELD_NUMBER: _ClassVar[int]
    ELECTOR_FIELD_NUMBER: _ClassVar[int]
    CURRENT_FIELD_NUMBER: _ClassVar[int]
    INDIVIDUAL_NUMBER_FIELD_NUMBER: _ClassVar[int]
    JIMU_FIELD_NUMBER: _ClassVar[int]
    unified_atena_number: str
    atena_number: str
    name_kanji: str
    name_kana: str
    birth_date: str
    sex: str
    address: str
    household_number: str
    relationship: str
    elector: bool
    current: bool
    individual_number: str
    jimu: str
    def __init__(self, unified_atena_number: _Optional[str] = ..., atena_number: _Optional[str] = ..., name_kanji: _Optional[str] = ..., name_kana: _Optional[str] = ..., birth_date: _Optional[str] = ..., sex: _Optional[str] = ..., address: _Optional[str] = ..., household_number: _Optional[str] = ..., relationship: _Optional[str] = ..., elector: _Optional[bool] = ..., current: _Optional[bool] = ..., individual_number: _Optional[str] = ..., jimu: _Optional[str] = ...) -> None: ...
