"""証明書交付センター (J-LIS): コンビニ交付 as it runs. A kiosk reads the card's 利用者証明用電子証明書 and asks for a
challenge; the card signs it (the kiosk only carries the signature: the key never leaves the card); the centre checks
the answer, the certificate's chain to the JPKI CA, its validity and, with the card system, that it is not revoked,
then asks the holder's municipality's コンビニ交付システム for the certificate and hands it to the kiosk.

Every challenge is kept until it is answered or expires: single use (an answer spends it, right or wrong), bound to
the kiosk that asked, 60 seconds by the centre's clock (settings: TESTBED_CHALLENGE_SECONDS)."""
from __future__ import annotations

import datetime as dt
import os
import re
import secrets
import time

from cryptography import x509

from nodes import audit, settings
from nodes import jpki
from nodes.guard import current_call
from nodes.reasons import centre as R
from protos import card_pb2, card_pb2_grpc, centre_pb2, centre_pb2_grpc, conbini_pb2, conbini_pb2_grpc

SERVICE_NAME = centre_pb2.DESCRIPTOR.services_by_name["CertificateIssuanceCentre"].full_name
NONCE_BYTES = 32
CHALLENGE_ID = re.compile(r"[0-9a-f]{32}")
SCHEMA = """
CREATE TABLE IF NOT EXISTS challenges (
    id TEXT PRIMARY KEY,
    nonce BLOB NOT NULL,
    certificate BLOB NOT NULL,      -- the 利用者証明用電子証明書 it was given for (DER)
    serial TEXT NOT NULL,
    kiosk TEXT NOT NULL,            -- the kiosk that asked: only it may answer
    expires_at REAL NOT NULL,       -- the centre's clock (epoch seconds)
    used_at REAL                    -- answered (right or wrong): spent
);
CREATE INDEX IF NOT EXISTS challenges_expiry ON challenges(expires_at);
"""


def add_to_server(servicer, server) -> None:
    """Register the servicer on a gRPC server."""
    centre_pb2_grpc.add_CertificateIssuanceCentreServicer_to_server(servicer, server)


def _utc(moment: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(moment, dt.timezone.utc)


class Servicer(centre_pb2_grpc.CertificateIssuanceCentreServicer):
    """Challenges, their answers, and the issuance asked of the municipality."""

    def __init__(self, runtime):
        self.rt = runtime
        cert_path, _ = runtime.pki.jpki_node_files(runtime.node.name)  # the JPKI CA's certificate (public)
        self.jpki_ca = x509.load_pem_x509_certificate(cert_path.read_bytes())
        self.card = runtime.stub(card_pb2_grpc.CardManagementStub, "card")

    def _checked(self, der: bytes, now: float) -> x509.Certificate:
        """The certificate, if it is JPKI's, of P-256, issued by the JPKI CA and valid now."""
        try:
            cert = jpki.user_certificate(der)
        except jpki.Unfit as exc:
            raise R.CENTRE_CERTIFICATE_FORMAT(f"利用者証明 rule: the card's certificate is {exc}") from None
        if not jpki.issued_by(cert, self.jpki_ca):
            raise R.CENTRE_CERTIFICATE_UNTRUSTED("利用者証明 rule: the certificate is not one the JPKI CA signed")
        if not jpki.within_validity(cert, _utc(now)):
            raise R.CENTRE_CERTIFICATE_EXPIRED("利用者証明 rule: the certificate is outside its validity")
        return cert

    async def BeginIssuance(self, request, context):
        """A challenge for the card of this 利用者証明用電子証明書 to sign."""
        kiosk = current_call().peer.identity.terminal
        now = time.time()
        cert = self._checked(request.user_certificate, now)
        serial = str(cert.serial_number)
        audit.set_subject(f"シリアル番号 {serial} at kiosk {kiosk}")
        challenge_id, nonce = secrets.token_hex(16), os.urandom(NONCE_BYTES)
        expires = now + settings.current().challenge_seconds
        with self.rt.store.transaction() as db:
            db.execute("DELETE FROM challenges WHERE expires_at < ?", (now - 3600,))  # (kept a while for the audit)
            db.execute("INSERT INTO challenges VALUES (?,?,?,?,?,?,NULL)",
                       (challenge_id, nonce, request.user_certificate, serial, kiosk, expires))
        return centre_pb2.Challenge(challenge_id=challenge_id, nonce=nonce,
                                    expires_at=_utc(expires).isoformat(timespec="seconds"))

    def _spend(self, challenge_id: str, kiosk: str, now: float):
        """The challenge, spent now (committed before anything else is judged, so that no answer is tried twice)."""
        if not CHALLENGE_ID.fullmatch(challenge_id):
            raise R.CENTRE_CHALLENGE_UNKNOWN("challenge rule: no such challenge was given")
        with self.rt.store.transaction() as db:
            row = db.execute("SELECT nonce, certificate, serial, expires_at, used_at FROM challenges WHERE id=? AND kiosk=?",
                             (challenge_id, kiosk)).fetchone()
            if row is not None and row[4] is None:
                db.execute("UPDATE challenges SET used_at=? WHERE id=?", (now, challenge_id))
        if row is None:
            raise R.CENTRE_CHALLENGE_UNKNOWN("challenge rule: no such challenge was given to this kiosk")
        if row[4] is not None:
            raise R.CENTRE_CHALLENGE_SPENT("challenge rule: this challenge was answered already; ask for a new one")
        if row[3] < now:
            raise R.CENTRE_CHALLENGE_EXPIRED("challenge rule: the challenge expired; ask for a new one")
        return row

    async def CompleteIssuance(self, request, context):
        """The card's answer: checked, then the certificate of the holder from their municipality."""
        kiosk = current_call().peer.identity.terminal
        now = time.time()
        nonce, der, serial, _, _ = self._spend(request.challenge_id, kiosk, now)
        audit.set_subject(f"シリアル番号 {serial} at kiosk {kiosk}")
        cert = self._checked(der, now)  # (again: it may have expired since)
        if not jpki.signed(cert, request.signature, nonce):
            raise R.CENTRE_SIGNATURE("利用者証明 rule: the signature is not the card's over this challenge")
        status = await self.rt.call_peer(self.card.CheckUserCertificate, card_pb2.UserCertificateQuery(serial=serial),
                                         "個人番号カード管理システム", unreachable="the certificate could not be checked")
        if status.status == "revoked":
            raise R.CENTRE_CERTIFICATE_REVOKED("利用者証明 rule: the card's certificate is revoked")
        if status.status != "good":
            raise R.CENTRE_CERTIFICATE_UNKNOWN("利用者証明 rule: the card system never issued this certificate")
        home = status.municipality_code
        if request.municipality_code and request.municipality_code != home:
            raise R.CENTRE_MUNICIPALITY("コンビニ交付 rule: the card's holder is not a resident of the municipality asked")
        try:
            conbini = self.rt.stub(conbini_pb2_grpc.ConvenienceIssuanceStub, "conbini", home)
        except KeyError:
            raise R.CENTRE_MUNICIPALITY("コンビニ交付 rule: the holder's municipality offers no コンビニ交付") from None
        return await self.rt.call_peer(conbini.IssueForCentre, conbini_pb2.CentreIssueRequest(
            serial=serial, kind=request.kind, challenge_id=request.challenge_id, kiosk=kiosk or ""),
            "コンビニ交付システム", unreachable="nothing was issued")
