"""Operator sessions and approvals: short-lived tokens signed with the municipality's session key.

An operator logs in at a terminal (the seed's biometric check stands in as a credential) and gets
a session bound to that terminal's certificate: every later terminal call carries it, and a
session replayed from another terminal is refused. A manager's approval for bulk output is a
token of the same kind.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass

SESSION_SECONDS = 8 * 3600  # one working day
APPROVAL_SECONDS = 3600


class TokenError(Exception):
    """A token that is malformed, badly signed, expired or for someone else."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(key: bytes, payload: dict) -> str:
    """A token: the payload and its HMAC-SHA256 under key."""
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    return body + "." + _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())


def verify(key: bytes, token: str, kind: str) -> dict:
    """The payload of a valid, unexpired token of kind, or TokenError."""
    try:
        body, mac = token.split(".")
        expected = hmac.new(key, body.encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, _unb64(mac)):
            raise TokenError("signature does not match")
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


def issue_session(key: bytes, operator: str, roles, municipality: str, terminal: str, fingerprint: str) -> tuple[str, float]:
    """A session token bound to a terminal certificate; (token, expiry time)."""
    exp = time.time() + SESSION_SECONDS
    token = sign(key, {"kind": "session", "op": operator, "roles": list(roles), "muni": municipality,
                       "term": terminal, "fp": fingerprint, "exp": exp})
    return token, exp


_checked: dict[str, dict] = {}  # token → payload of a session already verified (checked again only for expiry)


def check_session(key: bytes, token: str, municipality: str, terminal: str, fingerprint: str) -> OperatorSession:
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
        raise TokenError(f"the session was issued to terminal {payload['term']}, not to this terminal's certificate")
    return OperatorSession(payload["op"], tuple(payload["roles"]), terminal, municipality)


def issue_approval(key: bytes, approval_id: str, approver: str, municipality: str) -> tuple[str, float]:
    """A manager's approval token naming one approval kept by kizon (which binds and spends it)."""
    exp = time.time() + APPROVAL_SECONDS
    return sign(key, {"kind": "approval", "id": approval_id, "approver": approver, "muni": municipality, "exp": exp}), exp
