"""The cases of the 個人番号カード管理システム (the card's lifecycle, the PIN, the card's 利用者証明用電子証明書 and its
revocation), of the 証明書交付センター (JPKI 利用者証明: the certificate's chain, validity and revocation, the
challenge, the holder's municipality) and of a コンビニ交付システム (the シリアル番号 it keeps, a certificate for a
current resident only), each as the network's own callers send them: the CS, the centre, a kiosk, kizon.

A card is made as the counter makes one (国外転入 of a new person, APPLY, the card system's batch, ISSUE with a PIN
and the key made on the card); a case that changes a card takes one of its own."""
from __future__ import annotations

import datetime as dt
import time
import uuid
import weakref
from dataclasses import dataclass

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from certs.pki import PassphraseError, make_jpki_ca
from nodes import jpki
from nodes.clock import office_today
from nodes.numbers import with_resident_code_check
from nodes.reasons import card as R, centre as X, conbini as V, kizon as K
from protos import (card_pb2, card_pb2_grpc, centre_pb2, centre_pb2_grpc, common_pb2, conbini_pb2, conbini_pb2_grpc,
                    kizon_pb2, kizon_pb2_grpc, records_pb2)
from nodes.refusal import reason_of
from scenarios.towns import towns
from testbed.client import named_cert, node_cert
from testbed.conform.case import Failed, Skipped, answered, case, outcome, refused, said, same
from testbed.requests import death, with_notifier

PIN = "4321"  # the PIN a case's card is issued with
WRONG_PIN = "0000"
PIN_ATTEMPTS = 3  # wrong PINs in a row that lock a card (PIA Ⅱ(1)3⑤⑧)
MADE_WITHIN = 15.0  # seconds the card system's batch may take to make an applied card
ARRIVAL = 15.0  # seconds a シリアル番号 may take to reach the コンビニ交付システム from kizon's outbox
POOL = {"card": 4, "centre": 2}  # cards a role's cases need of their own, applied for at once (one batch makes them)
_MADE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # subject → what the cases made for it (below)


@dataclass
class _Card:
    """A 個人番号カード as a case holds it: its holder, the key made on it (None: a card without JPKI) and its status
    as ISSUE answered (the card number, the 利用者証明用電子証明書 and its シリアル番号)."""

    code: str
    key: ec.EllipticCurvePrivateKey | None
    status: card_pb2.CardStatus

    @property
    def der(self) -> bytes:
        return self.status.user_certificate

    @property
    def serial(self) -> str:
        return self.status.user_certificate_serial


def _made(subject) -> dict:
    """What this module's cases made for the subject's run: {"applied": [codes], "holder": _Card, ...}."""
    return _MADE.setdefault(subject, {"applied": []})


# -- the counter, the card system, the kiosk -----------------------------------------------------------------------
def _counter(subject):
    """A call at the counter of the subject's municipality: (method, request) → reply, with the operator's session."""
    stub = kizon_pb2_grpc.KizonStub(subject.channel(subject.terminal(), subject.kizon()))
    session = subject.session()
    return lambda method, request, timeout=30: getattr(stub, method)(request, metadata=session, timeout=timeout)


def _node(subject, kind: str, municipality: str | None = None):
    """The topology's node of a kind (Skipped when the network has none)."""
    try:
        return subject.topology.find(kind, municipality)
    except KeyError:
        raise Skipped(f"the topology has no {kind} node{' of ' + municipality if municipality else ''}") from None


def _card_system(subject, caller: str):
    """The card system (the subject, or the network's) as the node caller calls it."""
    end = subject.node if subject.role == "card" else _node(subject, "card")
    return card_pb2_grpc.CardManagementStub(subject.channel(_node_cert(subject, caller), end))


def _node_cert(subject, name: str):
    return node_cert(subject.pki, name)


def _rule_of(exc: grpc.RpcError) -> str:
    """The rule id a refusal names ("" for none)."""
    why = reason_of(exc)
    return why.reason if why else ""


def _cs_name(subject, municipality: str | None = None) -> str:
    return _node(subject, "cs", municipality or subject.home()).name


def _other_municipality(subject) -> str:
    """A municipality of the topology other than the subject's (Skipped when there is none)."""
    other = next((m.code for m in subject.topology.municipalities if m.code != subject.home()), None)
    if other is None:
        raise Skipped("the topology has one municipality: the rule is about another one's")
    return other


def _kiosk(subject, index: int = 0):
    """The centre as the topology's index-th kiosk calls it."""
    kiosks = subject.topology.kiosks
    if len(kiosks) <= index:
        raise Skipped(f"the topology names {len(kiosks)} kiosk(s): the case needs {index + 1}")
    end = subject.node if subject.role == "centre" else _node(subject, "centre")
    cert = named_cert(subject.pki, f"kiosk-{kiosks[index]}")
    return centre_pb2_grpc.CertificateIssuanceCentreStub(subject.channel(cert, end))


def _spki(key: ec.EllipticCurvePrivateKey) -> bytes:
    """The DER SubjectPublicKeyInfo of a key: what the card gives the counter."""
    return key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _sign(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    """What the card does with the centre's challenge: ECDSA-SHA256."""
    return key.sign(data, ec.ECDSA(hashes.SHA256()))


def _invented_code() -> str:
    """A well-formed 住民票コード no one was given (the 9 block: the network numbers from below)."""
    return with_resident_code_check(f"9{uuid.uuid4().int % 10**9:09d}")


def _invented_serial() -> str:
    """A well-formed シリアル番号 no certificate has (40 digits: the card system's are at most 49, random)."""
    return f"{uuid.uuid4().int % 10**40:040d}"


# -- people and cards, made at the counter -------------------------------------------------------------------------
def _resident(subject, name: str = "適合 カード", kana: str = "テキゴウ カード") -> records_pb2.ResidentRecord:
    """A new person (国外転入 at the municipality's counter), for a case that changes their state."""
    reply = _counter(subject)("MoveIn", with_notifier(kizon_pb2.MoveInRequest(
        person=records_pb2.ResidentRecord(name_kanji=name, name_kana=kana, birth_date="1985-06-15", sex="9"),
        address=records_pb2.Address(town_code=towns(subject.home())[0].code, address_line="3番地"),
        move_in_date=office_today().isoformat(), from_abroad=True)))
    return reply.records[0]


def _applied(subject) -> str:
    """The 住民票コード of a new person whose card is applied for: the role's cards are applied for together, the
    first time one is needed, so that one run of the card system's batch makes them all."""
    pool = _made(subject)["applied"]
    if not pool:
        counter = _counter(subject)
        for _ in range(POOL.get(subject.role, 1)):
            code = _resident(subject).resident_code
            counter("ChangeCard", card_pb2.CardRequest(action=card_pb2.APPLY, resident_code=code))
            pool.append(code)
    return pool.pop(0)


def _issued(subject, code: str, key: ec.EllipticCurvePrivateKey | None, pin: str = PIN) -> card_pb2.CardStatus:
    """ISSUE at the counter (the PIN set, the card's key given), once the batch has made the card (bounded)."""
    counter, deadline = _counter(subject), time.monotonic() + MADE_WITHIN
    request = card_pb2.CardRequest(action=card_pb2.ISSUE, resident_code=code, pin=pin,
                                   user_public_key=_spki(key) if key else b"")
    while True:
        try:
            return counter("ChangeCard", request)
        except grpc.RpcError as exc:
            reason = _rule_of(exc)
            if reason != R.CARD_STATE_TRANSITION.reason or time.monotonic() > deadline:
                raise Skipped(f"a card for the case could not be issued at the counter "
                              f"({said(exc.code(), reason, exc.details() or '')})") from None
        time.sleep(0.1)  # (bounded: the card system's batch makes applied cards about once a second)


def _new_card(subject, key: bool = True) -> _Card:
    """A card of the case's own: a new person's, issued with PIN (and a key made on it)."""
    made = ec.generate_private_key(ec.SECP256R1()) if key else None
    code = _applied(subject)
    return _Card(code, made, _issued(subject, code, made))


def _holder(subject) -> _Card:
    """The run's JPKI card holder (shared: cases that change a card take one of their own)."""
    made = _made(subject)
    if "holder" not in made:
        made["holder"] = _new_card(subject)
    return made["holder"]


def _manufactured(subject) -> str:
    """The 住民票コード of a person whose card the batch made and no one issued yet (shared: left as it is)."""
    made = _made(subject)
    if "manufactured" not in made:
        code, cs = _applied(subject), _card_system(subject, _cs_name(subject))
        deadline = time.monotonic() + MADE_WITHIN
        key = common_pb2.ResidentKey(resident_code=code)
        while (state := cs.GetCardStatus(key, timeout=10).state) != "manufactured":
            if time.monotonic() > deadline:
                raise Skipped(f"the card applied for was not made within {MADE_WITHIN:g} s (it is {state})")
            time.sleep(0.1)  # (bounded: the batch runs about once a second)
        made["manufactured"] = code
    return made["manufactured"]


def _certificate_status(subject, serial: str) -> tuple[str, str]:
    """(status, municipality) of a 利用者証明用電子証明書 as the card system answers the centre's revocation check."""
    reply = _card_system(subject, _node(subject, "centre").name).CheckUserCertificate(
        card_pb2.UserCertificateQuery(serial=serial), timeout=10)
    return reply.status, reply.municipality_code


def _card_state(subject, code: str) -> card_pb2.CardStatus:
    """A person's card as the card system tells their CS."""
    cs = _card_system(subject, _cs_name(subject))
    return cs.GetCardStatus(common_pb2.ResidentKey(resident_code=code), timeout=10)


# == 個人番号カード管理システム ========================================================================================
@case("card/暗証番号/lock", roles=("card",), profiles=("rules", "security"), rules=(R.PIN_WRONG, R.PIN_LOCKED),
      request=f"CheckPin as the CS: a card's wrong PIN {PIN_ATTEMPTS} times, then its right PIN",
      asserts=f"UNAUTHENTICATED PIN_WRONG {PIN_ATTEMPTS} times, then FAILED_PRECONDITION PIN_LOCKED for the right "
              "PIN; the card locked")
def pin_lock(subject) -> str:
    """A card proves its holder only with its PIN, and is locked after three wrong ones (the right one too)."""
    card = _new_card(subject, key=False)
    cs = _card_system(subject, _cs_name(subject))
    check = card_pb2.PinCheck(card_number=card.status.card_number, pin=WRONG_PIN)
    seen = [refused(lambda: cs.CheckPin(check, timeout=10), R.PIN_WRONG, node=subject.node.name)
            for _ in range(PIN_ATTEMPTS)]
    right = card_pb2.PinCheck(card_number=card.status.card_number, pin=PIN)
    seen.append(refused(lambda: cs.CheckPin(right, timeout=10), R.PIN_LOCKED, node=subject.node.name))
    status = _card_state(subject, card.code)
    same((True, "issued"), (status.pin_locked, status.state), "the card afterwards (locked, state)")
    return f"{PIN_ATTEMPTS} × PIN_WRONG, then {seen[-1]}"


@case("card/JPKI/revoked-with-the-card", roles=("card",), profiles=("rules", "security"), rules=(R.CARD_NOT_USABLE,),
      standard="公的個人認証法第24条 (失効)",
      request="SUSPEND at the counter of a card issued with a key; CheckUserCertificate as the centre, CheckPin as "
              "the CS; LIFT, CheckUserCertificate again",
      asserts="the certificate good before, revoked after the suspension and still revoked once it is lifted; "
              "CheckPin of the suspended card FAILED_PRECONDITION CARD_NOT_USABLE")
def revoked_with_the_card(subject) -> str:
    """A step that takes a card out of use revokes its 利用者証明用電子証明書, for good; a suspended card proves no one."""
    card = _new_card(subject)
    counter = _counter(subject)
    same(("good", subject.home()), _certificate_status(subject, card.serial), "the certificate as issued")
    counter("ChangeCard", card_pb2.CardRequest(action=card_pb2.SUSPEND, resident_code=card.code, reason="紛失"))
    same("revoked", _certificate_status(subject, card.serial)[0], "the certificate of the suspended card")
    cs = _card_system(subject, _cs_name(subject))
    observed = refused(lambda: cs.CheckPin(card_pb2.PinCheck(card_number=card.status.card_number, pin=PIN), timeout=10),
                       R.CARD_NOT_USABLE, node=subject.node.name)
    counter("ChangeCard", card_pb2.CardRequest(action=card_pb2.LIFT, resident_code=card.code, reason="発見"))
    same("revoked", _certificate_status(subject, card.serial)[0], "the certificate once the suspension is lifted")
    return f"good → revoked (suspended) → revoked (lifted); CheckPin of the suspended card: {observed}"


@case("card/lifecycle/own-residents", roles=("card",), profiles=("rules", "security"), rules=(R.CARD_OWN_RESIDENTS,),
      request="ChangeCard SUSPEND of a card of the subject's municipality, as another municipality's CS; and as the "
              "own CS stating another municipality",
      asserts="PERMISSION_DENIED CARD_OWN_RESIDENTS, both; the card still issued, its certificate still good")
def own_residents(subject) -> str:
    """A CS acts only on the cards of its own municipality's residents."""
    card, other = _holder(subject), _other_municipality(subject)
    theirs = _card_system(subject, _cs_name(subject, other))
    suspend = card_pb2.CardRequest(action=card_pb2.SUSPEND, resident_code=card.code, municipality_code=other,
                                   reason="紛失")
    seen = [refused(lambda: theirs.ChangeCard(suspend, timeout=10), R.CARD_OWN_RESIDENTS, node=subject.node.name)]
    ours = _card_system(subject, _cs_name(subject))
    seen.append(refused(lambda: ours.ChangeCard(suspend, timeout=10), R.CARD_OWN_RESIDENTS, node=subject.node.name))
    same("issued", _card_state(subject, card.code).state, "the card afterwards")
    same("good", _certificate_status(subject, card.serial)[0], "its certificate afterwards")
    return "; ".join(seen)


@case("card/lifecycle/state-transition", roles=("card",), profiles=("rules",), rules=(R.CARD_STATE_TRANSITION,),
      request="ChangeCard as the CS: LIFT and ISSUE of an issued card, SUSPEND of a person without a card",
      asserts="FAILED_PRECONDITION CARD_STATE_TRANSITION, each; the card still issued, its certificate still good, "
              "the other still without a card")
def state_transition(subject) -> str:
    """A card step starts only from a state the lifecycle allows it from."""
    card, home = _holder(subject), subject.home()
    cs = _card_system(subject, _cs_name(subject))
    steps = [card_pb2.CardRequest(action=card_pb2.LIFT, resident_code=card.code, municipality_code=home),
             card_pb2.CardRequest(action=card_pb2.ISSUE, resident_code=card.code, municipality_code=home, pin="1111")]
    seen = [refused(lambda: cs.ChangeCard(step, timeout=10), R.CARD_STATE_TRANSITION, node=subject.node.name)
            for step in steps]
    nobody = _invented_code()
    seen.append(refused(lambda: cs.ChangeCard(card_pb2.CardRequest(
        action=card_pb2.SUSPEND, resident_code=nobody, municipality_code=home), timeout=10),
        R.CARD_STATE_TRANSITION, node=subject.node.name))
    same("issued", _card_state(subject, card.code).state, "the card afterwards")
    same("good", _certificate_status(subject, card.serial)[0], "its certificate afterwards")
    same("none", _card_state(subject, nobody).state, f"the card of {nobody} afterwards")
    return "LIFT, ISSUE of an issued card; SUSPEND of none: " + seen[-1]


@case("card/JPKI/issue", roles=("card",), profiles=("rules",), standard="公的個人認証法第22条; 公的個人認証法第37条",
      request="ISSUE at the counter with the DER SubjectPublicKeyInfo of a P-256 key made on the card",
      asserts="the 利用者証明用電子証明書 of that key, signed by the JPKI CA, valid now, naming none of the holder's "
              "4情報, its serial the シリアル番号 answered; CheckUserCertificate good, of the holder's municipality")
def jpki_issue(subject) -> str:
    """The card system issues the card's 利用者証明用電子証明書 for the key made on the card, and vouches for it."""
    card = _holder(subject)
    if not card.der:
        raise Failed("a 利用者証明用電子証明書 with the issued card", "no certificate in the answer to ISSUE")
    try:
        cert = x509.load_der_x509_certificate(card.der)
    except ValueError:
        raise Failed("a DER X.509 certificate", f"{len(card.der)} bytes that are not one") from None
    ca = x509.load_pem_x509_certificate(subject.pki.jpki_ca_path().read_bytes())
    if not jpki.issued_by(cert, ca):
        raise Failed("a certificate the JPKI 利用者証明用 CA signed", f"one issued by {cert.issuer.rfc4514_string()}")
    same(card.key.public_key().public_numbers(), cert.public_key().public_numbers(), "the certificate's key")
    same(card.serial, str(cert.serial_number), "the シリアル番号 answered")
    same(True, jpki.within_validity(cert, dt.datetime.now(dt.timezone.utc)), "valid now")
    person = _counter(subject)("GetResident", common_pb2.ResidentKey(resident_code=card.code))
    named = cert.subject.rfc4514_string() + "".join(str(e.value) for e in cert.extensions)
    items = (person.name_kanji, person.name_kana, person.birth_date, person.address, card.code)
    four = [v for v in items if v and v in named]
    same([], four, "the holder's 4情報 (or 住民票コード) in the certificate")
    same(("good", subject.home()), _certificate_status(subject, card.serial), "the card system's revocation check")
    return f"シリアル番号 {card.serial[:12]}…: {cert.subject.rfc4514_string()}, JPKI CA, good, {subject.home()}"


@case("card/JPKI/key", roles=("card",), profiles=("rules", "security"), rules=(R.JPKI_KEY_ON_ISSUE, R.JPKI_KEY_FORMAT),
      request="ChangeCard as the CS of a card the batch made: REVOKE carrying a key; ISSUE with a P-384 key; ISSUE "
              "with bytes that are no key",
      asserts="INVALID_ARGUMENT JPKI_KEY_ON_ISSUE, then JPKI_KEY_FORMAT twice; the card still manufactured")
def jpki_key(subject) -> str:
    """A 利用者証明用 key is an EC P-256 key, given with ISSUE and no other step."""
    code, home = _manufactured(subject), subject.home()
    cs = _card_system(subject, _cs_name(subject))
    p256 = _spki(ec.generate_private_key(ec.SECP256R1()))
    seen = [refused(lambda: cs.ChangeCard(card_pb2.CardRequest(
        action=card_pb2.REVOKE, resident_code=code, municipality_code=home, reason="本人の申請", user_public_key=p256),
        timeout=10), R.JPKI_KEY_ON_ISSUE, node=subject.node.name)]
    for bad in (_spki(ec.generate_private_key(ec.SECP384R1())), b"\x30\x03not a key"):
        seen.append(refused(lambda: cs.ChangeCard(card_pb2.CardRequest(
            action=card_pb2.ISSUE, resident_code=code, municipality_code=home, pin=PIN, user_public_key=bad),
            timeout=10), R.JPKI_KEY_FORMAT, node=subject.node.name))
    same("manufactured", _card_state(subject, code).state, "the card afterwards")
    return "; ".join(s.split(":")[0] for s in seen)


@case("card/JPKI/serial-format", roles=("card",), profiles=("rules",), rules=(R.JPKI_SERIAL_FORMAT,),
      request="CheckUserCertificate as the centre of シリアル番号 '12a', 61 digits and ''; of a well-formed one never "
              "issued", asserts="INVALID_ARGUMENT JPKI_SERIAL_FORMAT, each; the well-formed one answered unknown")
def serial_format(subject) -> str:
    """A シリアル番号 is a decimal number of at most 60 digits."""
    centre = _card_system(subject, _node(subject, "centre").name)
    seen = [refused(lambda: centre.CheckUserCertificate(card_pb2.UserCertificateQuery(serial=serial), timeout=10),
                    R.JPKI_SERIAL_FORMAT, node=subject.node.name) for serial in ("12a", "1" * 61, "")]
    never = answered(lambda: centre.CheckUserCertificate(card_pb2.UserCertificateQuery(serial=_invented_serial()),
                                                         timeout=10))
    same("unknown", never.status, "the status of a シリアル番号 never issued")
    return f"{seen[0]}, ×3; a well-formed one: unknown"


# == 証明書交付センター ================================================================================================
def _begin(kiosk, der: bytes) -> centre_pb2.Challenge:
    return kiosk.BeginIssuance(centre_pb2.BeginRequest(user_certificate=der), timeout=10)


def _complete(kiosk, challenge_id: str, signature: bytes, municipality: str):
    return kiosk.CompleteIssuance(centre_pb2.CompleteRequest(
        challenge_id=challenge_id, signature=signature, municipality_code=municipality,
        kind=kizon_pb2.RESIDENT_COPY), timeout=30)


def _at_the_kiosk(kiosk, der: bytes, key: ec.EllipticCurvePrivateKey, municipality: str):
    """Begin → the card signs the nonce → Complete, as a kiosk does."""
    challenge = _begin(kiosk, der)
    return _complete(kiosk, challenge.challenge_id, _sign(key, challenge.nonce), municipality)


def _jpki_ca(subject):
    """The network's JPKI 利用者証明用 CA, able to sign (as a forger holding its key would be)."""
    try:
        return subject.pki.jpki_authority()
    except PassphraseError as exc:
        raise Skipped(f"{exc} (the case signs a certificate with the JPKI CA)") from None
    except (OSError, ValueError) as exc:
        raise Skipped(f"the JPKI CA's key cannot be read here ({type(exc).__name__}): the case signs with it") from None


def _in_hours(call):
    """call(), SKIPPED when コンビニ交付 is closed (its hours are kizon's rule, by the office's clock)."""
    try:
        return call()
    except grpc.RpcError as exc:
        if _rule_of(exc) == K.KIOSK_HOURS.reason:
            raise Skipped("outside the hours of コンビニ交付 (06:30–23:00, Japan time): run it within them") from None
        raise


def _history(subject, code: str) -> list[str]:
    """The issue numbers of a person's 交付履歴, as the counter reads it."""
    reply = _counter(subject)("GetIssuanceHistory", common_pb2.ResidentKey(resident_code=code))
    return sorted(r.issue_number for r in reply.records)


@case("centre/利用者証明/revoked", roles=("centre",), profiles=("rules", "security"),
      rules=(X.CENTRE_CERTIFICATE_REVOKED,),
      request="REVOKE (紛失) of a JPKI card at the counter, then Begin → the card's signature → Complete at a kiosk",
      asserts="PERMISSION_DENIED CENTRE_CERTIFICATE_REVOKED; nothing added to the holder's 交付履歴")
def centre_revoked(subject) -> str:
    """A 利用者証明用電子証明書 the card system revoked proves no one."""
    card = _new_card(subject)
    _counter(subject)("ChangeCard", card_pb2.CardRequest(action=card_pb2.REVOKE, resident_code=card.code, reason="紛失"))
    before = _history(subject, card.code)
    observed = refused(lambda: _at_the_kiosk(_kiosk(subject), card.der, card.key, subject.home()),
                       X.CENTRE_CERTIFICATE_REVOKED, node=subject.node.name)
    same(before, _history(subject, card.code), "the holder's 交付履歴")
    return observed


@case("centre/利用者証明/never-issued", roles=("centre",), profiles=("rules", "security"),
      rules=(X.CENTRE_CERTIFICATE_UNKNOWN,),
      request="Begin → signature → Complete with a certificate the JPKI CA signed (its key in a forger's hands) "
              "that the card system never issued",
      asserts="UNAUTHENTICATED CENTRE_CERTIFICATE_UNKNOWN")
def centre_never_issued(subject) -> str:
    """A 利用者証明用電子証明書 counts only when the card system issued it: the CA's signature alone is not enough."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = jpki.issue_user_certificate(_jpki_ca(subject), key.public_key(), dt.datetime.now(dt.timezone.utc))
    der = cert.public_bytes(serialization.Encoding.DER)
    return refused(lambda: _at_the_kiosk(_kiosk(subject), der, key, subject.home()), X.CENTRE_CERTIFICATE_UNKNOWN,
                   node=subject.node.name)


@case("centre/利用者証明/untrusted-ca", roles=("centre",), profiles=("rules", "security"),
      rules=(X.CENTRE_CERTIFICATE_UNTRUSTED,),
      request="BeginIssuance with a 利用者証明用電子証明書 a CA of the kiosk's own making signed (the JPKI CA's name)",
      asserts="UNAUTHENTICATED CENTRE_CERTIFICATE_UNTRUSTED, no challenge given")
def centre_untrusted(subject) -> str:
    """A 利用者証明用電子証明書 counts only when the JPKI 利用者証明用 CA signed it."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = jpki.issue_user_certificate(make_jpki_ca(), key.public_key(), dt.datetime.now(dt.timezone.utc))
    return refused(lambda: _begin(_kiosk(subject), cert.public_bytes(serialization.Encoding.DER)),
                   X.CENTRE_CERTIFICATE_UNTRUSTED, node=subject.node.name)


@case("centre/利用者証明/expired", roles=("centre",), profiles=("rules",), rules=(X.CENTRE_CERTIFICATE_EXPIRED,),
      request="BeginIssuance with a certificate the JPKI CA signed whose validity ended two days ago",
      asserts="UNAUTHENTICATED CENTRE_CERTIFICATE_EXPIRED, no challenge given")
def centre_expired(subject) -> str:
    """A 利用者証明用電子証明書 counts only within its validity, by the centre's clock."""
    key = ec.generate_private_key(ec.SECP256R1())
    long_ago = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=365 * jpki.USER_YEARS + 3)
    cert = jpki.issue_user_certificate(_jpki_ca(subject), key.public_key(), long_ago)
    return refused(lambda: _begin(_kiosk(subject), cert.public_bytes(serialization.Encoding.DER)),
                   X.CENTRE_CERTIFICATE_EXPIRED, node=subject.node.name)


@case("centre/challenge/spent", roles=("centre",), profiles=("rules", "security"),
      rules=(X.CENTRE_SIGNATURE, X.CENTRE_CHALLENGE_SPENT),
      request="CompleteIssuance with a signature over other bytes than the nonce, then with the card's right one",
      asserts="UNAUTHENTICATED CENTRE_SIGNATURE, then FAILED_PRECONDITION CENTRE_CHALLENGE_SPENT (a wrong answer "
              "spent the challenge)")
def challenge_spent(subject) -> str:
    """A challenge is answered once: right or wrong, an answer spends it."""
    card, kiosk = _holder(subject), _kiosk(subject)
    challenge = _begin(kiosk, card.der)
    wrong = refused(lambda: _complete(kiosk, challenge.challenge_id, _sign(card.key, b"not the nonce"), subject.home()),
                    X.CENTRE_SIGNATURE, node=subject.node.name)
    again = refused(lambda: _complete(kiosk, challenge.challenge_id, _sign(card.key, challenge.nonce), subject.home()),
                    X.CENTRE_CHALLENGE_SPENT, node=subject.node.name)
    return f"{wrong}; then {again}"


@case("centre/challenge/bound-to-kiosk", roles=("centre",), profiles=("rules", "security"),
      rules=(X.CENTRE_CHALLENGE_UNKNOWN,),
      request="the card's right answer to kiosk 1's challenge sent by kiosk 2; an answer to a challenge id never "
              "given; then kiosk 1's own answer",
      asserts="NOT_FOUND CENTRE_CHALLENGE_UNKNOWN, both; kiosk 1's answer is then judged (not spent by kiosk 2's try)")
def bound_to_kiosk(subject) -> str:
    """A signature answers a challenge the centre gave to the kiosk that answers."""
    card, first, second = _holder(subject), _kiosk(subject, 0), _kiosk(subject, 1)
    challenge = _begin(first, card.der)
    signature, other = _sign(card.key, challenge.nonce), _other_municipality(subject)
    seen = [refused(lambda: _complete(second, challenge.challenge_id, signature, other), X.CENTRE_CHALLENGE_UNKNOWN,
                    node=subject.node.name),
            refused(lambda: _complete(first, uuid.uuid4().hex, signature, other), X.CENTRE_CHALLENGE_UNKNOWN,
                    node=subject.node.name)]
    code, reason, details, _ = outcome(lambda: _complete(first, challenge.challenge_id, signature, other))
    if reason in (X.CENTRE_CHALLENGE_SPENT.reason, X.CENTRE_CHALLENGE_UNKNOWN.reason):
        raise Failed("kiosk 1's answer judged (its challenge unspent)", said(code, reason, details), reason)
    return f"{seen[0]}, ×2; kiosk 1's own answer: {said(code, reason)}"


@case("centre/コンビニ交付/municipality", roles=("centre",), profiles=("rules", "security"),
      rules=(X.CENTRE_MUNICIPALITY,),
      request="Begin → the card's signature → Complete asking another municipality than the holder's",
      asserts="PERMISSION_DENIED CENTRE_MUNICIPALITY; nothing added to the holder's 交付履歴")
def centre_municipality(subject) -> str:
    """The certificate is asked of the municipality the card system names for the holder."""
    card, other = _holder(subject), _other_municipality(subject)
    before = _history(subject, card.code)
    observed = refused(lambda: _at_the_kiosk(_kiosk(subject), card.der, card.key, other), X.CENTRE_MUNICIPALITY,
                       node=subject.node.name)
    same(before, _history(subject, card.code), "the holder's 交付履歴")
    return observed


@case("centre/コンビニ交付/resident-copy", roles=("centre",), profiles=("rules",),
      standard="住基法第12条の4 (コンビニ交付); 公的個人認証法第22条 (利用者証明)",
      request="Begin → the card's signature over the nonce → Complete for the holder's municipality, 住民票の写し",
      asserts="the holder's 住民票の写し (their name, an issue number), in their 交付履歴")
def resident_copy(subject) -> str:
    """A kiosk that proves the card's holder gets the holder's 住民票の写し from their municipality."""
    card, kiosk = _holder(subject), _kiosk(subject)
    deadline = time.monotonic() + ARRIVAL
    while True:  # (the シリアル番号 travels from kizon's outbox to the コンビニ交付システム: bounded)
        try:
            document = _in_hours(lambda: _at_the_kiosk(kiosk, card.der, card.key, subject.home()))
            break
        except grpc.RpcError as exc:
            reason = _rule_of(exc)
            if reason != V.CONBINI_SERIAL_UNKNOWN.reason or time.monotonic() > deadline:
                raise Failed("the holder's 住民票の写し", said(exc.code(), reason, exc.details() or ""), reason) from None
        time.sleep(0.2)
    person = _counter(subject)("GetResident", common_pb2.ResidentKey(resident_code=card.code))
    same(kizon_pb2.RESIDENT_COPY, document.kind, "the kind issued")
    if not document.issue_number or person.name_kanji not in document.text:
        raise Failed(f"a 住民票の写し of {person.name_kanji} with an issue number",
                     f"issue number {document.issue_number!r}, text {document.text[:80]!r}")
    if document.issue_number not in _history(subject, card.code):
        raise Failed(f"issue {document.issue_number} in the holder's 交付履歴", "not there")
    return f"住民票の写し {document.issue_number} of {person.name_kanji}"


# == コンビニ交付システム ==============================================================================================
def _as_centre(subject):
    """The コンビニ交付システム as the 証明書交付センター calls it."""
    return conbini_pb2_grpc.ConvenienceIssuanceStub(subject.as_node(_node(subject, "centre").name))


def _as_kizon(subject):
    """The コンビニ交付システム as its municipality's 既存住基 calls it (JPKI情報: シリアル番号 and holder)."""
    return conbini_pb2_grpc.ConvenienceIssuanceStub(subject.as_node(subject.kizon().name))


def _ask(serial: str) -> conbini_pb2.CentreIssueRequest:
    return conbini_pb2.CentreIssueRequest(serial=serial, kind=kizon_pb2.RESIDENT_COPY,
                                          challenge_id=uuid.uuid4().hex, kiosk="K0001")


@case("conbini/シリアル番号/unknown", roles=("conbini",), profiles=("rules", "security"),
      rules=(V.CONBINI_SERIAL_UNKNOWN,),
      request="IssueForCentre as the centre for a well-formed シリアル番号 kizon never registered",
      asserts="NOT_FOUND CONBINI_SERIAL_UNKNOWN")
def serial_unknown(subject) -> str:
    """A certificate is issued only for a シリアル番号 住基ネット passed on for a resident here."""
    centre = _as_centre(subject)
    return refused(lambda: centre.IssueForCentre(_ask(_invented_serial()), timeout=30), V.CONBINI_SERIAL_UNKNOWN,
                   node=subject.node.name)


@case("conbini/コンビニ交付/current-resident", roles=("conbini",), profiles=("rules", "security"),
      rules=(K.KIOSK_RESIDENT_ONLY,),
      request="RegisterUserSerials as kizon: a シリアル番号 for a current resident, one for a person who then died; "
              "IssueForCentre as the centre for each",
      asserts="the current resident's 住民票の写し; the dead holder's FAILED_PRECONDITION KIOSK_RESIDENT_ONLY")
def current_resident(subject) -> str:
    """A certificate comes from the municipality's register, for a current resident only."""
    living, dead = subject.person(), _resident(subject, "適合 死亡", "テキゴウ シボウ")
    _counter(subject)("Death", death(dead.resident_code))
    serials = {living.resident_code: _invented_serial(), dead.resident_code: _invented_serial()}
    answered(lambda: _as_kizon(subject).RegisterUserSerials(conbini_pb2.UserSerialBatch(items=[
        conbini_pb2.UserSerial(serial=s, resident_code=c) for c, s in serials.items()]), timeout=10))
    centre = _as_centre(subject)
    refused_dead = refused(lambda: _in_hours(lambda: centre.IssueForCentre(_ask(serials[dead.resident_code]),
                                                                           timeout=30)), K.KIOSK_RESIDENT_ONLY)
    document = answered(lambda: _in_hours(lambda: centre.IssueForCentre(_ask(serials[living.resident_code]),
                                                                        timeout=30)))
    if living.name_kanji not in document.text or not document.issue_number:
        raise Failed(f"the 住民票の写し of {living.name_kanji}", f"{document.issue_number!r}: {document.text[:80]!r}")
    return f"current: 住民票の写し {document.issue_number}; died: {refused_dead}"


@case("conbini/シリアル番号/format", roles=("conbini",), profiles=("rules",), rules=(V.CONBINI_SERIAL_FORMAT,),
      request="RegisterUserSerials as kizon of a well-formed シリアル番号 and one of '12x' in one batch; "
              "IssueForCentre as the centre for 61 digits, and for the well-formed one",
      asserts="INVALID_ARGUMENT CONBINI_SERIAL_FORMAT, both; the well-formed one of the refused batch not registered "
              "(NOT_FOUND CONBINI_SERIAL_UNKNOWN)")
def serial_format_conbini(subject) -> str:
    """A シリアル番号 is a decimal number of at most 60 digits; a batch with a bad one is refused whole."""
    good, code = _invented_serial(), subject.person().resident_code
    batch = conbini_pb2.UserSerialBatch(items=[conbini_pb2.UserSerial(serial=good, resident_code=code),
                                               conbini_pb2.UserSerial(serial="12x", resident_code=code)])
    kizon, centre = _as_kizon(subject), _as_centre(subject)
    seen = [refused(lambda: kizon.RegisterUserSerials(batch, timeout=10), V.CONBINI_SERIAL_FORMAT,
                    node=subject.node.name),
            refused(lambda: centre.IssueForCentre(_ask("1" * 61), timeout=30), V.CONBINI_SERIAL_FORMAT,
                    node=subject.node.name)]
    left = refused(lambda: centre.IssueForCentre(_ask(good), timeout=30), V.CONBINI_SERIAL_UNKNOWN,
                   node=subject.node.name)
    return f"{seen[0]}, ×2; the good one of the batch: {left.split(':')[0]}"
