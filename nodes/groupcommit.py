"""Group commit on the calling side: the submissions made while earlier ones are on their way travel together
in one group call (one call, one transaction at the receiver) instead of a call each.

A submission made when nothing is in flight goes at once, so a quiet node sees no added delay; under load the
group grows with the load. The receiver answers each item on its own, so a refusal of one leaves the others
applied, exactly as if each had been sent alone.
"""
from __future__ import annotations

import asyncio
from collections import deque
from typing import Awaitable, Callable

import grpc

GROUP_LIMIT = 256  # items in one group call (the receiver refuses more)
GROUP_BYTES = 1 << 20  # serialized size of one group, well under gRPC's 4 MiB message limit
STATUS = {code.value[0]: code for code in grpc.StatusCode}  # an outcome's code (a number) → its status
IN_FLIGHT = 1  # group calls out at once: the next group forms while this one is answered


class GroupSender:
    """Coalesces concurrent submissions into group calls; send(items) returns one outcome per item, in order."""

    def __init__(self, send: Callable[[list], Awaitable[list]], in_flight: int = IN_FLIGHT):
        self._send = send
        self._in_flight = in_flight
        self._waiting: deque[tuple[object, asyncio.Future]] = deque()
        self._flying = 0
        self._tasks: set[asyncio.Task] = set()

    async def submit(self, item):
        """Send item with whatever else is submitted meanwhile; its own outcome (or the whole call's failure)."""
        future = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        self._launch()
        return await future

    def _launch(self) -> None:
        while self._flying < self._in_flight:
            group = self._take()
            if not group:
                return
            self._flying += 1
            task = asyncio.create_task(self._fly(group))
            self._tasks.add(task)  # (kept referenced until done)
            task.add_done_callback(self._tasks.discard)

    def _take(self) -> list:
        """The next group: waiting items whose caller still waits, up to GROUP_LIMIT items and GROUP_BYTES."""
        group, size = [], 0
        while self._waiting and len(group) < GROUP_LIMIT:
            item, future = self._waiting[0]
            if future.done():  # its caller gave up before it was sent: it is not sent at all
                self._waiting.popleft()
                continue
            size += item.ByteSize()
            if group and size > GROUP_BYTES:
                break
            group.append(self._waiting.popleft())
        return group

    async def _fly(self, group: list) -> None:
        try:
            outcomes = await self._send([item for item, _ in group])
        except Exception as exc:  # the call as a whole failed: that is every item's outcome
            for _, future in group:
                if not future.done():
                    future.set_exception(exc)
        else:
            for (_, future), outcome in zip(group, outcomes):
                if not future.done():
                    future.set_result(outcome)
        finally:
            self._flying -= 1
            self._launch()
