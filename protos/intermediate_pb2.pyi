from protos import common_pb2 as _common_pb2
from protos import kizon_pb2 as _kizon_pb2
from protos import records_pb2 as _records_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CopyRegistration(_message.Message):
    __slots__ = ("unified_atena_number", "fugo", "record")
    UNIFIED_ATENA_NUMBER_FIELD_NUMBER: _ClassVar[int]
    FUGO_FIELD_NUMBER: _ClassVar[int]
    RECORD_FIELD_NUMBER: _ClassVar[int]
    unified_atena_number: str
    fugo: str
    record: _records_pb2.ResidentRecord
    def __init__(self, unified_atena_number: _Optional[str] = ..., fugo: _Optional[str] = ..., record: _Optional[_Union[_records_pb2.ResidentRecord, _Mapping]] = ...) -> None: ...

class ProvisionRequest(_message.Message):
    __slots__ = ("tenant", "fugo", "inquiry_id", "jimu")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    FUGO_FIELD_NUMBER: _ClassVar[int]
    INQUIRY_ID_FIELD_NUMBER: _ClassVar[int]
    JIMU_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    fugo: str
    inquiry_id: str
    jimu: str
    def __init__(self, tenant: _Optional[str] = ..., fugo: _Optional[str] = ..., inquiry_id: _Optional[str] = ..., jimu: _Optional[str] = ...) -> None: ...

class ProvisionReply(_message.Message):
    __slots__ = ("record", "provision_id", "items_provided")
    RECORD_FIELD_NUMBER: _ClassVar[int]
    PROVISION_ID_FIELD_NUMBER: _ClassVar[int]
    ITEMS_PROVIDED_FIELD_NUMBER: _ClassVar[int]
    record: _records_pb2.ResidentRecord
    provision_id: str
    items_provided: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, record: _Optional[_Union[_records_pb2.ResidentRecord, _Mapping]] = ..., provision_id: _Optional[str] = ..., items_provided: _Optional[_Iterable[str]] = ...) -> None: ...

class ProvisionQuery(_message.Message):
    __slots__ = ("tenant", "fugo", "card_number", "pin")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    FUGO_FIELD_NUMBER: _ClassVar[int]
    CARD_NUMBER_FIELD_NUMBER: _ClassVar[int]
    PIN_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    fugo: str
    card_number: str
    pin: str
    def __init__(self, tenant: _Optional[str] = ..., fugo: _Optional[str] = ..., card_number: _Optional[str] = ..., pin: _Optional[str] = ...) -> None: ...

class ProvisionRecord(_message.Message):
    __slots__ = ("provision_id", "inquiry_id", "requester", "provided_at", "jimu", "items")
    PROVISION_ID_FIELD_NUMBER: _ClassVar[int]
    INQUIRY_ID_FIELD_NUMBER: _ClassVar[int]
    REQUESTER_FIELD_NUMBER: _ClassVar[int]
    PROVIDED_AT_FIELD_NUMBER: _ClassVar[int]
    JIMU_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    provision_id: str
    inquiry_id: str
    requester: str
    provided_at: str
    jimu: str
    items: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, provision_id: _Optional[str] = ..., inquiry_id: _Optional[str] = ..., requester: _Optional[str] = ..., provided_at: _Optional[str] = ..., jimu: _Optional[str] = ..., items: _Optional[_Iterable[str]] = ...) -> None: ...

class ProvisionRecords(_message.Message):
    __slots__ = ("records",)
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[ProvisionRecord]
    def __init__(self, records: _Optional[_Iterable[_Union[ProvisionRecord, _Mapping]]] = ...) -> None: ...

class StaffEvent(_message.Message):
    __slots__ = ("operator_id",)
    OPERATOR_ID_FIELD_NUMBER: _ClassVar[int]
    operator_id: str
    def __init__(self, operator_id: _Optional[str] = ...) -> None: ...

class StaffAck(_message.Message):
    __slots__ = ("recorded_at", "tenant")
    RECORDED_AT_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    recorded_at: str
    tenant: str
    def __init__(self, recorded_at: _Optional[str] = ..., tenant: _Optional[str] = ...) -> None: ...

class CopyBatch(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[CopyRegistration]
    def __init__(self, items: _Optional[_Iterable[_Union[CopyRegistration, _Mapping]]] = ...) -> None: ...
