from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class StatusRequest(_message.Message):
    __slots__ = ("counts",)
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    counts: bool
    def __init__(self, counts: _Optional[bool] = ...) -> None: ...

class NodeStatus(_message.Message):
    __slots__ = ("node", "rss_mb", "outbox_pending", "blocked", "applied", "counts", "audit_entries", "dead_letters", "oldest_pending_seconds", "deferred_indexes")
    class AppliedEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class CountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    NODE_FIELD_NUMBER: _ClassVar[int]
    RSS_MB_FIELD_NUMBER: _ClassVar[int]
    OUTBOX_PENDING_FIELD_NUMBER: _ClassVar[int]
    BLOCKED_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    AUDIT_ENTRIES_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTERS_FIELD_NUMBER: _ClassVar[int]
    OLDEST_PENDING_SECONDS_FIELD_NUMBER: _ClassVar[int]
    DEFERRED_INDEXES_FIELD_NUMBER: _ClassVar[int]
    node: str
    rss_mb: float
    outbox_pending: int
    blocked: _containers.RepeatedScalarFieldContainer[str]
    applied: _containers.ScalarMap[str, int]
    counts: _containers.ScalarMap[str, int]
    audit_entries: int
    dead_letters: int
    oldest_pending_seconds: float
    deferred_indexes: int
    def __init__(self, node: _Optional[str] = ..., rss_mb: _Optional[float] = ..., outbox_pending: _Optional[int] = ..., blocked: _Optional[_Iterable[str]] = ..., applied: _Optional[_Mapping[str, int]] = ..., counts: _Optional[_Mapping[str, int]] = ..., audit_entries: _Optional[int] = ..., dead_letters: _Optional[int] = ..., oldest_pending_seconds: _Optional[float] = ..., deferred_indexes: _Optional[int] = ...) -> None: ...

class BatchRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class BatchResult(_message.Message):
    __slots__ = ("node", "name", "affected", "detail")
    NODE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    AFFECTED_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    node: str
    name: str
    affected: int
    detail: str
    def __init__(self, node: _Optional[str] = ..., name: _Optional[str] = ..., affected: _Optional[int] = ..., detail: _Optional[str] = ...) -> None: ...
