from protos import common_pb2 as _common_pb2
from protos import records_pb2 as _records_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class IdentityUpdate(_message.Message):
    __slots__ = ("municipality_code", "info", "delivery")
    MUNICIPALITY_CODE_FIELD_NUMBER: _ClassVar[int]
    INFO_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_FIELD_NUMBER: _ClassVar[int]
    municipality_code: str
    info: _records_pb2.IdentityInfo
    delivery: _records_pb2.DeliveryInfo
    def __init__(self, municipality_code: _Optional[str] = ..., info: _Optional[_Union[_records_pb2.IdentityInfo, _Mapping]] = ..., delivery: _Optional[_Union[_records_pb2.DeliveryInfo, _Mapping]] = ...) -> None: ...
