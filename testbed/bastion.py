"""The SSH maintenance bastion (DESIGN §8): how a vendor's engineer runs the migration and the checks.

`testbed bastion start` runs an asyncssh server (a process of its own) that admits a vendor only by the
key registered for that vendor (`testbed bastion add-vendor NAME`; no password, no shared account) and
runs only a fixed list of commands, each checked item by item before it runs: the migration
(`migrate M --to SITE [--inject F]...`, `migrate --layout`), `status`, `consistency M` and `audit verify`.
There is no shell, no PTY, no agent, X11 or port forwarding, no SFTP. Every login, command (with its exit
status) and refusal goes into the bastion's own audit log, a keyed chain like the nodes'.
`testbed ssh VENDOR COMMAND...` is the client; plain OpenSSH works too (the README shows the line).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import re
import shlex
import signal
import sys
from pathlib import Path

import asyncssh

from nodes import audit
from testbed.migration.rehearsal import INJECTIONS
from testbed import processes
from testbed.migration.sftp import ensure_key

VENDOR_NAME = re.compile(r"[a-z][a-z0-9-]{0,31}")
MUNICIPALITY = re.compile(r"[0-9]{6}")
SITE = re.compile(r"[a-z][a-z0-9-]{0,15}")
ALLOWED = "migrate M --to SITE [--inject FAULT]..., migrate --layout, status, consistency M, audit verify"


class Paths:
    """Where the bastion keeps its keys, vendors, port and audit log in a state folder."""

    def __init__(self, state_dir: Path):
        self.state_dir = Path(state_dir)
        self.folder = self.state_dir / "bastion"
        self.host_key = self.state_dir / "pki" / "ssh" / "bastion" / "host_key"
        self.audit_key = self.state_dir / "pki" / "ssh" / "bastion" / "audit.key"
        self.vendors = self.folder / "vendors"
        self.port = self.folder / "port"
        self.pid = self.folder / "pid"
        self.audit = self.folder / "audit.jsonl"
        self.known_hosts = self.folder / "known_hosts"

    def vendor_key(self, vendor: str) -> Path:
        """A vendor's private key (the vendor's to keep)."""
        return self.state_dir / "pki" / "ssh" / "vendors" / vendor / "id_ed25519"


def add_vendor(paths: Paths, vendor: str) -> Path:
    """Register a vendor: a key of its own, its public half authorized at the bastion; the private key's path."""
    if not VENDOR_NAME.fullmatch(vendor):
        raise ValueError(f"a vendor name is lowercase letters, digits and '-' (got {vendor!r})")
    key = ensure_key(paths.vendor_key(vendor))
    paths.vendors.mkdir(mode=0o700, parents=True, exist_ok=True)
    (paths.vendors / f"{vendor}.pub").write_bytes(key.export_public_key())
    return paths.vendor_key(vendor)


def allowed(words: list[str]) -> str:
    """"" if a command is on the list with well-formed items, else why not."""
    if words == ["status"] or words == ["audit", "verify"] or words == ["migrate", "--layout"]:
        return ""
    if len(words) == 2 and words[0] == "consistency" and MUNICIPALITY.fullmatch(words[1]):
        return ""
    if len(words) >= 4 and words[0] == "migrate" and MUNICIPALITY.fullmatch(words[1]) and words[2] == "--to" \
            and SITE.fullmatch(words[3]):
        rest = words[4:]
        if len(rest) % 2 == 0 and all(rest[i] == "--inject" and rest[i + 1] in INJECTIONS for i in range(0, len(rest), 2)):
            return ""
    return f"not an allowed command (allowed: {ALLOWED})"


class _Bastion(asyncssh.SSHServer):
    def __init__(self, paths: Paths, trail: audit.AuditLog):
        self.paths, self.trail = paths, trail
        self.conn = None
        self.user = ""

    def connection_made(self, conn):
        self.conn = conn

    def begin_auth(self, username: str) -> bool:
        self.user = username
        keys = self.paths.vendors / f"{username}.pub"
        if VENDOR_NAME.fullmatch(username) and keys.is_file():
            self.conn.set_authorized_keys(str(keys))
        else:
            self.trail.append(caller=f"ssh:{username[:32]}", method="ssh/login", status="UNAUTHENTICATED",
                              subject="no such vendor")
        return True

    def auth_completed(self) -> None:
        self.trail.append(caller=f"ssh:{self.user}", method="ssh/login", status="OK",
                          subject=str(self.conn.get_extra_info("peername")[0]))

    def password_auth_supported(self) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return False

    def connection_requested(self, *args):
        self.trail.append(caller=f"ssh:{self.user}", method="ssh/forward", status="PERMISSION_DENIED",
                          subject="port forwarding")
        return False

    def server_requested(self, *args):
        self.trail.append(caller=f"ssh:{self.user}", method="ssh/forward", status="PERMISSION_DENIED",
                          subject="remote forwarding")
        return False

    def unix_connection_requested(self, *args):
        return False

    def unix_server_requested(self, *args):
        return False


async def serve(state_dir: Path, listen: str) -> None:
    """Run the bastion until SIGTERM."""
    paths = Paths(state_dir)
    ensure_key(paths.host_key)
    if not paths.audit_key.exists():
        fd = os.open(paths.audit_key, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, os.urandom(32))
        os.close(fd)
    paths.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    trail = audit.AuditLog(paths.audit, "bastion", paths.audit_key.read_bytes())

    async def run(process: asyncssh.SSHServerProcess) -> None:
        vendor = process.get_extra_info("username")
        if process.command is None:
            trail.append(caller=f"ssh:{vendor}", method="ssh/shell", status="PERMISSION_DENIED", subject="shell")
            process.stderr.write(f"bastion: no shell here; allowed: {ALLOWED}\n")
            process.exit(2)
            return
        try:
            words = shlex.split(process.command)
        except ValueError:
            words = []
        why = allowed(words) if words else "an empty or malformed command"
        if why:
            trail.append(caller=f"ssh:{vendor}", method="ssh/command", status="PERMISSION_DENIED",
                         subject=process.command[:200])
            process.stderr.write(f"bastion: {why}\n")
            process.exit(2)
            return
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "testbed.cli", "--state-dir", str(paths.state_dir), *words,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "TESTBED_OPERATOR": f"vendor:{vendor}"})
        async for line in child.stdout:
            process.stdout.write(line.decode(errors="replace"))
        status = await child.wait()
        trail.append(caller=f"ssh:{vendor}", method=f"ssh/{words[0]}", status="OK" if status == 0 else f"EXIT {status}",
                     subject=" ".join(words)[:200])
        process.exit(status)

    host, port = listen.rsplit(":", 1)
    server = await asyncssh.create_server(
        lambda: _Bastion(paths, trail), host, int(port), server_host_keys=[str(paths.host_key)], process_factory=run,
        encoding="utf-8", allow_pty=False, agent_forwarding=False, x11_forwarding=False, sftp_factory=None,
        allow_scp=False, password_auth=False, kbdint_auth=False, login_timeout=10)
    bound = server.sockets[0].getsockname()[1]
    host_pub = asyncssh.read_private_key(str(paths.host_key)).export_public_key().decode().strip()
    paths.known_hosts.write_text(f"[{host}]:{bound} {host_pub}\n")
    paths.port.write_text(str(bound))
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()
    trail.close()


def start(state_dir: Path, port: int = 0) -> int:
    """Start the bastion process (if it is not running); the port it listens on."""
    import subprocess
    import time
    paths = Paths(state_dir)
    if running(paths):
        return int(paths.port.read_text())
    paths.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    paths.port.unlink(missing_ok=True)
    log = open(os.open(paths.state_dir / "logs" / "bastion.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "ab")
    proc = subprocess.Popen([sys.executable, "-m", "testbed.bastion", "serve", "--state-dir", str(paths.state_dir),
                             "--listen", f"127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    paths.pid.write_text(str(proc.pid))
    deadline = time.monotonic() + 15
    while not paths.port.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the bastion did not start; see {paths.state_dir / 'logs' / 'bastion.log'}")
        time.sleep(0.05)
    return int(paths.port.read_text())


def running(paths: Paths) -> int | None:
    """The bastion's process id while it runs."""
    return processes.running(paths.pid, b"testbed.bastion")


def stop(state_dir: Path) -> bool:
    """Stop the bastion; whether it was running."""
    paths = Paths(state_dir)
    return processes.stop_recorded(paths.pid, b"testbed.bastion", paths.port)


async def run_command(state_dir: Path, vendor: str, command: str, out=sys.stdout) -> int:
    """Run one command at the bastion as a vendor (with the vendor's key); its exit status."""
    paths = Paths(state_dir)
    port = int(paths.port.read_text())
    async with asyncssh.connect("127.0.0.1", port, username=vendor, client_keys=[str(paths.vendor_key(vendor))],
                                known_hosts=str(paths.known_hosts), agent_path=None, connect_timeout=10) as conn:
        result = await conn.run(command, check=False)
        out.write(result.stdout or "")
        out.write(result.stderr or "")
        return result.exit_status if result.exit_status is not None else 255


def main(argv: list[str] | None = None) -> int:
    """`python -m testbed.bastion serve --state-dir DIR --listen H:P`."""
    parser = argparse.ArgumentParser(prog="python -m testbed.bastion")
    parser.add_argument("command", choices=["serve"])
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--listen", default="127.0.0.1:0")
    args = parser.parse_args(argv)
    os.umask(0o077)
    asyncio.run(serve(args.state_dir, args.listen))
    return 0


if __name__ == "__main__":
    sys.exit(main())
