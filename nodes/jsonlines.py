"""One JSON line each way over a unix socket: how the testbed's local helpers are asked (the audit witness, the
nodes' zygote)."""
from __future__ import annotations

import json
import socket

MAX_LINE = 1 << 20  # bytes of one line at most


def read_line(conn: socket.socket, limit: int = MAX_LINE) -> bytes:
    """Bytes up to and with the first newline (or what came before the other end closed); ValueError past limit."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
        if len(data) > limit:
            raise ValueError("line too long")
    return data


def ask(address: str, request: dict, timeout: float) -> dict:
    """Send request as one line to the unix socket at address and read the one-line answer; OSError when nothing
    answers, ValueError when the answer is not JSON."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(timeout)
        conn.connect(address)
        conn.sendall(json.dumps(request).encode() + b"\n")
        return json.loads(read_line(conn))
