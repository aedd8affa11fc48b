"""Messages, not tracebacks: every everyday mistake ends in one line that says what is wrong and what to do,
with a non-zero exit; the commands that used to surprise now do what a user expects."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import pytest
from cryptography import x509

from conftest import make_network


def cli(state_dir, *args, timeout: float = 120) -> subprocess.CompletedProcess:
    """`testbed --state-dir DIR ARGS...` as a user runs it."""
    run = subprocess.run([sys.executable, "-m", "testbed.cli", "--state-dir", str(state_dir), *args],
                         capture_output=True, text=True, timeout=timeout)
    assert "Traceback" not in run.stdout + run.stderr, run.stdout[-2000:] + run.stderr[-2000:]
    return run


def one_line(run: subprocess.CompletedProcess, *words: str) -> None:
    """A non-zero exit and one line of message (progress bars aside) with the words."""
    lines = [line for line in run.stderr.splitlines() if line.strip() and "%|" not in line]
    assert run.returncode != 0 and len(lines) == 1, run.stderr
    for word in words:
        assert word in run.stderr, run.stderr


@pytest.fixture
def down(tmp_path):
    """A network with its PKI and topology, not running."""
    network = make_network(tmp_path)
    network.topology.save(tmp_path / "topology.yaml")
    return network


def test_commands_against_a_network_that_is_down(down):
    """consistency, load and batch purge with nothing running: one line each, naming `testbed status`."""
    for args in (["consistency", "142140"], ["load", "--residents", "10"], ["batch", "purge"]):
        one_line(cli(down.state_dir, *args), "UNAVAILABLE", "testbed status")


def test_an_unknown_municipality_and_a_malformed_audit_key(down):
    """`consistency 999999` names the municipalities there are; `audit follow 12345` names the keys it follows."""
    one_line(cli(down.state_dir, "consistency", "999999"), "no municipality '999999'", "142140 伊勢原市")
    one_line(cli(down.state_dir, "audit", "follow", "12345"), "住民票コード (11 digits)")


def test_state_dir_and_topology_after_the_subcommand(down):
    """`testbed status --state-dir DIR` works as `testbed --state-dir DIR status` does."""
    run = subprocess.run([sys.executable, "-m", "testbed.cli", "status", "--state-dir", str(down.state_dir), "--json"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and '"name": "kizon-142140"' in run.stdout  # every node listed, all down


def test_revoking_twice_and_reissuing(down):
    """A second revocation says it was already revoked; `pki reissue` gives a new certificate and revokes the old."""
    terminal = "spiffe://testbed.jp/lg/142140/terminal/T0002"
    assert cli(down.state_dir, "pki", "revoke", terminal).returncode == 0
    again = cli(down.state_dir, "pki", "revoke", terminal)
    assert again.returncode == 0 and "already revoked" in again.stdout
    cert_path = down.pki.client_files("terminal-142140-T0002")[0]
    old = x509.load_pem_x509_certificate(cert_path.read_bytes()).serial_number
    fresh = cli(down.state_dir, "pki", "reissue", terminal)
    assert fresh.returncode == 0 and "reissued" in fresh.stdout
    new = x509.load_pem_x509_certificate(cert_path.read_bytes()).serial_number
    assert new != old and str(new) in fresh.stdout
    one_line(cli(down.state_dir, "pki", "reissue", "spiffe://testbed.jp/lg/142140/terminal/T9999"), "no certificate")


def test_up_with_a_port_taken_names_the_port(down):
    """Another program on a node's port: `up` says which port of which node, and by whom, before starting anything."""
    national = down.topology.find("national")
    host, port = national.address.rsplit(":", 1)
    with socket.socket() as squatter:
        squatter.bind((host, int(port)))
        squatter.listen()
        run = cli(down.state_dir, "up")
    one_line(run, f"port {port} of national", "taken")
    assert not any(down.pid(n.name) for n in down.topology.all_nodes)
    with socket.socket() as squatter:  # the same from the main job, which brings the network up itself
        squatter.bind((host, int(port)))
        squatter.listen()
        run = cli(down.state_dir, "run", "march-peak", "--residents", "100", "--minutes", "1")
    one_line(run, f"port {port} of national", "taken")
    assert not any(down.pid(n.name) for n in down.topology.all_nodes)
    from testbed import links
    with socket.socket() as squatter:  # with relayed links: refused before the relay starts, none left behind
        squatter.bind((host, int(port)))
        squatter.listen()
        run = cli(down.state_dir, "up", "--links")
    one_line(run, f"port {port} of national", "taken")
    assert links.running(links.Paths(down.state_dir)) is None


def test_up_continues_a_stopped_node_and_load_names_the_seed(down):
    """A node stopped with SIGSTOP is continued by `up`; loading the same seed twice names --seed."""
    down.up()
    try:
        pid = down.pid("card")
        os.kill(pid, signal.SIGSTOP)
        run = cli(down.state_dir, "up", timeout=60)
        assert run.returncode == 0, run.stderr
        assert cli(down.state_dir, "load", "--residents", "20", "--municipality", "142140", "--seed", "7").returncode == 0
        one_line(cli(down.state_dir, "load", "--residents", "20", "--municipality", "142140", "--seed", "7"),
                 "--seed")
    finally:
        down.down()


def test_the_tour_leaves_the_users_network_alone(down):
    """`testbed tour` runs on a network of its own: the user's keeps running, with nothing added to it."""
    down.up()
    try:
        pids = {n.name: down.pid(n.name) for n in down.topology.all_nodes}
        run = cli(down.state_dir, "tour", timeout=600)
        assert run.returncode == 0, run.stdout[-3000:]
        assert "a network of its own" in run.stdout
        assert {n.name: down.pid(n.name) for n in down.topology.all_nodes} == pids
        assert "kizon 0" in cli(down.state_dir, "consistency", "142140").stdout  # nothing loaded into it
    finally:
        down.down()
