"""Test helpers: people to register and calls to make against a live network."""
from __future__ import annotations

import os
import random
import signal
import sqlite3
import time
from contextlib import contextmanager

import grpc
import pytest

import nodes.reasons  # noqa: F401 (the catalogue, filled)
from nodes.clock import office_today
from nodes.refusal import CATALOGUE, PEER_REFUSED, rule_of
from protos import common_pb2, kizon_pb2, records_pb2
from testbed import requests
from testbed.client import Counter, NotYet, eventually  # noqa: F401 (re-exported for the tests)

TODAY = office_today().isoformat()  # the nodes measure dates by the office's clock (Japan)


@contextmanager
def refused(code: grpc.StatusCode, *rules: str, reason: str = ""):
    """The call inside is refused with this status, a rule of the catalogue whose status it is (the ErrorInfo's
    reason: `reason` when given), and a message naming each of the rules."""
    with pytest.raises(grpc.RpcError) as caught:
        yield caught
    error = caught.value
    assert error.code() == code, error.details()
    named = rule_of(error)
    assert named in CATALOGUE, f"the refusal names no rule of the catalogue ({named!r}): {error.details()}"
    assert not reason or named == reason, f"refused under {named}, not {reason}: {error.details()}"
    assert CATALOGUE[named].code == code or CATALOGUE[named] is PEER_REFUSED, f"{named} is not a {code.name} rule"
    for rule in rules:
        assert rule in error.details(), error.details()


def poll(look, timeout: float = 10.0, what: str = "the condition"):
    """look() until it returns something truthy (bounded in time); that value."""
    deadline = time.monotonic() + timeout
    while not (found := look()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return found


def key(code: str) -> common_pb2.ResidentKey:
    """The key of a person."""
    return common_pb2.ResidentKey(resident_code=code)



TOWNS = {"142140": "004000", "142115": "010000"}  # a 町字 of each municipality (伊勢原, 秦野市 …)


def person(name: str = "試験 太郎", kana: str = "シケン タロウ", birth: str = "1990-01-02", sex: str = "1",
           **items) -> records_pb2.ResidentRecord:
    """The person items a counter clerk types in."""
    return records_pb2.ResidentRecord(name_kanji=name, name_kana=kana, birth_date=birth, sex=sex, **items)


def address(municipality: str, line: str = "1番1号", katagaki: str = "") -> records_pb2.Address:
    """An address on one of the municipality's own 町字."""
    return records_pb2.Address(town_code=TOWNS[municipality], address_line=line, katagaki=katagaki)


def move_in_from_abroad(counter: Counter, who: records_pb2.ResidentRecord | None = None, household: str = "",
                        line: str | None = None, **kw) -> records_pb2.ResidentRecord:
    """国外転入 of a new resident (a new 住民票コード and 個人番号); the new 住民票."""
    who = who or person()
    line = line or f"{random.randint(1, 2000)}番地"
    reply = counter(counter.kizon.MoveIn, requests.move_in_from_abroad(who, address(counter.municipality, line),
                                                                       household=household, today=TODAY), **kw)
    return reply.records[0]


def issue_card(counter: Counter, code: str, pin: str = "1234", timeout: float = 15.0):
    """A 個人番号カード for a resident: applied for, made by the card system's batch, issued at the counter with a
    PIN; the card's status (with its number)."""
    from protos import card_pb2
    counter(counter.kizon.ChangeCard, card_pb2.CardRequest(action=card_pb2.APPLY, resident_code=code))
    deadline = time.monotonic() + timeout
    while True:  # ISSUE is refused until the manufacturing batch has made the card
        try:
            return counter(counter.kizon.ChangeCard, card_pb2.CardRequest(action=card_pb2.ISSUE, resident_code=code, pin=pin))
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.FAILED_PRECONDITION or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def card_holder(counter: Counter, who: records_pb2.ResidentRecord | None = None, pin: str = "1234",
                timeout: float = 15.0) -> records_pb2.ResidentRecord:
    """A new resident (国外転入) holding an issued 個人番号カード. The 住民票 as it then stands."""
    record = move_in_from_abroad(counter, who)
    issue_card(counter, record.resident_code, pin, timeout)
    return counter(counter.kizon.GetResident, key(record.resident_code))


def kill(network, name: str) -> None:
    """kill -9 of one node; returns once the process is gone."""
    from testbed.network import alive
    pid = network.pid(name)
    assert pid, f"{name} is not running"
    os.kill(pid, signal.SIGKILL)
    while alive(pid):
        time.sleep(0.01)


def intent_written(network, municipality: str = "142140", timeout: float = 3.0) -> bool:
    """Wait (bounded) until kizon holds an intent not yet committed: a change is then between kizon and its
    CS. Polled read-only from kizon's store (WAL: the reader never blocks the node)."""
    path = network.state_dir / "data" / f"kizon-{municipality}" / "store.sqlite"
    deadline = time.monotonic() + timeout
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1, isolation_level=None)
    try:
        while time.monotonic() < deadline:
            try:
                if db.execute("SELECT 1 FROM intents LIMIT 1").fetchone():
                    return True
            except sqlite3.OperationalError:
                pass
            time.sleep(0.0005)
        return False
    finally:
        db.close()


def export_all(network, counter: Counter, purpose: str = "試験: 登録の確認") -> list[records_pb2.ResidentRecord]:
    """Every 住民票 of counter's municipality (除票 included), under a manager's approval for this one output."""
    from nodes.guard import APPROVAL_KEY
    from testbed.client import bulk_approval
    token = bulk_approval(network, counter.municipality, counter.operator, counter.terminal, purpose, 10_000_000)
    return list(counter(counter.kizon.ExportResidents, kizon_pb2.ExportRequest(include_removed=True, purpose=purpose),
                        metadata=((APPROVAL_KEY, token),)))


def minted_cert(network, folder, domain: str, identity: str):
    """A client certificate the network's own CA of domain issues to identity now (whether or not the topology
    names it), written under folder."""
    from certs.pki import cert_pem, issue_leaf, key_pem, write_private, write_public
    from nodes.tls import ClientCert
    ca = network.pki.authority(domain)
    cert, private = issue_leaf(ca, identity)
    folder = folder / identity.rsplit("/", 2)[-2]
    folder.mkdir(parents=True, exist_ok=True)
    write_public(folder / "client.pem", cert_pem(cert) + cert_pem(ca.cert))
    write_private(folder / "client.key", key_pem(private))
    return ClientCert(folder / "client.pem", folder / "client.key", network.pki.trust_bundle)


def invariants_hold(network, timeout: float = 30.0, outbox_age_limit: float = 60.0) -> None:
    """`testbed check` of the network passes (waiting, bounded, for what is still travelling)."""
    from testbed.check import check_network, report_lines
    deadline = time.monotonic() + timeout
    while not (report := check_network(network, outbox_age_limit=outbox_age_limit)).ok:
        assert time.monotonic() < deadline, "\n".join(report_lines(report))
        time.sleep(0.2)
