"""Prometheus metrics: each node serves them over HTTPS to its domain's monitor alone; calls, latencies, outboxes,
applied 更新順番号 and the process's figures are there."""
from __future__ import annotations

import socket
import ssl
import subprocess
import sys

import pytest

from helpers import move_in_from_abroad
from testbed.client import Counter, fetch_metrics, monitor_cert, terminal_cert


def values(body: str) -> dict[str, float]:
    """Series → value of an exposition."""
    found = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            series, value = line.rsplit(" ", 1)
            found[series] = float(value)
    return found


def test_the_monitor_reads_every_figure(network):
    """After a 国外転入, the CS's metrics count the call, time it, and show the outboxes and the applied 更新順番号."""
    with Counter(network, "142140") as clerk:
        move_in_from_abroad(clerk)
    cs = network.topology.find("cs", "142140")
    status, body = fetch_metrics(cs, monitor_cert(network.pki, "cs"))
    assert status == 200
    seen = values(body)
    assert seen['testbed_requests_total{code="OK",method="/testbed.v1.CommunicationServer/SubmitIdentityUpdateGroup"}'] >= 1
    assert seen['testbed_request_seconds_count{method="/testbed.v1.CommunicationServer/SubmitIdentityUpdateGroup"}'] >= 1
    assert 'testbed_outbox_items{target="prefecture"}' in seen and 'testbed_outbox_oldest_seconds{target="prefecture"}' in seen
    assert seen['testbed_outbox_dead_letters{target="notice:142115"}'] == 0
    assert seen['testbed_outbox_blocked{target="prefecture"}'] == 0
    assert seen['testbed_applied_sequence{municipality="142140"}'] >= 1
    assert seen["testbed_audit_entries_total"] >= 1 and seen["testbed_store_bytes"] > 0
    assert seen["testbed_process_resident_bytes"] > 0 and "testbed_process_cpu_seconds_total" in seen
    assert not [s for s in seen if s.endswith("_created") or "_created{" in s]


@pytest.mark.parametrize("who", ["terminal", "other-monitor", "kit"])
def test_anyone_else_gets_403(network, who):
    """A terminal, the monitor of another domain and a kit certificate are refused, naming the rule."""
    from testbed.client import bad_cert
    cs = network.topology.find("cs", "142140")
    cert = {"terminal": terminal_cert(network.pki, "142140", "T0001"),
            "other-monitor": monitor_cert(network.pki, "kizon"),
            "kit": bad_cert(network.pki, "wrong_role")}[who]
    status, body = fetch_metrics(cs, cert)
    assert status == 403 and ("metrics rule" in body or "kit" in body or "rule" in body), body


def test_no_client_certificate_no_handshake(network):
    """Without a client certificate the TLS handshake itself fails: nothing is served."""
    cs = network.topology.find("cs", "142140")
    host, port = cs.metrics_address.rsplit(":", 1)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        with context.wrap_socket(socket.create_connection((host, int(port)), timeout=5)) as tls:
            tls.sendall(b"GET /metrics HTTP/1.1\r\n\r\n")
            if not tls.recv(100):
                raise ConnectionError("closed without an answer")


def test_the_metrics_command(network):
    """`testbed metrics NODE` prints the series for a person; an unknown node is a one-line error."""
    cli = [sys.executable, "-m", "testbed.cli", "--state-dir", str(network.state_dir), "metrics"]
    run = subprocess.run(cli + ["national"], capture_output=True, text=True, timeout=30)
    assert run.returncode == 0 and "testbed_node_info" in run.stdout and "# HELP" not in run.stdout
    run = subprocess.run(cli + ["nowhere"], capture_output=True, text=True, timeout=30)
    assert run.returncode == 2 and run.stderr.count("\n") == 1 and "no node 'nowhere'" in run.stderr
