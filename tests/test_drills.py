"""Crash drills: kill -9 of kizon or of the 市町村CS while 出生 and 国外転入 stream in from a counter.

Every call carries its own x-request-id and is retried with that same id until it is answered; at the end
each acknowledged change exists exactly once, nothing unacknowledged was written, the retries answer with
the first reply, and kizon, the CS, the prefecture and national agree (整合性確認, by the API and the CLI).
"""
from __future__ import annotations

import json
import random
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter as Tally
from pathlib import Path

import grpc
import pytest

from helpers import (TODAY, address, export_all, intent_written, invariants_hold, key, kill, move_in_from_abroad,
                     person)
from protos import common_pb2, kizon_pb2
from testbed.client import Counter, node_status

MUNICIPALITY = "142140"
PER_KIND = 20  # 出生 and 国外転入 each: 40 new people and the 世帯主, well under the bulk-output limit of 100
KILL_EVERY = 4  # acknowledged calls between two kills
KILLS = (3, 8)  # at least 3 kills; more (up to 8) until one of them has left kizon an intent to settle
# (every other kill comes right after kizon wrote an intent, the others at a random moment of the stream)
RETRY_FOR = 90.0  # seconds one call is retried with its id before the drill gives up
# What a call may meet while its node is down or settling: everything else is a real refusal and fails the drill.
RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED, grpc.StatusCode.DEADLINE_EXCEEDED}


def settled(network) -> list[str]:
    """kizon's log lines of intents settled with the CS (left by a kill between the intent and the commit)."""
    return [line for line in network.log_file(f"kizon-{MUNICIPALITY}").read_text(errors="replace").splitlines()
            if "nodes.kizon: settled " in line]






def until_answered(counter, method, request, request_id, refusals, timeout=RETRY_FOR):
    """Call with the same x-request-id until the call is answered; every refusal on the way is noted."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return counter(method, request, request_id=request_id, timeout=20)
        except grpc.RpcError as exc:
            assert exc.code() in RETRYABLE, f"{request_id}: {exc.code().name} {exc.details()}"
            assert time.monotonic() < deadline, f"{request_id} unanswered after {timeout} s: {exc.details()}"
            refusals.append((request_id, exc.code().name, exc.details()))
            time.sleep(0.05)


def consistency(counter):
    """The 整合性確認 as a manager asks for it (the check needs the manager or operations role)."""
    with Counter(counter.network, MUNICIPALITY, "T0003", "OP0003") as manager:
        return manager(manager.kizon.CheckConsistency, common_pb2.ConsistencyRequest(municipality_code=MUNICIPALITY))


def settled_report(counter, expected: int, timeout: float = 30.0):
    """The consistency report once it shows no difference and every node holds `expected` records."""
    deadline = time.monotonic() + timeout
    while True:
        report = consistency(counter)
        counts = (report.records_kizon, report.records_cs, report.records_prefecture, report.records_national)
        if not report.differences and counts == (expected,) * 4:
            return report
        assert time.monotonic() < deadline, f"not consistent after {timeout} s: counts {counts}, " \
                                            f"differences {list(report.differences)[:10]}"
        time.sleep(0.2)


def cli_consistency(network) -> tuple[int, dict, str]:
    """`testbed --state-dir DIR consistency 142140 --json` as an operator runs it."""
    script = Path(sys.executable).with_name("testbed")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "testbed.cli"]
    done = subprocess.run(command + ["--state-dir", str(network.state_dir), "consistency", MUNICIPALITY, "--json"],
                          capture_output=True, text=True, timeout=120)
    return done.returncode, json.loads(done.stdout) if done.stdout.strip() else {}, done.stderr


def leftovers(network) -> tuple[int, int]:
    """(intents kizon still has to settle, 住民票コード the CS holds reserved for requests): both 0 once every
    request was answered. Read from the nodes' stores, read-only."""
    def count(node, table):
        path = network.state_dir / "data" / node / "store.sqlite"
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10) as db:
            return db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    return count(f"kizon-{MUNICIPALITY}", "intents"), count(f"cs-{MUNICIPALITY}", "code_reservations")


def atena_entries(network, expected: int, timeout: float = 30.0) -> int:
    """The 団体内統合宛名 entries once kizon's feed has delivered (one per person: a ghost would show here too)."""
    atena = network.topology.find("atena", MUNICIPALITY)
    deadline = time.monotonic() + timeout
    while (entries := node_status(network, atena, counts=True).counts["entries"]) != expected:
        if time.monotonic() > deadline:
            return entries
        time.sleep(0.2)
    return entries





def assert_exactly_once(network, counter, head, births, arrivals):
    """Each acknowledged change exists once in kizon; nothing else was written."""
    born = {request.child.name_kanji: reply for request, reply in births.values()}
    came = {request.person.name_kanji: reply for request, reply in arrivals.values()}
    everyone = export_all(network, counter)
    names = Tally(r.name_kanji for r in everyone)
    duplicated = {n: c for n, c in names.items() if c > 1}
    assert not duplicated, f"written more than once: {duplicated}"
    assert set(names) == {head.name_kanji} | set(born) | set(came), "a ghost (nobody acknowledged it), or one missing"
    assert len({r.resident_code for r in everyone}) == len(everyone) == 1 + len(born) + len(came)
    for name, reply in {**born, **came}.items():
        (record,) = reply.records
        assert record.name_kanji == name and record.resident_code
        found = counter(counter.kizon.GetResident, key(record.resident_code))
        assert (found.name_kanji, found.status, found.history_number) == (name, record.STATUS_CURRENT, 1)
        assert found.atena_number == record.atena_number and found.individual_number == record.individual_number
    members = counter(counter.kizon.GetHousehold, kizon_pb2.HouseholdRequest(household_number=head.household_number))
    tally = Tally(m.name_kanji for m in members.entries)
    assert tally == Tally([head.name_kanji, *born]), f"household {head.household_number}: {dict(tally)}"


@pytest.mark.parametrize("victim", ["kizon-142140", "cs-142140"])
def test_kill_during_births_and_moves_from_abroad(fresh_network, victim):
    """kill -9 of kizon (or of the CS) several times while 出生 and 国外転入 stream in from two threads;
    every call is retried with its own x-request-id until answered: each change exactly once, no ghosts,
    the same reply on a retry, and the four registers agree."""
    network = fresh_network
    network.up()
    rng = random.Random(f"drill-{victim}")
    acknowledged = threading.Semaphore(0)
    refusals, failures = [], []
    births, arrivals = {}, {}
    with Counter(network, MUNICIPALITY) as counter:
        head = move_in_from_abroad(counter, person("訓練 世帯主", "クンレン セタイヌシ"), line="1番地",
                                   request_id="drill-head")
        calls = {
            "birth": (counter.kizon.Birth, births, [
                (f"drill-birth-{i}", kizon_pb2.BirthRequest(
                    household_number=head.household_number, notification_date=TODAY,
                    child=person(f"訓練 出生{i}", "クンレン シュッセイ", birth=TODAY)))
                for i in range(PER_KIND)]),
            "abroad": (counter.kizon.MoveIn, arrivals, [
                (f"drill-abroad-{i}", kizon_pb2.MoveInRequest(
                    person=person(f"訓練 転入{i}", "クンレン テンニュウ"), from_abroad=True,
                    address=address(MUNICIPALITY, f"{100 + i}番地"), move_in_date=TODAY, notification_date=TODAY))
                for i in range(PER_KIND)]),
        }

        def stream(method, answers, requests):
            try:
                for request_id, request in requests:
                    answers[request_id] = (request, until_answered(counter, method, request, request_id, refusals))
                    acknowledged.release()
            except BaseException as exc:  # noqa: BLE001 (handed to the main thread)
                failures.append(exc)
                for _ in range(len(requests)):
                    acknowledged.release()

        workers = [threading.Thread(target=stream, args=spec, daemon=True) for spec in calls.values()]
        for worker in workers:
            worker.start()
        taken, kills = 0, 0
        while kills < KILLS[1] and 2 + kills * KILL_EVERY < 2 * PER_KIND:
            while taken < 2 + kills * KILL_EVERY:
                assert acknowledged.acquire(timeout=RETRY_FOR), "the stream stalled"
                taken += 1
            if kills % 2 == 0:  # right after kizon wrote an intent: the change is on its way to the CS
                intent_written(network)
            else:  # anywhere inside the next calls (each takes ~15 ms)
                time.sleep(rng.uniform(0, 0.03))
            kill(network, victim)
            kills += 1
            time.sleep(rng.uniform(0.1, 0.5))
            network.up()  # restarts only the killed node
            if kills >= KILLS[0] and settled(network):
                break
        for worker in workers:
            worker.join(timeout=4 * RETRY_FOR)
        assert not any(w.is_alive() for w in workers), "a stream never finished"
        if failures:
            raise failures[0]
        assert len(births) == len(arrivals) == PER_KIND
        assert refusals, f"no call met the killed {victim}: the kills came between calls only"

        codes = [reply.records[0].resident_code for _, reply in [*births.values(), *arrivals.values()]]
        assert len(set(codes)) == len(codes), "a 住民票コード given twice"
        sequences = [reply.update_sequence for _, reply in [*births.values(), *arrivals.values()]]
        assert len(set(sequences)) == len(sequences), "one 更新順番号 per change"
        assert_exactly_once(network, counter, head, births, arrivals)

        # Once more with the same ids: the first replies again, and nothing applied a second time.
        for answers, method in ((births, counter.kizon.Birth), (arrivals, counter.kizon.MoveIn)):
            for request_id, (request, reply) in answers.items():
                assert counter(method, request, request_id=request_id) == reply, f"{request_id}: another reply"
        assert_exactly_once(network, counter, head, births, arrivals)
        everyone = 1 + 2 * PER_KIND
        report = settled_report(counter, everyone)
        assert report.records_kizon == report.records_cs == report.records_prefecture == report.records_national
        assert leftovers(network) == (0, 0), "(unsettled intents at kizon, 住民票コード left reserved at the CS)"
        assert atena_entries(network, everyone) == everyone, "団体内統合宛名 entries: one per acknowledged person"

    status, shown, stderr = cli_consistency(network)
    assert status == 0, (status, shown, stderr)
    assert "kizon" in shown["compared"] and shown["differences"] == []
    assert set(shown["compared"].values()) == {everyone}, shown["compared"]
    invariants_hold(network)
    print(f"{victim}: {kills} kills, {len(refusals)} refusals on the way, "
          f"{len(settled(network))} intents settled after a restart")

