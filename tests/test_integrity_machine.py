"""Integrity of the counter changes as a hypothesis state machine, against one network of its own.

Rules: 国外転入 (a new household, or joining one), 出生 into a known household, 転居, 死亡, the retry of an
answered request with its x-request-id (the first reply again), the reuse of an id for another request
(FAILED_PRECONDITION, nothing changed), changes the rules refuse (no trace, the 住民票コード reserved for them
released), and kill -9 of kizon or of the 市町村CS in the middle of a change followed by a restart (the change
retried with its id until answered; only then does the model count it).

A small reference model says who is current or removed, where and in which household, and how many history
entries each 住民票 has; kizon must agree with it after every step. At the end of each example the chain
kizon → CS → prefecture → national holds no difference, the register holds exactly the acknowledged people
(no ghost, none missing), no intent is left unsettled and no 住民票コード left reserved, and national knows each
person as current in 142140 at most (one current residence).
"""
from __future__ import annotations

import itertools
import sqlite3
import threading
import time
from collections import Counter as Tally
from dataclasses import dataclass

import grpc
import pytest
from hypothesis import HealthCheck, Phase, seed, settings
from hypothesis import strategies as st
from hypothesis.stateful import (RuleBasedStateMachine, initialize, invariant, precondition, rule,
                                 run_state_machine_as_test)

from conftest import make_network
from helpers import TODAY, export_all, intent_written, key, kill, person, refused
from protos import common_pb2, identity_pb2, kizon_pb2, national_pb2_grpc, records_pb2
from scenarios.towns import towns
from testbed.client import Counter, channel, node_cert, node_status

MUNICIPALITY = "142140"
KIZON, CS = f"kizon-{MUNICIPALITY}", f"cs-{MUNICIPALITY}"
TOWN_CODES = [t.code for t in towns(MUNICIPALITY)[:3]]
CURRENT, REMOVED = records_pb2.ResidentRecord.STATUS_CURRENT, records_pb2.ResidentRecord.STATUS_REMOVED
RETRY_FOR = 60.0
# When the kill comes: right after kizon wrote the change's intent (it is then on its way to the CS), or this many
# seconds after the change was issued (a change takes ~12 ms).
MOMENTS = ["intent", "intent", 0.0, 0.004, 0.01]
RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED, grpc.StatusCode.DEADLINE_EXCEEDED}

NET = None  # the module's network, set by the test for the machine
NATIONAL = None  # a stub of national, as the other municipality's CS asks it (CheckResidence)
ACKED: dict[str, records_pb2.ResidentRecord.Status] = {}  # every acknowledged person of the run → status
CRASHES: list[tuple[str, object, str]] = []  # (node killed, when, what the first call got)
SERIAL = itertools.count(1)


@dataclass
class Person:
    """What the model knows of one person."""

    code: str
    name: str
    atena: str
    household: str
    relationship: str
    town: str
    line: str
    current: bool = True
    history: int = 1




def _leftovers(network) -> tuple[int, int]:
    """(intents kizon has not settled, 住民票コード the CS holds reserved), read-only from their stores."""
    def count(node, table):
        path = network.state_dir / "data" / node / "store.sqlite"
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10) as db:
            return db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    return count(KIZON, "intents"), count(CS, "code_reservations")




def _address(town: str, line: str) -> records_pb2.Address:
    return records_pb2.Address(town_code=town, address_line=line)


class IntegrityMachine(RuleBasedStateMachine):
    """Counter changes, retries, conflicts, refusals and crashes against kizon, with a reference model."""

    def __init__(self):
        super().__init__()
        self.counter = Counter(NET, MUNICIPALITY, reads=1_000_000)  # (reads past the bulk-output limit, approved)
        self.manager = Counter(NET, MUNICIPALITY, "T0003", "OP0003")  # approves the register's export (over 100)
        self.people: dict[str, Person] = {}
        self.answered: list[tuple[str, object, str, object]] = []  # (method, request, x-request-id, first reply)
        self.crashed = False

    # -- calling ----------------------------------------------------------------------------------------
    def _method(self, name):
        return getattr(self.counter.kizon, name)

    def _change(self, name, request, request_id):
        """A change, retried with its x-request-id while the chain is down or settling, until answered."""
        deadline = time.monotonic() + RETRY_FOR
        while True:
            try:
                reply = self.counter(self._method(name), request, request_id=request_id, timeout=20)
                break
            except grpc.RpcError as exc:
                assert exc.code() in RETRYABLE, f"{name} {request_id}: {exc.code().name} {exc.details()}"
                assert time.monotonic() < deadline, f"{name} {request_id} unanswered: {exc.details()}"
                time.sleep(0.05)
        self.answered.append((name, request, request_id, reply))
        return reply

    def _refused(self, name, request, request_id, code, rule_text):
        with refused(code, rule_text):
            self.counter(self._method(name), request, request_id=request_id)

    @staticmethod
    def _new_id(what):
        return f"machine-{what}-{next(SERIAL)}"

    @staticmethod
    def _new_person():
        return person(f"統合 {next(SERIAL)}", "トウゴウ テスト", "1985-04-01", "2")

    # -- the model ------------------------------------------------------------------------------------
    def _current(self) -> list[Person]:
        return [p for p in self.people.values() if p.current]

    def _removed(self) -> list[Person]:
        return [p for p in self.people.values() if not p.current]

    def _in_order(self, households) -> list[str]:
        # in the order they were made (by their first member's 宛名番号): 世帯番号 are random, so an order by number
        # would let the same draws pick other households from one run to the next
        first = {}
        for p in sorted(self.people.values(), key=lambda p: p.atena):
            first.setdefault(p.household, p.atena)
        return sorted(households, key=lambda h: first[h])

    def _households(self) -> list[str]:
        return self._in_order({p.household for p in self._current()})

    def _dead_households(self) -> list[str]:
        live = set(self._households())
        return self._in_order({p.household for p in self.people.values()} - live)

    def _head(self, household) -> Person:
        """Whose address a newcomer of the household takes: the 世帯主, else the first member (by 宛名番号)."""
        members = sorted((p for p in self._current() if p.household == household), key=lambda p: p.atena)
        return next((p for p in members if p.relationship == "世帯主"), members[0])

    def _arrived(self, record, town, line, relationship) -> Person:
        assert record.resident_code not in ACKED, f"住民票コード {record.resident_code} given twice"
        assert (record.town_code, record.address_line, record.history_number) == (town, line, 1)
        assert record.relationship == relationship
        new = Person(record.resident_code, record.name_kanji, record.atena_number, record.household_number,
                     relationship, town, line)
        self.people[new.code] = new
        ACKED[new.code] = CURRENT
        return new

    def _moved(self, who: Person, record, town, line):
        who.town, who.line, who.history = town, line, who.history + 1
        assert (record.resident_code, record.town_code, record.address_line, record.history_number) == \
               (who.code, town, line, who.history)

    def _died(self, who: Person, record):
        who.current, who.history = False, who.history + 1
        ACKED[who.code] = REMOVED
        assert (record.resident_code, record.status, record.removal_reason, record.history_number) == \
               (who.code, REMOVED, "死亡", who.history)

    def _register(self) -> list[records_pb2.ResidentRecord]:
        """Every 住民票 of the municipality, 除票 included (with a manager's approval: the run may pass 100)."""
        return export_all(NET, self.counter, "整合性試験")

    def _names_in_register(self) -> Tally:
        return Tally(r.name_kanji for r in self._register())

    # -- requests ---------------------------------------------------------------------------------------
    def _abroad_request(self, town, line, household="", relationship=""):
        who = self._new_person()
        if relationship:
            who.relationship = relationship
        return kizon_pb2.MoveInRequest(person=who, address=_address(town, line), household_number=household,
                                       move_in_date=TODAY, notification_date=TODAY, from_abroad=True)

    def _birth_request(self, household):
        child = person(f"統合 子{next(SERIAL)}", "トウゴウ コ", TODAY, "1")
        return kizon_pb2.BirthRequest(household_number=household, child=child, notification_date=TODAY)

    @staticmethod
    def _move_request(who: Person, town, line):
        return kizon_pb2.MoveWithinRequest(resident_code=who.code, address=_address(town, line), move_date=TODAY,
                                           notification_date=TODAY)

    @staticmethod
    def _death_request(who: Person, notified=TODAY):
        return kizon_pb2.DeathRequest(resident_code=who.code, death_date=TODAY, notification_date=notified)

    def _apply(self, name, request, reply):
        """Count an answered change in the model."""
        (record, *more) = reply.records
        assert not more, reply
        if name == "MoveIn":
            if request.household_number:
                head = self._head(request.household_number)
                assert record.household_number == request.household_number
                self._arrived(record, head.town, head.line, request.person.relationship)
            else:
                self._arrived(record, request.address.town_code, request.address.address_line, "世帯主")
        elif name == "Birth":
            head = self._head(request.household_number)
            assert record.household_number == request.household_number
            self._arrived(record, head.town, head.line, "子")
        elif name == "MoveWithin":
            self._moved(self.people[request.resident_code], record, request.address.town_code,
                        request.address.address_line)
        elif name == "Death":
            self._died(self.people[request.resident_code], record)
        else:
            raise AssertionError(name)

    # -- rules ----------------------------------------------------------------------------------------------
    @initialize()
    def first_household(self):
        request = self._abroad_request(TOWN_CODES[0], "1番地")
        self._apply("MoveIn", request, self._change("MoveIn", request, self._new_id("abroad")))

    @rule(data=st.data(), town=st.sampled_from(TOWN_CODES), number=st.integers(1, 50))
    def move_in_from_abroad(self, data, town, number):
        """国外転入: a new household, or joining a household as 同居人."""
        households = self._households()
        join = bool(households) and data.draw(st.booleans(), label="join")
        household = data.draw(st.sampled_from(households), label="household") if join else ""
        request = self._abroad_request(town, f"{number}番地", household, "同居人" if join else "")
        self._apply("MoveIn", request, self._change("MoveIn", request, self._new_id("abroad")))

    @precondition(lambda self: self._households())
    @rule(data=st.data())
    def birth(self, data):
        """出生 into a household with current members: the child takes the 世帯主's address."""
        request = self._birth_request(data.draw(st.sampled_from(self._households()), label="household"))
        self._apply("Birth", request, self._change("Birth", request, self._new_id("birth")))

    @precondition(lambda self: self._current())
    @rule(data=st.data(), town=st.sampled_from(TOWN_CODES), number=st.integers(1, 50))
    def move_within(self, data, town, number):
        """転居 of one person."""
        who = data.draw(st.sampled_from(self._current()), label="who")
        request = self._move_request(who, town, f"{number}番{number % 7 + 1}号")
        self._apply("MoveWithin", request, self._change("MoveWithin", request, self._new_id("move")))

    @precondition(lambda self: self._current())
    @rule(data=st.data())
    def death(self, data):
        """死亡: the 住民票 becomes a 除票."""
        who = data.draw(st.sampled_from(self._current()), label="who")
        request = self._death_request(who)
        self._apply("Death", request, self._change("Death", request, self._new_id("death")))

    @precondition(lambda self: self.answered)
    @rule(data=st.data())
    def retry(self, data):
        """The same request with the same x-request-id: the first reply, nothing applied again."""
        name, request, request_id, first = data.draw(st.sampled_from(self.answered), label="answered")
        again = self.counter(self._method(name), request, request_id=request_id)
        assert again.update_sequence == first.update_sequence
        assert [r.resident_code for r in again.records] == [r.resident_code for r in first.records]
        assert again == first, f"{name} {request_id}: another reply to a retry"

    @precondition(lambda self: self.answered)
    @rule(data=st.data())
    def conflicting_reuse(self, data):
        """An answered x-request-id sent with another request of the same kind: refused, nothing changes."""
        name, request, request_id, _ = data.draw(st.sampled_from(self.answered), label="answered")
        other = type(request)()
        other.CopyFrom(request)
        ghost = ""
        if name == "MoveIn":
            other.person.name_kanji = ghost = f"統合 {next(SERIAL)}"
        elif name == "Birth":
            other.child.name_kanji = ghost = f"統合 子{next(SERIAL)}"
        elif name == "MoveWithin":
            other.address.address_line = f"{next(SERIAL)}番地"
        else:  # Death: another current person if there is one (who must stay alive), else another 届出年月日
            alive_ones = [p for p in self._current() if p.code != request.resident_code]
            if alive_ones:
                other.resident_code = data.draw(st.sampled_from(alive_ones), label="other").code
            else:
                other.notification_date = ""
        assert other != request
        self._refused(name, other, request_id, grpc.StatusCode.FAILED_PRECONDITION, "依頼管理番号 rule")
        if ghost:
            assert ghost not in self._names_in_register(), f"{ghost} written by a refused request"

    @precondition(lambda self: self.people)  # (someone current, or someone removed: a case to refuse)
    @rule(data=st.data())
    def refused_change(self, data):
        """A change the rules refuse: the same refusal on a retry, no trace, no 住民票コード kept for it."""
        cases = []
        if self._households():
            cases += ["join without 続柄"]
        if self._removed():
            cases += ["転居 of a 除票", "死亡 of a 除票"]
        if self._dead_households():
            cases += ["join a household without members"]
        case = data.draw(st.sampled_from(cases), label="case")
        ghost = ""
        if case == "join without 続柄":
            request = self._abroad_request(TOWN_CODES[0], "9番地", data.draw(st.sampled_from(self._households())))
            name, ghost, code, text = "MoveIn", request.person.name_kanji, grpc.StatusCode.INVALID_ARGUMENT, "続柄"
        elif case == "join a household without members":
            household = data.draw(st.sampled_from(self._dead_households()))
            request = self._abroad_request(TOWN_CODES[0], "9番地", household, "同居人")
            name, ghost, code, text = "MoveIn", request.person.name_kanji, grpc.StatusCode.NOT_FOUND, "世帯 rule"
        else:
            who = data.draw(st.sampled_from(self._removed()), label="who")
            name = "MoveWithin" if case.startswith("転居") else "Death"
            if name == "MoveWithin":
                request = self._move_request(who, TOWN_CODES[1], "8番地")
            else:
                request = self._death_request(who)
            code, text = grpc.StatusCode.FAILED_PRECONDITION, "除票 rule"
        request_id = self._new_id("refused")
        self._refused(name, request, request_id, code, text)
        self._refused(name, request, request_id, code, text)  # a refusal is not an answer to keep
        if ghost:
            assert ghost not in self._names_in_register(), f"{ghost} written by a refused request"
        assert _leftovers(NET)[1] == 0, "住民票コード still reserved for a refused request"

    # One crash per example at most (a budget of the run would make the rules drawn depend on earlier examples,
    # which hypothesis refuses as flaky data generation).
    @precondition(lambda self: not self.crashed)
    @rule(data=st.data(), moment=st.sampled_from(MOMENTS))
    def crash_kizon(self, data, moment):
        """kill -9 of kizon while a change is on its way."""
        self._crash(KIZON, data, moment)

    @precondition(lambda self: not self.crashed)
    @rule(data=st.data(), moment=st.sampled_from(MOMENTS))
    def crash_cs(self, data, moment):
        """kill -9 of the 市町村CS while a change is on its way."""
        self._crash(CS, data, moment)

    def _crash(self, victim, data, moment):
        """kill -9 of a node while a change is on its way (once kizon wrote its intent, or some seconds after the
        call began), then up(); the change is retried with its id until answered (the first reply if there was
        one), and only then counted."""
        current = self._current()
        if current and data.draw(st.booleans(), label="転居"):
            who = data.draw(st.sampled_from(current), label="who")
            name, request = "MoveWithin", self._move_request(who, TOWN_CODES[2], f"{next(SERIAL)}番地")
        else:
            name, request = "MoveIn", self._abroad_request(TOWN_CODES[1], f"{next(SERIAL)}番地")
        request_id = self._new_id(f"crash-{name}")
        first = {}

        def attempt():
            try:
                first["reply"] = self.counter(self._method(name), request, request_id=request_id, timeout=20)
            except grpc.RpcError as exc:
                first["error"] = exc

        caller = threading.Thread(target=attempt, daemon=True)
        caller.start()
        if moment == "intent":
            intent_written(NET)
        else:
            time.sleep(moment)
        kill(NET, victim)
        caller.join(timeout=30)
        assert not caller.is_alive(), "the call to the killed node never returned"
        NET.up()  # (kill returned once the node and its sockets were gone)
        self.crashed = True
        if "error" in first:
            assert first["error"].code() in RETRYABLE, (first["error"].code().name, first["error"].details())
        reply = self._change(name, request, request_id)
        if "reply" in first:
            assert reply == first["reply"], "a retry after the crash answered differently"
        CRASHES.append((victim, moment, "answered" if "reply" in first else first["error"].code().name))
        self._apply(name, request, reply)

    # -- checks ---------------------------------------------------------------------------------------------
    @invariant()
    def kizon_agrees_with_the_model(self):
        for who in self.people.values():
            record = self.counter(self.counter.kizon.GetResident, key(who.code))
            got = (record.name_kanji, record.status, record.household_number, record.town_code, record.address_line,
                   record.history_number, record.is_latest)
            want = (who.name, CURRENT if who.current else REMOVED, who.household, who.town, who.line, who.history, True)
            assert got == want, f"{who.code}: kizon has {got}, the model {want}"

    def teardown(self):
        try:
            self._consistent()
            self._register_is_what_was_acknowledged()
            assert _leftovers(NET) == (0, 0), "(unsettled intents at kizon, 住民票コード left reserved at the CS)"
            self._one_current_residence()
            self._atena_has_everyone()
        finally:
            self.counter.close()
            self.manager.close()

    def _consistent(self, timeout=30.0):
        """整合性確認: no difference, and the four registers hold every acknowledged person (polled: national
        catches up through the outboxes)."""
        deadline = time.monotonic() + timeout
        while True:
            report = self.manager(self.manager.kizon.CheckConsistency,
                                  common_pb2.ConsistencyRequest(municipality_code=MUNICIPALITY))
            counts = (report.records_kizon, report.records_cs, report.records_prefecture, report.records_national)
            if not report.differences and counts == (len(ACKED),) * 4:
                return
            assert time.monotonic() < deadline, \
                f"not consistent: counts {counts} for {len(ACKED)} acknowledged; {list(report.differences)[:10]}"
            time.sleep(0.2)

    def _register_is_what_was_acknowledged(self):
        """Every acknowledged person once (none missing, no ghost), with the status last acknowledged."""
        export = self._register()
        codes = Tally(r.resident_code for r in export)
        assert max(codes.values()) == 1
        assert set(codes) == set(ACKED), f"ghosts {set(codes) - set(ACKED)}, missing {set(ACKED) - set(codes)}"
        names = Tally(r.name_kanji for r in export)
        assert max(names.values()) == 1, f"written twice: {[n for n, c in names.items() if c > 1]}"
        assert {r.resident_code: r.status for r in export} == ACKED

    def _atena_has_everyone(self, timeout=30.0):
        """団体内統合宛名: one entry per acknowledged person once kizon's feed is delivered (no ghost there either)."""
        atena = NET.topology.find("atena", MUNICIPALITY)
        deadline = time.monotonic() + timeout
        while (entries := node_status(NET, atena, counts=True).counts["entries"]) != len(ACKED):
            assert time.monotonic() < deadline, f"atena holds {entries} entries for {len(ACKED)} acknowledged people"
            time.sleep(0.2)

    def _one_current_residence(self):
        """National knows each person of this example as current in this municipality only, or nowhere."""
        for who in self.people.values():
            residence = NATIONAL.CheckResidence(identity_pb2.ResidenceQuery(
                resident_code=who.code, municipality_code="142115"), timeout=10)
            assert residence.known
            assert list(residence.current_in) == ([MUNICIPALITY] if who.current else []), (who, residence)


seed(14)(IntegrityMachine)  # the same steps every run; this seed kills kizon and the CS, some right after an intent

SETTINGS = settings(max_examples=5, stateful_step_count=15, deadline=None, suppress_health_check=list(HealthCheck),
                    database=None, phases=(Phase.explicit, Phase.generate), print_blob=False)


@pytest.fixture(scope="module")
def integrity_network(tmp_path_factory):
    """A network of its own: the machine kills its nodes."""
    net = make_network(tmp_path_factory.mktemp("integrity"))
    net.up()
    yield net
    net.down()


def test_integrity_machine(integrity_network):
    """The state machine: five examples of up to fifteen steps, with kills of kizon and of the CS among them."""
    global NET, NATIONAL
    NET = integrity_network
    ACKED.clear()
    CRASHES.clear()
    with channel(NET.topology.find("national"), node_cert(NET.pki, "cs-142115")) as ch:
        NATIONAL = national_pb2_grpc.NationalServerStub(ch)
        run_state_machine_as_test(IntegrityMachine, settings=SETTINGS)
    print(f"crashes: {CRASHES}; {len(ACKED)} people acknowledged")
    assert {victim for victim, _, _ in CRASHES} == {KIZON, CS}, f"the run did not crash both nodes: {CRASHES}"
    assert any(moment == "intent" for _, moment, _ in CRASHES), "no kill came between an intent and its commit"
