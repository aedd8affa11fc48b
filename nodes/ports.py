"""The port policy: ports for the nodes of a network chosen so that two programs choosing at once (two test workers,
a benchmark beside a test run) never pick the same one. The span below the kernel's ephemeral range is cut into
blocks; a process reserves a block with an exclusive lock on a file (held until it exits, released by the kernel
even after kill -9) and hands out only ports of blocks it holds, each checked free by binding it. Ports are handed
out in turn through the held blocks, so a port chosen for a network not yet started is not chosen again soon."""
from __future__ import annotations

import fcntl
import os
import random
import socket
import tempfile
from pathlib import Path

SPAN = 8000  # ports just below the ephemeral range (above the default topology's, 20101–23203)
BLOCK = 64  # ports a process reserves at a time
MAX_BLOCKS = 16  # blocks one process may hold (1,024 ports: about 20 networks before a port comes round again)

_blocks: list[int] = []  # first port of each block this process holds
_locks: list[int] = []  # their lock files' descriptors (kept open: the lock lives as long as they do)
_position = 0  # where the next port is taken from, across the held blocks


def reserve(host: str, count: int, avoid=frozenset()) -> list[int]:
    """count distinct ports free now on host, of blocks this process holds, none in avoid; OSError when no block
    can be had."""
    sockets: list[socket.socket] = []
    seen: set[int] = set()
    try:
        while len(sockets) < count:
            port = _next(seen)
            seen.add(port)
            if port in avoid:
                continue
            sock = socket.socket()
            try:
                sock.bind((host, port))
            except OSError:  # in use (by a network of this process still up, or a program outside the policy)
                sock.close()
                continue
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _next(seen: set[int]) -> int:
    """The next held port not tried in this call. Ports are handed out in turn, and a new block is reserved rather
    than coming back to the first: a port chosen for a network that is not started yet (so not bound, and free to
    the bind check) is handed out again only after MAX_BLOCKS blocks' worth of others."""
    global _position
    while True:
        held = [first + i for first in _blocks for i in range(BLOCK)]
        while _position < len(held):
            port = held[_position]
            _position += 1
            if port not in seen:
                return port
        if len(_blocks) < MAX_BLOCKS:
            try:
                _take_block()
                continue
            except OSError:  # every other block is another process's: come round within ours
                if not _blocks:
                    raise
        if len(seen) >= len(held):
            raise OSError(f"none of the {len(held)} ports of the {len(_blocks)} blocks this process holds is free")
        else:
            _position = 0  # every block taken: start again from the first (long since bound or released)


def _take_block() -> None:
    if len(_blocks) >= MAX_BLOCKS:
        raise OSError(f"this process holds {MAX_BLOCKS} blocks of {BLOCK} ports and found none of them free")
    low = ephemeral_range()[0]
    first = max(1024, low - SPAN)
    candidates = [b for b in range(first, low - BLOCK + 1, BLOCK) if b not in _blocks]
    random.shuffle(candidates)
    folder = Path(tempfile.gettempdir()) / f"testbed-ports-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    for block in candidates:
        fd = os.open(folder / f"{block}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # another process holds it
            os.close(fd)
            continue
        _blocks.append(block)
        _locks.append(fd)
        return
    raise OSError(f"every block of {BLOCK} ports below {low} is held by another process")


def ephemeral_range() -> tuple[int, int]:
    """The kernel's range of ports for outgoing connections (Linux; the usual default elsewhere)."""
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999
