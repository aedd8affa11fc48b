"""Media exchange by SFTP over asyncssh (DESIGN §8): the target site's SFTP server and the sending side.

The server (`python -m testbed.migration.sftp serve ...`, a process of its own at the target site) admits
only vendors whose public key it was given, one key file per vendor (no shared accounts), with no password
and no keyboard-interactive login; it offers SFTP alone, chrooted to the site's inbox: no shell, no exec,
no PTY, no agent, X11 or port forwarding. The sender resumes a file where the last attempt stopped (the
size already at the target), and can be told to run slowly (a slow link) or to drop the connection once
partway (an interrupted transfer), so that a rehearsal sees both.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncssh

CHUNK = 256 * 1024
CONNECT_TIMEOUT = 10.0


# -- keys --------------------------------------------------------------------------------------------------
def ensure_key(path: Path) -> asyncssh.SSHKey:
    """An Ed25519 key at path (made, 0600 in a 0700 folder, if there is none), with its .pub beside it."""
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = asyncssh.generate_private_key("ssh-ed25519", comment=path.parent.name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key.export_private_key())
        path.with_suffix(".pub").write_bytes(key.export_public_key())
    return asyncssh.read_private_key(str(path))


# -- the server --------------------------------------------------------------------------------------------
class _Server(asyncssh.SSHServer):
    """Key authentication per vendor; every forwarding and every non-SFTP request refused."""

    def __init__(self, vendors: Path, log):
        self.vendors, self.log = vendors, log
        self.conn = None

    def connection_made(self, conn):
        self.conn = conn

    def begin_auth(self, username: str) -> bool:
        keys = self.vendors / f"{username}.pub"
        if username.replace("-", "").isalnum() and keys.is_file():
            self.conn.set_authorized_keys(str(keys))
        else:
            self.log(f"login refused: no vendor {username!r}")
        return True  # authentication is always required (with no keys set, nothing will pass)

    def auth_completed(self) -> None:
        self.log(f"vendor {self.conn.get_extra_info('username')} logged in from {self.conn.get_extra_info('peername')[0]}")

    def password_auth_supported(self) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return False

    def host_based_auth_supported(self) -> bool:
        return False

    def connection_requested(self, *args):  # direct TCP/IP (local forwarding)
        self.log("refused: a port forwarding request")
        return False

    def server_requested(self, *args):  # remote forwarding
        self.log("refused: a remote forwarding request")
        return False

    def unix_connection_requested(self, *args):
        return False

    def unix_server_requested(self, *args):
        return False


async def serve(listen: str, root: Path, host_key: Path, vendors: Path, ready: Path | None, log_path: Path) -> None:
    """Run the SFTP server until SIGTERM."""
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    log_file = open(log_path, "a", encoding="utf-8")

    def log(line: str) -> None:
        log_file.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} sftp {line}\n")
        log_file.flush()

    host, port = listen.rsplit(":", 1)
    server = await asyncssh.create_server(
        lambda: _Server(vendors, log), host, int(port), server_host_keys=[str(host_key)],
        sftp_factory=lambda chan: asyncssh.SFTPServer(chan, chroot=str(root).encode()), allow_scp=False,
        allow_pty=False, agent_forwarding=False, x11_forwarding=False, process_factory=None, session_factory=None,
        password_auth=False, kbdint_auth=False, login_timeout=CONNECT_TIMEOUT)
    bound = server.sockets[0].getsockname()[1]
    log(f"serving SFTP on {host}:{bound}, inbox {root}")
    if ready is not None:
        ready.write_text(str(bound))
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()
    log("stopped")


# -- the sender --------------------------------------------------------------------------------------------
@dataclass
class Sent:
    """What a transfer did: bytes, seconds, files, and each resumption."""

    files: int = 0
    bytes: int = 0
    seconds: float = 0.0
    resumed: list[str] = field(default_factory=list)
    attempts: int = 0


@dataclass
class Link:
    """How the link behaves in this run: a rate limit (bytes/s, 0 none) and a drop once after some bytes."""

    rate: int = 0
    drop_after: int = 0  # 0: never


class Dropped(ConnectionError):
    """The connection was dropped on purpose (an interrupted transfer rehearsed)."""


async def send(address: str, vendor: str, key: asyncssh.SSHKey, host_key_pub: bytes, files: list[Path], remote_dir: str,
               link: Link | None = None, max_attempts: int = 5) -> Sent:
    """Send files (in order) into remote_dir of the target's inbox; resume after a dropped connection."""
    link = link or Link()
    sent = Sent()
    started = time.monotonic()
    host, port = address.rsplit(":", 1)
    known = asyncssh.import_known_hosts(f"[{host}]:{port} {host_key_pub.decode().strip()}\n")
    while True:
        sent.attempts += 1
        try:
            async with asyncssh.connect(host, int(port), username=vendor, client_keys=[key], known_hosts=known,
                                        agent_path=None, agent_forwarding=False, password=None,
                                        connect_timeout=CONNECT_TIMEOUT) as conn:
                async with conn.start_sftp_client() as sftp:
                    if not await sftp.exists(remote_dir):
                        await sftp.mkdir(remote_dir)
                    for path in files:
                        await _send_file(sftp, conn, path, f"{remote_dir}/{path.name}", link, sent)
            break
        except (Dropped, OSError, asyncssh.Error) as exc:
            if sent.attempts >= max_attempts:
                raise ConnectionError(f"SFTP transfer failed after {sent.attempts} attempts: {exc}") from None
            await asyncio.sleep(0.2)
    sent.files = len(files)
    sent.seconds = time.monotonic() - started
    return sent


async def _send_file(sftp, conn, path: Path, remote: str, link: Link, sent: Sent) -> None:
    size = path.stat().st_size
    try:
        offset = (await sftp.stat(remote)).size or 0
    except asyncssh.SFTPNoSuchFile:
        offset = 0
    if offset > size:  # something else is there: start the file again
        await sftp.remove(remote)
        offset = 0
    if offset == size:
        return
    if offset:
        sent.resumed.append(f"{path.name} at byte {offset:,}")
    began, base = time.monotonic(), sent.bytes
    async with sftp.open(remote, "ab") as out:
        with open(path, "rb") as f:
            f.seek(offset)
            while block := f.read(CHUNK):
                if link.drop_after and sent.bytes + len(block) > link.drop_after:
                    cut = link.drop_after - sent.bytes
                    if cut > 0:
                        await out.write(block[:cut])
                        sent.bytes += cut
                    link.drop_after = 0  # once
                    conn.abort()
                    raise Dropped(f"connection dropped after {sent.bytes:,} bytes, in {path.name}")
                await out.write(block)
                sent.bytes += len(block)
                if link.rate:  # a slow link: never faster than its rate
                    ahead = (sent.bytes - base) / link.rate - (time.monotonic() - began)
                    if ahead > 0:
                        await asyncio.sleep(min(ahead, 1.0))


def main(argv: list[str] | None = None) -> int:
    """`python -m testbed.migration.sftp serve --listen H:P --root DIR --host-key K --vendors DIR`."""
    parser = argparse.ArgumentParser(prog="python -m testbed.migration.sftp")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="the target site's SFTP server")
    p.add_argument("--listen", required=True)
    p.add_argument("--root", type=Path, required=True, help="the inbox every vendor is chrooted to")
    p.add_argument("--host-key", type=Path, required=True)
    p.add_argument("--vendors", type=Path, required=True, help="a folder of <vendor>.pub files (authorized keys)")
    p.add_argument("--ready", type=Path, help="write the bound port here once listening")
    p.add_argument("--log", type=Path, required=True)
    args = parser.parse_args(argv)
    os.umask(0o077)
    try:
        asyncio.run(serve(args.listen, args.root, args.host_key, args.vendors, args.ready, args.log))
    except OSError as exc:
        print(f"sftp: cannot serve on {args.listen}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
