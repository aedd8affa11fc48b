"""The replay drives the systems beside the register like the rest (issue 24): 婚姻 and 離婚 at the 戸籍 counter, the
法務省通知 of an 入管 office, and the yearly 裁判員候補者名簿; each acknowledged, and the 住民票 follows by notice."""
from __future__ import annotations

import asyncio

import pytest
from helpers import export_all, poll

from conftest import network_of_its_own
from scenarios.workload import Event, generate
from testbed.client import Counter
from testbed.load import generate_population, load_records
from testbed.replay import replay

A = "142140"


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    """A network with 1,000 residents in 伊勢原市, their 戸籍 (and 在留カード) loaded."""
    for network in network_of_its_own(tmp_path_factory, "replay-systems"):
        records, _ = generate_population(network, A, 1000, seed=5)
        asyncio.run(load_records(network, A, records, show_progress=False))
        yield network


def test_the_annual_scenario_has_the_new_events_at_their_rates():
    """婚姻 3.9 and 離婚 1.5 per 1,000 a year, 法務省通知 in proportion to the foreign residents, one list a year."""
    _, events, _ = generate("annual", {A: 100_000}, seed=2)
    count = {op: sum(1 for e in events if e.op == op) for op in ("婚姻", "離婚", "法務省通知", "裁判員候補者名簿")}
    assert 330 <= count["婚姻"] <= 450 and 110 <= count["離婚"] <= 190 and 1_100 <= count["法務省通知"] <= 1_400
    assert count["裁判員候補者名簿"] == 1
    (jury,) = [e for e in events if e.op == "裁判員候補者名簿"]
    assert jury.args == {"year": 2027, "count": 100}


def test_a_replay_of_marriages_a_divorce_and_the_jury_list(net):
    header = {"scenario": "family-events", "seed": 7, "start": "2026-12-01T10:00:00", "days": 1,
              "municipalities": {A: 1000}, "events": 5}
    events = [Event(0.0, "婚姻", A), Event(0.1, "婚姻", A), Event(0.2, "離婚", A),
              Event(0.3, "裁判員候補者名簿", A, {"year": 2027, "count": 2}), Event(0.4, "法務省通知", A)]
    result = replay(net, header, events, speed=1000, concurrency=1, show_progress=False)
    assert result["errors"] == 0, result
    done = {op: o["count"] for op, o in result["operations"].items()}
    assert done == {"婚姻": 2, "離婚": 1, "裁判員候補者名簿": 1, "法務省通知": 1}, done
    with Counter(net, A, reads=10_000) as clerk:  # the 婚姻 reached the 住民票: entries made by a 戸籍 notice
        poll(lambda: sum("婚姻届" in r.change_reason_detail for r in export_all(net, clerk)) >= 2, timeout=30,
             what="the 婚姻 on the 住民票")
        poll(lambda: any("法務省通知" in r.change_reason_detail for r in export_all(net, clerk)), timeout=30,
             what="the 法務省通知 on the 住民票")
