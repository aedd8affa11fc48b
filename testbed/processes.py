"""The processes the testbed starts: its nodes and the helpers beside them (the links relay, the bastion's runner,
a site's SFTP server, the bench's echo). One way to start them (`spawn`; `start_helper` for a helper, which also
waits until it is ready), one record of each, one way to stop them.

Started: in a session of its own (a Ctrl-C at the terminal is not sent to it), stdin from /dev/null, stdout and
stderr appended to its log (0600). A helper is ready when a condition says so (its port published, its
listeners accepting), never after a fixed time; one that exits first, or is not ready by its deadline, is a
HelperFailed naming the last line it wrote to its log.

The record (JSON, 0600, replaced whole) is what `status` and `down` read: the process id, its start time in
clock ticks since boot (a pid the kernel has since given to another process does not share it), the marker its
command line holds, the ports it listens on (a helper that binds port 0 publishes the port it got; the ready
check reads it into the record), its command line and when it was started. A bare process id, as earlier
versions wrote, is read too (checked by the marker alone).

Stopped: SIGTERM, then SIGKILL if it is still there after a timeout.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Iterable

from nodes import jsonlines

START_TIMEOUT = 10.0  # seconds a helper has to become ready
POLL = 0.05  # seconds between two looks at a condition being waited for
KILL_WAIT = 10.0  # seconds a killed process may take to be gone (its threads exiting, its files closed)
ZYGOTE_TIMEOUT = 10.0  # seconds the nodes' zygote has to answer a request for a node


class HelperFailed(RuntimeError):
    """A helper that did not start: it exited, or was not ready in time. Says which, the last line of its log,
    and where the log is."""


@dataclass(frozen=True)
class Record:
    """What is kept of a started process (see the module's docstring)."""

    pid: int
    marker: str = ""  # what its command line holds ("" for a record an earlier version wrote: a bare pid)
    ports: tuple[int, ...] = ()
    argv: tuple[str, ...] = ()
    started: str = ""  # when, UTC (for a person reading the record)
    start_ticks: int | None = None  # the process's start time since boot (/proc/PID/stat): tells a reused pid apart

    @property
    def port(self) -> int | None:
        """Its first port, or None."""
        return self.ports[0] if self.ports else None

    @classmethod
    def of(cls, proc: subprocess.Popen | int, argv: Iterable[str], marker: bytes) -> "Record":
        """The record of a process just started (a Popen, or the pid of one the nodes' zygote forked)."""
        pid = proc if isinstance(proc, int) else proc.pid
        return cls(pid, marker.decode(), (), tuple(argv),
                   dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), start_ticks(pid))


def read_record(path: Path) -> Record | None:
    """The record in path (also a bare pid, as earlier versions wrote), or None if there is none or it is unreadable."""
    try:
        text = Path(path).read_text()
    except OSError:
        return None
    if text.strip().isdigit():
        return Record(int(text))
    try:
        data = json.loads(text)
        return Record(int(data["pid"]), str(data.get("marker", "")), tuple(int(p) for p in data.get("ports", ())),
                      tuple(str(a) for a in data.get("argv", ())), str(data.get("started", "")),
                      None if data.get("start_ticks") is None else int(data["start_ticks"]))
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


def write_record(path: Path, record: Record) -> None:
    """Keep record in path (0600 in a 0700 folder), replaced whole: a reader sees the old record or the new one."""
    path = Path(path)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.new")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(asdict(record), f)
    os.replace(partial, path)


def recorded(pid_file: Path, marker: bytes | None = None) -> Record | None:
    """The record in pid_file while its process runs: alive, started when the record says (not a reused pid), and
    with marker in its command line (None: the marker the record names, if any)."""
    record = read_record(pid_file)
    if record is None or not alive(record.pid):
        return None
    if record.start_ticks is not None and start_ticks(record.pid) != record.start_ticks:
        return None  # the pid is another process's now
    wanted = record.marker.encode() if marker is None else marker
    if wanted:
        try:
            with open(f"/proc/{record.pid}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            return None
        # (empty a moment after the start, while the kernel is still in its exec: then the start time says it is ours)
        if wanted not in cmdline and not (cmdline == b"" and record.start_ticks is not None):
            return None
    return record


def running(pid_file: Path, marker: bytes | None = None) -> int | None:
    """The process id of recorded(pid_file, marker), or None."""
    record = recorded(pid_file, marker)
    return record.pid if record else None


def spawn(argv: list[str], log_file: Path, env: dict | None = None) -> subprocess.Popen:
    """Start argv in a session of its own, stdin from /dev/null, stdout and stderr appended to log_file (0600)."""
    log_file = Path(log_file)
    log_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(os.open(log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "ab") as log:
        return subprocess.Popen(list(argv), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env=env)


def fork_node(zygote: Path, argv: list[str], log_file: Path, env: dict | None = None) -> int:
    """Have the nodes' zygote (nodes/zygote.py, listening at zygote) start the node `python -m nodes ...` of argv
    (argv[0], the interpreter, is the zygote's own; `python -m nodes.confined VIEW -- python -m nodes ...` is
    confined by the child itself), logging to log_file (0600); the node's pid. OSError when the zygote does not
    answer or refuses."""
    log_file = Path(log_file)
    log_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    argv, view = list(argv), ""
    if argv[1:3] == ["-m", "nodes.confined"] and argv[4:5] == ["--"]:  # confined: the child enters the view itself
        view, argv = argv[3], argv[5:]
    request = {"argv": argv[1:], "env": dict(os.environ if env is None else env), "log": str(log_file), "view": view}
    try:
        reply = jsonlines.ask(str(zygote), request, ZYGOTE_TIMEOUT)
    except ValueError as exc:
        raise OSError(f"the nodes' zygote at {zygote} answered what is not JSON ({exc})") from None
    if not isinstance(reply, dict) or not isinstance(reply.get("pid"), int):
        raise OSError(f"the nodes' zygote at {zygote} did not start the node: "
                      f"{reply.get('error') if isinstance(reply, dict) else reply}")
    return reply["pid"]


def start_helper(argv: list[str], pid_file: Path, log_file: Path, marker: bytes, *, what: str,
                 env: dict | None = None, ready: Callable[[], object] | None = None,
                 timeout: float = START_TIMEOUT) -> Record:
    """Start a helper once (the record of one that runs already, else a new one) and wait until it is ready; its
    record. ready() is asked until it answers other than None or False: with True, or with the port (an int) or
    ports (a sequence) it listens on, kept in the record; an OSError or ValueError it raises is "not yet". No
    ready: ready once started. HelperFailed ("WHAT did not start (...): LAST LINE; see LOG") when it exits first
    or is not ready within timeout seconds; it is then stopped and its record removed."""
    found = recorded(pid_file, marker)
    if found is not None:
        return found
    log_file = Path(log_file)
    try:
        offset = log_file.stat().st_size  # (what the helper writes from here on is this start's)
    except OSError:
        offset = 0
    proc = spawn(argv, log_file, env)
    record = Record.of(proc, argv, marker)
    write_record(pid_file, record)
    deadline = time.monotonic() + timeout
    while True:  # until ready, or the helper exits, or the deadline
        ports = _asked(ready)
        if ports is not None:
            record = replace(record, ports=ports)
            write_record(pid_file, record)
            return record
        if proc.poll() is not None:
            why = f"it exited with status {proc.returncode}" if proc.returncode >= 0 else \
                f"it was killed by {signal.Signals(-proc.returncode).name}"
        elif time.monotonic() > deadline:
            why = f"not ready after {timeout:g} s"
            stop(proc.pid)
            proc.poll()  # (reaped: no zombie of ours left)
        else:
            time.sleep(POLL)
            continue
        Path(pid_file).unlink(missing_ok=True)
        line = last_line(log_file, offset)
        raise HelperFailed(f"{what} did not start ({why}{': ' + line if line else ''}); see {log_file}")


def _asked(ready: Callable[[], object] | None) -> tuple[int, ...] | None:
    """What ready() answers, as ports (None: not ready yet)."""
    if ready is None:
        return ()
    try:
        answer = ready()
    except (OSError, ValueError):
        return None
    if answer is None or answer is False:
        return None
    if answer is True:
        return ()
    return (int(answer),) if isinstance(answer, int) else tuple(int(p) for p in answer)


def port_file(path: Path) -> Callable[[], int | None]:
    """A ready check: the port a helper writes to path once it listens (None while the file is absent or empty)."""
    def published() -> int | None:
        text = Path(path).read_text().strip()
        return int(text) if text else None
    return published


def accepting(addresses: Iterable[str]) -> Callable[[], list[int] | None]:
    """A ready check: every HOST:PORT of addresses accepts a connection; their ports (None until each has)."""
    waiting, ports = list(addresses), []

    def accepted() -> list[int] | None:
        while waiting:
            host, port = waiting[0].rsplit(":", 1)
            socket.create_connection((host, int(port)), timeout=1).close()  # (OSError: not yet)
            ports.append(int(port))
            waiting.pop(0)
        return ports
    return accepted


def last_line(log_file: Path, offset: int = 0) -> str:
    """The last line that is not blank written to log_file after offset ("" when there is none), at most 300 characters."""
    try:
        with open(log_file, "rb") as f:
            f.seek(max(offset, os.path.getsize(log_file) - 64 * 1024))
            lines = [line.strip() for line in f.read().decode(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1][-300:] if lines else ""


def stop_recorded(pid_file: Path, marker: bytes, *leftovers: Path) -> bool:
    """Stop the process a record names (if it is the one meant), and remove the record and leftovers; whether it
    ran."""
    pid = running(pid_file, marker)
    if pid is None:
        return False
    stop(pid)
    for path in (pid_file, *leftovers):
        Path(path).unlink(missing_ok=True)
    return True


def stop(pid: int, timeout: float = 5.0) -> None:
    """SIGTERM, wait (reaping a child of ours), then SIGKILL if it is still there."""
    try:
        os.kill(pid, signal.SIGTERM)
    except OSError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:  # until it has exited
        if not alive(pid):
            return
        time.sleep(POLL)
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        return
    # (and gone before the caller goes on: a restore replaces the files a process killed a moment ago still holds)
    deadline = time.monotonic() + KILL_WAIT
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(POLL)


def alive(pid: int) -> bool:
    """Whether a process runs (a zombie does not; a child of ours is reaped on the way)."""
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    # A zombie of another parent still answers kill(0); /proc says whether it is really running. A process of many
    # threads killed shows its first thread a zombie while the others are still exiting, and they hold its files
    # (its listening sockets) until the last has gone: it is gone once it is a zombie of one thread.
    try:
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
            return True
        return len(os.listdir(f"/proc/{pid}/task")) > 1
    except (OSError, IndexError):
        return False


def start_ticks(pid: int) -> int | None:
    """When a process started, in clock ticks since boot (field 22 of /proc/PID/stat); None if it is gone."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None
