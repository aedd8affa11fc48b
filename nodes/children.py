"""Processes a node runs beside itself (a CS's search process): started with the node, restarted when they
die, stopped with it; a child whose node is killed dies with it."""
from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import signal
import subprocess
import time

log = logging.getLogger(__name__)

PARENT_ENV = "TESTBED_PARENT_NODE"  # the pid of the node that started a child
PR_SET_PDEATHSIG = 1
WATCH_SECONDS = 0.5  # how often the node looks after its children
HEALTHY_SECONDS = 10.0  # a child that ran this long before it exited is restarted at once
MAX_PAUSE = 30.0  # the longest wait before restarting a child that keeps failing at start


class Child:
    """One process of a node's: restarted whenever it exits, with a growing pause while it fails at start."""

    def __init__(self, name: str, argv: list[str]):
        self.name, self.argv = name, argv
        self.proc: subprocess.Popen | None = None
        self.started = 0.0
        self._pause = WATCH_SECONDS

    def start(self) -> None:
        """Start the process; its output goes where the node's goes."""
        self.started = time.monotonic()
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, env={**os.environ, PARENT_ENV: str(os.getpid())})

    async def watch(self) -> None:
        """Start the process again whenever it has exited (a crash, a kill): its service resumes on its own."""
        while True:
            await asyncio.sleep(WATCH_SECONDS)
            if self.proc is None or self.proc.poll() is None:
                continue
            lived = time.monotonic() - self.started
            self._pause = WATCH_SECONDS if lived > HEALTHY_SECONDS else min(self._pause * 2, MAX_PAUSE)
            log.warning("%s exited (status %s) after %.1f s; starting it again in %.1f s", self.name,
                        self.proc.returncode, lived, self._pause)
            await asyncio.sleep(self._pause)
            self.start()

    def signal(self, signum: int) -> None:
        """Pass a signal on (SIGHUP: the topology changed)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signum)

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, then SIGKILL if it has not stopped within timeout."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def die_with_parent() -> bool:
    """In a child: have the kernel kill this process when the node that started it dies. False if it already has."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    parent = os.environ.get(PARENT_ENV)
    return not parent or os.getppid() == int(parent)
