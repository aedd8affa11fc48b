"""The parts of the 市町村CS and what each offers the others: the interfaces (Protocols) the parts are built with.

Each part owns its state and its tables, and reaches another part only through one of these interfaces, handed
to it when it is built (nodes/cs/service.py builds them; nodes/cs/search.py builds the search process's one):

    Peers         nodes/cs/peers.py   the stubs of national, the prefecture and the card system, and the calls
    NationalPeer  nodes/cs/peers.py   national alone (what the search process reaches)
    Register      nodes/cs/register.py  the 本人確認情報ファイル of this municipality, one record at a time
    Disclosure    nodes/cs/search.py  本人確認情報 as the caller may see it (個人番号 masked)
    Pool          nodes/cs/pool.py    住民票コード reservations and offers, 個人番号 of new people
    Certificates  nodes/cs/moves.py   the 転出証明書情報 received
    Journal       nodes/cs/updates.py the updates kept after delivery
    Deliveries    nodes/cs/delivery.py  the 送付先情報ファイル (held with the update, 突合, sent, purged)
    AnnexQueue    nodes/cs/annex.py   戸籍附票通知 numbered in the update's transaction
    ImmigrationQueue  nodes/cs/immigration.py  市町村通知 numbered in the update's transaction
    BulkOutput    nodes/cs/bulk.py    terminal reads counted per operator (PIA Ⅲ(2)3), a manager's approval beyond
"""
from __future__ import annotations

import datetime as dt
import sqlite3
from typing import Any, Iterable, Protocol

from protos import card_pb2_grpc, identity_pb2, moj_pb2, national_pb2_grpc, prefecture_pb2_grpc, records_pb2


class NationalPeer(Protocol):
    """全国サーバ as the CS calls it: its stub, and a call whose refusal names it."""

    national: national_pb2_grpc.NationalServerStub

    async def national_call(self, method, request, unreachable: str = "") -> Any:
        """method(request) at national; its refusal relayed naming national (unreachable: see NodeRuntime.call_peer)."""


class Peers(NationalPeer, Protocol):
    """The CS's peers: national, its prefecture and the card system."""

    prefecture: prefecture_pb2_grpc.PrefectureServerStub
    card: card_pb2_grpc.CardManagementStub

    async def card_call(self, method, request) -> Any:
        """method(request) at the card system; its refusal relayed naming the card system."""


class Register(Protocol):
    """The 本人確認情報ファイル of this municipality, as the parts read one person's record."""

    def current(self, db: sqlite3.Connection, resident_code: str) -> records_pb2.IdentityInfo | None:
        """The 本人確認情報 of resident_code here (current or 除票), or None."""


class Disclosure(Protocol):
    """What the caller of this call may see of 本人確認情報."""

    def shown(self, info: records_pb2.IdentityInfo) -> records_pb2.IdentityInfo:
        """info as this caller may see it: 個人番号 masked without the permission."""


class Pool(Protocol):
    """The 住民票コード pool as the updates and the housekeeping use it."""

    async def check_new_numbers(self, updates: Iterable[identity_pb2.IdentityUpdate]) -> None:
        """Refuse a new person whose 個人番号 is not the one national issued."""

    def use_reserved(self, db: sqlite3.Connection, info: records_pb2.IdentityInfo) -> None:
        """Use up the 住民票コード reserved for this request; refuse one that was not."""

    def offered(self, db: sqlite3.Connection, resident_code: str, candidate: str) -> bool:
        """Whether candidate is among the codes offered to resident_code for a 住民票コード変更."""

    def use_offers(self, db: sqlite3.Connection, resident_code: str) -> None:
        """Forget the codes offered to resident_code (the change is made)."""

    def release_stale(self, db: sqlite3.Connection) -> int:
        """Codes reserved too long ago go back to the pool; how many."""


class Certificates(Protocol):
    """The 転出証明書情報 received, as the updates and the housekeeping use them."""

    def certificate(self, db: sqlite3.Connection, resident_code: str) -> identity_pb2.MoveOutCertificate | None:
        """The 転出証明書情報 received for resident_code, or None."""

    def use_certificate(self, db: sqlite3.Connection, resident_code: str) -> None:
        """Delete the certificate of a 特例転入 that is made."""

    def purge_expired(self, db: sqlite3.Connection, cutoff: dt.date) -> int:
        """Delete the certificates planned before cutoff; how many."""


class AnnexQueue(Protocol):
    """戸籍附票通知 as the updates hand them on (annex.Annex)."""

    def queue(self, db: sqlite3.Connection, notice: identity_pb2.AnnexNotice, resident_code: str) -> str | None:
        """Check and number a notice in the update's transaction; the outbox target it goes to (None: kept here)."""


class ImmigrationQueue(Protocol):
    """市町村通知 as the updates hand them on (immigration.Immigration)."""

    def queue(self, db: sqlite3.Connection, notice: moj_pb2.MunicipalityNotice, resident_code: str) -> str | None:
        """Check and number a notice in the update's transaction; the outbox target it goes to (None: no 法務省)."""


class Journal(Protocol):
    """The updates kept after delivery to the prefecture, as the housekeeping trims them."""

    def trim_journal(self, db: sqlite3.Connection) -> None:
        """Forget all but the latest JOURNAL_KEEP updates."""


class Deliveries(Protocol):
    """The 送付先情報ファイル, as the updates write to it and the housekeeping purges it."""

    def hold(self, db: sqlite3.Connection, delivery: records_pb2.DeliveryInfo) -> None:
        """Keep a 送付先情報 in the open transaction of the update that carried it."""

    def wake(self) -> None:
        """Tell the sender that something was held (after the commit)."""

    def purge_expired(self, db: sqlite3.Connection, today: dt.date | None = None) -> int:
        """Delete the 送付先情報 past the retention (audited when never sent); how many."""


class BulkOutput(Protocol):
    """The bulk-output account of this CS's terminal reads (PIA Ⅲ(2)3 その他)."""

    def read(self, call: Any, resident_codes: Iterable[str]) -> None:
        """Count a terminal read about to return these people; refuse it beyond the limit without an approval."""
