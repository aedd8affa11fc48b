"""コンビニ交付 as it runs: kiosk → 証明書交付センター → the municipality's コンビニ交付システム → kizon, the resident
proved by the card's 利用者証明用電子証明書 (JPKI). A card issued at the counter with a key made on the card gets its
certificate; its シリアル番号 reaches the コンビニ交付システム through kizon's outbox (a kill -9 of it too); a kiosk signs
the centre's challenge with the card's key and gets the holder's 住民票の写し; what is wrong is refused by its rule."""
from __future__ import annotations

import asyncio
import datetime as dt
import os
import sqlite3

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from helpers import TODAY, kill, move_in_from_abroad, poll, refused

from certs.pki import make_jpki_ca
from conftest import network_of_its_own
from nodes import jpki
from nodes.refusal import rule_of
from nodes.settings import CHALLENGE_SECONDS
from protos import (card_pb2, card_pb2_grpc, centre_pb2, centre_pb2_grpc, conbini_pb2, conbini_pb2_grpc, common_pb2,
                    gateway_pb2, gateway_pb2_grpc, kizon_pb2)
from testbed import requests
from testbed.client import Counter, channel, named_cert, node_cert, terminal_cert
from testbed.load import generate_population, load_records

A, B = "142140", "142115"
LIFETIME = 5  # seconds a challenge lives in this module's network (60 by default: too long to wait out)


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    """A network with 20 loaded residents in 伊勢原市, its centre's challenges living LIFETIME seconds."""
    os.environ[CHALLENGE_SECONDS] = str(LIFETIME)  # (read by the node processes as they start)
    try:
        for network in network_of_its_own(tmp_path_factory, "convenience"):
            records, _ = generate_population(network, A, 20, seed=7)
            asyncio.run(load_records(network, A, records, show_progress=False))
            yield network
    finally:
        os.environ.pop(CHALLENGE_SECONDS, None)


@pytest.fixture(scope="module")
def clerk(net):
    """The counter of 伊勢原市."""
    with Counter(net, A) as counter:
        yield counter


@pytest.fixture(scope="module")
def kiosk(net):
    """The centre, as kiosk K0001 calls it."""
    ch = channel(net.topology.find("centre"), named_cert(net.pki, "kiosk-K0001"))
    yield centre_pb2_grpc.CertificateIssuanceCentreStub(ch)
    ch.close()


class Card:
    """A 個人番号カード as the test holds it: its holder, its key (made here, the card's) and its certificate."""

    def __init__(self, code: str, key: ec.EllipticCurvePrivateKey, status: card_pb2.CardStatus):
        self.code, self.key, self.status = code, key, status
        self.der = status.user_certificate
        self.serial = status.user_certificate_serial


def spki(key: ec.EllipticCurvePrivateKey) -> bytes:
    """The DER SubjectPublicKeyInfo of a key: what the card gives the counter."""
    return key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def issue(clerk: Counter, code: str, **fields) -> card_pb2.CardStatus:
    """APPLY, then ISSUE with fields once the card system's batch has made the card."""
    clerk(clerk.kizon.ChangeCard, card_pb2.CardRequest(action=card_pb2.APPLY, resident_code=code))

    def issued():
        try:
            return clerk(clerk.kizon.ChangeCard, card_pb2.CardRequest(action=card_pb2.ISSUE, resident_code=code,
                                                                      pin="1234", **fields))
        except grpc.RpcError as exc:  # (CARD_STATE_TRANSITION until it is manufactured)
            if exc.code() != grpc.StatusCode.FAILED_PRECONDITION:
                raise
            return None
    return poll(issued, timeout=20, what="the card to be made and issued")


def serial_registered(net, serial: str, municipality: str = A) -> bool:
    """Whether the コンビニ交付システム holds the シリアル番号 (read-only from its store)."""
    path = net.state_dir / "data" / f"conbini-{municipality}" / "store.sqlite"
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1)
    try:
        return db.execute("SELECT 1 FROM user_serials WHERE serial=?", (serial,)).fetchone() is not None
    except sqlite3.OperationalError:
        return False
    finally:
        db.close()


def jpki_card(net, clerk: Counter) -> Card:
    """A new resident whose card is issued with a key made on it, its シリアル番号 at the コンビニ交付システム."""
    record = move_in_from_abroad(clerk)
    key = ec.generate_private_key(ec.SECP256R1())
    card = Card(record.resident_code, key, issue(clerk, record.resident_code, user_public_key=spki(key)))
    poll(lambda: serial_registered(net, card.serial), timeout=20, what="the シリアル番号 at the コンビニ交付システム")
    return card


def sign(key: ec.EllipticCurvePrivateKey, nonce: bytes) -> bytes:
    """What the card does with the centre's challenge: ECDSA-SHA256 over the nonce."""
    return key.sign(nonce, ec.ECDSA(hashes.SHA256()))


def kiosk_issue(kiosk, card: Card, *, kind=kizon_pb2.RESIDENT_COPY, municipality: str = A, der: bytes | None = None,
                key=None) -> kizon_pb2.Certificate:
    """Begin → the card signs → Complete, as a kiosk does."""
    challenge = kiosk.BeginIssuance(centre_pb2.BeginRequest(user_certificate=der or card.der), timeout=10)
    return kiosk.CompleteIssuance(centre_pb2.CompleteRequest(
        challenge_id=challenge.challenge_id, signature=sign(key or card.key, challenge.nonce),
        municipality_code=municipality, kind=kind), timeout=20)


@pytest.fixture(scope="module")
def holder(net, clerk) -> Card:
    """A resident of 伊勢原市 with a JPKI card."""
    return jpki_card(net, clerk)


def test_a_card_issued_with_a_key_made_on_it_gets_its_user_certificate(net, clerk, holder):
    """The 利用者証明用電子証明書: for the card's key, signed by the JPKI CA, without the 4情報, a random serial, 5 years."""
    cert = x509.load_der_x509_certificate(holder.der)
    ca = x509.load_pem_x509_certificate(net.pki.jpki_ca_path().read_bytes())
    assert jpki.issued_by(cert, ca) and str(cert.serial_number) == holder.serial
    assert cert.subject.rfc4514_string() == "CN=JPKI-User"
    assert cert.public_key().public_numbers() == holder.key.public_key().public_numbers()
    assert dt.timedelta(days=5 * 365) <= cert.not_valid_after_utc - cert.not_valid_before_utc <= dt.timedelta(days=1830)
    # the JPKI CA is no mTLS root: not the testbed's root, and its key is the card system's alone (0600)
    assert ca.subject != x509.load_pem_x509_certificate(net.pki.trust_bundle.read_bytes()).subject
    assert os.stat(net.pki.jpki_node_files("card")[1]).st_mode & 0o777 == 0o600
    assert not net.pki.jpki_node_files("centre")[1].exists()
    # without a key, a card as before: no certificate
    plain = move_in_from_abroad(clerk)
    status = issue(clerk, plain.resident_code)
    assert status.state == "issued" and not status.user_certificate and not status.user_certificate_serial


def test_the_card_system_refuses_a_key_that_is_not_a_p256_one_or_not_given_on_issue(net, clerk):
    code = move_in_from_abroad(clerk).resident_code
    with refused(grpc.StatusCode.INVALID_ARGUMENT, reason="JPKI_KEY_ON_ISSUE"):
        clerk(clerk.kizon.ChangeCard, card_pb2.CardRequest(action=card_pb2.APPLY, resident_code=code,
                                                           user_public_key=spki(ec.generate_private_key(ec.SECP256R1()))))
    clerk(clerk.kizon.ChangeCard, card_pb2.CardRequest(action=card_pb2.APPLY, resident_code=code))
    other_curve = spki(ec.generate_private_key(ec.SECP384R1()))
    for bad in (b"\x30\x03not a key", other_curve):  # (judged before the card's state: refused made or not)
        with refused(grpc.StatusCode.INVALID_ARGUMENT, reason="JPKI_KEY_FORMAT"):
            clerk(clerk.kizon.ChangeCard, card_pb2.CardRequest(action=card_pb2.ISSUE, resident_code=code, pin="1234",
                                                               user_public_key=bad))


def test_a_kiosk_gets_the_holders_resident_copy(net, clerk, kiosk, holder):
    """Begin → sign → Complete: the holder's 住民票の写し, printed at the kiosk, in the 交付履歴 as asked by 本人."""
    document = kiosk_issue(kiosk, holder)
    record = clerk(clerk.kizon.GetResident, common_pb2.ResidentKey(resident_code=holder.code))
    assert document.kind == kizon_pb2.RESIDENT_COPY and document.issue_number
    assert record.name_kanji in document.text and document.place == "コンビニ交付 (K0001)"
    household = kiosk_issue(kiosk, holder, kind=kizon_pb2.HOUSEHOLD_COPY, municipality="")  # (the card system's)
    assert household.kind == kizon_pb2.HOUSEHOLD_COPY
    history = clerk(clerk.kizon.GetIssuanceHistory, common_pb2.ResidentKey(resident_code=holder.code))
    kiosks = [r for r in history.records if r.place == "コンビニ交付 (K0001)"]
    assert {r.issue_number for r in kiosks} >= {document.issue_number, household.issue_number}
    assert all(r.requester.resident_code == holder.code and not r.operator for r in kiosks)
    with refused(grpc.StatusCode.INVALID_ARGUMENT, reason="KIOSK_RESIDENT_COPY_ONLY"):
        kiosk_issue(kiosk, holder, kind=kizon_pb2.STATED_ITEMS)


def test_wrong_answers_and_wrong_certificates_are_refused(net, clerk, kiosk, holder):
    """A wrong signature, another card's certificate, a rogue CA's, one the card system never issued, garbage, a
    municipality not the holder's: each refused by its rule."""
    challenge = kiosk.BeginIssuance(centre_pb2.BeginRequest(user_certificate=holder.der), timeout=10)
    with refused(grpc.StatusCode.UNAUTHENTICATED, reason="CENTRE_SIGNATURE"):
        kiosk.CompleteIssuance(centre_pb2.CompleteRequest(challenge_id=challenge.challenge_id,
                                                          signature=sign(holder.key, b"not the nonce"),
                                                          municipality_code=A, kind=kizon_pb2.RESIDENT_COPY), timeout=10)
    with refused(grpc.StatusCode.FAILED_PRECONDITION, reason="CENTRE_CHALLENGE_SPENT"):  # (a wrong answer spent it)
        kiosk.CompleteIssuance(centre_pb2.CompleteRequest(challenge_id=challenge.challenge_id,
                                                          signature=sign(holder.key, challenge.nonce),
                                                          municipality_code=A, kind=kizon_pb2.RESIDENT_COPY), timeout=10)
    other = jpki_card(net, clerk)
    with refused(grpc.StatusCode.UNAUTHENTICATED, reason="CENTRE_SIGNATURE"):  # another card's certificate, our key
        kiosk_issue(kiosk, holder, der=other.der)
    rogue = make_jpki_ca()
    forged = jpki.issue_user_certificate(rogue, holder.key.public_key(), dt.datetime.now(dt.timezone.utc))
    with refused(grpc.StatusCode.UNAUTHENTICATED, reason="CENTRE_CERTIFICATE_UNTRUSTED"):
        kiosk_issue(kiosk, holder, der=forged.public_bytes(serialization.Encoding.DER))
    never = jpki.issue_user_certificate(net.pki.jpki_authority(), holder.key.public_key(), dt.datetime.now(dt.timezone.utc))
    with refused(grpc.StatusCode.UNAUTHENTICATED, reason="CENTRE_CERTIFICATE_UNKNOWN"):
        kiosk_issue(kiosk, holder, der=never.public_bytes(serialization.Encoding.DER))
    with refused(grpc.StatusCode.INVALID_ARGUMENT, reason="CENTRE_CERTIFICATE_FORMAT"):
        kiosk_issue(kiosk, holder, der=b"\x30\x82garbage")
    with refused(grpc.StatusCode.PERMISSION_DENIED, reason="CENTRE_MUNICIPALITY"):
        kiosk_issue(kiosk, holder, municipality=B)


def test_a_challenge_is_single_use_bound_to_its_kiosk_and_expires(net, kiosk, holder):
    document = kiosk_issue(kiosk, holder)
    assert document.issue_number
    challenge = kiosk.BeginIssuance(centre_pb2.BeginRequest(user_certificate=holder.der), timeout=10)
    answer = centre_pb2.CompleteRequest(challenge_id=challenge.challenge_id, signature=sign(holder.key, challenge.nonce),
                                        municipality_code=A, kind=kizon_pb2.RESIDENT_COPY)
    ch = channel(net.topology.find("centre"), named_cert(net.pki, "kiosk-K0002"))
    try:
        with refused(grpc.StatusCode.NOT_FOUND, reason="CENTRE_CHALLENGE_UNKNOWN"):  # another kiosk's answer
            centre_pb2_grpc.CertificateIssuanceCentreStub(ch).CompleteIssuance(answer, timeout=10)
    finally:
        ch.close()
    assert kiosk.CompleteIssuance(answer, timeout=20).issue_number  # (the other kiosk's try did not spend it)
    with refused(grpc.StatusCode.FAILED_PRECONDITION, reason="CENTRE_CHALLENGE_SPENT"):
        kiosk.CompleteIssuance(answer, timeout=10)
    with refused(grpc.StatusCode.NOT_FOUND, reason="CENTRE_CHALLENGE_UNKNOWN"):
        kiosk.CompleteIssuance(centre_pb2.CompleteRequest(challenge_id="0" * 32, signature=answer.signature), timeout=10)
    late = kiosk.BeginIssuance(centre_pb2.BeginRequest(user_certificate=holder.der), timeout=10)
    assert len(late.nonce) == 32 and late.nonce != challenge.nonce
    expires = dt.datetime.fromisoformat(late.expires_at)
    poll(lambda: dt.datetime.now(dt.timezone.utc) > expires + dt.timedelta(seconds=1), timeout=LIFETIME + 5,
         what="the challenge's lifetime to pass")
    with refused(grpc.StatusCode.FAILED_PRECONDITION, reason="CENTRE_CHALLENGE_EXPIRED"):
        kiosk.CompleteIssuance(centre_pb2.CompleteRequest(challenge_id=late.challenge_id,
                                                          signature=sign(holder.key, late.nonce),
                                                          municipality_code=A, kind=kizon_pb2.RESIDENT_COPY), timeout=10)


def test_a_revoked_card_and_a_dead_holders_card_prove_no_one(net, clerk, kiosk):
    revoked = jpki_card(net, clerk)
    assert kiosk_issue(kiosk, revoked).issue_number
    clerk(clerk.kizon.ChangeCard, card_pb2.CardRequest(action=card_pb2.REVOKE, resident_code=revoked.code, reason="紛失"))
    with refused(grpc.StatusCode.PERMISSION_DENIED, reason="CENTRE_CERTIFICATE_REVOKED"):
        kiosk_issue(kiosk, revoked)
    dead = jpki_card(net, clerk)
    clerk(clerk.kizon.Death, requests.death(dead.code, today=TODAY))

    def refused_as_revoked():  # (the CS revokes the card of someone who died as it passes the 死亡 on)
        try:
            kiosk_issue(kiosk, dead)
        except grpc.RpcError as exc:
            return rule_of(exc) == "CENTRE_CERTIFICATE_REVOKED" or None
        return None
    poll(refused_as_revoked, timeout=20, what="the dead holder's certificate to be revoked")
    with refused(grpc.StatusCode.PERMISSION_DENIED, reason="CENTRE_CERTIFICATE_REVOKED"):
        kiosk_issue(kiosk, dead)


def test_only_kiosks_reach_the_centre_and_only_the_centre_and_kizon_the_conbini(net, holder):
    """The policy: a terminal or a node of another kind cannot call the centre, the コンビニ交付システム, the card
    system's certificate check or kizon's IssueForConvenience; a kiosk cannot skip the centre."""
    begin = centre_pb2.BeginRequest(user_certificate=holder.der)
    ask = conbini_pb2.CentreIssueRequest(serial=holder.serial, kind=kizon_pb2.RESIDENT_COPY)
    kiosk, terminal, cs = (named_cert(net.pki, "kiosk-K0001"), terminal_cert(net.pki, A, "T0001"),
                           node_cert(net.pki, f"cs-{A}"))
    cases = [
        ("centre", None, terminal, "TRUST_DOMAIN", lambda ch: centre_pb2_grpc.CertificateIssuanceCentreStub(ch).BeginIssuance(begin, timeout=10)),
        ("centre", None, cs, "DEFAULT_DENY", lambda ch: centre_pb2_grpc.CertificateIssuanceCentreStub(ch).BeginIssuance(begin, timeout=10)),
        ("conbini", A, kiosk, "DEFAULT_DENY", lambda ch: conbini_pb2_grpc.ConvenienceIssuanceStub(ch).IssueForCentre(ask, timeout=10)),
        ("conbini", A, terminal, "DEFAULT_DENY", lambda ch: conbini_pb2_grpc.ConvenienceIssuanceStub(ch).IssueForCentre(ask, timeout=10)),
        ("card", None, kiosk, "DEFAULT_DENY", lambda ch: card_pb2_grpc.CardManagementStub(ch).CheckUserCertificate(
            card_pb2.UserCertificateQuery(serial=holder.serial), timeout=10)),
        ("card", None, cs, "DEFAULT_DENY", lambda ch: card_pb2_grpc.CardManagementStub(ch).CheckUserCertificate(
            card_pb2.UserCertificateQuery(serial=holder.serial), timeout=10)),
        ("kizon", A, kiosk, "DEFAULT_DENY", lambda ch: gateway_pb2_grpc.KizonGatewayStub(ch).IssueForConvenience(
            gateway_pb2.ConvenienceRequest(resident_code=holder.code, kind=kizon_pb2.RESIDENT_COPY), timeout=10)),
        ("kizon", A, node_cert(net.pki, f"conbini-{B}"), "POLICY_SCOPE", lambda ch: gateway_pb2_grpc.KizonGatewayStub(ch).IssueForConvenience(
            gateway_pb2.ConvenienceRequest(resident_code=holder.code, kind=kizon_pb2.RESIDENT_COPY), timeout=10)),
        ("conbini", A, node_cert(net.pki, f"kizon-{B}"), "POLICY_SCOPE", lambda ch: conbini_pb2_grpc.ConvenienceIssuanceStub(ch).RegisterUserSerials(
            conbini_pb2.UserSerialBatch(items=[conbini_pb2.UserSerial(serial="1", resident_code=holder.code)]), timeout=10)),
    ]
    for kind, municipality, cert, rule, call in cases:
        ch = channel(net.topology.find(kind, municipality), cert)
        try:
            with refused(grpc.StatusCode.PERMISSION_DENIED, reason=rule):
                call(ch)
        finally:
            ch.close()


def test_the_serial_reaches_a_conbini_killed_when_the_card_is_issued(net, clerk, kiosk):
    """kill -9 of the コンビニ交付システム: the card issued meanwhile waits in kizon's outbox, and reaches it on restart."""
    record = move_in_from_abroad(clerk)
    key = ec.generate_private_key(ec.SECP256R1())
    kill(net, f"conbini-{A}")
    try:
        card = Card(record.resident_code, key, issue(clerk, record.resident_code, user_public_key=spki(key)))
        outbox = net.state_dir / "data" / f"kizon-{A}" / "store.sqlite"
        db = sqlite3.connect(f"file:{outbox}?mode=ro", uri=True, timeout=1)
        try:
            assert db.execute("SELECT COUNT(*) FROM outbox WHERE target='conbini'").fetchone()[0] >= 1
        finally:
            db.close()
        assert not serial_registered(net, card.serial)
    finally:
        net.up()  # (restarts only the killed node)
    poll(lambda: serial_registered(net, card.serial), timeout=30, what="the シリアル番号 after the restart")
    assert kiosk_issue(kiosk, card).issue_number
