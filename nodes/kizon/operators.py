"""Operators at the counter: login at a terminal, and a manager's approval of bulk output (counted in disclosure.py)."""
from __future__ import annotations

import datetime as dt
import uuid

from certs.pki import credential_matches
from nodes import audit, rules
from nodes.reasons import access as A
from nodes.reasons import kizon as K
from nodes.guard import current_call
from nodes.sessions import issue_approval, issue_session
from protos import kizon_pb2


class Operators:
    """操作者認証 and bulk-output approvals: the municipality's session signing key and its operators' credentials."""

    def __init__(self, runtime, municipality: str):
        self.rt = runtime
        self.municipality = municipality
        # The municipality's session signing key and its operators' credential verifiers: this node's alone.
        self.session_signer = runtime.pki.node_session_key(runtime.node.name, municipality)
        runtime.session_keys[municipality] = self.session_signer.public_key()  # (what the guard verifies sessions by)
        self.verifiers = runtime.pki.operator_verifiers(runtime.node.name, municipality, create=True)

    # -- operators ------------------------------------------------------------------------------
    def login(self, request):
        """操作者認証 at a terminal: a session bound to this terminal's certificate."""
        call = current_call()
        audit.set_subject(request.operator_id)
        if not call.is_terminal:
            raise K.LOGIN_AT_TERMINAL("login rule: operators log in at a terminal")
        operator = self.verifiers.get(request.operator_id)
        if operator is None or not credential_matches(operator, request.credential):
            raise K.OPERATOR_AUTHENTICATION(f"operator rule: authentication failed for {request.operator_id!r}")
        call.operator = request.operator_id  # audited under the operator the credential proved
        token, expires = issue_session(self.session_signer, request.operator_id, operator["roles"], self.municipality,
                                       call.terminal, call.peer.fingerprint)
        return kizon_pb2.Session(token=token, operator_id=request.operator_id, roles=operator["roles"],
                                 expires_at=dt.datetime.fromtimestamp(expires, dt.timezone.utc).isoformat())

    def approve_bulk_output(self, request):
        """A manager's prior approval of one bulk output (PIA Ⅲ(2)3 その他): for one operator at one terminal,
        for one purpose, up to a count; good once, for an hour."""
        call = current_call()
        session = call.session
        audit.set_subject(f"approval for {request.requester_operator_id or '?'} at {request.terminal_id or '?'}: "
                          f"{request.max_records} records")
        if session is None or "manager" not in session.roles:
            raise A.OPERATOR_ROLE("bulk output rule (PIA Ⅲ(2)3): only a manager approves bulk output")
        rules.require_text(request.purpose, "目的")
        if request.max_records == 0:
            raise K.BULK_OUTPUT_APPROVAL_REQUEST("bulk output rule: max_records must be at least 1")
        place = self.rt.topology.municipality(self.municipality)
        if request.requester_operator_id not in {o.id for o in place.operators}:
            raise K.BULK_OUTPUT_APPROVAL_REQUEST(f"bulk output rule: {request.requester_operator_id!r} is not an operator of "
                                                 f"{self.municipality}")
        if request.terminal_id not in place.terminals:
            raise K.BULK_OUTPUT_APPROVAL_REQUEST(f"bulk output rule: {request.terminal_id!r} is not a terminal of {self.municipality}")
        if request.requester_operator_id == session.operator:
            raise K.BULK_OUTPUT_SELF_APPROVAL("bulk output rule (PIA Ⅲ(2)3): an operator may not approve their own output")
        approval_id = uuid.uuid4().hex[:16]
        token, expires = issue_approval(self.session_signer, approval_id, session.operator, self.municipality)
        with self.rt.store.transaction() as db:
            db.execute("INSERT INTO approvals(id, approver, requester, terminal, purpose, max_records, expires_at) "
                       "VALUES (?,?,?,?,?,?,?)",
                       (approval_id, session.operator, request.requester_operator_id, request.terminal_id,
                        request.purpose, request.max_records, expires))
        audit.set_subject(f"approval {approval_id} by {session.operator} for {request.requester_operator_id} at "
                          f"{request.terminal_id}: {request.max_records} records, {request.purpose}")
        return kizon_pb2.BulkApproval(token=token, approval_id=approval_id,
                                      expires_at=dt.datetime.fromtimestamp(expires, dt.timezone.utc).isoformat())
