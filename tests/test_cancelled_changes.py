"""A caller that goes away does not leave a change half made: once kizon has sent a change to the CS, it
finishes it (commits it here, or drops it if the CS refused) whether or not anyone still waits for the answer.

Found by a load whose one stream was refused: the client closed its channel, the other stream's batch was
cancelled at kizon while the CS applied it, and kizon kept an intent it never settled (the CS held 5,000
people kizon did not, until kizon restarted)."""
from __future__ import annotations

import asyncio
import os
import signal
import sqlite3

import grpc
import pytest

from helpers import TODAY, address, key, move_in_from_abroad, poll, refused
from protos import common_pb2, kizon_pb2
from testbed import load
from testbed.client import Counter, node_status
from testbed.load import generate_population, load_records

A = "142140"


def pending_intents(network) -> int:
    """Intents kizon holds that are neither committed nor dropped."""
    db = sqlite3.connect(f"file:{network.state_dir / 'data' / f'kizon-{A}' / 'store.sqlite'}?mode=ro", uri=True)
    try:
        return db.execute("SELECT COUNT(*) FROM intents").fetchone()[0]
    finally:
        db.close()


def test_a_change_whose_caller_goes_away_is_finished(fresh_network):
    """The CS is stopped while a 転居 is on its way: the clerk's call runs out of time (kizon's handler is
    cancelled); once the CS runs again the change is applied there and committed at kizon, a retry with the
    same x-request-id gets the answer (meanwhile it is told the request is being served, and another request
    under the same id is refused), no intent is left and the 整合性確認 finds nothing."""
    network = fresh_network
    network.up()
    with Counter(network, A) as clerk:
        who = move_in_from_abroad(clerk)
        request = kizon_pb2.MoveWithinRequest(resident_code=who.resident_code, address=address(A, "88番地"), move_date=TODAY)
        cs = network.pid(f"cs-{A}")
        os.kill(cs, signal.SIGSTOP)
        try:
            with pytest.raises(grpc.RpcError) as caught:
                clerk(clerk.kizon.MoveWithin, request, request_id="went-away", timeout=1.0)
            assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            assert pending_intents(network) == 1  # written before the CS was asked
            # the same id meanwhile: the same request is being served; another request under it is refused
            with refused(grpc.StatusCode.ABORTED, "依頼管理番号 rule", "being served", reason="REQUEST_IN_PROGRESS"):
                clerk(clerk.kizon.MoveWithin, request, request_id="went-away", timeout=5)
            other = kizon_pb2.MoveWithinRequest(resident_code=who.resident_code, address=address(A, "99番地"),
                                                move_date=TODAY)
            with refused(grpc.StatusCode.FAILED_PRECONDITION, "依頼管理番号 rule", "different request",
                         reason="REQUEST_ID_REUSED"):
                clerk(clerk.kizon.MoveWithin, other, request_id="went-away", timeout=5)
        finally:
            os.kill(cs, signal.SIGCONT)
        poll(lambda: pending_intents(network) == 0 or None, timeout=20, what="the change finished at kizon")
        answer = clerk(clerk.kizon.MoveWithin, request, request_id="went-away")
        assert answer.records[0].address_line == "88番地" and answer.update_sequence > 0
        assert clerk(clerk.kizon.GetResident, key(who.resident_code)).address_line == "88番地"
        assert "88番地" in clerk(clerk.cs.GetIdentity, key(who.resident_code)).address
    with Counter(network, A, "T0003", "OP0003") as manager:
        report = manager(manager.kizon.CheckConsistency, common_pb2.ConsistencyRequest(municipality_code=A), timeout=120)
    assert not report.differences, report.differences[:3]


def test_a_refused_load_stream_is_answered_with_its_refusal(fresh_network):
    """A load whose second stream starts with people already recorded: that stream's refusal is the answer
    (ALREADY_EXISTS, 移行 rule; kizon reads what the client still sends, so that a client busy sending the next
    2 MB batch is not left with INTERNAL: a race this test does not always meet), the first stream is loaded in
    full (the client waits for it instead of closing the channel under it), and no intent is left behind."""
    network = fresh_network
    network.up()
    old = generate_population(network, A, load.BATCH, 41)[0]
    asyncio.run(load_records(network, A, old, show_progress=False))
    new = generate_population(network, A, 4 * load.BATCH, 42)[0]
    half = 2 * load.BATCH + load.BATCH // 2  # streams: new[:half] | old + new[half:] (refused at its first batch)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        asyncio.run(load_records(network, A, new[:half] + old + new[half:], show_progress=False))
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS and "移行 rule" in caught.value.details()
    poll(lambda: pending_intents(network) == 0 or None, what="no intent left")
    kizon = network.topology.find("kizon", A)
    assert node_status(network, kizon, counts=True).counts["residents"] == load.BATCH + half
