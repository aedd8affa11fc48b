"""The interfaces the parts of the kizon node use one another by: each part is given these (constructor injection).

A part depends on a Protocol here, never on another part's class or on the servicer; each Protocol holds only what
other parts call. Counter, Issuance, Operators, Inquiry, InitialLoad and MoveInNotices have none: only the servicer
calls them (their RPCs) or the runtime runs them (a background job).
"""
from __future__ import annotations

from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Collection, Iterable, Iterator, Mapping, Protocol

from protos import records_pb2

if TYPE_CHECKING:
    import sqlite3

    from nodes.guard import CallContext

Record = records_pb2.ResidentRecord


class PendingChange:
    """The request being served: its scoped 依頼管理番号, what it asked, and what it reserved at the CS."""

    def __init__(self, key: str, digest: bytes):
        self.key, self.digest = key, digest
        self.reserved = False  # 住民票コード reserved at the CS under this key
        self.notifier = None  # the 届出人 of a 届出 (records_pb2.Requester), None for a change of the office's own


class Gate(Protocol):
    """The freeze of this site for 移行 (nodes/site.SiteState): while frozen the register does not change."""

    def reason(self) -> str:
        """Why changes are refused ("" when the site is open)."""

    def refuse_if_frozen(self) -> None:
        """Refuse (UNAVAILABLE, naming the reason) while frozen."""


class Records(Protocol):
    """The register's storage (register.Register): 住民票, their history entries and households."""

    def person(self, resident_code: str) -> Record:
        """The current entry of a person's 住民票 (除票 included); NOT_FOUND without one."""

    def current(self, resident_code: str) -> Record:
        """The 住民票 of a current resident; a 除票 is refused."""

    def members(self, household: str) -> list[Record]:
        """The current members of a household (none when there is no such household)."""

    def household(self, household: str) -> list[Record]:
        """The current members of a household that must exist."""

    def existing(self, resident_code: str) -> Record | None:
        """A person's record if they were ever registered here; a current resident or a dead person is refused."""

    def new_household_number(self) -> str:
        """A 世帯番号 never used here, drawn at random."""

    def address(self, address: records_pb2.Address) -> records_pb2.Address:
        """An address on this municipality's 町字 list, with its full text and postal code."""

    def shown(self, record: Record) -> Record:
        """The record as the caller of this call may see it (個人番号 masked without the permission)."""

    def history(self, atena_number: str) -> list[Record]:
        """Every history entry of a person, oldest first."""

    def count(self, town_code: str, include_removed: bool) -> int:
        """How many 住民票 an export of this selection gives."""

    def select(self, town_code: str, include_removed: bool) -> Iterator[Record]:
        """The 住民票 of an export of this selection, by 宛名番号."""

    def scan(self) -> Iterator[list[tuple[str, bytes]]]:
        """Every (住民票コード, stored record) of the residents table, a thousand at a time."""

    def taken(self, codes: list[str], atena_numbers: list[str]) -> list[str]:
        """Those of these 住民票コード (or else 宛名番号) already recorded."""

    def advance_household_numbers(self, records: Iterable[Record]) -> None:
        """Keep the 世帯番号 counter past the loaded households."""

    def write(self, db: sqlite3.Connection, records: list[Record]) -> None:
        """Inside a commit's transaction: each record becomes the person's current entry and a history entry."""

    def replace(self, record: Record) -> None:
        """Rewrite a person's current entry in place (no history entry: 交付状況 of the card)."""

    def find(self, db: sqlite3.Connection, resident_code: str) -> Record | None:
        """Inside a transaction: a person's current entry, or None."""

    def append(self, db: sqlite3.Connection, record: Record) -> None:
        """Inside a transaction: the next history entry of a person, who keeps their status and household."""


class Changes(Protocol):
    """How a counter change is made (changes.ChangeEngine): 依頼管理番号, intents, locks and the CS's answer."""

    async def serve(self, request: Any, handler: Callable[[], Awaitable[Any]]) -> Any:
        """Serve a counter change once per scoped 依頼管理番号 (handler makes it and commits)."""

    def pending(self, key: str, digest: bytes) -> AbstractContextManager[PendingChange]:
        """A change of its own (a batch of a load) being served under this key, while the block runs."""

    def answered(self, pending: PendingChange, client_id: str) -> Any:
        """The first reply to this request if it was applied (None if not); a reused id is refused."""

    async def wait_settled(self) -> bool:
        """Wait (bounded) until no intent waits to be settled with the CS; whether there was any wait."""

    def notified(self, request: Any) -> str:
        """届出年月日: the office's today, which a request may repeat but not change."""

    async def commit(self, records: list[Record], *, new: Collection[str] = ..., delivery: Collection[str] = ...,
                     extras: Mapping[str, Any] | None = None, former: Mapping[str, str] | None = None,
                     feed_atena: bool = True, echo: bool = True, wrap: Callable[[Any], Any] | None = None) -> Any:
        """Write the change down, have the CS apply it, then commit it here: the reply as the caller may see it."""

    async def new_numbers(self) -> tuple[str, str]:
        """A 住民票コード reserved for this request and the 個人番号 national generates for it."""

    async def assign_numbers(self, codes: list[str]) -> dict[str, str]:
        """The 個人番号 national holds (or generates) for these 住民票コード."""

    def locked(self, *keys: str) -> AbstractAsyncContextManager[None]:
        """Changes to the same households, one at a time."""

    def pending_count(self) -> int:
        """Changes sent to the CS and not yet settled here."""

    def drain(self) -> None:
        """Push what is queued on: settle intents with the CS, deliver the feed to atena."""


class Disclosure(Protocol):
    """The bulk-output account (disclosure.Disclosures): every read and export of personal data, counted."""

    def read(self, call: CallContext, resident_codes: Iterable[str]) -> None:
        """Count a read about to return these people's data; refused beyond the limit without an approval."""

    def export(self, call: CallContext, request: Any, count: int) -> str | None:
        """Count an export of count records; the approval it spends, if the window needs one."""
