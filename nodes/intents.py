"""依頼管理番号 and pending changes at kizon: what makes kizon ↔ CS crash-safe in both directions.

A counter change is known by its scoped 依頼管理番号: a hash of the caller's identity, the operator,
the method and the client's x-request-id, so that two terminals or operators reusing an id never meet.
The digest of the request pins what was asked: the same id with the same request is answered with
the first reply, with a different request it is refused.

Before kizon asks the CS to apply a change it writes an intent: the records it will commit (with the
numbers it drew), the batch it sends and the reply it will give. The CS's commit and kizon's are two
steps that a kill -9 (or a lost answer) can separate; kizon then asks the CS which intents it applied,
commits those exactly as they were sent and drops the others, so that kizon and the CS always agree.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from protos import identity_pb2, kizon_pb2
from nodes import clock

SCHEMA = """
CREATE TABLE IF NOT EXISTS answered (           -- changes applied, by scoped 依頼管理番号, and the reply given
    request_key TEXT PRIMARY KEY,
    digest BLOB NOT NULL,                       -- of the request: a reused id must repeat it
    reply_type TEXT NOT NULL,
    reply BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS intents (            -- changes sent (or about to be sent) to the CS, not yet committed here
    request_key TEXT PRIMARY KEY,
    digest BLOB NOT NULL,
    reply_type TEXT NOT NULL,
    reply BLOB NOT NULL,                        -- the reply to give once the CS has applied it
    records BLOB NOT NULL,                      -- ChangeReply holding every record to commit
    batch BLOB NOT NULL,                        -- the IdentityUpdateBatch sent to the CS, resent unchanged
    feed_atena INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
"""

REPLY_TYPES = {m.DESCRIPTOR.full_name: m for m in (kizon_pb2.ChangeReply, kizon_pb2.MoveOutReply)}
KEY_LENGTH = 32  # hex characters of the scoped 依頼管理番号 (128 bits)


def request_key(caller: str, operator: str, method: str, client_id: str) -> str:
    """The scoped 依頼管理番号 of a request: who asked, as whom, for what, with which x-request-id."""
    scope = "\x1f".join((caller, operator, method, client_id)).encode()
    return hashlib.sha256(scope).hexdigest()[:KEY_LENGTH]


def request_digest(method: str, request) -> bytes:
    """What was asked: the method and the request's fields."""
    return hashlib.sha256(method.encode() + b"\x1f" + request.SerializeToString(deterministic=True)).digest()


def control_number(key: str, index: int) -> str:
    """依頼管理番号 of the index-th record of a change, as the CS knows it."""
    return f"{key}:{index}"


def set_sequence(reply, sequence: int) -> None:
    """Put the 更新順番号 the CS gave into a reply (a ChangeReply, or a reply that holds one)."""
    change = reply.change if isinstance(reply, kizon_pb2.MoveOutReply) else reply
    change.update_sequence = sequence


def change_of(reply) -> kizon_pb2.ChangeReply:
    """The ChangeReply inside a reply."""
    return reply.change if isinstance(reply, kizon_pb2.MoveOutReply) else reply


@dataclass
class Intent:
    """A change written down before the CS is asked to apply it."""

    key: str
    digest: bytes
    reply: object
    records: list
    batch: identity_pb2.IdentityUpdateBatch
    feed_atena: bool


class Ledger:
    """Answered requests and pending intents, in kizon's store."""

    def __init__(self, store):
        self.store = store
        store.db.executescript(SCHEMA)

    def answered(self, key: str) -> tuple[bytes, object] | None:
        """(request digest, reply) of a change already applied, or None."""
        found = self.store.one("SELECT digest, reply_type, reply FROM answered WHERE request_key=?", (key,))
        return (found[0], REPLY_TYPES[found[1]].FromString(found[2])) if found else None

    def intent(self, key: str) -> Intent | None:
        """The pending intent of a request, or None."""
        found = self.store.one("SELECT digest, reply_type, reply, records, batch, feed_atena FROM intents WHERE request_key=?",
                               (key,))
        if found is None:
            return None
        digest, reply_type, reply, records, batch, feed_atena = found
        return Intent(key, digest, REPLY_TYPES[reply_type].FromString(reply),
                      list(kizon_pb2.ChangeReply.FromString(records).records),
                      identity_pb2.IdentityUpdateBatch.FromString(batch), bool(feed_atena))

    def pending(self) -> list[str]:
        """Keys of every intent not yet settled, oldest first."""
        return [r[0] for r in self.store.db.execute("SELECT request_key FROM intents ORDER BY created_at, rowid")]

    def write(self, intent: Intent) -> None:
        """Write an intent down (its own transaction: it must be durable before the CS is called)."""
        with self.store.transaction() as db:
            db.execute("INSERT INTO intents VALUES (?,?,?,?,?,?,?,?)", (
                intent.key, intent.digest, intent.reply.DESCRIPTOR.full_name, intent.reply.SerializeToString(),
                kizon_pb2.ChangeReply(records=intent.records).SerializeToString(), intent.batch.SerializeToString(),
                int(intent.feed_atena), clock.stamp("microseconds")))

    def finish(self, db, intent: Intent) -> None:
        """Inside the commit's transaction: the request is answered, the intent gone."""
        db.execute("INSERT INTO answered VALUES (?,?,?,?)", (intent.key, intent.digest, intent.reply.DESCRIPTOR.full_name,
                                                             intent.reply.SerializeToString()))
        db.execute("DELETE FROM intents WHERE request_key=?", (intent.key,))

    def drop(self, key: str) -> None:
        """Forget an intent the CS never applied."""
        with self.store.transaction() as db:
            db.execute("DELETE FROM intents WHERE request_key=?", (key,))
