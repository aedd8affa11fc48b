"""Who is calling: the peer certificate's identity, its issuing CA and its revocation status.

TLS has already checked the chain to the testbed root, the validity dates and the key. What
grpcio cannot do, this does: take the identity from the URI SAN, check that the certificate was
issued by the CA of the identity's own trust domain, that it allows client authentication, and
that its serial is not on that CA's CRL (re-read whenever the CRL file changes).
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from certs.identity import DOMAINS, Identity, IdentityError, parse
from nodes import clock
from nodes.weaken import weakened
from nodes.reasons import access as A
from nodes.refusal import Rule

log = logging.getLogger(__name__)

PEER_CACHE_SIZE = 4096
MIN_RSA_BITS = 2048
MIN_EC_BITS = 256


class AuthenticationError(Exception):
    """The peer certificate is not acceptable as proof of the identity it claims, and the rule that says so."""

    def __init__(self, rule: Rule, message: str):
        super().__init__(message)
        self.rule = rule


@dataclass(frozen=True)
class Peer:
    """An authenticated caller: identity, certificate serial and issuing domain."""

    identity: Identity
    serial: int
    fingerprint: str  # SHA-256 of the certificate: what operator sessions are bound to
    target: bool = False  # a migration target not yet cut over to: admitted read-only (移行 rule)


class _Crl:
    """One CA's CRL, re-read when its file changes. Fails closed when it is unreadable, badly signed,
    past its nextUpdate, or older (by CRL number) than one seen before: a CRL copied back from an
    earlier day must not re-admit what was revoked since."""

    def __init__(self, path: Path, ca_cert: x509.Certificate, seen: "_SeenNumbers", domain: str):
        self.path = path
        self.ca_cert = ca_cert
        self.seen, self.domain = seen, domain
        self.stamp: tuple[int, int] | None = None
        self.serials: frozenset[int] | None = None
        self.next_update: dt.datetime | None = None
        self.problem = "not read yet"

    def revoked(self, serial: int) -> bool:
        if weakened("crl"):
            return False
        try:
            st = os.stat(self.path)
            stamp = (st.st_mtime_ns, st.st_ino, st.st_size)
        except OSError:
            stamp = None
        if stamp != self.stamp:
            self.stamp = stamp
            self.serials, self.next_update, self.problem = self._load()
            if self.serials is None:
                log.error("CRL %s refused, failing closed: %s", self.path, self.problem)
        if self.serials is not None and self.next_update is not None and _utcnow() > self.next_update:
            self.serials, self.problem = None, f"stale: its nextUpdate {self.next_update:%Y-%m-%d %H:%M} UTC has passed"
            log.error("CRL %s refused, failing closed: %s", self.path, self.problem)
        if self.serials is None:
            raise AuthenticationError(A.REVOCATION_UNKNOWN, f"revocation status unknown: the {self.domain} CRL is {self.problem}")
        return serial in self.serials

    def _load(self):
        try:
            crl = x509.load_pem_x509_crl(self.path.read_bytes())
        except (OSError, ValueError):
            return None, None, "missing or unreadable"
        if crl.issuer != self.ca_cert.subject or not crl.is_signature_valid(self.ca_cert.public_key()):
            return None, None, "not signed by its CA"
        if crl.next_update_utc is None:
            return None, None, "without a nextUpdate"
        try:
            number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
        except x509.ExtensionNotFound:
            return None, None, "without a CRL number"
        last = self.seen.get(self.domain)
        if number < last:
            return None, None, f"rolled back: CRL number {number} is older than {last}, seen before"
        self.seen.put(self.domain, number)
        return frozenset(r.serial_number for r in crl), crl.next_update_utc, ""


class _SeenNumbers:
    """The highest CRL number seen per domain, kept in a file of the node's own so that a restart does not
    forget it."""

    def __init__(self, path: Path | None):
        self.path = path
        self.numbers: dict[str, int] = {}
        if path is not None and path.exists():
            try:
                self.numbers = {k: int(v) for k, v in json.loads(path.read_text()).items()}
            except (ValueError, OSError, AttributeError):
                log.error("CRL numbers in %s unreadable: starting from none", path)

    def get(self, domain: str) -> int:
        return self.numbers.get(domain, 0)

    def put(self, domain: str, number: int) -> None:
        if self.numbers.get(domain) == number:
            return
        self.numbers[domain] = number
        if self.path is not None:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.numbers))
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)


class Authenticator:
    """Turns a peer certificate into a Peer, or raises AuthenticationError naming the rule."""

    def __init__(self, pki_dir: str | Path, roster: frozenset[str] | None = None, crl_numbers: Path | None = None,
                 targets: frozenset[str] = frozenset()):
        pki_dir = Path(pki_dir)
        self.roster = roster  # the identities the topology names (None: any well-formed one, for tools)
        self.targets = targets  # the migration targets it names (admitted read-only until cut over)
        self.cas: dict[str, x509.Certificate] = {}
        self.crls: dict[str, _Crl] = {}
        seen = _SeenNumbers(crl_numbers)
        for domain in DOMAINS:
            ca = x509.load_pem_x509_certificate((pki_dir / "ca" / domain / "ca.pem").read_bytes())
            self.cas[domain] = ca
            self.crls[domain] = _Crl(pki_dir / "ca" / domain / "crl.pem", ca, seen, domain)
        self._cache: dict[bytes, Peer | AuthenticationError] = {}

    def set_roster(self, roster: frozenset[str], targets: frozenset[str] = frozenset()) -> None:
        """Admit from now on whom a new topology names (a cut over); what was decided before is forgotten."""
        self.roster, self.targets = roster, targets
        self._cache.clear()

    def authenticate(self, pem: bytes | None) -> Peer:
        """Check a peer certificate (PEM from the TLS session) and return who it is."""
        if not pem:
            raise AuthenticationError(A.CERTIFICATE_REQUIRED, "mutual TLS: no client certificate was presented")
        peer = self._cache.get(pem)
        if peer is None:
            peer = self._inspect(pem)
            if len(self._cache) >= PEER_CACHE_SIZE:
                self._cache.clear()
            self._cache[pem] = peer
        if isinstance(peer, AuthenticationError):
            raise peer
        if self.crls[peer.identity.domain].revoked(peer.serial):
            raise AuthenticationError(
                A.CERTIFICATE_REVOKED, f"revocation: certificate serial {peer.serial} of {peer.identity.uri} is on the "
                f"{peer.identity.domain} CA's CRL"
            )
        return peer

    def _inspect(self, pem: bytes) -> Peer | AuthenticationError:
        """The static checks of a certificate, done once per certificate."""
        cert = x509.load_pem_x509_certificate(pem)
        try:
            sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            uris = sans.get_values_for_type(x509.UniformResourceIdentifier)
        except x509.ExtensionNotFound:
            uris = []
        if len(uris) != 1:
            return AuthenticationError(A.CERTIFICATE_IDENTITY, "identity: a client certificate must carry exactly one URI SAN")
        try:
            identity = parse(uris[0])
        except IdentityError as exc:
            return AuthenticationError(A.CERTIFICATE_IDENTITY, f"identity: {exc}")
        try:
            usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            usages = []
        if ExtendedKeyUsageOID.CLIENT_AUTH not in usages:
            return AuthenticationError(A.CERTIFICATE_KEY_USAGE, f"key usage: the certificate of {identity.uri} does not allow clientAuth")
        ca = self.cas[identity.domain]
        if cert.issuer != ca.subject or not _signed_by(cert, ca):
            return AuthenticationError(
                A.CERTIFICATE_ISSUER, f"trust-domain separation: {identity.uri} belongs to the {identity.domain} domain but its "
                f"certificate was not issued by the {identity.domain} CA"
            )
        weak = weak_key(cert)
        if weak:
            return AuthenticationError(A.CERTIFICATE_KEY_SIZE, f"key size rule: the certificate of {identity.uri} has {weak}")
        target = identity.uri in self.targets
        if identity.kit is None and self.roster is not None and identity.uri not in self.roster and not target \
                and not weakened("topology-identity"):
            return AuthenticationError(A.CERTIFICATE_NOT_IN_TOPOLOGY, f"identity rule: {identity.uri} is not named in the topology")
        return Peer(identity, cert.serial_number, cert.fingerprint(hashes.SHA256()).hex(), target)


def weak_key(cert: x509.Certificate) -> str:
    """What is too weak about a certificate's key ("" when nothing): RSA under 2048 bits, EC under 256."""
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        return f"an RSA key of {key.key_size} bits (at least {MIN_RSA_BITS})"
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.key_size < MIN_EC_BITS:
        return f"an EC key of {key.curve.key_size} bits (at least {MIN_EC_BITS})"
    if not isinstance(key, (rsa.RSAPublicKey, ec.EllipticCurvePublicKey, ed25519.Ed25519PublicKey)):
        return f"a key of a kind the testbed does not accept ({type(key).__name__})"
    return ""


def _utcnow() -> dt.datetime:
    return clock.now()


def _signed_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
        return True
    except (ValueError, TypeError, InvalidSignature):
        return False
