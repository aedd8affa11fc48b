"""The network's lifecycle with real processes: up, status, durable state across a restart,
clean shutdown, CRL reload while running, and no acknowledged update lost when a node is killed."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import grpc
import pytest

from helpers import TODAY, NotYet, address, eventually, kill, move_in_from_abroad, person, poll
from protos import common_pb2, identity_pb2, kizon_pb2, national_pb2_grpc
from testbed.client import Counter, channel, node_cert, node_status
from testbed.network import alive


def _national_identity(network, code, timeout=30):
    with channel(network.topology.find("national"), node_cert(network.pki, "cs-142140")) as ch:
        return eventually(lambda: national_pb2_grpc.NationalServerStub(ch).GetIdentity(
            common_pb2.ResidentKey(resident_code=code), timeout=5), timeout)




def test_up_status_down_with_restart(fresh_network):
    """Eighteen real processes (sixteen nodes and the two empty migration targets) come up healthy, keep their data across
    down and up, and stop cleanly."""
    rows = fresh_network.up()
    assert len(rows) == 18 and all(r["healthy"] for r in rows)
    assert len({r["pid"] for r in rows}) == 18 and sum(r["target"] for r in rows) == 2
    with Counter(fresh_network, "142140") as counter:
        record = move_in_from_abroad(counter)
    assert _national_identity(fresh_network, record.resident_code).name_kanji == record.name_kanji

    pids = [r["pid"] for r in rows]
    assert len(fresh_network.down()) == 18
    assert not any(alive(pid) for pid in pids)
    assert not any(r["healthy"] or r["pid"] for r in fresh_network.status())
    for node in fresh_network.topology.all_nodes:
        assert f"{node.name} stopped" in fresh_network.log_file(node.name).read_text(), "no clean SIGTERM shutdown"

    fresh_network.up()
    with Counter(fresh_network, "142140") as counter:
        again = counter(counter.kizon.GetResident, common_pb2.ResidentKey(resident_code=record.resident_code))
    assert again == record
    assert _national_identity(fresh_network, record.resident_code).resident_code == record.resident_code


def test_cli_status_json_and_down(fresh_network):
    """`testbed up`, `testbed status --json` and `testbed down` as a user runs them."""
    fresh_network.topology.save(fresh_network.state_dir / "topology.yaml")
    cli = [sys.executable, "-m", "testbed.cli", "--state-dir", str(fresh_network.state_dir)]
    up = subprocess.run(cli + ["up"], capture_output=True, text=True, timeout=60)
    assert up.returncode == 0, up.stderr
    assert "18/18 nodes healthy" in up.stdout
    status = subprocess.run(cli + ["status", "--json"], capture_output=True, text=True, timeout=30)
    assert status.returncode == 0
    rows = json.loads(status.stdout)
    assert [set(r) for r in rows] == [{"name", "kind", "municipality", "address", "identity", "healthy", "target"}] * 18
    assert {r["name"]: r["municipality"] for r in rows}["national"] is None
    assert {r["kind"] for r in rows} == {"kizon", "cs", "atena", "koseki", "prefecture", "national", "card", "intermediate",
                                         "moj", "conbini", "centre"}
    assert all(r["healthy"] for r in rows)
    down = subprocess.run(cli + ["down"], capture_output=True, text=True, timeout=60)
    assert down.returncode == 0 and "stopped 18 nodes" in down.stdout
    after = subprocess.run(cli + ["status", "--json"], capture_output=True, text=True, timeout=30)
    assert after.returncode == 1 and not any(r["healthy"] for r in json.loads(after.stdout))


def test_revocation_takes_effect_without_restart(fresh_network):
    """`testbed pki revoke` on a running network: the next call with that certificate is refused."""
    fresh_network.up()
    counter = Counter(fresh_network, "142140", "T0002", "OP0002")
    record = move_in_from_abroad(counter)
    key = common_pb2.ResidentKey(resident_code=record.resident_code)
    assert counter(counter.kizon.GetResident, key).resident_code == record.resident_code
    cli = [sys.executable, "-m", "testbed.cli", "--state-dir", str(fresh_network.state_dir)]
    revoke = subprocess.run(cli + ["pki", "revoke", "spiffe://testbed.jp/lg/142140/terminal/T0002"],
                            capture_output=True, text=True, timeout=30)
    assert revoke.returncode == 0, revoke.stderr
    with pytest.raises(grpc.RpcError) as err:
        counter(counter.kizon.GetResident, key)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "revocation" in err.value.details()
    counter.close()
    with Counter(fresh_network, "142140", "T0001") as other:
        assert other(other.kizon.GetResident, key).resident_code == record.resident_code


def test_kill_cs_mid_stream_loses_no_acknowledged_update(fresh_network):
    """kill -9 of the CS during a stream of 転居: calls refused meanwhile are retried with the same
    x-request-id; every update reaches national exactly once and in order, none is written twice."""
    fresh_network.up()
    with Counter(fresh_network, "142140") as counter:
        people = [move_in_from_abroad(counter, person(f"順序 {i}", "ジュンジョ テスト")) for i in range(4)]
        acknowledged, refusals = [], []

        def stream():
            for i in range(300):
                who = people[i % len(people)]
                request = kizon_pb2.MoveWithinRequest(resident_code=who.resident_code,
                                                      address=address("142140", f"{i + 1}番地"), move_date=TODAY)
                deadline = time.monotonic() + 60
                while True:
                    try:
                        reply = counter(counter.kizon.MoveWithin, request, request_id=f"stream-{i}", timeout=5)
                        acknowledged.append((who.resident_code, i + 1, reply.update_sequence))
                        break
                    except grpc.RpcError as exc:
                        assert exc.code() == grpc.StatusCode.UNAVAILABLE, exc.details()
                        assert time.monotonic() < deadline, "the CS did not come back"
                        refusals.append(i + 1)
                        time.sleep(0.05)

        worker = threading.Thread(target=stream)
        worker.start()
        while len(acknowledged) < 40:
            time.sleep(0.01)
        kill(fresh_network, "cs-142140")  # (returns once the process is gone)
        poll(lambda: refusals, what="the stream to be refused by the CS that is gone")
        fresh_network.up()  # restarts only the missing node
        worker.join(timeout=180)
        assert not worker.is_alive()
    assert refusals, "the kill came too late to refuse anything"
    assert len(acknowledged) == 300
    sequences = [seq for _, _, seq in acknowledged]
    assert sequences == sorted(sequences) and len(set(sequences)) == 300, "one 更新順番号 per update, in order"
    last = {code: line for code, line, _ in acknowledged}
    for code, line in last.items():
        info = eventually(lambda: _at_line(fresh_network, code, line), timeout=30)
        assert info.address.endswith(f"{line}番地")
    assert node_status(fresh_network, fresh_network.topology.find("national")).applied["142140"] == max(sequences)
    with Counter(fresh_network, "142140") as counter:
        for who in people:
            history = counter(counter.kizon.GetHistory, common_pb2.ResidentKey(resident_code=who.resident_code))
            lines = [e.address_line for e in history.entries if e.change_reason == "転居"]
            assert len(lines) == len(set(lines)) == 75, "each 転居 written exactly once"


def _at_line(network, code, line):
    info = _national_identity(network, code)
    if not info.address.endswith(f"{line}番地"):
        raise NotYet()
    return info


def test_kill_prefecture_keeps_acknowledging_and_delivers_in_order(fresh_network):
    """With the prefecture killed (-9), the counter still works; once it is back, everything arrives in order."""
    fresh_network.up()
    kill(fresh_network, "prefecture-140007")
    with Counter(fresh_network, "142140") as counter:
        records = [move_in_from_abroad(counter, person(f"待機 {i}", "タイキ テスト")) for i in range(5)]
    cs = node_status(fresh_network, fresh_network.topology.find("cs", "142140"))
    assert cs.outbox_pending >= 5
    fresh_network.up()
    national = [_national_identity(fresh_network, r.resident_code) for r in records]
    assert [i.update_sequence for i in national] == sorted(i.update_sequence for i in national)
    assert any(i.recovery_update_sequence for i in national), "re-sent updates carry the 異常時更新順番号"


def test_bad_input_names_the_rule_and_writes_nothing(network):
    """A 転入 whose certificate carries a bad 住民票コード is INVALID_ARGUMENT naming the rule; nothing is written."""
    with Counter(network, "142140") as counter:
        bad = person(resident_code="24727059600")
        certificate = identity_pb2.MoveOutCertificate(person=bad, issuing_municipality_code="142115",
                                                   planned_move_out_date=TODAY)
        with pytest.raises(grpc.RpcError) as err:
            counter(counter.kizon.MoveIn, kizon_pb2.MoveInRequest(
                person=bad, address=address("142140"), move_in_date=TODAY, notification_date=TODAY,
                certificate=certificate))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "住民票コード rule" in err.value.details()
        with pytest.raises(grpc.RpcError) as err:
            counter(counter.kizon.GetResident, common_pb2.ResidentKey(resident_code="24727059608"))
        assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_topology_with_an_unknown_role_or_a_contractor_with_more_is_refused():
    """The roles of the topology's operators are those of nodes/roles.py; a 委託先's operator holds contractor alone."""
    from nodes.topology import Topology
    base = Topology.load().to_dict()
    for roles, said in ((["clerk", "superuser"], "unknown role superuser"),
                        (["contractor", "individual_number"], "holds the role contractor alone")):
        data = {**base, "municipalities": [dict(base["municipalities"][0], operators=[{"id": "OP0009", "roles": roles}]),
                                           *base["municipalities"][1:]]}
        with pytest.raises(ValueError, match=said):
            Topology.from_dict(data)
