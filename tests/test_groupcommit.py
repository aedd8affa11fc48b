"""Group commit on the calling side (nodes.groupcommit): what is submitted while a group call is out travels
together in the next one; each caller gets its own outcome; a call that fails fails every item in it."""
from __future__ import annotations

import asyncio

import pytest

from nodes.groupcommit import GROUP_BYTES, GROUP_LIMIT, GroupSender
from protos import common_pb2


class Receiver:
    """The far side: records each group it is sent, answers each item (or fails the call) when released."""

    def __init__(self):
        self.groups: list[list[bytes]] = []
        self.release = asyncio.Event()
        self.fail: Exception | None = None

    async def send(self, items):
        self.groups.append([i.payload for i in items])
        await self.release.wait()
        if self.fail:
            raise self.fail
        return [b"ok:" + i.payload for i in items]


def item(text: str, size: int = 0) -> common_pb2.EchoRequest:
    return common_pb2.EchoRequest(payload=text.encode() + b"." * size)


def test_what_waits_behind_a_call_goes_in_one_group():
    """The first submission goes at once, alone; the three made while it is out go together, in order."""
    async def run():
        receiver = Receiver()
        sender = GroupSender(receiver.send)
        first = asyncio.create_task(sender.submit(item("a")))
        await asyncio.sleep(0)
        rest = [asyncio.create_task(sender.submit(item(t))) for t in "bcd"]
        await asyncio.sleep(0)
        assert receiver.groups == [[b"a"]]
        receiver.release.set()
        answers = await asyncio.gather(first, *rest)
        return receiver.groups, answers
    groups, answers = asyncio.run(run())
    assert groups == [[b"a"], [b"b", b"c", b"d"]]
    assert answers == [b"ok:a", b"ok:b", b"ok:c", b"ok:d"]


def test_a_failed_call_is_every_items_outcome_and_a_caller_who_gave_up_is_not_sent():
    """When the group call fails, each of its callers gets that failure; a submission whose caller was cancelled
    before its group left is never sent."""
    async def run():
        receiver = Receiver()
        sender = GroupSender(receiver.send)
        first = asyncio.create_task(sender.submit(item("a")))
        await asyncio.sleep(0)
        gone = asyncio.create_task(sender.submit(item("gone")))
        kept = asyncio.create_task(sender.submit(item("b")))
        await asyncio.sleep(0)
        gone.cancel()
        receiver.fail = ConnectionError("unreachable")
        receiver.release.set()
        outcomes = await asyncio.gather(first, kept, return_exceptions=True)
        return receiver.groups, outcomes
    groups, outcomes = asyncio.run(run())
    assert groups == [[b"a"], [b"b"]]
    assert all(isinstance(o, ConnectionError) for o in outcomes)


@pytest.mark.parametrize("count, size, groups", [(GROUP_LIMIT + 5, 0, [1, GROUP_LIMIT, 4]),
                                                 (4, GROUP_BYTES // 2, [1, 1, 1, 1])])
def test_a_group_stays_within_its_limits(count, size, groups):
    """A group holds at most GROUP_LIMIT items and GROUP_BYTES (but always at least one item)."""
    async def run():
        receiver = Receiver()
        receiver.release.set()
        sender = GroupSender(receiver.send)
        await asyncio.gather(*(sender.submit(item(str(n), size)) for n in range(count)))
        return [len(g) for g in receiver.groups]
    assert asyncio.run(run()) == groups
