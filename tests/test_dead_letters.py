"""The outbox never wedges: an item its receiver refuses for good becomes a dead letter with the reason, the
same person's later items are held with it, and everybody else's go on; a sequenced target holds instead.

The receiver here is a real gRPC-style coroutine refusing with a real AioRpcError: what is under test is the
outbox's own delivery loop and its SQLite store, not a node."""
from __future__ import annotations

import asyncio

import grpc

from nodes.outbox import Outbox, Target
from nodes.store import Store
from protos import identity_pb2


def refusal(code=grpc.StatusCode.FAILED_PRECONDITION, details="転入通知 rule: no 転出 here to close"):
    """What a receiver's refusal looks like to the sender."""
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details=details)


class Receiver:
    """Takes every message except those about the refused people; records what it took, in order."""

    def __init__(self, refused: set[str]):
        self.refused, self.taken, self.calls = refused, [], 0

    async def one(self, message, timeout=None):
        """A receiver of whole messages (one item each)."""
        self.calls += 1
        if message.resident_code in self.refused:
            raise refusal()
        self.taken.append(message.resident_code)

    async def batch(self, message, timeout=None):
        """A receiver of batches: the whole batch is refused if it holds a refused person."""
        self.calls += 1
        codes = [u.info.resident_code for u in message.updates]
        if self.refused & set(codes):
            raise refusal(grpc.StatusCode.INVALID_ARGUMENT, "市町村コード rule")
        self.taken.extend(codes)


def notice(code: str, address: str = "") -> identity_pb2.MoveInNotice:
    """A 転入通知 about one person."""
    return identity_pb2.MoveInNotice(resident_code=code, new_address=address)


async def until(condition) -> None:
    """Wait (bounded) until the condition holds."""
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the outbox did not get there")


async def deliver(outbox: Outbox, condition) -> None:
    """Run the outbox until the condition holds (bounded)."""
    outbox.start()
    try:
        await until(condition)
    finally:
        await outbox.stop()


def test_a_refused_notice_does_not_hold_back_the_next_persons(tmp_path):
    """One person's refused 転入通知 is set aside with the reason; their later notice is held behind it (their
    order kept); the next people's notices are delivered."""
    store = Store(tmp_path / "store.sqlite")
    receiver = Receiver({"11111111111"})
    outbox = Outbox(store, {"notice:142140": Target(receiver.one, identity_pb2.MoveInNotice, None)})
    with store.transaction() as db:
        for code, where in (("11111111111", "a"), ("22222222222", "b"), ("11111111111", "c"), ("33333333333", "d")):
            outbox.put(db, "notice:142140", notice(code, where))
    asyncio.run(deliver(outbox, lambda: receiver.taken == ["22222222222", "33333333333"] and not outbox.pending()))
    dead = store.db.execute("SELECT person, code, reason FROM dead_letters ORDER BY id").fetchall()
    assert dead == [("11111111111", "FAILED_PRECONDITION", "転入通知 rule: no 転出 here to close"),
                    ("11111111111", "HELD", f"behind dead letter #1 of the same person")]
    assert outbox.dead_letters() == {"notice:142140": (2, "behind dead letter #1 of the same person")}
    store.close()


def test_a_refused_item_in_a_batch_is_found_and_set_aside(tmp_path):
    """A batch the receiver refuses is sent again item by item: only the refused person's item becomes a dead
    letter; the others arrive in their order, and later batches travel whole again."""
    store = Store(tmp_path / "store.sqlite")
    receiver = Receiver({"22222222222"})
    outbox = Outbox(store, {"card": Target(receiver.batch, identity_pb2.IdentityUpdateBatch, "updates")})
    codes = ["11111111111", "22222222222", "33333333333", "44444444444"]

    async def run():
        with store.transaction() as db:
            outbox.put_many(db, "card", [identity_pb2.IdentityUpdate(info={"resident_code": c}) for c in codes])
        outbox.start()
        try:
            await until(lambda: not outbox.pending())
            assert receiver.taken == ["11111111111", "33333333333", "44444444444"]
            before = receiver.calls
            with store.transaction() as db:
                outbox.put_many(db, "card", [identity_pb2.IdentityUpdate(info={"resident_code": c})
                                             for c in ("5" * 11, "6" * 11)])
            outbox.wake("card")
            await until(lambda: not outbox.pending())
            assert receiver.calls - before == 1, "after the refusal, batches travel whole again"
        finally:
            await outbox.stop()
    asyncio.run(run())
    assert [r[0] for r in store.db.execute("SELECT person FROM dead_letters")] == ["22222222222"]
    store.close()


def test_a_sequenced_target_holds_instead_of_skipping(tmp_path):
    """更新順番号 order cannot skip an item: a refusal holds the target (and says why); nothing is dead-lettered."""
    store = Store(tmp_path / "store.sqlite")
    receiver = Receiver({"11111111111"})
    outbox = Outbox(store, {"prefecture": Target(receiver.batch, identity_pb2.IdentityUpdateBatch, "updates",
                                                 sequenced=True)})
    with store.transaction() as db:
        outbox.put_many(db, "prefecture", [identity_pb2.IdentityUpdate(info={"resident_code": c})
                                           for c in ("11111111111", "22222222222")])
    asyncio.run(deliver(outbox, lambda: "prefecture" in outbox.blocked))
    assert outbox.pending() == 2 and receiver.taken == []
    assert not store.db.execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0]
    store.close()
