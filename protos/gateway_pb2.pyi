from protos import kizon_pb2 as _kizon_pb2
from protos import koseki_pb2 as _koseki_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JuryListRequest(_message.Message):
    __slots__ = ("year", "count", "allotment_reference")
    YEAR_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    ALLOTMENT_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    year: int
    count: int
    allotment_reference: str
    def __init__(self, year: _Optional[int] = ..., count: _Optional[int] = ..., allotment_reference: _Optional[str] = ...) -> None: ...

class JuryCandidate(_message.Message):
    __slots__ = ("name_kanji", "name_kana", "birth_date", "sex", "address")
    NAME_KANJI_FIELD_NUMBER: _ClassVar[int]
    NAME_KANA_FIELD_NUMBER: _ClassVar[int]
    BIRTH_DATE_FIELD_NUMBER: _ClassVar[int]
    SEX_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    name_kanji: str
    name_kana: str
    birth_date: str
    sex: str
    address: str
    def __init__(self, name_kanji: _Optional[str] = ..., name_kana: _Optional[str] = ..., birth_date: _Optional[str] = ..., sex: _Optional[str] = ..., address: _Optional[str] = ...) -> None: ...

class JuryList(_message.Message):
    __slots__ = ("year", "candidates", "eligible", "drawn_at", "list_id")
    YEAR_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    ELIGIBLE_FIELD_NUMBER: _ClassVar[int]
    DRAWN_AT_FIELD_NUMBER: _ClassVar[int]
    LIST_ID_FIELD_NUMBER: _ClassVar[int]
    year: int
    candidates: _containers.RepeatedCompositeFieldContainer[JuryCandidate]
    eligible: int
    drawn_at: str
    list_id: str
    def __init__(self, year: _Optional[int] = ..., candidates: _Optional[_Iterable[_Union[JuryCandidate, _Mapping]]] = ..., eligible: _Optional[int] = ..., drawn_at: _Optional[str] = ..., list_id: _Optional[str] = ...) -> None: ...

class ConvenienceRequest(_message.Message):
    __slots__ = ("resident_code", "kind", "kiosk")
    RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    KIOSK_FIELD_NUMBER: _ClassVar[int]
    resident_code: str
    kind: _kizon_pb2.CertificateKind
    kiosk: str
    def __init__(self, resident_code: _Optional[str] = ..., kind: _Optional[_Union[_kizon_pb2.CertificateKind, str]] = ..., kiosk: _Optional[str] = ...) -> None: ...
