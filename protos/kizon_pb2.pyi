from protos import common_pb2 as _common_pb2
from protos import records_pb2 as _records_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RecordResidentRequest(_message.Message):
    __slots__ = ("record",)
    RECORD_FIELD_NUMBER: _ClassVar[int]
    record: _records_pb2.ResidentRecord
    def __init__(self, record: _Optional[_Union[_records_pb2.ResidentRecord, _Mapping]] = ...) -> None: ...

class RecordResidentReply(_message.Message):
    __slots__ = ("atena_number", "history_number", "update_sequence", "unified_atena_number")
    ATENA_NUMBER_FIELD_NUMBER: _ClassVar[int]
    HISTORY_NUMBER_FIELD_NUMBER: _ClassVar[int]
    UPDATE_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    UNIFIED_ATENA_NUMBER_FIELD_NUMBER: _ClassVar[int]
    atena_number: str
    history_number: int
    update_sequence: int
    unified_atena_number: str
    def __init__(self, atena_number: _Optional[str] = ..., history_number: _Optional[int] = ..., update_sequence: _Optional[int] = ..., unified_atena_number: _Optional[str] = ...) -> None: ...
