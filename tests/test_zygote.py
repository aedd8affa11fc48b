"""The nodes' zygote (nodes/zygote.py): a node forked from it is the node `python -m nodes` would be (its own
session, environment, arguments and log), the zygote starts nothing else, and a network comes up through it."""
from __future__ import annotations

import os
import sys
import time

import pytest

from testbed import processes


@pytest.fixture
def zygote(tmp_path):
    """A zygote of its own on a socket in tmp_path."""
    path = tmp_path / "zygote.sock"
    record = processes.start_helper([sys.executable, "-m", "nodes.zygote", "--socket", str(path)],
                                    tmp_path / "zygote.json", tmp_path / "zygote.log", b"nodes.zygote",
                                    what="the zygote", ready=lambda: path.exists() and os.path.getsize(path) == 0)
    yield path, record
    processes.stop_recorded(tmp_path / "zygote.json", b"nodes.zygote")


def _gone(pid: int) -> bool:
    return not processes.alive(pid)


def test_a_forked_node_has_its_own_arguments_environment_session_and_log(zygote, tmp_path):
    """`python -m nodes --help` through the zygote: usage in the node's own log (0600), exit without a trace."""
    path, record = zygote
    log = tmp_path / "logs" / "node.log"
    pid = processes.fork_node(path, [sys.executable, "-m", "nodes", "--help"], log, {"PATH": os.environ["PATH"]})
    assert pid != record.pid
    deadline = time.monotonic() + 10
    while not _gone(pid):
        assert time.monotonic() < deadline, "the forked node did not exit"
        time.sleep(processes.POLL)
    assert "usage: python -m nodes" in log.read_text()
    assert log.stat().st_mode & 0o777 == 0o600
    assert processes.alive(record.pid)  # the zygote goes on
    assert len(os.listdir(f"/proc/{record.pid}/task")) == 1  # single-threaded: safe to fork


def test_the_zygote_starts_nodes_alone(zygote, tmp_path):
    """A request for anything but a node is refused, and a malformed one does not stop the zygote."""
    path, record = zygote
    with pytest.raises(OSError, match="only a node"):
        processes.fork_node(path, [sys.executable, "-c", "print('x')"], tmp_path / "x.log")
    with pytest.raises(OSError):
        processes.fork_node(path, [sys.executable], tmp_path / "x.log")
    assert processes.alive(record.pid)


def test_a_network_comes_up_through_the_zygote_and_without_it(fresh_network, monkeypatch):
    """The nodes of `up` are the zygote's children (the same command line marker, their own sessions); with
    TESTBED_ZYGOTE=0 each starts its own interpreter; either way the network is healthy, and down stops the zygote."""
    fresh_network.up()
    zygote = processes.running(fresh_network.state_dir / "run" / "zygote.json", b"nodes.zygote")
    assert zygote
    kizon = fresh_network.pid("kizon-142140")
    assert os.getsid(kizon) == kizon and int(open(f"/proc/{kizon}/stat").read().rsplit(")", 1)[1].split()[1]) == zygote
    fresh_network.down()
    assert not processes.alive(zygote)
    monkeypatch.setenv("TESTBED_ZYGOTE", "0")
    status = fresh_network.up()
    assert all(s["healthy"] for s in status)
    assert not (fresh_network.state_dir / "run" / "zygote.json").exists()
    kizon = fresh_network.pid("kizon-142140")
    assert int(open(f"/proc/{kizon}/stat").read().rsplit(")", 1)[1].split()[1]) == os.getpid()
