from protos import card_pb2 as _card_pb2
from protos import common_pb2 as _common_pb2
from protos import identity_pb2 as _identity_pb2
from protos import kizon_pb2 as _kizon_pb2
from protos import moj_pb2 as _moj_pb2
from protos import records_pb2 as _records_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CodeDraw(_message.Message):
    __slots__ = ("count", "reservation", "numbered")
    COUNT_FIELD_NUMBER: _ClassVar[int]
    RESERVATION_FIELD_NUMBER: _ClassVar[int]
    NUMBERED_FIELD_NUMBER: _ClassVar[int]
    count: int
    reservation: str
    numbered: bool
    def __init__(self, count: _Optional[int] = ..., reservation: _Optional[str] = ..., numbered: _Optional[bool] = ...) -> None: ...

class CodeRelease(_message.Message):
    __slots__ = ("reservation",)
    RESERVATION_FIELD_NUMBER: _ClassVar[int]
    reservation: str
    def __init__(self, reservation: _Optional[str] = ...) -> None: ...

class RequestStatusQuery(_message.Message):
    __slots__ = ("request_control_numbers",)
    REQUEST_CONTROL_NUMBERS_FIELD_NUMBER: _ClassVar[int]
    request_control_numbers: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, request_control_numbers: _Optional[_Iterable[str]] = ...) -> None: ...

class RequestState(_message.Message):
    __slots__ = ("request_control_number", "update_sequence")
    REQUEST_CONTROL_NUMBER_FIELD_NUMBER: _ClassVar[int]
    UPDATE_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    request_control_number: str
    update_sequence: int
    def __init__(self, request_control_number: _Optional[str] = ..., update_sequence: _Optional[int] = ...) -> None: ...

class RequestStatusReply(_message.Message):
    __slots__ = ("applied",)
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    applied: _containers.RepeatedCompositeFieldContainer[RequestState]
    def __init__(self, applied: _Optional[_Iterable[_Union[RequestState, _Mapping]]] = ...) -> None: ...

class ResidentCodes(_message.Message):
    __slots__ = ("resident_codes", "numbers")
    RESIDENT_CODES_FIELD_NUMBER: _ClassVar[int]
    NUMBERS_FIELD_NUMBER: _ClassVar[int]
    resident_codes: _containers.RepeatedScalarFieldContainer[str]
    numbers: _containers.RepeatedCompositeFieldContainer[NumberAssignment]
    def __init__(self, resident_codes: _Optional[_Iterable[str]] = ..., numbers: _Optional[_Iterable[_Union[NumberAssignment, _Mapping]]] = ...) -> None: ...

class NumberAssignment(_message.Message):
    __slots__ = ("resident_code", "individual_number")
    RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    INDIVIDUAL_NUMBER_FIELD_NUMBER: _ClassVar[int]
    resident_code: str
    individual_number: str
    def __init__(self, resident_code: _Optional[str] = ..., individual_number: _Optional[str] = ...) -> None: ...

class NumberAssignments(_message.Message):
    __slots__ = ("assignments",)
    ASSIGNMENTS_FIELD_NUMBER: _ClassVar[int]
    assignments: _containers.RepeatedCompositeFieldContainer[NumberAssignment]
    def __init__(self, assignments: _Optional[_Iterable[_Union[NumberAssignment, _Mapping]]] = ...) -> None: ...

class MoveInNotices(_message.Message):
    __slots__ = ("notices", "last_id")
    NOTICES_FIELD_NUMBER: _ClassVar[int]
    LAST_ID_FIELD_NUMBER: _ClassVar[int]
    notices: _containers.RepeatedCompositeFieldContainer[_identity_pb2.MoveInNotice]
    last_id: int
    def __init__(self, notices: _Optional[_Iterable[_Union[_identity_pb2.MoveInNotice, _Mapping]]] = ..., last_id: _Optional[int] = ...) -> None: ...

class NoticeCursor(_message.Message):
    __slots__ = ("processed_up_to",)
    PROCESSED_UP_TO_FIELD_NUMBER: _ClassVar[int]
    processed_up_to: int
    def __init__(self, processed_up_to: _Optional[int] = ...) -> None: ...

class CodeOfferRequest(_message.Message):
    __slots__ = ("resident_code", "count")
    RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    resident_code: str
    count: int
    def __init__(self, resident_code: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...

class CodeOfferReply(_message.Message):
    __slots__ = ("candidates",)
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    candidates: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, candidates: _Optional[_Iterable[str]] = ...) -> None: ...

class CardIdentityCheck(_message.Message):
    __slots__ = ("card_number", "pin")
    CARD_NUMBER_FIELD_NUMBER: _ClassVar[int]
    PIN_FIELD_NUMBER: _ClassVar[int]
    card_number: str
    pin: str
    def __init__(self, card_number: _Optional[str] = ..., pin: _Optional[str] = ...) -> None: ...

class WideAreaRequest(_message.Message):
    __slots__ = ("home_municipality_code", "card_number", "pin")
    HOME_MUNICIPALITY_CODE_FIELD_NUMBER: _ClassVar[int]
    CARD_NUMBER_FIELD_NUMBER: _ClassVar[int]
    PIN_FIELD_NUMBER: _ClassVar[int]
    home_municipality_code: str
    card_number: str
    pin: str
    def __init__(self, home_municipality_code: _Optional[str] = ..., card_number: _Optional[str] = ..., pin: _Optional[str] = ...) -> None: ...

class IdentityUpdateGroup(_message.Message):
    __slots__ = ("batches",)
    BATCHES_FIELD_NUMBER: _ClassVar[int]
    batches: _containers.RepeatedCompositeFieldContainer[_identity_pb2.IdentityUpdateBatch]
    def __init__(self, batches: _Optional[_Iterable[_Union[_identity_pb2.IdentityUpdateBatch, _Mapping]]] = ...) -> None: ...

class GroupOutcome(_message.Message):
    __slots__ = ("code", "detail", "ack", "reason")
    CODE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    code: int
    detail: str
    ack: _common_pb2.UpdateAck
    reason: str
    def __init__(self, code: _Optional[int] = ..., detail: _Optional[str] = ..., ack: _Optional[_Union[_common_pb2.UpdateAck, _Mapping]] = ..., reason: _Optional[str] = ...) -> None: ...

class GroupOutcomes(_message.Message):
    __slots__ = ("outcomes",)
    OUTCOMES_FIELD_NUMBER: _ClassVar[int]
    outcomes: _containers.RepeatedCompositeFieldContainer[GroupOutcome]
    def __init__(self, outcomes: _Optional[_Iterable[_Union[GroupOutcome, _Mapping]]] = ...) -> None: ...

class PoolStatus(_message.Message):
    __slots__ = ("available", "low_watermark", "low")
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    LOW_WATERMARK_FIELD_NUMBER: _ClassVar[int]
    LOW_FIELD_NUMBER: _ClassVar[int]
    available: int
    low_watermark: int
    low: bool
    def __init__(self, available: _Optional[int] = ..., low_watermark: _Optional[int] = ..., low: _Optional[bool] = ...) -> None: ...

class AnnexNotices(_message.Message):
    __slots__ = ("notices", "last_id")
    NOTICES_FIELD_NUMBER: _ClassVar[int]
    LAST_ID_FIELD_NUMBER: _ClassVar[int]
    notices: _containers.RepeatedCompositeFieldContainer[_identity_pb2.AnnexNotice]
    last_id: int
    def __init__(self, notices: _Optional[_Iterable[_Union[_identity_pb2.AnnexNotice, _Mapping]]] = ..., last_id: _Optional[int] = ...) -> None: ...

class AnnexCursor(_message.Message):
    __slots__ = ("processed_up_to",)
    PROCESSED_UP_TO_FIELD_NUMBER: _ClassVar[int]
    processed_up_to: int
    def __init__(self, processed_up_to: _Optional[int] = ...) -> None: ...
