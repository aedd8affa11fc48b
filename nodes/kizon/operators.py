"""Operators at the counter: login at a terminal, a manager's approval of bulk output (counted in disclosure.py), and
the roster of operators (操作者の名簿), which is kizon's own: seeded from the topology on first start, then added to,
changed and removed from by a manager, each change audited with its reason (PIA 2464–2471: 委託作業者の名簿,
アカウント管理). Each version of the roster is signed with the municipality's session key and sent to the other nodes
that admit this municipality's terminal sessions, until each has acknowledged it (docs/operators.md)."""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import re
import time
import uuid

import grpc

from certs.pki import credential_matches, credential_verifier, write_private
from nodes import audit, rules
from nodes.reasons import access as A
from nodes.reasons import kizon as K
from nodes.guard import current_call
from nodes.sessions import (APPROVAL_DOORS, CONTRACTOR, ROLES, Roster, RosterEntry, issue_approval, issue_session,
                            sign_roster)
from protos import cs_pb2, cs_pb2_grpc, intermediate_pb2, intermediate_pb2_grpc, kizon_pb2, koseki_pb2, koseki_pb2_grpc

log = logging.getLogger("nodes.kizon")  # one logger name for the whole node

OPERATOR_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")
MANAGER = "manager"
PUSH_SECONDS = 2.0  # how long a roster change waits for the other nodes' acknowledgement before it answers
RETRY_SECONDS = (0.2, 0.5, 1.0, 2.0, 5.0)
RECEIVE = "ReceiveOperatorRoster"  # the method by which the CS and the 中間サーバ take a signed roster
SUBJECT_REASON = 120  # characters of a change's reason kept in its audit subject


class Operators:
    """操作者認証, bulk-output approvals and the roster: the municipality's session signing key, its operators'
    credential verifiers (this node's secrets, 0600) and the roster in the store."""

    def __init__(self, runtime, municipality: str):
        self.rt = runtime
        self.municipality = municipality
        # The municipality's session signing key and its operators' credential verifiers: this node's alone.
        self.session_signer = runtime.pki.node_session_key(runtime.node.name, municipality)
        runtime.session_keys[municipality] = self.session_signer.public_key()  # (what the guard verifies sessions by)
        self.verifiers = runtime.pki.operator_verifiers(runtime.node.name, municipality, create=True)
        # (the file certs/pki.py operator_verifiers reads: kept beside the node's other secrets, mode 0600)
        self.verifiers_path = runtime.pki.dir / "nodes" / runtime.node.name / "operators.json"
        self._seed()
        self.receivers = self._receivers()
        self._wake = asyncio.Event()
        runtime.background(self.deliver)

    # -- operators ------------------------------------------------------------------------------
    def login(self, request):
        """操作者認証 at a terminal: a session bound to this terminal's certificate, under the current roster."""
        call = current_call()
        audit.set_subject(request.operator_id)
        if not call.is_terminal:
            raise K.LOGIN_AT_TERMINAL("login rule: operators log in at a terminal")
        roster = self.roster()
        entry = roster.operators.get(request.operator_id)
        verifier = self.verifiers.get(request.operator_id)
        if entry is None or verifier is None or not credential_matches(verifier, request.credential):
            raise K.OPERATOR_AUTHENTICATION(f"operator rule: authentication failed for {request.operator_id!r}")
        call.operator = request.operator_id  # audited under the operator the credential proved
        roles = sorted(entry.roles)
        token, expires = issue_session(self.session_signer, request.operator_id, roles, self.municipality,
                                       call.terminal, call.peer.fingerprint, roster.version)
        return kizon_pb2.Session(token=token, operator_id=request.operator_id, roles=roles,
                                 expires_at=dt.datetime.fromtimestamp(expires, dt.timezone.utc).isoformat())

    def approve_bulk_output(self, request):
        """A manager's prior approval of one bulk output (PIA Ⅲ(2)3 その他): for one operator at one terminal,
        for one purpose, up to a count; good once, for an hour."""
        call = current_call()
        session = call.session
        audit.set_subject(f"approval for {request.requester_operator_id or '?'} at {request.terminal_id or '?'}: "
                          f"{request.max_records} records")
        if session is None or MANAGER not in session.roles:
            raise A.OPERATOR_ROLE("bulk output rule (PIA Ⅲ(2)3): only a manager approves bulk output")
        rules.require_text(request.purpose, "目的")
        if request.max_records == 0:
            raise K.BULK_OUTPUT_APPROVAL_REQUEST("bulk output rule: max_records must be at least 1")
        place = self.rt.topology.municipality(self.municipality)
        if request.requester_operator_id not in self.roster().operators:
            raise K.BULK_OUTPUT_APPROVAL_REQUEST(f"bulk output rule: {request.requester_operator_id!r} is not an operator of "
                                                 f"{self.municipality}")
        if request.terminal_id not in place.terminals:
            raise K.BULK_OUTPUT_APPROVAL_REQUEST(f"bulk output rule: {request.terminal_id!r} is not a terminal of {self.municipality}")
        if request.requester_operator_id == session.operator:
            raise K.BULK_OUTPUT_SELF_APPROVAL("bulk output rule (PIA Ⅲ(2)3): an operator may not approve their own output")
        door = request.spent_at or "kizon"
        if door not in APPROVAL_DOORS:
            raise K.BULK_OUTPUT_APPROVAL_REQUEST(f"bulk output rule: spent_at is one of {', '.join(APPROVAL_DOORS)}, "
                                                 f"not {request.spent_at[:16]!r}")
        approval_id = uuid.uuid4().hex[:16]
        token, expires = issue_approval(self.session_signer, approval_id, session.operator, self.municipality,
                                        requester=request.requester_operator_id, terminal=request.terminal_id,
                                        max_records=request.max_records, at=door)
        with self.rt.store.transaction() as db:
            db.execute("INSERT INTO approvals(id, approver, requester, terminal, purpose, max_records, expires_at) "
                       "VALUES (?,?,?,?,?,?,?)",
                       (approval_id, session.operator, request.requester_operator_id, request.terminal_id,
                        request.purpose, request.max_records, expires))
        audit.set_subject(f"approval {approval_id} by {session.operator} for {request.requester_operator_id} at "
                          f"{request.terminal_id}: {request.max_records} records, {request.purpose}")
        return kizon_pb2.BulkApproval(token=token, approval_id=approval_id,
                                      expires_at=dt.datetime.fromtimestamp(expires, dt.timezone.utc).isoformat())

    # -- the roster -----------------------------------------------------------------------------
    def roster(self, db=None) -> Roster:
        """The current roster, from the store (inside a transaction when db is given)."""
        db = db or self.rt.store.db
        version = db.execute("SELECT version FROM operator_rosters WHERE municipality=?", (self.municipality,)).fetchone()
        rows = db.execute("SELECT id, roles, since FROM operators WHERE removed_at IS NULL").fetchall()
        return Roster(self.municipality, version[0] if version else 0,
                      {op: RosterEntry(frozenset(_roles(roles)), since) for op, roles, since in rows})

    def list_operators(self, request):
        """The roster as a manager reads it (名簿): every current operator, their roles and whom they work for."""
        self._manager("the roster")
        audit.set_subject(f"roster of {self.municipality}")
        version = self.roster().version
        rows = self.rt.store.db.execute("SELECT id, roles, contractor, subcontractor, permission FROM operators "
                                        "WHERE removed_at IS NULL ORDER BY id").fetchall()
        return kizon_pb2.OperatorRoster(version=version, operators=[kizon_pb2.OperatorEntry(
            operator_id=op, roles=_roles(roles), contractor=c, subcontractor=s, permission=p)
            for op, roles, c, s, p in rows])

    async def add_operator(self, request):
        """A manager adds an operator: a new id (never shared, never reused), roles of the set, and for a 委託先's
        operator their 委託先 (and 再委託先 with its recorded permission). The credential is in the reply, once."""
        entry = request.entry
        manager = self._manager("an addition to the roster")
        audit.set_subject(f"add {entry.operator_id[:32]}")
        rules.require_text(request.reason, "理由")
        if not OPERATOR_ID.fullmatch(entry.operator_id):
            raise K.OPERATOR_ID_FORMAT(f"roster rule: {entry.operator_id[:40]!r} is not an operator id")
        roles = _given_roles(entry.roles)
        credential = os.urandom(16).hex()
        with self.rt.store.transaction() as db:
            if db.execute("SELECT 1 FROM operators WHERE id=?", (entry.operator_id,)).fetchone():
                raise K.OPERATOR_ID_TAKEN(f"roster rule (no shared ids): {entry.operator_id} is or was an operator's id; "
                                          "a new operator gets an id of their own")
            _check_contract(db, entry, roles)
            version = self._next_version(db)
            db.execute("INSERT INTO operators(id, roles, contractor, subcontractor, permission, since, added_by, added_at) "
                       "VALUES (?,?,?,?,?,?,?,?)", (entry.operator_id, ",".join(roles), entry.contractor,
                                                     entry.subcontractor, entry.permission, version, manager, time.time()))
            # The verifier first, inside the transaction: a failed write adds no one; a crash after it leaves a
            # verifier of no operator of the roster, which no login passes (login reads the roster).
            self._save_verifier(entry.operator_id, roles, credential_verifier(credential))
            self._publish(db, version)
        who = f" of {entry.contractor}" + (f" / {entry.subcontractor} ({entry.permission})" if entry.subcontractor else "")
        audit.set_subject(f"roster v{version}: {manager} added {entry.operator_id} [{','.join(roles)}]"
                          f"{who if entry.contractor else ''}: {request.reason[:SUBJECT_REASON]}")
        return await self._answer(version, credential=credential)

    async def change_roles(self, request):
        """A manager changes another operator's roles; a session issued before a role was taken away counts no more."""
        entry = request.entry
        manager = self._manager("a change of roles")
        audit.set_subject(f"roles of {entry.operator_id[:32]}")
        rules.require_text(request.reason, "理由")
        roles = _given_roles(entry.roles)
        if entry.operator_id == manager:
            raise K.ROSTER_SELF_CHANGE(f"roster rule: {manager} may not change their own roles; another manager does")
        with self.rt.store.transaction() as db:
            row = self._current(db, entry.operator_id)
            _check_contract(db, kizon_pb2.OperatorEntry(operator_id=row[0], contractor=row[2], subcontractor=row[3],
                                                        permission=row[4]), roles, recorded=True)
            before = set(_roles(row[1]))
            if MANAGER in before - set(roles):
                self._keep_a_manager(db, entry.operator_id)
            version = self._next_version(db)
            since = version if before - set(roles) else row[5]  # a role taken away: older sessions count no more
            db.execute("UPDATE operators SET roles=?, since=?, changed_at=? WHERE id=?",
                       (",".join(roles), since, time.time(), entry.operator_id))
            self._save_verifier(entry.operator_id, roles)
            self._publish(db, version)
        audit.set_subject(f"roster v{version}: {manager} changed {entry.operator_id} [{','.join(sorted(before))}] → "
                          f"[{','.join(roles)}]: {request.reason[:SUBJECT_REASON]}")
        return await self._answer(version)

    async def remove_operator(self, request):
        """A manager removes an operator: their sessions stop on their next call, here at once and at every node
        the new version has reached (the reply names those it has not reached yet; kizon keeps sending it)."""
        operator = request.entry.operator_id
        manager = self._manager("a removal from the roster")
        audit.set_subject(f"remove {operator[:32]}")
        rules.require_text(request.reason, "理由")
        with self.rt.store.transaction() as db:
            row = self._current(db, operator)
            if MANAGER in _roles(row[1]):
                self._keep_a_manager(db, operator)
            version = self._next_version(db)
            db.execute("UPDATE operators SET removed_at=?, removed_by=?, since=? WHERE id=?",
                       (time.time(), manager, version, operator))
            self._publish(db, version)
        # Durable now (the roster, which every login and call is checked against); the verifier goes after it.
        self._drop_verifier(operator)
        audit.set_subject(f"roster v{version}: {manager} removed {operator}: {request.reason[:SUBJECT_REASON]}")
        return await self._answer(version)

    def permit_subcontract(self, request):
        """再委託の許諾 (PIA 783–868 ⑤): a manager records the permission a 委託先 asked for, under its reference."""
        manager = self._manager("a 再委託 permission")
        audit.set_subject(f"再委託 {request.contractor[:40]} → {request.subcontractor[:40]} ({request.reference[:40]})")
        for value, item in ((request.contractor, "委託先"), (request.subcontractor, "再委託先"),
                            (request.reference, "許諾の参照番号"), (request.reason, "理由")):
            rules.require_text(value, item)
        with self.rt.store.transaction() as db:
            kept = db.execute("SELECT contractor, subcontractor FROM subcontract_permissions WHERE reference=?",
                              (request.reference,)).fetchone()
            if kept and kept != (request.contractor, request.subcontractor):
                raise K.SUBCONTRACT_PERMISSION(f"再委託 rule: {request.reference} already records the permission of "
                                               f"{kept[0]} to {kept[1]}")
            db.execute("INSERT OR IGNORE INTO subcontract_permissions(reference, contractor, subcontractor, permitted_by, "
                       "reason, permitted_at) VALUES (?,?,?,?,?,?)", (request.reference, request.contractor,
                                                                       request.subcontractor, manager, request.reason,
                                                                       time.time()))
        audit.set_subject(f"再委託 permitted by {manager}: {request.contractor} → {request.subcontractor} "
                          f"({request.reference}): {request.reason[:SUBJECT_REASON]}")
        return kizon_pb2.SubcontractPermission(contractor=request.contractor, subcontractor=request.subcontractor,
                                               reference=request.reference)

    # -- the roster's delivery to the other nodes ------------------------------------------------
    async def deliver(self) -> None:
        """Send the newest roster to every node that takes it until each acknowledges it: after each change, and on
        start (a change committed just before a crash is sent by the next start: the need is in the store)."""
        failures = 0
        while True:
            _, pending = await self.push(self.rt.peer_timeout)
            if any(self.receivers[name] is not None for name in pending):
                await asyncio.sleep(RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)])
                failures += 1
                continue
            failures = 0
            self._wake.clear()
            await self._wake.wait()

    async def push(self, timeout: float) -> tuple[list[str], list[str]]:
        """Send the current roster where it has not been acknowledged yet: (nodes that hold it, nodes still to)."""
        version, token = self.rt.store.one("SELECT version, token FROM operator_rosters WHERE municipality=?",
                                           (self.municipality,))
        message = kizon_pb2.SignedRoster(municipality=self.municipality, version=version, token=token)
        delivered, pending = [], []
        for name, method in self.receivers.items():
            if self._acknowledged(name) < version:
                if method is not None:
                    try:
                        ack = await method(message, timeout=timeout)
                        with self.rt.store.transaction() as db:
                            db.execute("INSERT INTO roster_deliveries(target, version, at) VALUES (?,?,?) ON CONFLICT(target) "
                                       "DO UPDATE SET version=MAX(version, excluded.version), at=excluded.at",
                                       (name, ack.version, time.time()))
                    except grpc.aio.AioRpcError as exc:
                        log.warning("roster v%d not yet at %s: %s %s", version, name, exc.code().name, exc.details())
            (delivered if self._acknowledged(name) >= version else pending).append(name)
        return delivered, pending

    def _receivers(self) -> dict[str, object]:
        """node name → the method that hands it a signed roster (None while its service has no such method: it is
        named pending, never skipped in silence)."""
        found: dict[str, object] = {}
        for kind, module, stub_class, service, municipality in (
                ("cs", cs_pb2, cs_pb2_grpc.CommunicationServerStub, "CommunicationServer", self.municipality),
                ("koseki", koseki_pb2, koseki_pb2_grpc.FamilyRegisterSystemStub, "FamilyRegisterSystem", self.municipality),
                ("intermediate", intermediate_pb2, intermediate_pb2_grpc.IntermediateServerStub, "IntermediateServer", None)):
            try:
                node = self.rt.topology.find(kind, municipality)
            except KeyError:
                continue  # (a topology without it)
            takes = RECEIVE in module.DESCRIPTOR.services_by_name[service].methods_by_name
            found[node.name] = getattr(self.rt.stub(stub_class, kind, municipality), RECEIVE) if takes else None
        return found

    def _acknowledged(self, name: str) -> int:
        return self.rt.store.scalar("SELECT version FROM roster_deliveries WHERE target=?", (name,), default=0)

    async def _answer(self, version: int, credential: str = "") -> kizon_pb2.RosterChange:
        """The reply of a change, durable here: which nodes already hold its version (a short wait for them)."""
        self._wake.set()
        try:
            delivered, pending = await asyncio.wait_for(self.push(PUSH_SECONDS), PUSH_SECONDS + 1)
        except asyncio.TimeoutError:
            delivered, pending = [], list(self.receivers)
        return kizon_pb2.RosterChange(roster_version=version, delivered_to=delivered, pending=pending,
                                      credential=credential)

    # -- the roster's storage ---------------------------------------------------------------------
    def _seed(self) -> None:
        """On first start the topology's operators are the roster (version 0), signed like every later version."""
        if self.rt.store.one("SELECT 1 FROM operator_rosters WHERE municipality=?", (self.municipality,)):
            return
        place = self.rt.topology.municipality(self.municipality)
        with self.rt.store.transaction() as db:
            for o in place.operators:
                db.execute("INSERT OR IGNORE INTO operators(id, roles, since, added_by, added_at) VALUES (?,?,0,?,?)",
                           (o.id, ",".join(sorted(set(o.roles))), "topology", time.time()))
            self._publish(db, 0)

    def _publish(self, db, version: int) -> None:
        """Inside the change's transaction: the roster at this version, signed, where the guard and delivery read it."""
        token = sign_roster(self.session_signer, Roster(self.municipality, version, self.roster(db).operators))
        db.execute("INSERT INTO operator_rosters(municipality, version, token) VALUES (?,?,?) ON CONFLICT(municipality) "
                   "DO UPDATE SET version=excluded.version, token=excluded.token", (self.municipality, version, token))

    def _next_version(self, db) -> int:
        row = db.execute("SELECT version FROM operator_rosters WHERE municipality=?", (self.municipality,)).fetchone()
        return (row[0] if row else 0) + 1

    def _current(self, db, operator: str) -> tuple:
        row = db.execute("SELECT id, roles, contractor, subcontractor, permission, since FROM operators "
                         "WHERE id=? AND removed_at IS NULL", (operator,)).fetchone()
        if row is None:
            raise K.OPERATOR_UNKNOWN(f"roster rule: {operator[:32]!r} is not a current operator of {self.municipality}")
        return row

    def _keep_a_manager(self, db, operator: str) -> None:
        others = [op for op, roles in db.execute("SELECT id, roles FROM operators WHERE removed_at IS NULL AND id<>?",
                                                 (operator,)) if MANAGER in _roles(roles)]
        if not others:
            raise K.LAST_MANAGER(f"roster rule: {operator} is the last manager of {self.municipality}; add another "
                                 "manager first")

    def _manager(self, what: str) -> str:
        """The manager making this call (at a terminal, with a session), or ROSTER_MANAGER."""
        call = current_call()
        session = call.session
        if not call.is_terminal or session is None or MANAGER not in session.roles:
            raise K.ROSTER_MANAGER(f"roster rule: {what} is made by a manager at a terminal; {call.operator or '?'} "
                                   "is not one")
        return session.operator

    def _save_verifier(self, operator: str, roles: list[str], verifier: dict | None = None) -> None:
        """Keep an operator's credential verifier (never the credential) in the 0600 file of this node's secrets."""
        entry = dict(self.verifiers.get(operator, {}), **(verifier or {}), roles=roles)
        if "verifier" not in entry:
            return  # (an operator whose credential this node never had: nothing to keep)
        verifiers = dict(self.verifiers, **{operator: entry})
        write_private(self.verifiers_path, json.dumps(verifiers, indent=1).encode())
        self.verifiers = verifiers

    def _drop_verifier(self, operator: str) -> None:
        if operator in self.verifiers:
            verifiers = {op: e for op, e in self.verifiers.items() if op != operator}
            write_private(self.verifiers_path, json.dumps(verifiers, indent=1).encode())
            self.verifiers = verifiers


def _roles(text: str) -> list[str]:
    return [r for r in text.split(",") if r]


def _given_roles(given) -> list[str]:
    """The roles a manager gives: at least one, each of the one set (ROLE_UNKNOWN)."""
    roles = sorted(set(given))
    unknown = [r for r in roles if r not in ROLES]
    if not roles or unknown:
        raise K.ROLE_UNKNOWN(f"roster rule: {', '.join(r[:32] for r in unknown[:5]) or 'no role'} is not a role; "
                             f"the roles are {', '.join(ROLES)}")
    return roles


def _check_contract(db, entry, roles: list[str], recorded: bool = False) -> None:
    """A 委託先's operator holds the role contractor alone (never the 個人番号), staff never hold it; a 再委託先's operator
    names the permission a manager recorded for that contractor and subcontractor (recorded: an entry already kept)."""
    if entry.contractor and roles != [CONTRACTOR]:
        raise K.CONTRACTOR_ROLES(f"委託 rule: {entry.operator_id} works for {entry.contractor} and holds the role "
                                 f"{CONTRACTOR} alone, not {', '.join(roles)}")
    if not entry.contractor and CONTRACTOR in roles:
        raise K.CONTRACTOR_ROLES(f"委託 rule: {entry.operator_id} names no 委託先: the role {CONTRACTOR} is a 委託先's "
                                 "operator's")
    if recorded:
        return
    if (entry.subcontractor or entry.permission) and not entry.contractor:
        raise K.SUBCONTRACT_PERMISSION(f"再委託 rule: {entry.operator_id} names a 再委託先 or a permission but no 委託先")
    if entry.permission and not entry.subcontractor:
        raise K.SUBCONTRACT_PERMISSION(f"再委託 rule: {entry.operator_id} names a permission but no 再委託先")
    if entry.subcontractor and not db.execute(
            "SELECT 1 FROM subcontract_permissions WHERE reference=? AND contractor=? AND subcontractor=?",
            (entry.permission, entry.contractor, entry.subcontractor)).fetchone():
        raise K.SUBCONTRACT_PERMISSION(f"再委託 rule: no permission {entry.permission[:40] or '(none named)'} of "
                                       f"{entry.contractor[:40]} to {entry.subcontractor[:40]} is recorded; a manager "
                                       "records it first (PermitSubcontract)")
