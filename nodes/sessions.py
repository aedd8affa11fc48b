"""Operator sessions and approvals: short-lived tokens signed (Ed25519) with the municipality's session key.

An operator logs in at a terminal (the seed's biometric check stands in as a credential) and gets
a session bound to that terminal's certificate: every later terminal call carries it, and a
session replayed from another terminal is refused. A manager's approval for bulk output is a
token of the same kind. Only the municipality's kizon holds the private key and can issue tokens;
the nodes that check them (its CS, the 中間サーバ) hold the public key, so they cannot mint one.

The roster of operators is a token of the same kind too: kizon keeps it in its store and signs each version of it;
a session names the version it was issued under. Every node that admits the municipality's terminals reads the
newest signed roster it holds (its store's operator_rosters) on every terminal call, so a removed operator, or one
whose roles were reduced, is refused on their next call wherever the version has arrived (docs/operators.md).
"""
from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from nodes import audit
from nodes.reasons import access as A
from nodes.roles import CONTRACTOR, ROLE_METHODS, ROLES, STAFF_ROLES, methods_allowed  # noqa: F401 (said here too)
from nodes.refusal import Rule
from protos import kizon_pb2

SESSION_SECONDS = 8 * 3600  # one working day
APPROVAL_SECONDS = 3600
ROSTER_NEVER_EXPIRES = 2.0 ** 52  # a roster is replaced by a newer version, never by the clock

# The one set of roles an operator may hold (the topology's initial roster and every AddOperator draw from it).
class TokenError(Exception):
    """A token that is malformed, badly signed, expired or for someone else, and the rule it breaks."""

    def __init__(self, message: str, rule: Rule = A.SESSION_INVALID):
        super().__init__(message)
        self.rule = rule

READ_APPROVAL_KEY = "x-read-approval-token"  # metadata: a manager's standing approval spent by reads, record by record
CS_READ_APPROVAL_KEY = "x-cs-read-approval-token"  # … one spent by reads at the 市町村CS (an approval is spent at one door)
APPROVAL_DOORS = ("kizon", "cs")  # where an approval may be spent (its "at" claim)


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
    roster_version: int = 0  # the version of the roster the session was issued under


def issue_session(key: ed25519.Ed25519PrivateKey, operator: str, roles, municipality: str, terminal: str, fingerprint: str,
                  roster_version: int = 0) -> tuple[str, float]:
    """A session token bound to a terminal certificate, naming the roster version it was issued under; (token, expiry)."""
    exp = time.time() + SESSION_SECONDS
    token = sign(key, {"kind": "session", "op": operator, "roles": list(roles), "muni": municipality,
                       "term": terminal, "fp": fingerprint, "exp": exp, "rv": roster_version})
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
    return OperatorSession(payload["op"], tuple(payload["roles"]), terminal, municipality, int(payload.get("rv", 0)))


def issue_approval(key: ed25519.Ed25519PrivateKey, approval_id: str, approver: str, municipality: str, *,
                   requester: str = "", terminal: str = "", max_records: int = 0, at: str = "kizon") -> tuple[str, float]:
    """A manager's approval token naming one approval kept by kizon, the door it is spent at, and for whom, at which
    terminal and for how many records (what a node that cannot read kizon's record, the CS, binds and spends it
    by). Each door keeps its own account of what was spent: an approval spendable at two would be spent twice."""
    exp = time.time() + APPROVAL_SECONDS
    payload = {"kind": "approval", "id": approval_id, "approver": approver, "muni": municipality, "exp": exp, "at": at}
    if requester:
        payload.update(req=requester, term=terminal, max=int(max_records))
    return sign(key, payload), exp



# -- the roster ---------------------------------------------------------------------------------------------------
# Every node that admits a municipality's terminal sessions keeps the newest signed roster it holds here (kizon writes
# its own in the transaction of each change; the CS and the 中間サーバ what kizon sends them).
ROSTER_SCHEMA = """
CREATE TABLE IF NOT EXISTS operator_rosters (   -- the newest roster of each municipality, as its kizon signed it
    municipality TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    token TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class RosterEntry:
    """One operator of a roster: their roles, and the version from which their sessions count."""

    roles: frozenset[str]
    since: int = 0  # the version that added them or last took a role away: a session issued before it counts no more


@dataclass(frozen=True)
class Roster:
    """A municipality's operators at one version (0: the topology's, before any change)."""

    municipality: str
    version: int
    operators: dict[str, RosterEntry]


def sign_roster(key: ed25519.Ed25519PrivateKey, roster: Roster) -> str:
    """The roster as a token signed with the municipality's session key."""
    return sign(key, {"kind": "roster", "muni": roster.municipality, "ver": roster.version, "exp": ROSTER_NEVER_EXPIRES,
                      "ops": {op: [sorted(e.roles), e.since] for op, e in roster.operators.items()}})


def roster_of(key: ed25519.Ed25519PublicKey | None, token: str, municipality: str) -> Roster:
    """The roster a token proves for a municipality, or TokenError (ROSTER_UNVERIFIED)."""
    if key is None:
        raise TokenError(f"no session key of {municipality} to check its roster by", A.ROSTER_UNVERIFIED)
    try:
        payload = verify(key, token, "roster")
    except TokenError as exc:
        raise TokenError(f"the roster of {municipality} is not its own ({exc})", A.ROSTER_UNVERIFIED) from None
    if payload.get("muni") != municipality:
        raise TokenError(f"a roster of {payload.get('muni')!r} is not {municipality}'s", A.ROSTER_UNVERIFIED)
    return Roster(municipality, int(payload["ver"]),
                  {op: RosterEntry(frozenset(roles), int(since)) for op, (roles, since) in payload["ops"].items()})


class RosterBook:
    """The rosters this node holds (its store's operator_rosters), read on every terminal call: a version is checked
    against the municipality's key once, then kept; an older version written back later is not believed."""

    def __init__(self, store, keys: dict):
        self.store, self.keys = store, keys
        self._held: dict[str, Roster] = {}
        self._table: bool | None = None  # whether this node's store keeps rosters at all

    def current(self, municipality: str) -> Roster | None:
        """The newest signed roster of the municipality held here; None when none was ever received (the topology's
        stands); TokenError (ROSTER_UNVERIFIED) when what is stored is not the municipality's."""
        if self.store is None:
            return None
        if self._table is None:
            self._table = bool(self.store.scalar("SELECT 1 FROM sqlite_master WHERE type='table' AND "
                                                 "name='operator_rosters'"))
        if not self._table:
            return None
        row = self.store.one("SELECT version FROM operator_rosters WHERE municipality=?", (municipality,))
        held = self._held.get(municipality)
        if row is None or (held is not None and row[0] <= held.version):
            return held
        token = self.store.scalar("SELECT token FROM operator_rosters WHERE municipality=?", (municipality,))
        roster = roster_of(self.keys.get(municipality), token, municipality)
        if roster.version != row[0]:
            raise TokenError(f"the stored roster of {municipality} says version {row[0]}, its signature "
                             f"{roster.version}", A.ROSTER_UNVERIFIED)
        self._held[municipality] = roster
        return roster


class RosterReceiver:
    """The receiving end of kizon's roster at a node that admits a municipality's terminal sessions (the CS's and the
    中間サーバ's ReceiveOperatorRoster delegate to it): a roster is kept if it comes from its own municipality's kizon,
    is signed with the municipality's session key and is newer than the one held."""

    def __init__(self, store, keys: dict):
        self.store, self.keys = store, keys

    def receive(self, request: kizon_pb2.SignedRoster, sender_municipality: str) -> kizon_pb2.RosterAck:
        """Keep the roster if it is the sender's own, signed and newer; the version held now (ROSTER_SENDER)."""
        audit.set_subject(f"roster {request.municipality[:16]} v{request.version}")
        if request.municipality != sender_municipality:
            raise A.ROSTER_SENDER(f"roster rule: the kizon of {sender_municipality} sent the roster of "
                                  f"{request.municipality[:16]!r}")
        try:
            roster = roster_of(self.keys.get(request.municipality), request.token, request.municipality)
        except TokenError as exc:
            raise A.ROSTER_SENDER(f"roster rule: {exc}") from None
        if roster.version != request.version:
            raise A.ROSTER_SENDER(f"roster rule: the roster says version {request.version}, its signature "
                                  f"{roster.version}")
        with self.store.transaction() as db:
            db.execute("INSERT INTO operator_rosters(municipality, version, token) VALUES (?,?,?) "
                       "ON CONFLICT(municipality) DO UPDATE SET version=excluded.version, token=excluded.token "
                       "WHERE excluded.version > operator_rosters.version",
                       (roster.municipality, roster.version, request.token))
            held = db.execute("SELECT version FROM operator_rosters WHERE municipality=?",
                              (roster.municipality,)).fetchone()[0]
        return kizon_pb2.RosterAck(version=held)
