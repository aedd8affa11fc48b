"""公的個人認証 (JPKI) as the testbed models it: the 利用者証明用電子証明書 the card system issues for a key made on the
card, and the checks a relying party (the 証明書交付センター) makes of one. The CA is certs/pki.py's JPKI CA, a root of
its own: no card certificate is ever an mTLS identity, and no node certificate a card's."""
from __future__ import annotations

import datetime as dt
import re

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from certs.pki import Authority

USER_SUBJECT = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "JPKI-User")])  # no 4情報 in a 利用者証明用
USER_YEARS = 5  # its validity (the real one runs to the holder's 5th birthday after issue: not modelled)
MAX_KEY_BYTES = 200  # a DER SubjectPublicKeyInfo of P-256 is 91 bytes
MAX_CERTIFICATE_BYTES = 4096
SERIAL = re.compile(r"[0-9]{1,60}")


class Unfit(ValueError):
    """What was presented is not a key or a certificate of the kind JPKI uses."""


def user_key(der: bytes) -> ec.EllipticCurvePublicKey:
    """The card's key from its DER SubjectPublicKeyInfo: an EC P-256 public key, else Unfit."""
    if not der or len(der) > MAX_KEY_BYTES:
        raise Unfit("not a DER SubjectPublicKeyInfo of a P-256 key")
    try:
        key = serialization.load_der_public_key(der)
    except (ValueError, TypeError):
        raise Unfit("not a DER SubjectPublicKeyInfo") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise Unfit("not an EC P-256 key")
    return key


def issue_user_certificate(ca: Authority, key: ec.EllipticCurvePublicKey, now: dt.datetime) -> x509.Certificate:
    """A 利用者証明用電子証明書 for a card's key, with a random serial (the シリアル番号 住基ネット passes on)."""
    return (x509.CertificateBuilder()
            .subject_name(USER_SUBJECT)
            .issuer_name(ca.cert.subject)
            .public_key(key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=365 * USER_YEARS + 1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
            .sign(ca.key, hashes.SHA256()))


def user_certificate(der: bytes) -> x509.Certificate:
    """A presented 利用者証明用電子証明書 (DER) with an EC P-256 key, else Unfit."""
    if not der or len(der) > MAX_CERTIFICATE_BYTES:
        raise Unfit("not one DER certificate of a sensible size")
    try:
        cert = x509.load_der_x509_certificate(der)
        key = cert.public_key()
    except (ValueError, TypeError):
        raise Unfit("not a DER X.509 certificate") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise Unfit("its key is not EC P-256")
    return cert


def issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    """Whether the JPKI CA signed this certificate (its name and its signature both)."""
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def within_validity(cert: x509.Certificate, now: dt.datetime) -> bool:
    """Whether now is within the certificate's validity."""
    return cert.not_valid_before_utc <= now <= cert.not_valid_after_utc


def signed(cert: x509.Certificate, signature: bytes, data: bytes) -> bool:
    """Whether signature is the certificate key's ECDSA-SHA256 signature over data."""
    if not signature or len(signature) > 80:  # (a DER P-256 signature is at most 72 bytes)
        return False
    try:
        cert.public_key().verify(signature, data, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True
