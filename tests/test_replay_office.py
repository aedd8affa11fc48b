"""The replay drives the seed's other 異動 like the rest: a 国外転出 at the counter and the office's own 職権記載 and
職権消除 (made by the operator with the role official), each acknowledged and then found in the register."""
from __future__ import annotations

from helpers import key, move_in_from_abroad, person

from scenarios.workload import Event
from testbed.client import Counter
from testbed.replay import replay

A = "142140"


def test_a_replay_of_the_office_and_emigration_events(network, clerk):
    for line in ("31番地", "32番地"):  # (residents for the events to act on, whatever else the network holds)
        move_in_from_abroad(clerk, person("再生 対象", "サイセイ タイショウ", "1966-06-06"), line=line)
    header = {"scenario": "office-events", "seed": 7, "start": "2026-12-01T10:00:00", "days": 1,
              "municipalities": {A: 10}, "events": 4}
    events = [Event(0.0, "職権記載", A), Event(0.1, "職権記載", A), Event(0.2, "国外転出", A), Event(0.3, "職権消除", A)]
    result = replay(network, header, events, speed=1000, concurrency=1, show_progress=False)
    assert result["errors"] == 0, result
    done = {op: o["count"] for op, o in result["operations"].items()}
    assert done == {"職権記載": 2, "国外転出": 1, "職権消除": 1}, done
    reasons = {}
    with Counter(network, A, terminal="T0003", operator="OP0003") as official:
        for _, code, number, _ in result["acknowledged_records"]:
            reasons.setdefault(official(official.kizon.GetResident, key(code)).change_reason, set()).add(code)
    assert {"職権記載", "国外転出", "職権消除"} <= set(reasons), reasons
