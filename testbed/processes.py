"""The helper processes the testbed starts beside its nodes (the links relay, the bastion): found by their pid
file, stopped with SIGTERM and, if they linger, SIGKILL."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def running(pid_file: Path, marker: bytes) -> int | None:
    """The process id in pid_file while that process runs and its command line holds marker (not a reused pid)."""
    try:
        pid = int(pid_file.read_text())
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return pid if marker in f.read() else None
    except (OSError, ValueError):
        return None


def stop_recorded(pid_file: Path, marker: bytes, *leftovers: Path) -> bool:
    """Stop the process a pid file names (if it is the one meant), and remove the file and leftovers; whether it
    ran."""
    pid = running(pid_file, marker)
    if pid is None:
        return False
    stop(pid)
    for path in (pid_file, *leftovers):
        path.unlink(missing_ok=True)
    return True


def stop(pid: int, timeout: float = 5.0) -> None:
    """SIGTERM, wait (reaping a child of ours), then SIGKILL if it is still there."""
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG)[0]:
                return
        except ChildProcessError:
            pass
        try:
            os.kill(pid, 0)
        except OSError:
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
