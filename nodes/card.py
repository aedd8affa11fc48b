"""個人番号カード管理システム: 送付先情報 intake (unedited), the 個人番号通知書 queue, and the card
lifecycle: application → manufacture → issue at the counter (PIN set) → suspension and lifting →
revocation (on death, on request, on loss) → return. A card issued with a key made on it gets its 利用者証明用電子証明書
(JPKI, nodes/jpki.py), signed with the JPKI CA only this node holds; every later step that takes the card out of use
(suspension, revocation, return, a new issue) revokes it, and the 証明書交付センター asks here whether one is in force. The CS asks it about cards: status for 特例
and PIN checks for 本人確認 by card. 送付先情報 is kept for a set period only, then deleted in one batch that
leaves nothing to read back: the store overwrites what it deletes (secure_delete) and the purge empties the WAL
(docs/delivery.md; PIA Ⅲ(3)7, seed 2876–2882: 保管期間の経過した特定個人情報を一括して削除する).
"""
from __future__ import annotations

import asyncio
import datetime as dt
import functools
import hashlib
import hmac
import re
import logging
import secrets

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from certs.pki import Authority, load_ca_key
from nodes import audit, clock, jpki, rules, settings
from nodes.reasons import card as R, common as C
from nodes.guard import current_call
from protos import card_pb2, card_pb2_grpc, common_pb2, records_pb2

log = logging.getLogger("nodes.card")
SERVICE_NAME = card_pb2.DESCRIPTOR.services_by_name["CardManagement"].full_name
PIN_ATTEMPTS = 3  # wrong PINs in a row before the card is locked
BATCH_SECONDS = 1.0  # the manufacturing and printing batch runs this often
PIN = re.compile(r"[0-9]{4}")
# Which states each action may start from, and the state it leads to.
TRANSITIONS = {
    card_pb2.APPLY: ({"none", "revoked", "returned"}, "applied"),
    card_pb2.ISSUE: ({"manufactured"}, "issued"),
    card_pb2.SUSPEND: ({"issued"}, "suspended"),
    card_pb2.LIFT: ({"suspended"}, "issued"),
    card_pb2.REVOKE: ({"applied", "manufactured", "issued", "suspended"}, "revoked"),
    card_pb2.RETURN: ({"issued", "suspended", "revoked"}, "returned"),
    card_pb2.RESET_PIN: ({"issued"}, "issued"),
}
# Steps after which the card's 利用者証明用電子証明書 is no longer in force (ISSUE: the one of the card before, if any).
ENDS_CERTIFICATE = (card_pb2.SUSPEND, card_pb2.REVOKE, card_pb2.RETURN, card_pb2.ISSUE, card_pb2.APPLY)
# Steps the CSs take on their own when a holder dies, moves in elsewhere or gets a new code: they
# must never stop the CS's delivery queue, so a step with nothing to act on is a no-op.
HOUSEKEEPING = (card_pb2.TRANSFER, card_pb2.RECODE)
SCHEMA = """
CREATE TABLE IF NOT EXISTS delivery (
    resident_code TEXT PRIMARY KEY,         -- 住民票コード
    municipality_code TEXT NOT NULL,        -- the CS it came from
    received_at TEXT NOT NULL,
    notice_printed_at TEXT,                 -- 個人番号通知書 printed (NULL: still queued)
    info BLOB NOT NULL                      -- DeliveryInfo exactly as received (the 67 items)
);
CREATE TABLE IF NOT EXISTS cards (
    resident_code TEXT PRIMARY KEY,         -- one current card per person
    card_number TEXT NOT NULL UNIQUE,
    municipality_code TEXT NOT NULL,
    state TEXT NOT NULL,
    pin_hash BLOB,
    pin_failures INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS user_certificates (  -- 利用者証明用電子証明書 issued (JPKI), by シリアル番号
    serial TEXT PRIMARY KEY,                -- decimal
    card_number TEXT NOT NULL,
    resident_code TEXT NOT NULL,
    municipality_code TEXT NOT NULL,
    status TEXT NOT NULL,                   -- good or revoked
    issued_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE INDEX IF NOT EXISTS user_certificates_card ON user_certificates(card_number, status);
CREATE TABLE IF NOT EXISTS card_events (
    card_number TEXT NOT NULL,
    at TEXT NOT NULL,
    action TEXT NOT NULL,
    reason TEXT NOT NULL
);
"""


def add_to_server(servicer, server) -> None:
    """Register the servicer on a gRPC server."""
    card_pb2_grpc.add_CardManagementServicer_to_server(servicer, server)


def _now() -> str:
    return clock.stamp()


def keep_deliveries(db, municipality: str, items) -> None:
    """Keep 送付先情報 from the CS of municipality, byte for byte, in the open transaction. The same 送付先情報 sent
    again (a CS that did not hear the answer sends it again) changes nothing: its receipt, its retention and its
    printed 通知書 stand; a different one replaces it and is printed anew."""
    db.executemany(
        "INSERT INTO delivery VALUES (?,?,?,NULL,?) ON CONFLICT(resident_code) DO UPDATE SET "
        "municipality_code=excluded.municipality_code, received_at=excluded.received_at, notice_printed_at=NULL, "
        "info=excluded.info WHERE delivery.info IS NOT excluded.info "
        "OR delivery.municipality_code IS NOT excluded.municipality_code",
        [(i.resident_code, municipality, _now(), i.SerializeToString()) for i in items])


PIN_HASH_PREFIX = b"k1:"  # a PIN hash keyed with the card system's own secret


def pin_hash(key: bytes, card_number: str, pin: str) -> bytes:
    """The stored form of a PIN: an HMAC under a secret the card system alone holds, so that a copy of the
    store does not give the 10,000 PINs away to a brute force (the card number alone is no secret)."""
    return PIN_HASH_PREFIX + hmac.new(key, f"{card_number}:{pin}".encode(), hashlib.sha256).digest()


class Servicer(card_pb2_grpc.CardManagementServicer):
    """送付先情報, 通知書 and the cards."""

    def __init__(self, runtime):
        self.rt = runtime
        self.pin_key = runtime.own_secret("pin.key")
        # 送付先情報 deleted (the purge) or replaced (a newer one, the printing stamp) is overwritten, not left in the
        # file's free pages (a store opened without it keeps the bytes of every deleted record until reused).
        runtime.store.secure_delete()
        runtime.background(self._batches)

    @functools.cached_property
    def jpki_ca(self) -> Authority:
        """The JPKI CA, from this node's own copy (certs/pki.py give_jpki), read when a card first needs it."""
        cert_path, key_path = self.rt.pki.jpki_node_files(self.rt.node.name)
        return Authority(x509.load_pem_x509_certificate(cert_path.read_bytes()), load_ca_key(key_path))

    # -- 送付先情報 and the 個人番号通知書 --------------------------------------------------------------
    async def SubmitDeliveryInfos(self, request, context):
        """送付先情報の受領: kept byte for byte as the CS sent it, queued for printing."""
        caller = current_call().peer.identity
        for item in request.items:
            rules.require_resident_code(item.resident_code)
            rules.require_individual_number(item.individual_number)
            if item.municipality_code and item.municipality_code != caller.municipality:
                raise C.MUNICIPALITY_OWN(f"送付先情報 rule: the CS of {caller.municipality} sent one of {item.municipality_code}")
        if request.items:
            audit.set_batch_subject(i.resident_code for i in request.items)
        with self.rt.store.transaction() as db:
            keep_deliveries(db, caller.municipality, request.items)
        return common_pb2.UpdateAck(accepted=True, applied=len(request.items))

    async def GetDeliveryInfo(self, request, context):
        """The 送付先情報 of a person and whether the 通知書 is printed."""
        audit.set_subject(request.resident_code)
        rules.require_resident_code(request.resident_code)
        row = self.rt.store.one("SELECT info, received_at, notice_printed_at, municipality_code FROM delivery "
                                "WHERE resident_code=?", (request.resident_code,))
        if row is None:
            raise C.RECORD_NOT_FOUND(f"送付先情報: none kept for 住民票コード {request.resident_code}")
        caller = current_call().peer.identity.municipality
        if row[3] != caller:
            raise C.MUNICIPALITY_OWN(f"送付先情報 rule: the CS of {caller} may read only what it sent")
        return card_pb2.DeliveryQueueEntry(delivery=records_pb2.DeliveryInfo.FromString(row[0]), received_at=row[1],
                                           notice_printed_at=row[2] or "")

    def batches(self) -> dict:
        """Batch jobs this node runs on demand."""
        return {"purge": self.purge}

    def purge(self, today: dt.date | None = None) -> int:
        """Delete 送付先情報 kept longer than the retention of the settings (PIA Ⅲ(3)7: 90 days unless set), in one
        batch, overwritten (secure_delete) and checkpointed out of the WAL, so that none of it can be read back."""
        today = today or clock.now().date()  # received_at is in UTC: count days in UTC too
        kept = dt.timedelta(days=settings.current().delivery_retention_days)
        cutoff = dt.datetime.combine(today - kept, dt.time(), dt.timezone.utc).isoformat()
        store = self.rt.store
        store.secure_delete()  # (set at start too; again here for a servicer built on a store of its own)
        with store.transaction() as db:
            purged = db.execute("DELETE FROM delivery WHERE received_at < ?", (cutoff,)).rowcount
        if purged and not store.truncate_wal():
            log.warning("purged %d 送付先情報 but the WAL could not be emptied yet (a reader held it): the next "
                        "checkpoint overwrites it", purged)
        return purged

    async def _batches(self) -> None:
        """Print queued 通知書, manufacture applied cards, purge old 送付先情報."""
        while True:
            with self.rt.store.transaction() as db:
                db.execute("UPDATE delivery SET notice_printed_at=? WHERE notice_printed_at IS NULL", (_now(),))
                for (number,) in db.execute("SELECT card_number FROM cards WHERE state='applied'").fetchall():
                    db.execute("UPDATE cards SET state='manufactured', updated_at=? WHERE card_number=?", (_now(), number))
                    db.execute("INSERT INTO card_events VALUES (?,?,?,?)", (number, _now(), "MANUFACTURE", ""))
            self.purge()
            await asyncio.sleep(BATCH_SECONDS)

    # -- cards -------------------------------------------------------------------------------------
    def _card(self, resident_code: str):
        return self.rt.store.one("SELECT card_number, resident_code, municipality_code, state, pin_hash, pin_failures, "
                                 "updated_at FROM cards WHERE resident_code=?", (resident_code,))

    @staticmethod
    def _status(row) -> card_pb2.CardStatus:
        if row is None:
            return card_pb2.CardStatus(state="none")
        return card_pb2.CardStatus(card_number=row[0], resident_code=row[1], municipality_code=row[2], state=row[3],
                                   pin_failures=row[5], pin_locked=row[5] >= PIN_ATTEMPTS, updated_at=row[6])

    async def ChangeCard(self, request, context):
        """One step of the card lifecycle; a step the card's state does not allow is refused."""
        caller = current_call().peer.identity
        audit.set_subject(request.resident_code)
        rules.require_resident_code(request.resident_code)
        if request.action not in TRANSITIONS and request.action not in HOUSEKEEPING:
            raise R.CARD_ACTION_UNKNOWN("card rule: unknown action")
        if request.municipality_code != caller.municipality:
            raise R.CARD_OWN_RESIDENTS(f"card rule: the CS of {caller.municipality} acts only for its own residents")
        if request.action in HOUSEKEEPING:
            return self._housekeeping(request, caller.municipality)
        if request.user_public_key and request.action != card_pb2.ISSUE:
            raise R.JPKI_KEY_ON_ISSUE("JPKI rule: a 利用者証明用 key is given with ISSUE alone")
        user_key = None
        if request.user_public_key:
            try:
                user_key = jpki.user_key(request.user_public_key)
            except jpki.Unfit as exc:
                raise R.JPKI_KEY_FORMAT(f"JPKI rule: the 利用者証明用 key is {exc}") from None
        allowed, target = TRANSITIONS[request.action]
        name = card_pb2.CardAction.Name(request.action)
        issued = None
        with self.rt.store.transaction() as db:
            row = self._card(request.resident_code)
            state = row[3] if row else "none"
            if request.action == card_pb2.REVOKE and request.reason == "死亡" and state in ("none", "revoked", "returned"):
                return self._status(row)  # a death revokes whatever card there is; here there is none in use
            if state not in allowed:
                raise R.CARD_STATE_TRANSITION(f"card rule: {name} is not possible for a card that is {state}")
            if row is not None and row[2] != caller.municipality and request.action != card_pb2.APPLY:
                raise R.CARD_OWN_RESIDENTS(f"card rule: the card of {request.resident_code} belongs to {row[2]}")
            now = _now()
            if request.action == card_pb2.APPLY:
                number = f"{secrets.randbelow(10**12):012d}"
                db.execute("INSERT INTO cards VALUES (?,?,?,?,NULL,0,?) ON CONFLICT(resident_code) DO UPDATE SET "
                           "card_number=excluded.card_number, municipality_code=excluded.municipality_code, state=excluded.state, "
                           "pin_hash=NULL, pin_failures=0, updated_at=excluded.updated_at",
                           (request.resident_code, number, caller.municipality, target, now))
            else:
                number = row[0]
                if request.action in (card_pb2.ISSUE, card_pb2.RESET_PIN):
                    if not PIN.fullmatch(request.pin):
                        raise R.PIN_FORMAT("card rule: the PIN is four digits, set at the counter")
                    db.execute("UPDATE cards SET pin_hash=?, pin_failures=0 WHERE card_number=?",
                               (pin_hash(self.pin_key, number, request.pin), number))
                db.execute("UPDATE cards SET state=?, updated_at=? WHERE card_number=?", (target, now, number))
            if request.action in ENDS_CERTIFICATE and row is not None:  # (in the same transaction as the step)
                db.execute("UPDATE user_certificates SET status='revoked', revoked_at=? WHERE card_number=? "
                           "AND status='good'", (now, row[0]))
            if user_key is not None:
                issued = jpki.issue_user_certificate(self.jpki_ca, user_key, clock.now())
                db.execute("INSERT INTO user_certificates VALUES (?,?,?,?,'good',?,NULL)",
                           (str(issued.serial_number), number, request.resident_code, caller.municipality, now))
            db.execute("INSERT INTO card_events VALUES (?,?,?,?)", (number, now, name, request.reason))
        status = self._status(self._card(request.resident_code))
        if issued is not None:
            status.user_certificate = issued.public_bytes(serialization.Encoding.DER)
            status.user_certificate_serial = str(issued.serial_number)
        return status

    def _housekeeping(self, request, municipality: str) -> card_pb2.CardStatus:
        """TRANSFER: the card now belongs to the holder's new municipality. RECODE: its new 住民票コード."""
        with self.rt.store.transaction() as db:
            if request.action == card_pb2.TRANSFER:
                db.execute("UPDATE cards SET municipality_code=?, updated_at=? WHERE resident_code=?",
                           (municipality, _now(), request.resident_code))
                # the certificate stays in force with the card (転入 with the card): its holder is asked of here now
                db.execute("UPDATE user_certificates SET municipality_code=? WHERE resident_code=?",
                           (municipality, request.resident_code))
            else:
                rules.require_resident_code(request.former_resident_code)
                db.execute("UPDATE cards SET resident_code=?, updated_at=? WHERE resident_code=? AND municipality_code=?",
                           (request.resident_code, _now(), request.former_resident_code, municipality))
                db.execute("UPDATE user_certificates SET resident_code=? WHERE resident_code=? AND municipality_code=?",
                           (request.resident_code, request.former_resident_code, municipality))
            row = self._card(request.resident_code)
            if row is not None:
                db.execute("INSERT INTO card_events VALUES (?,?,?,?)",
                           (row[0], _now(), card_pb2.CardAction.Name(request.action), request.former_resident_code))
        return self._status(row)

    async def GetCardStatus(self, request, context):
        """The state of a person's card ("none" without one)."""
        audit.set_subject(request.resident_code)
        rules.require_resident_code(request.resident_code)
        return self._status(self._card(request.resident_code))

    def _pin_matches(self, stored: bytes, card_number: str, pin: str) -> bool:
        return stored.startswith(PIN_HASH_PREFIX) and hmac.compare_digest(stored, pin_hash(self.pin_key, card_number, pin))

    async def CheckPin(self, request, context):
        """Card and PIN: the card's holder if the card is issued, not locked and the PIN is right."""
        audit.set_subject(request.card_number)
        row = self.rt.store.one("SELECT card_number, resident_code, municipality_code, state, pin_hash, pin_failures, "
                                "updated_at FROM cards WHERE card_number=?", (request.card_number,))
        if row is None:
            raise C.RECORD_NOT_FOUND("card rule: no such card")
        if row[3] != "issued":
            raise R.CARD_NOT_USABLE(f"card rule: the card is {row[3]}, not usable")
        if row[5] >= PIN_ATTEMPTS:
            raise R.PIN_LOCKED(f"PIN rule: locked after {PIN_ATTEMPTS} wrong PINs; the PIN is reset at the counter "
                               "(RESET_PIN)")
        if not self._pin_matches(row[4] or b"", row[0], request.pin):
            with self.rt.store.transaction() as db:
                db.execute("UPDATE cards SET pin_failures=pin_failures+1 WHERE card_number=?", (row[0],))
            left = PIN_ATTEMPTS - row[5] - 1
            raise R.PIN_WRONG(f"PIN rule: wrong PIN ({left} attempt{'s' if left != 1 else ''} left)")
        if row[5]:
            with self.rt.store.transaction() as db:
                db.execute("UPDATE cards SET pin_failures=0 WHERE card_number=?", (row[0],))
        return self._status(self._card(row[1]))

    async def CheckUserCertificate(self, request, context):
        """Whether a 利用者証明用電子証明書 is in force (good), revoked, or unknown here; the holder's municipality."""
        audit.set_subject(f"シリアル番号 {request.serial[:60]}")
        if not jpki.SERIAL.fullmatch(request.serial):
            raise R.JPKI_SERIAL_FORMAT("JPKI rule: a シリアル番号 is a decimal number of at most 60 digits")
        row = self.rt.store.one("SELECT status, municipality_code, resident_code FROM user_certificates WHERE serial=?",
                                (request.serial,))
        if row is None:
            return card_pb2.UserCertificateStatus(status="unknown")
        audit.set_subject(row[2])
        return card_pb2.UserCertificateStatus(status=row[0], municipality_code=row[1])
