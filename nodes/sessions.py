"""Operator sessions and approvals: short-lived tokens signed (Ed25519) with the municipality's session key.

An operator logs in at a terminal (the seed's biometric check stands in as a credential) and gets
a session bound to that terminal's certificate: every later terminal call carries it, and a
session replayed from another terminal is refused. A manager's approval for bulk output is a
token of the same kind. Only the municipality's kizon holds the private key and can issue tokens;
the nodes that check them (its CS, the 中間サーバ) hold the public key, so they cannot mint one.
"""
from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from nodes.reasons import access as A
from nodes.refusal import Rule

SESSION_SECONDS = 8 * 3600  # one working day
APPROVAL_SECONDS = 3600


class TokenError(Exception):
    """A token that is malformed, badly signed, expired or for someone else, and the rule it breaks."""

    def __init__(self, message: str, rule: Rule = A.SESSION_INVALID):
        super().__init__(message)
        self.rule = rule

READ_APPROVAL_KEY = "x-read-approval-token"  # metadata: a manager's standing approval spent by reads, record by record


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(key: ed25519.Ed25519PrivateKey, payload: dict) -> str:
    """A token: the payload and its Ed25519 signature."""
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    return body + "." + _b64(key.sign(body.encode()))


def verify(key: ed25519.Ed25519PublicKey, token: str, kind: str) -> dict:
    """The payload of a valid, unexpired token of kind, or TokenError."""
    try:
        body, signature = token.split(".")
        try:
            key.verify(_unb64(signature), body.encode())
        except InvalidSignature:
            raise TokenError("signature does not match") from None
        payload = json.loads(_unb64(body))
    except (ValueError, json.JSONDecodeError) as exc:
        raise TokenError(f"malformed token ({exc})") from None
    if payload.get("kind") != kind:
        raise TokenError(f"not a {kind} token")
    if payload.get("exp", 0) < time.time():
        raise TokenError("expired")
    return payload


@dataclass(frozen=True)
class OperatorSession:
    """Who is at the terminal: operator id and roles, for one terminal certificate."""

    operator: str
    roles: tuple[str, ...]
    terminal: str
    municipality: str


def issue_session(key: ed25519.Ed25519PrivateKey, operator: str, roles, municipality: str, terminal: str, fingerprint: str) -> tuple[str, float]:
    """A session token bound to a terminal certificate; (token, expiry time)."""
    exp = time.time() + SESSION_SECONDS
    token = sign(key, {"kind": "session", "op": operator, "roles": list(roles), "muni": municipality,
                       "term": terminal, "fp": fingerprint, "exp": exp})
    return token, exp


_checked: dict[str, dict] = {}  # token → payload of a session already verified (checked again only for expiry)


def check_session(key: ed25519.Ed25519PublicKey, token: str, municipality: str, terminal: str, fingerprint: str) -> OperatorSession:
    """The session a token proves for this terminal certificate, or TokenError."""
    payload = _checked.get(token)
    if payload is None or payload["exp"] < time.time():
        payload = verify(key, token, "session")
        if len(_checked) > 10_000:
            _checked.clear()
        _checked[token] = payload
    if payload["muni"] != municipality:
        raise TokenError(f"a session of {payload['muni']} is not valid in {municipality}")
    if payload["term"] != terminal or payload["fp"] != fingerprint:
        raise TokenError(f"the session was issued to terminal {payload['term']}, not to this terminal's certificate",
                         A.SESSION_OTHER_TERMINAL)
    return OperatorSession(payload["op"], tuple(payload["roles"]), terminal, municipality)


def issue_approval(key: ed25519.Ed25519PrivateKey, approval_id: str, approver: str, municipality: str) -> tuple[str, float]:
    """A manager's approval token naming one approval kept by kizon (which binds and spends it)."""
    exp = time.time() + APPROVAL_SECONDS
    return sign(key, {"kind": "approval", "id": approval_id, "approver": approver, "muni": municipality, "exp": exp}), exp

