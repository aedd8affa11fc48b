"""Who is calling: the peer certificate's identity, its issuing CA and its revocation status.

TLS has already checked the chain to the testbed root, the validity dates and the key. What
grpcio cannot do, this does: take the identity from the URI SAN, check that the certificate was
issued by the CA of the identity's own trust domain, that it allows client authentication, and
that its serial is not on that CA's CRL (re-read whenever the CRL file changes).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID

from certs.identity import DOMAINS, Identity, IdentityError, parse

PEER_CACHE_SIZE = 4096


class AuthenticationError(Exception):
    """The peer certificate is not acceptable as proof of the identity it claims."""


@dataclass(frozen=True)
class Peer:
    """An authenticated caller: identity, certificate serial and issuing domain."""

    identity: Identity
    serial: int
    fingerprint: str  # SHA-256 of the certificate: what operator sessions are bound to


class _Crl:
    """One CA's CRL, re-read when its file changes; fails closed if unreadable or badly signed."""

    def __init__(self, path: Path, ca_cert: x509.Certificate):
        self.path = path
        self.ca_cert = ca_cert
        self.stamp: tuple[int, int] | None = None
        self.serials: frozenset[int] | None = None

    def revoked(self, serial: int) -> bool:
        try:
            st = os.stat(self.path)
            stamp = (st.st_mtime_ns, st.st_ino)
        except OSError:
            stamp = None
        if stamp != self.stamp:
            self.stamp, self.serials = stamp, self._load()
        if self.serials is None:
            raise AuthenticationError(f"revocation status unknown: CRL {self.path} is missing or invalid")
        return serial in self.serials

    def _load(self) -> frozenset[int] | None:
        try:
            crl = x509.load_pem_x509_crl(self.path.read_bytes())
        except (OSError, ValueError):
            return None
        if crl.issuer != self.ca_cert.subject or not crl.is_signature_valid(self.ca_cert.public_key()):
            return None
        return frozenset(r.serial_number for r in crl)


class Authenticator:
    """Turns a peer certificate into a Peer, or raises AuthenticationError naming the rule."""

    def __init__(self, pki_dir: str | Path):
        pki_dir = Path(pki_dir)
        self.cas: dict[str, x509.Certificate] = {}
        self.crls: dict[str, _Crl] = {}
        for domain in DOMAINS:
            ca = x509.load_pem_x509_certificate((pki_dir / "ca" / domain / "ca.pem").read_bytes())
            self.cas[domain] = ca
            self.crls[domain] = _Crl(pki_dir / "ca" / domain / "crl.pem", ca)
        self._cache: dict[bytes, Peer | AuthenticationError] = {}

    def authenticate(self, pem: bytes | None) -> Peer:
        """Check a peer certificate (PEM from the TLS session) and return who it is."""
        if not pem:
            raise AuthenticationError("mutual TLS: no client certificate was presented")
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
                f"revocation: certificate serial {peer.serial} of {peer.identity.uri} is on the "
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
            return AuthenticationError("identity: a client certificate must carry exactly one URI SAN")
        try:
            identity = parse(uris[0])
        except IdentityError as exc:
            return AuthenticationError(f"identity: {exc}")
        try:
            usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            usages = []
        if ExtendedKeyUsageOID.CLIENT_AUTH not in usages:
            return AuthenticationError(f"key usage: the certificate of {identity.uri} does not allow clientAuth")
        ca = self.cas[identity.domain]
        if cert.issuer != ca.subject or not _signed_by(cert, ca):
            return AuthenticationError(
                f"trust-domain separation: {identity.uri} belongs to the {identity.domain} domain but its "
                f"certificate was not issued by the {identity.domain} CA"
            )
        return Peer(identity, cert.serial_number, cert.fingerprint(hashes.SHA256()).hex())


def _signed_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
        return True
    except (ValueError, TypeError, InvalidSignature):
        return False
