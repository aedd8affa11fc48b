"""Starting and stopping the testbed's helper processes (testbed/processes.py), and the modes of a network kept as
one record (testbed/modes.py): fast, with tiny `python -c` helpers and no network started."""
from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import time

import pytest

from testbed import modes, processes
from testbed.network import Network, NetworkError
from testbed.topology import Topology

MARKER = b"tiny-helper"
# Binds port 0 on loopback, publishes the port it got (atomically), and serves until SIGTERM.
BINDS_ZERO = """
import os, signal, socket, sys
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
print("listening", flush=True)
with open(sys.argv[1] + ".new", "w") as f:
    f.write(str(s.getsockname()[1]))
os.replace(sys.argv[1] + ".new", sys.argv[1])
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
while True:
    s.accept()[0].close()
"""


def helper(code: str, *args: str) -> list[str]:
    return [sys.executable, "-c", code, *args, MARKER.decode()]


def test_a_helper_that_binds_port_0_is_found_by_its_record_and_stopped(tmp_path):
    """The helper publishes the port it got; start_helper waits for it (no fixed time), records pid and port (JSON,
    0600); the record finds the process; stop_recorded stops it and removes the record and its leftovers."""
    record_file, log, port_file = tmp_path / "run" / "tiny.json", tmp_path / "logs" / "tiny.log", tmp_path / "tiny.port"
    started = processes.start_helper(helper(BINDS_ZERO, str(port_file)), record_file, log, MARKER, what="the tiny helper",
                                     ready=processes.port_file(port_file), timeout=10)
    try:
        assert started.port and started.port == int(port_file.read_text())
        socket.create_connection(("127.0.0.1", started.port), timeout=5).close()
        assert stat.S_IMODE(record_file.stat().st_mode) == 0o600 and stat.S_IMODE(log.stat().st_mode) == 0o600
        kept = json.loads(record_file.read_text())
        assert kept["pid"] == started.pid and kept["ports"] == [started.port] and kept["marker"] == MARKER.decode()
        assert kept["started"] and kept["start_ticks"] == processes.start_ticks(started.pid)
        assert processes.running(record_file, MARKER) == started.pid
        assert processes.recorded(record_file) == started  # (the record's own marker)
        assert processes.running(record_file, b"another-helper") is None
        again = processes.start_helper(helper(BINDS_ZERO, str(port_file)), record_file, log, MARKER, what="the tiny helper",
                                       ready=processes.port_file(port_file))
        assert again == started, "started once: a second start finds the one that runs"
        assert os.getpgid(started.pid) == started.pid, "in a session of its own"
        assert "listening" in log.read_text()
    finally:
        assert processes.stop_recorded(record_file, MARKER, port_file)
    assert not processes.alive(started.pid)
    assert not record_file.exists() and not port_file.exists()
    assert processes.running(record_file, MARKER) is None
    assert not processes.stop_recorded(record_file, MARKER), "nothing to stop any more"


def test_a_helper_that_dies_at_start_says_so_with_the_last_line_of_its_log(tmp_path):
    """It exits before it is ready: HelperFailed at once (not at the deadline) with its exit status and the last
    line it wrote (not one of an earlier run in the same log), the log's path; no record left."""
    record_file, log = tmp_path / "tiny.json", tmp_path / "tiny.log"
    log.write_text("an earlier run's last words\n")
    began = time.monotonic()
    with pytest.raises(processes.HelperFailed) as failed:
        processes.start_helper(helper("import sys; print('starting'); sys.exit('cannot bind 127.0.0.1:1: taken')"),
                               record_file, log, MARKER, what="the tiny helper",
                               ready=processes.port_file(tmp_path / "never"), timeout=30)
    assert time.monotonic() - began < 10
    assert str(failed.value) == (f"the tiny helper did not start (it exited with status 1: cannot bind 127.0.0.1:1: "
                                 f"taken); see {log}")
    assert isinstance(failed.value, RuntimeError) and not record_file.exists()

    with pytest.raises(processes.HelperFailed, match=r"did not start \(it exited with status 3\); see"):
        processes.start_helper(helper("import sys; sys.exit(3)"), record_file, log, MARKER, what="the tiny helper",
                               ready=lambda: None)


def test_a_helper_not_ready_in_time_is_stopped(tmp_path):
    """A helper that never gets ready: HelperFailed after the timeout, and the process is not left running."""
    record_file, log = tmp_path / "tiny.json", tmp_path / "tiny.log"
    with pytest.raises(processes.HelperFailed, match=r"did not start \(not ready after 0.5 s: waiting\)") as failed:
        processes.start_helper(helper("import time; print('waiting', flush=True); time.sleep(60)"), record_file, log,
                               MARKER, what="the tiny helper", ready=lambda: None, timeout=0.5)
    assert str(log) in str(failed.value) and not record_file.exists()
    assert not [p for p in _children() if MARKER in p]


def _children() -> list[bytes]:
    found = []
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read()
            if processes.alive(int(pid)):
                found.append(cmdline)
        except (OSError, ValueError):
            pass
    return found


def test_a_stale_record_is_not_running(tmp_path):
    """A record of a process that has exited, of a pid now another process's (another start time, or a command line
    without the marker), or unreadable: not running. A bare pid (an earlier version's record) is still read."""
    record_file = tmp_path / "tiny.json"
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    processes.write_record(record_file, processes.Record(gone.pid, MARKER.decode()))
    assert processes.running(record_file, MARKER) is None and processes.running(record_file) is None

    live = subprocess.Popen(helper("import time; time.sleep(60)"))
    try:
        record = processes.Record(live.pid, MARKER.decode(), start_ticks=processes.start_ticks(live.pid))
        processes.write_record(record_file, record)
        assert processes.running(record_file, MARKER) == live.pid
        processes.write_record(record_file, processes.Record(live.pid, MARKER.decode(), start_ticks=record.start_ticks - 1))
        assert processes.running(record_file, MARKER) is None, "the pid was reused: another process started then"
        processes.write_record(record_file, processes.Record(os.getpid(), MARKER.decode(),
                                                             start_ticks=processes.start_ticks(os.getpid())))
        assert processes.running(record_file) is None, "a live process without the marker is not the one meant"
        record_file.write_text(str(live.pid))  # an earlier version's pid file
        assert processes.running(record_file, MARKER) == live.pid and processes.running(record_file) == live.pid
        assert processes.running(record_file, b"another-helper") is None
        record_file.write_text("{not json")
        assert processes.read_record(record_file) is None and processes.running(record_file) is None
    finally:
        live.kill()
        live.wait()


# -- the modes ----------------------------------------------------------------------------------------------------
def _stand_in_node(network: Network) -> subprocess.Popen:
    """A process recorded as a running node (alive, listening nowhere): for `up` the network runs."""
    node = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    network.pid_file("national").parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    network.pid_file("national").write_text(str(node.pid))
    return node


def test_modes_are_one_record_and_an_earlier_versions_markers_are_read(tmp_path):
    """The marker files of an earlier version are read while there is no record; the record (JSON, 0600) replaces
    them; links and isolation come from the files the nodes read, not from the record."""
    network = Network(tmp_path, Topology.load())
    assert network.modes() == modes.Modes() and not network.weakened() and not network.confined()
    (tmp_path / "weaken").write_text("audit-key,no-mtls")
    (tmp_path / "confine").touch()
    (tmp_path / "simulated-clock").touch()
    assert network.weakened() == ("audit-key", "no-mtls") and network.confined() and network.simulated_clock()
    assert not network.relayed() and not network.isolated()
    modes.save(tmp_path, modes.Modes(("audit-key",), False, True, True, True))
    assert not any((tmp_path / marker).exists() for marker in modes.MARKERS)
    assert stat.S_IMODE((tmp_path / modes.FILE).stat().st_mode) == 0o600
    assert json.loads((tmp_path / modes.FILE).read_text()) == {"weaken": ["audit-key"], "confine": False,
                                                               "simulated_clock": True}
    assert network.modes() == modes.Modes(("audit-key",), False, False, False, True)


def test_up_names_every_mode_the_running_nodes_differ_in(tmp_path):
    """Nodes running (here a stand-in) in other modes than asked: one refusal naming each, nothing changed; a
    single difference reads as it always has."""
    network = Network(tmp_path, Topology.load())
    modes.save(tmp_path, modes.Modes(("audit-key",), True, False, False, False))
    node = _stand_in_node(network)
    try:
        with pytest.raises(NetworkError) as refused:
            network.up(weaken=(), confine=False, links=True, simulated_clock=True)
        assert str(refused.value) == ("nodes are running with other weaknesses, confined, without relayed links and "
                                      "without the simulated clock; `testbed down` first")
        with pytest.raises(NetworkError, match=r"^nodes are running not isolated; `testbed down` first$"):
            network.up(isolated=True)
        with pytest.raises(NetworkError, match=r"^nodes are running with other weaknesses; `testbed down` first$"):
            network.up(weaken=("no-mtls",), confine=True)
        assert network.modes() == modes.Modes(("audit-key",), True, False, False, False)
        assert not (tmp_path / "pki").exists(), "refused before anything was made"
    finally:
        node.kill()
        node.wait()
