from protos import kizon_pb2 as _kizon_pb2
from protos import records_pb2 as _records_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FreezeRequest(_message.Message):
    __slots__ = ("reason",)
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...

class SiteState(_message.Message):
    __slots__ = ("node", "frozen", "reason", "since", "pending_intents", "outbox_pending", "records", "target")
    NODE_FIELD_NUMBER: _ClassVar[int]
    FROZEN_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    PENDING_INTENTS_FIELD_NUMBER: _ClassVar[int]
    OUTBOX_PENDING_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    node: str
    frozen: bool
    reason: str
    since: str
    pending_intents: int
    outbox_pending: int
    records: int
    target: bool
    def __init__(self, node: _Optional[str] = ..., frozen: _Optional[bool] = ..., reason: _Optional[str] = ..., since: _Optional[str] = ..., pending_intents: _Optional[int] = ..., outbox_pending: _Optional[int] = ..., records: _Optional[int] = ..., target: _Optional[bool] = ...) -> None: ...

class MigrationExportRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AtenaRow(_message.Message):
    __slots__ = ("unified_atena_number", "individual_number", "atena_number", "fugo", "record")
    UNIFIED_ATENA_NUMBER_FIELD_NUMBER: _ClassVar[int]
    INDIVIDUAL_NUMBER_FIELD_NUMBER: _ClassVar[int]
    ATENA_NUMBER_FIELD_NUMBER: _ClassVar[int]
    FUGO_FIELD_NUMBER: _ClassVar[int]
    RECORD_FIELD_NUMBER: _ClassVar[int]
    unified_atena_number: str
    individual_number: str
    atena_number: str
    fugo: str
    record: _records_pb2.ResidentRecord
    def __init__(self, unified_atena_number: _Optional[str] = ..., individual_number: _Optional[str] = ..., atena_number: _Optional[str] = ..., fugo: _Optional[str] = ..., record: _Optional[_Union[_records_pb2.ResidentRecord, _Mapping]] = ...) -> None: ...

class NumberingCounter(_message.Message):
    __slots__ = ("name", "value")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: int
    def __init__(self, name: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...

class MigrationItem(_message.Message):
    __slots__ = ("history", "issuance", "atena", "counter")
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    ISSUANCE_FIELD_NUMBER: _ClassVar[int]
    ATENA_FIELD_NUMBER: _ClassVar[int]
    COUNTER_FIELD_NUMBER: _ClassVar[int]
    history: _records_pb2.ResidentRecord
    issuance: _kizon_pb2.IssuanceRecord
    atena: AtenaRow
    counter: NumberingCounter
    def __init__(self, history: _Optional[_Union[_records_pb2.ResidentRecord, _Mapping]] = ..., issuance: _Optional[_Union[_kizon_pb2.IssuanceRecord, _Mapping]] = ..., atena: _Optional[_Union[AtenaRow, _Mapping]] = ..., counter: _Optional[_Union[NumberingCounter, _Mapping]] = ...) -> None: ...

class MigrationBatch(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[MigrationItem]
    def __init__(self, items: _Optional[_Iterable[_Union[MigrationItem, _Mapping]]] = ...) -> None: ...

class RecordDigest(_message.Message):
    __slots__ = ("file", "key", "digest")
    FILE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    file: str
    key: str
    digest: bytes
    def __init__(self, file: _Optional[str] = ..., key: _Optional[str] = ..., digest: _Optional[bytes] = ...) -> None: ...

class RecordDigestBatch(_message.Message):
    __slots__ = ("digests",)
    DIGESTS_FIELD_NUMBER: _ClassVar[int]
    digests: _containers.RepeatedCompositeFieldContainer[RecordDigest]
    def __init__(self, digests: _Optional[_Iterable[_Union[RecordDigest, _Mapping]]] = ...) -> None: ...

class ImportSummary(_message.Message):
    __slots__ = ("history", "residents", "issuances", "atena", "counters")
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    RESIDENTS_FIELD_NUMBER: _ClassVar[int]
    ISSUANCES_FIELD_NUMBER: _ClassVar[int]
    ATENA_FIELD_NUMBER: _ClassVar[int]
    COUNTERS_FIELD_NUMBER: _ClassVar[int]
    history: int
    residents: int
    issuances: int
    atena: int
    counters: int
    def __init__(self, history: _Optional[int] = ..., residents: _Optional[int] = ..., issuances: _Optional[int] = ..., atena: _Optional[int] = ..., counters: _Optional[int] = ...) -> None: ...
