"""A request a node answers once per scoped x-request-id, made in one transaction with its answer (the 戸籍 system's
届出, 法務省's changes of 在留): a retry after a lost answer gets the first answer, the same id for another request is
refused (REQUEST_ID_REUSED). Without an x-request-id the request is simply made."""
from __future__ import annotations

from nodes import rules
from nodes.guard import REQUEST_KEY, current_call
from nodes.intents import request_digest, request_key
from nodes.reasons import common as C

SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (           -- requests made: a retry with the same x-request-id is answered
    key TEXT PRIMARY KEY,
    digest BLOB NOT NULL,
    reply BLOB NOT NULL                         -- the answer it was given
);
"""


def once(store, request, made, reply_class, what: str):
    """made(db) → the answer, inside the transaction that also keeps it under the call's scoped x-request-id."""
    call = current_call()
    client_id = call.metadata.get(REQUEST_KEY, "")
    rules.check_text(client_id, "x-request-id")
    key = request_key(call.peer.identity.uri, call.operator, call.method, client_id) if client_id else ""
    digest = request_digest(call.method, request)
    with store.transaction() as db:
        if key:
            found = db.execute("SELECT digest, reply FROM requests WHERE key=?", (key,)).fetchone()
            if found is not None:
                if found[0] != digest:
                    raise C.REQUEST_ID_REUSED(f"依頼管理番号 rule: {REQUEST_KEY} {client_id} was used for a different "
                                              f"{what}")
                return reply_class.FromString(found[1])
        reply = made(db)
        if key:
            db.execute("INSERT INTO requests VALUES (?,?,?)", (key, digest, reply.SerializeToString()))
    return reply
