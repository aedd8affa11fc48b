from protos import moj_pb2 as _moj_pb2
from protos import records_pb2 as _records_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MoveOutCertificate(_message.Message):
    __slots__ = ("certificate_number", "issuing_municipality_code", "person", "planned_move_out_date", "destination_address", "destination_municipality_code", "card_holder", "issued_at")
    CERTIFICATE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    ISSUING_MUNICIPALITY_CODE_FIELD_NUMBER: _ClassVar[int]
    PERSON_FIELD_NUMBER: _ClassVar[int]
    PLANNED_MOVE_OUT_DATE_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_MUNICIPALITY_CODE_FIELD_NUMBER: _ClassVar[int]
    CARD_HOLDER_FIELD_NUMBER: _ClassVar[int]
    ISSUED_AT_FIELD_NUMBER: _ClassVar[int]
    certificate_number: str
    issuing_municipality_code: str
    person: _records_pb2.ResidentRecord
    planned_move_out_date: str
    destination_address: str
    destination_municipality_code: str
    card_holder: bool
    issued_at: str
    def __init__(self, certificate_number: _Optional[str] = ..., issuing_municipality_code: _Optional[str] = ..., person: _Optional[_Union[_records_pb2.ResidentRecord, _Mapping]] = ..., planned_move_out_date: _Optional[str] = ..., destination_address: _Optional[str] = ..., destination_municipality_code: _Optional[str] = ..., card_holder: _Optional[bool] = ..., issued_at: _Optional[str] = ...) -> None: ...

class MoveInNotice(_message.Message):
    __slots__ = ("resident_code", "from_municipality_code", "to_municipality_code", "new_address", "move_in_date", "notified_at")
    RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    FROM_MUNICIPALITY_CODE_FIELD_NUMBER: _ClassVar[int]
    TO_MUNICIPALITY_CODE_FIELD_NUMBER: _ClassVar[int]
    NEW_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    MOVE_IN_DATE_FIELD_NUMBER: _ClassVar[int]
    NOTIFIED_AT_FIELD_NUMBER: _ClassVar[int]
    resident_code: str
    from_municipality_code: str
    to_municipality_code: str
    new_address: str
    move_in_date: str
    notified_at: str
    def __init__(self, resident_code: _Optional[str] = ..., from_municipality_code: _Optional[str] = ..., to_municipality_code: _Optional[str] = ..., new_address: _Optional[str] = ..., move_in_date: _Optional[str] = ..., notified_at: _Optional[str] = ...) -> None: ...

class AnnexNotice(_message.Message):
    __slots__ = ("resident_code", "from_municipality_code", "to_municipality_code", "honseki", "name_kanji", "birth_date", "address", "address_since", "reason", "sequence")
    RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    FROM_MUNICIPALITY_CODE_FIELD_NUMBER: _ClassVar[int]
    TO_MUNICIPALITY_CODE_FIELD_NUMBER: _ClassVar[int]
    HONSEKI_FIELD_NUMBER: _ClassVar[int]
    NAME_KANJI_FIELD_NUMBER: _ClassVar[int]
    BIRTH_DATE_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_SINCE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    resident_code: str
    from_municipality_code: str
    to_municipality_code: str
    honseki: str
    name_kanji: str
    birth_date: str
    address: str
    address_since: str
    reason: str
    sequence: int
    def __init__(self, resident_code: _Optional[str] = ..., from_municipality_code: _Optional[str] = ..., to_municipality_code: _Optional[str] = ..., honseki: _Optional[str] = ..., name_kanji: _Optional[str] = ..., birth_date: _Optional[str] = ..., address: _Optional[str] = ..., address_since: _Optional[str] = ..., reason: _Optional[str] = ..., sequence: _Optional[int] = ...) -> None: ...

class IdentityUpdate(_message.Message):
    __slots__ = ("municipality_code", "info", "delivery", "move_out_certificate", "move_in_notice", "special_move_in", "migration", "annex_notice", "municipality_notice")
    MUNICIPALITY_CODE_FIELD_NUMBER: _ClassVar[int]
    INFO_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_FIELD_NUMBER: _ClassVar[int]
    MOVE_OUT_CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    MOVE_IN_NOTICE_FIELD_NUMBER: _ClassVar[int]
    SPECIAL_MOVE_IN_FIELD_NUMBER: _ClassVar[int]
    MIGRATION_FIELD_NUMBER: _ClassVar[int]
    ANNEX_NOTICE_FIELD_NUMBER: _ClassVar[int]
    MUNICIPALITY_NOTICE_FIELD_NUMBER: _ClassVar[int]
    municipality_code: str
    info: _records_pb2.IdentityInfo
    delivery: _records_pb2.DeliveryInfo
    move_out_certificate: MoveOutCertificate
    move_in_notice: MoveInNotice
    special_move_in: bool
    migration: bool
    annex_notice: AnnexNotice
    municipality_notice: _moj_pb2.MunicipalityNotice
    def __init__(self, municipality_code: _Optional[str] = ..., info: _Optional[_Union[_records_pb2.IdentityInfo, _Mapping]] = ..., delivery: _Optional[_Union[_records_pb2.DeliveryInfo, _Mapping]] = ..., move_out_certificate: _Optional[_Union[MoveOutCertificate, _Mapping]] = ..., move_in_notice: _Optional[_Union[MoveInNotice, _Mapping]] = ..., special_move_in: _Optional[bool] = ..., migration: _Optional[bool] = ..., annex_notice: _Optional[_Union[AnnexNotice, _Mapping]] = ..., municipality_notice: _Optional[_Union[_moj_pb2.MunicipalityNotice, _Mapping]] = ...) -> None: ...

class IdentityUpdateBatch(_message.Message):
    __slots__ = ("municipality_code", "updates")
    MUNICIPALITY_CODE_FIELD_NUMBER: _ClassVar[int]
    UPDATES_FIELD_NUMBER: _ClassVar[int]
    municipality_code: str
    updates: _containers.RepeatedCompositeFieldContainer[IdentityUpdate]
    def __init__(self, municipality_code: _Optional[str] = ..., updates: _Optional[_Iterable[_Union[IdentityUpdate, _Mapping]]] = ...) -> None: ...

class IdentitySearch(_message.Message):
    __slots__ = ("resident_code", "individual_number", "name_kana", "name_kanji", "birth_date", "address", "sex", "nationwide", "limit")
    RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    INDIVIDUAL_NUMBER_FIELD_NUMBER: _ClassVar[int]
    NAME_KANA_FIELD_NUMBER: _ClassVar[int]
    NAME_KANJI_FIELD_NUMBER: _ClassVar[int]
    BIRTH_DATE_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    SEX_FIELD_NUMBER: _ClassVar[int]
    NATIONWIDE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    resident_code: str
    individual_number: str
    name_kana: str
    name_kanji: str
    birth_date: str
    address: str
    sex: str
    nationwide: bool
    limit: int
    def __init__(self, resident_code: _Optional[str] = ..., individual_number: _Optional[str] = ..., name_kana: _Optional[str] = ..., name_kanji: _Optional[str] = ..., birth_date: _Optional[str] = ..., address: _Optional[str] = ..., sex: _Optional[str] = ..., nationwide: _Optional[bool] = ..., limit: _Optional[int] = ...) -> None: ...

class IdentitySearchResult(_message.Message):
    __slots__ = ("matches", "truncated", "source")
    MATCHES_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    matches: _containers.RepeatedCompositeFieldContainer[_records_pb2.IdentityInfo]
    truncated: bool
    source: str
    def __init__(self, matches: _Optional[_Iterable[_Union[_records_pb2.IdentityInfo, _Mapping]]] = ..., truncated: _Optional[bool] = ..., source: _Optional[str] = ...) -> None: ...

class IdentityList(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[_records_pb2.IdentityInfo]
    def __init__(self, items: _Optional[_Iterable[_Union[_records_pb2.IdentityInfo, _Mapping]]] = ...) -> None: ...

class ResidenceQuery(_message.Message):
    __slots__ = ("resident_code", "individual_number", "municipality_code")
    RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    INDIVIDUAL_NUMBER_FIELD_NUMBER: _ClassVar[int]
    MUNICIPALITY_CODE_FIELD_NUMBER: _ClassVar[int]
    resident_code: str
    individual_number: str
    municipality_code: str
    def __init__(self, resident_code: _Optional[str] = ..., individual_number: _Optional[str] = ..., municipality_code: _Optional[str] = ...) -> None: ...

class ResidenceReply(_message.Message):
    __slots__ = ("known", "individual_number", "current_in", "moving_out_of", "deceased_in", "number_matches")
    KNOWN_FIELD_NUMBER: _ClassVar[int]
    INDIVIDUAL_NUMBER_FIELD_NUMBER: _ClassVar[int]
    CURRENT_IN_FIELD_NUMBER: _ClassVar[int]
    MOVING_OUT_OF_FIELD_NUMBER: _ClassVar[int]
    DECEASED_IN_FIELD_NUMBER: _ClassVar[int]
    NUMBER_MATCHES_FIELD_NUMBER: _ClassVar[int]
    known: bool
    individual_number: str
    current_in: _containers.RepeatedScalarFieldContainer[str]
    moving_out_of: _containers.RepeatedScalarFieldContainer[str]
    deceased_in: _containers.RepeatedScalarFieldContainer[str]
    number_matches: bool
    def __init__(self, known: _Optional[bool] = ..., individual_number: _Optional[str] = ..., current_in: _Optional[_Iterable[str]] = ..., moving_out_of: _Optional[_Iterable[str]] = ..., deceased_in: _Optional[_Iterable[str]] = ..., number_matches: _Optional[bool] = ...) -> None: ...

class ConsistencyDifference(_message.Message):
    __slots__ = ("resident_code", "node", "items")
    RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    resident_code: str
    node: str
    items: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, resident_code: _Optional[str] = ..., node: _Optional[str] = ..., items: _Optional[_Iterable[str]] = ...) -> None: ...

class ConsistencyReport(_message.Message):
    __slots__ = ("municipality_code", "records_cs", "records_prefecture", "records_national", "differences", "seconds", "records_kizon")
    MUNICIPALITY_CODE_FIELD_NUMBER: _ClassVar[int]
    RECORDS_CS_FIELD_NUMBER: _ClassVar[int]
    RECORDS_PREFECTURE_FIELD_NUMBER: _ClassVar[int]
    RECORDS_NATIONAL_FIELD_NUMBER: _ClassVar[int]
    DIFFERENCES_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    RECORDS_KIZON_FIELD_NUMBER: _ClassVar[int]
    municipality_code: str
    records_cs: int
    records_prefecture: int
    records_national: int
    differences: _containers.RepeatedCompositeFieldContainer[ConsistencyDifference]
    seconds: float
    records_kizon: int
    def __init__(self, municipality_code: _Optional[str] = ..., records_cs: _Optional[int] = ..., records_prefecture: _Optional[int] = ..., records_national: _Optional[int] = ..., differences: _Optional[_Iterable[_Union[ConsistencyDifference, _Mapping]]] = ..., seconds: _Optional[float] = ..., records_kizon: _Optional[int] = ...) -> None: ...
