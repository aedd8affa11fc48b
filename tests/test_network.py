"""The network's lifecycle with real processes: up, status, durable state across a restart,
clean shutdown, CRL reload while running, and delivery after a node is killed."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import grpc
import pytest

from helpers import eventually, new_resident, record_resident
from protos import common_pb2, cs_pb2_grpc, kizon_pb2_grpc, national_pb2_grpc
from testbed.client import channel, node_cert, operator_metadata, terminal_cert
from testbed.network import Network

OP = operator_metadata("OP0001")


def _get_resident(network, record, terminal="T0001"):
    node = network.topology.find("kizon", record.municipality_code)
    with channel(node, terminal_cert(network.pki, record.municipality_code, terminal)) as ch:
        return kizon_pb2_grpc.KizonStub(ch).GetResident(
            common_pb2.ResidentKey(resident_code=record.resident_code), metadata=OP, timeout=5)


def _national_identity(network, record):
    with channel(network.topology.find("national"), node_cert(network.pki, "cs-142140")) as ch:
        return eventually(lambda: national_pb2_grpc.NationalServerStub(ch).GetIdentity(
            common_pb2.ResidentKey(resident_code=record.resident_code), timeout=5))


def test_up_status_down_with_restart(fresh_network):
    """Ten real processes come up healthy, keep their data across down and up, and stop cleanly."""
    rows = fresh_network.up()
    assert len(rows) == 10 and all(r["healthy"] for r in rows)
    assert len({r["pid"] for r in rows}) == 10
    record = new_resident(random.Random(1), "142140")
    record_resident(fresh_network, record)
    assert _national_identity(fresh_network, record).name_kanji == record.name_kanji

    pids = [r["pid"] for r in rows]
    assert len(fresh_network.down()) == 10
    assert not any(_running(pid) for pid in pids)
    assert not any(r["healthy"] or r["pid"] for r in fresh_network.status())
    for node in fresh_network.topology.nodes:
        assert f"{node.name} stopped" in fresh_network.log_file(node.name).read_text(), "no clean SIGTERM shutdown"

    fresh_network.up()
    assert _get_resident(fresh_network, record).name_kanji == record.name_kanji
    assert _national_identity(fresh_network, record).resident_code == record.resident_code


def test_cli_status_json_and_down(fresh_network):
    """`testbed up`, `testbed status --json` and `testbed down` as a user runs them."""
    fresh_network.topology.save(fresh_network.state_dir / "topology.yaml")
    cli = [sys.executable, "-m", "testbed.cli", "--state-dir", str(fresh_network.state_dir)]
    up = subprocess.run(cli + ["up"], capture_output=True, text=True, timeout=60)
    assert up.returncode == 0, up.stderr
    assert "10/10 nodes healthy" in up.stdout
    status = subprocess.run(cli + ["status", "--json"], capture_output=True, text=True, timeout=30)
    assert status.returncode == 0
    rows = json.loads(status.stdout)
    assert [set(r) for r in rows] == [{"name", "kind", "municipality", "address", "identity", "healthy"}] * 10
    assert {r["name"]: r["municipality"] for r in rows}["national"] is None
    assert {r["kind"] for r in rows} == {"kizon", "cs", "atena", "prefecture", "national", "card", "intermediate"}
    assert all(r["healthy"] for r in rows)
    down = subprocess.run(cli + ["down"], capture_output=True, text=True, timeout=60)
    assert down.returncode == 0 and "stopped 10 nodes" in down.stdout
    after = subprocess.run(cli + ["status", "--json"], capture_output=True, text=True, timeout=30)
    assert after.returncode == 1 and not any(r["healthy"] for r in json.loads(after.stdout))


def test_revocation_takes_effect_without_restart(fresh_network):
    """`testbed pki revoke` on a running network: the next call with that certificate is refused."""
    fresh_network.up()
    record = new_resident(random.Random(2), "142140")
    record_resident(fresh_network, record, terminal="T0002")
    assert _get_resident(fresh_network, record, terminal="T0002").resident_code == record.resident_code
    cli = [sys.executable, "-m", "testbed.cli", "--state-dir", str(fresh_network.state_dir)]
    revoke = subprocess.run(cli + ["pki", "revoke", "spiffe://testbed.jp/lg/142140/terminal/T0002"],
                            capture_output=True, text=True, timeout=30)
    assert revoke.returncode == 0, revoke.stderr
    with pytest.raises(grpc.RpcError) as err:
        _get_resident(fresh_network, record, terminal="T0002")
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "revocation" in err.value.details()
    assert _get_resident(fresh_network, record, terminal="T0001").resident_code == record.resident_code


def test_acknowledged_update_survives_kill_of_cs(fresh_network):
    """kizon acknowledges a 住民票 while its CS is killed (-9); the update arrives once the CS is back."""
    fresh_network.up()
    cs_pid = fresh_network.pid("cs-142140")
    os.kill(cs_pid, signal.SIGKILL)
    while _running(cs_pid):
        time.sleep(0.05)
    records = [new_resident(random.Random(10 + i), "142140", f"停止中 {i}") for i in range(3)]
    for record in records:
        reply = record_resident(fresh_network, record)
        assert reply.atena_number and reply.update_sequence == 0  # acknowledged, CS delivery still pending
    fresh_network.up()  # restarts only the missing node
    sequences = [_national_identity(fresh_network, r).update_sequence for r in records]
    assert sequences == sorted(sequences) and len(set(sequences)) == 3, "order kept, nothing lost"
    with channel(fresh_network.topology.find("cs", "142140"), node_cert(fresh_network.pki, "kizon-142140")) as ch:
        info = cs_pb2_grpc.CommunicationServerStub(ch).GetIdentity(
            common_pb2.ResidentKey(resident_code=records[-1].resident_code), timeout=5)
    assert info.update_sequence == sequences[-1]


def test_bad_input_names_the_rule_and_writes_nothing(network):
    """A 住民票コード with a wrong check digit is INVALID_ARGUMENT naming the rule; nothing is written."""
    record = new_resident(random.Random(3), "142140")
    record.resident_code = record.resident_code[:10] + str((int(record.resident_code[10]) + 1) % 10)
    with pytest.raises(grpc.RpcError) as err:
        record_resident(network, record)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "住民票コード rule" in err.value.details()
    with pytest.raises(grpc.RpcError) as err:
        _get_resident(network, record)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    good = new_resident(random.Random(4), "142140")
    record_resident(network, good)
    with pytest.raises(grpc.RpcError) as err:
        record_resident(network, good)
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert _get_resident(network, good).history_number == 1


def _running(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False
