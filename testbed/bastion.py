"""The SSH maintenance bastion (DESIGN §8): how a vendor's engineer runs the migration and the checks.

`testbed bastion start` runs an asyncssh server that admits a vendor only by the key registered for that
vendor (`testbed bastion add-vendor NAME`; no password, no shared account) and runs only a fixed list of
commands, each checked item by item before it runs: the migration (`migrate M --to SITE [--inject F]...`,
`migrate --layout`), `status`, `consistency M` and `audit verify`. There is no shell, no PTY, no agent, X11 or
port forwarding, no SFTP. Every login, command (with its exit status) and refusal goes into the bastion's own
audit log, a keyed chain like the nodes'. `testbed ssh VENDOR COMMAND...` is the client; stock OpenSSH works
too (the README shows the line; tests/test_bastion_openssh.py drives it), with a key the bastion made for the
vendor or one the vendor made (`add-vendor NAME --public-key FILE`).

What stock `ssh` sees of a refusal: `-t` gets "bastion rule: no PTY; run without -t" on stderr and the PTY
request refused, and the command asked for on that channel is not run (OpenSSH gives up on a channel whose
explicitly requested PTY was refused, so a command run there would run unseen); `-A` and `-X` are refused
naming their rule and the command runs without them; `-L`, `-D` and `-W` get "administratively prohibited";
`-R` is refused (a global request's failure carries no reason). Each refusal is audited; a connection gets at
most MAX_REFUSALS of them, then it is closed. The bastion listens on a port the kernel chose (published in
bastion/port and known_hosts), or on `--port`, which must lie outside the ephemeral range
(net.ipv4.ip_local_port_range), where an outgoing connection could take it first.

The bastion is two processes, so that the one vendors talk to holds no secret it does not need:

    the runner  (`python -m testbed.bastion serve`, the pid file's process) holds no socket to the network; it
                starts the front, and runs for it the commands the front asks for, after checking each again
                (vendor registered, command on the list, at most MAX_COMMANDS at once): the commands need the
                PKI (console certificates), which the front must not see.
    the front   (`python -m testbed.bastion front`) is the SSH server, confined wherever the machine allows it
                (testbed/confine.py): of the state folder it sees its host key, its audit key, the vendors'
                public keys and its audit log; nothing else of the PKI. It is bounded like the SFTP servers
                (testbed.migration.sftp.Limits, Gate): connections waiting to log in, login grace, sessions,
                channels, window and packet sizes, the length of a command.

They speak JSON lines over a socket pair the runner made: {"ready": port}, then {"id", "vendor", "words"}
from the front, and {"id", "out"} … {"id", "exit"} back.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shlex
import signal
import socket
import sys
from pathlib import Path

import asyncssh
from asyncssh.constants import DISC_BY_APPLICATION, OPEN_ADMINISTRATIVELY_PROHIBITED

from nodes import audit, witness
from testbed.migration.rehearsal import INJECTIONS
from testbed import processes
from testbed.migration.sftp import VENDOR_NAME, Gate, Limits, VendorServer, ensure_key, server_options

MUNICIPALITY = re.compile(r"[0-9]{6}")
SITE = re.compile(r"[a-z][a-z0-9-]{0,15}")
ALLOWED = "migrate M --to SITE [--inject FAULT]..., migrate --layout, status, consistency M, audit verify"
RULE = "bastion rule"
MAX_COMMAND = 512  # characters of a command line (the longest allowed one, every fault injected, is ~200)
MAX_COMMANDS = 4  # commands running at once (a migration runs for minutes)
MAX_QUEUED_OUTPUT = 1000  # lines of a command's output waiting for a client that does not read
LINK_LIMIT = 1024 * 1024  # the longest JSON line between front and runner
MAX_REFUSALS = 16  # refused PTY, agent, X11 and forwarding requests per connection (each is audited); then it is closed
NO_PTY = f"{RULE}: no PTY; run without -t"
PTY_ROUND_TRIP = 10.0  # seconds a client has to answer before its PTY request is refused anyway
NO_FORWARDING = f"{RULE}: no port forwarding"
MAX_PUBLIC_KEY = 16 * 1024  # bytes of a vendor's public key file
KEY_TYPES = {"ssh-ed25519": "Ed25519", "ssh-rsa": "RSA", "ecdsa-sha2-nistp256": "ECDSA P-256",
             "ecdsa-sha2-nistp384": "ECDSA P-384", "ecdsa-sha2-nistp521": "ECDSA P-521"}
MIN_RSA_BITS = 3072
MARKER = b"testbed.bastion"  # in the runner's command line (and the front's)
START_TIMEOUT = 15.0  # seconds the bastion has to listen and publish its port
KEY_RULE = f"{RULE}: a vendor's key is Ed25519, RSA of at least {MIN_RSA_BITS} bits or ECDSA P-256, P-384 or P-521"


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


def add_vendor(paths: Paths, vendor: str, public_key: Path | None = None) -> Path:
    """Authorize a vendor by its own public key file or a key made here; the private key's path, else the stored key's."""
    if not VENDOR_NAME.fullmatch(vendor):
        raise ValueError(f"a vendor name is lowercase letters, digits and '-' (got {vendor!r})")
    authorized = paths.vendors / f"{vendor}.pub"
    if public_key is not None:
        line = vendor_public_key(public_key, vendor)
        _write_private(paths.vendors, authorized, line.encode())
        for made_here in (paths.vendor_key(vendor), paths.vendor_key(vendor).with_suffix(".pub")):
            made_here.unlink(missing_ok=True)  # a key made here earlier no longer opens the bastion: one key a vendor
        return authorized
    if authorized.is_file() and not paths.vendor_key(vendor).exists():
        raise ValueError(f"{RULE}: vendor {vendor} has a key of its own registered; "
                         "to replace it, give --public-key FILE")
    key = ensure_key(paths.vendor_key(vendor))
    _write_private(paths.vendors, authorized, key.export_public_key())
    return paths.vendor_key(vendor)


def _write_private(folder: Path, path: Path, data: bytes) -> None:
    """data as path, 0600 in a 0700 folder, replaced whole (a reader sees the old key or the new one)."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.new")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(data)
    os.replace(partial, path)


def vendor_public_key(source: Path, vendor: str) -> str:
    """A vendor's OpenSSH public key file as an authorized-key line rebuilt from the key; ValueError naming the rule."""
    try:
        with open(source, "rb") as f:
            data = f.read(MAX_PUBLIC_KEY + 1)
    except OSError as exc:
        raise ValueError(f"cannot read {source}: {exc.strerror or exc}") from None
    if len(data) > MAX_PUBLIC_KEY:
        raise ValueError(f"{RULE}: a public key file has at most {MAX_PUBLIC_KEY} bytes")
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise ValueError(f"{RULE}: a public key file is one OpenSSH public key line (ASCII)") from None
    if "PRIVATE KEY" in text:
        raise ValueError(f"{RULE}: {source} is a private key; give its .pub (the private key stays with the vendor)")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if len(lines) != 1:
        raise ValueError(f"{RULE}: a public key file holds exactly one key (found {len(lines)} lines)")
    fields = lines[0].split(None, 2)
    kind = fields[0]
    if kind not in KEY_TYPES:
        if any(f in KEY_TYPES for f in lines[0].replace('"', " ").split()[1:]):
            raise ValueError(f"{RULE}: no options before a vendor's key (command=, from= ...): give the key line alone")
        raise ValueError(f"{KEY_RULE} (got {kind[:40]!r})")
    if len(fields) < 2:
        raise ValueError(f"{RULE}: a public key line is TYPE BASE64 [COMMENT]")
    try:
        key = asyncssh.import_public_key(f"{kind} {fields[1]}")
    except (asyncssh.KeyImportError, ValueError):
        raise ValueError(f"{RULE}: {source} is not a well-formed OpenSSH public key") from None
    if key.algorithm.decode() != kind:
        raise ValueError(f"{RULE}: the key's type ({key.algorithm.decode()}) is not the one its line names ({kind})")
    if kind == "ssh-rsa" and (bits := _rsa_bits(key.public_data)) < MIN_RSA_BITS:
        raise ValueError(f"{KEY_RULE} (got RSA of {bits} bits)")
    return f"{kind} {fields[1]} {vendor}\n"


def _rsa_bits(blob: bytes) -> int:
    """The modulus size of an ssh-rsa public key blob (string type, mpint e, mpint n)."""
    at, values = 0, []
    for _ in range(3):
        size = int.from_bytes(blob[at:at + 4], "big")
        values.append(blob[at + 4:at + 4 + size])
        at += 4 + size
    return int.from_bytes(values[2], "big").bit_length()


def ephemeral_range() -> tuple[int, int]:
    """The kernel's ephemeral port range (net.ipv4.ip_local_port_range), where outgoing connections take ports."""
    try:
        low, high = (int(v) for v in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def port_refused(port: int, host: str = "127.0.0.1") -> str:
    """"" if the bastion may listen on port (0: the kernel chooses), else why not."""
    if port == 0:
        return ""
    low, high = ephemeral_range()
    if not 1 <= port <= 65535:
        return f"{RULE}: a port is 1-65535, or none (the kernel chooses one and it is published)"
    if low <= port <= high:
        return (f"{RULE}: port {port} is in the ephemeral range {low}-{high} (net.ipv4.ip_local_port_range), where an "
                "outgoing connection can take it; choose one outside it, or none (the kernel chooses one)")
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds (TIME_WAIT is no obstacle)
        try:
            probe.bind((host, port))
        except OSError as exc:
            return f"port {port} cannot be used: {exc.strerror or exc}"
    return ""


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


def why_refused(command: str) -> tuple[str, list[str]]:
    """("", words) for a command that may run, else (why not, [])."""
    if len(command) > MAX_COMMAND:
        return f"{RULE}: a command has at most {MAX_COMMAND} characters", []
    try:
        words = shlex.split(command)
    except ValueError:
        words = []
    why = allowed(words) if words else "an empty or malformed command"
    return why, ([] if why else words)


# -- the front: the SSH server vendors reach -------------------------------------------------------------
class _Command(asyncssh.SSHServerProcess):
    """A session channel running one command (none after a refused PTY); it tells its connection when it closes."""

    def __init__(self, run, closed):
        super().__init__(run, None, 0, False)
        self._closed = closed
        self.pty_refused = False

    def connection_lost(self, exc) -> None:
        super().connection_lost(exc)
        self._closed()


class _Bastion(VendorServer):
    """Command sessions only, bounded; forwarding refused; all of it audited (the vendor policy: VendorServer)."""

    rule = RULE

    def __init__(self, paths: Paths, trail: audit.AuditLog, gate: Gate, limits: Limits, run, log):
        super().__init__(paths.vendors, limits, gate, log)
        self.paths, self.trail, self.run = paths, trail, run
        self.refusals = 0

    def no_such_vendor(self, username: str) -> None:
        self.trail.append(caller=f"ssh:{username[:32]}", method="ssh/login", status="UNAUTHENTICATED",
                          subject="no such vendor")

    def logged_in(self, vendor: str, address: str) -> None:
        self.trail.append(caller=f"ssh:{vendor}", method="ssh/login", status="OK", subject=address)

    def session_requested(self):
        chan = self.open_channel()
        chan._process_auth_agent_req_at_openssh_dot_com_request = \
            lambda packet: self._refuse_on(chan, "agent", "no agent forwarding (-A)")
        chan._process_x11_req_request = lambda packet: self._refuse_on(chan, "x11", "no X11 forwarding (-X)")
        command = _Command(self.run, self.channel_closed)
        chan._process_pty_req_request = lambda packet: self._refuse_pty(chan, command)
        return chan, command

    def refuse(self, method: str, subject: str) -> None:
        """A refused request, audited; past MAX_REFUSALS (each a witnessed entry) the connection is closed."""
        self.refusals += 1
        if self.refusals > MAX_REFUSALS:
            if self.refusals == MAX_REFUSALS + 1:
                why = f"{RULE}: at most {MAX_REFUSALS} refused requests per connection"
                self.trail.append(caller=f"ssh:{self.user}", method="ssh/disconnect", status="PERMISSION_DENIED",
                                  subject=why)
                self.conn.disconnect(DISC_BY_APPLICATION, why)
            return
        self.trail.append(caller=f"ssh:{self.user}", method=method, status="PERMISSION_DENIED", subject=subject[:200])

    def _refuse_pty(self, chan, command: _Command) -> None:
        """A PTY request: the rule on stderr, audited, refused after a round trip (OpenSSH's -t prints the line first)."""
        command.pty_refused = True
        try:
            chan.write_stderr(f"bastion: {NO_PTY}\n")
        except OSError:
            pass
        self.refuse("ssh/pty", "PTY request refused")

        async def refuse_after_a_round_trip() -> None:
            try:  # (asyncssh's own channel request, as refuse_env's handler is its own: asyncssh is pinned)
                await asyncio.wait_for(chan._make_request(b"keepalive@openssh.com"), PTY_ROUND_TRIP)
            except (asyncio.TimeoutError, OSError, asyncssh.Error):
                pass
            if chan._request_queue and chan._request_queue[0][0] == "pty-req":
                chan._report_response(False)  # (the requests after it, the exec among them, are served in order)
        self.conn.create_task(refuse_after_a_round_trip())

    def _refuse_on(self, chan, kind: str, rule: str) -> bool:
        """An agent or X11 request on a session channel: refused, audited, said on its stderr (OpenSSH wants no reply)."""
        try:
            chan.write_stderr(f"bastion: {RULE}: {rule}; refused\n")
        except OSError:
            pass
        self.refuse("ssh/forward", f"forwarding request refused: {kind}")
        return False

    def connection_requested(self, dest_host, dest_port, orig_host, orig_port):
        self.refuse("ssh/forward", f"forwarding request refused: port {dest_host[:64]}:{dest_port}")
        raise asyncssh.ChannelOpenError(OPEN_ADMINISTRATIVELY_PROHIBITED, NO_FORWARDING)

    def server_requested(self, listen_host, listen_port):
        self.refuse("ssh/forward", f"forwarding request refused: remote port {listen_host[:64]}:{listen_port}")
        return False

    def unix_connection_requested(self, dest_path):
        self.refuse("ssh/forward", f"forwarding request refused: unix socket {dest_path[:64]}")
        raise asyncssh.ChannelOpenError(OPEN_ADMINISTRATIVELY_PROHIBITED, NO_FORWARDING)

    def unix_server_requested(self, listen_path):
        self.refuse("ssh/forward", f"forwarding request refused: remote unix socket {listen_path[:64]}")
        return False


class RunnerLink:
    """The front's end of the socket to the runner: commands sent, their output and exit status received."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer
        self.pending: dict[int, asyncio.Queue] = {}
        self.next_id = 0
        self.closed = asyncio.Event()

    def send(self, message: dict) -> None:
        """One JSON line to the runner."""
        self.writer.write(json.dumps(message).encode() + b"\n")

    async def run(self, vendor: str, words: list[str], write) -> int:
        """Have the runner run a command; each piece of its output to await write(text); its exit status."""
        if self.closed.is_set():
            await write("bastion: the runner is gone; the bastion is stopping\n")
            return 255
        ident, self.next_id = self.next_id, self.next_id + 1
        queue = self.pending[ident] = asyncio.Queue(MAX_QUEUED_OUTPUT)
        self.send({"id": ident, "vendor": vendor, "words": words})
        try:
            while "exit" not in (message := await queue.get()):
                await write(message["out"])
            return message["exit"]
        finally:
            del self.pending[ident]

    async def receive(self) -> None:
        """Hand each message from the runner to its command, until the runner closes the socket."""
        try:
            async for line in self.reader:
                message = json.loads(line)
                queue = self.pending.get(message.get("id"))
                if queue is None:
                    continue
                if "exit" in message:
                    while queue.full():  # the exit status always gets through: the oldest output gives way
                        queue.get_nowait()
                    queue.put_nowait(message)
                elif not queue.full():  # a client that does not read loses output, not the front's memory
                    queue.put_nowait(message)
        finally:
            self.closed.set()
            for queue in self.pending.values():
                while queue.full():
                    queue.get_nowait()
                queue.put_nowait({"exit": 255})


async def serve_front(state_dir: Path, listen: str, runner_fd: int, limits: Limits) -> None:
    """The SSH server vendors reach, until SIGTERM or until the runner goes."""
    from nodes.confined import harden_self
    confined = harden_self()
    paths = Paths(state_dir)

    def log(line: str) -> None:
        print(f"bastion: {line}", flush=True)

    try:  # keyed and witnessed like the nodes' chains (nodes/witness.py; the runner named the witness folder)
        trail = audit.AuditLog(paths.audit, "bastion", paths.audit_key.read_bytes(),
                               witness=witness.handed_client(state_dir), eager=True)
    except audit.AuditDamaged as exc:
        log(f"refusing to start: its audit log is damaged: {exc}; keep it as evidence and run `testbed audit verify`")
        raise SystemExit(1) from None
    reader, writer = await asyncio.open_unix_connection(sock=socket.socket(fileno=runner_fd), limit=LINK_LIMIT)
    link = RunnerLink(reader, writer)
    receiving = asyncio.create_task(link.receive())

    async def run(process: asyncssh.SSHServerProcess) -> None:
        vendor = process.get_extra_info("username")
        if process.pty_refused and process.command is not None:  # (the client was told the rule with the refusal)
            trail.append(caller=f"ssh:{vendor}", method="ssh/command", status="PERMISSION_DENIED",
                         subject=process.command[:200])
            process.exit(2)
            return
        if process.command is None:
            trail.append(caller=f"ssh:{vendor}", method="ssh/shell", status="PERMISSION_DENIED", subject="shell")
            process.stderr.write(f"bastion: no shell here; allowed: {ALLOWED}\n")
            process.exit(2)
            return
        why, words = why_refused(process.command)
        if why:
            trail.append(caller=f"ssh:{vendor}", method="ssh/command", status="PERMISSION_DENIED",
                         subject=process.command[:200])
            process.stderr.write(f"bastion: {why}\n")
            process.exit(2)
            return

        async def write(text: str) -> None:
            process.stdout.write(text)
            await process.stdout.drain()  # a client that does not read holds its own command back, nothing else

        try:
            status = await link.run(vendor, words, write)
        except (OSError, asyncssh.Error):  # the client went away; the command itself goes on in the runner
            status = 255
        trail.append(caller=f"ssh:{vendor}", method=f"ssh/{words[0]}", status="OK" if status == 0 else f"EXIT {status}",
                     subject=" ".join(words)[:200])
        process.exit(status)

    gate = Gate(limits, log, rule=RULE)
    host, port = listen.rsplit(":", 1)
    server = await asyncssh.create_server(
        lambda: _Bastion(paths, trail, gate, limits, run, log), host, int(port), server_host_keys=[str(paths.host_key)],
        encoding="utf-8", **server_options(limits))
    link.send({"ready": server.sockets[0].getsockname()[1]})
    log("front serving" + ("; confined: own mount namespace, no PKI but its host and audit keys" if confined
                           else "; not confined"))
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    gone = asyncio.create_task(link.closed.wait())
    await asyncio.wait([asyncio.create_task(stop.wait()), gone], return_when=asyncio.FIRST_COMPLETED)
    server.close()
    receiving.cancel()
    trail.close()


# -- the runner: starts the front, runs the commands it asks for ----------------------------------------
def _prepare(paths: Paths) -> None:
    """Keys and files of the bastion, made before the front starts (a confined front sees only these)."""
    ensure_key(paths.host_key)
    if not paths.audit_key.exists():
        fd = os.open(paths.audit_key, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, os.urandom(32))
        os.close(fd)
    paths.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    paths.vendors.mkdir(mode=0o700, exist_ok=True)
    os.close(os.open(paths.audit, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))


def front_command(paths: Paths, listen: str, runner_fd: int, limits: Limits, confine: bool | None = None) -> list[str]:
    """The command that starts the front, confined (by default wherever the machine allows it) to its host key,
    audit key, the vendors' public keys and its audit log."""
    from testbed import confine as confinement
    program = [sys.executable, "-m", "testbed.bastion", "front", "--state-dir", str(paths.state_dir.resolve()),
               "--listen", listen, "--runner-fd", str(runner_fd), *limits.argv()]
    if confine is None:
        confine = not confinement.available()
    if not confine:
        return program
    state = paths.state_dir.resolve()
    rel = [str(p.resolve().relative_to(state)) for p in (paths.host_key, paths.audit_key, paths.vendors, paths.audit)]
    return confinement.service_command(state, "bastion", readable=rel[:3], writable=rel[3:], program=program)


class Runner:
    """Runs, for the front, the commands it asks for: each checked again, at most MAX_COMMANDS at once."""

    def __init__(self, paths: Paths, writer: asyncio.StreamWriter):
        self.paths, self.writer = paths, writer
        self.running: set[asyncio.Task] = set()

    def send(self, message: dict) -> None:
        """One JSON line to the front (dropped if the front is gone: a command's own work goes on)."""
        if not self.writer.is_closing():
            self.writer.write(json.dumps(message, ensure_ascii=False).encode() + b"\n")

    def check(self, vendor, words) -> str:
        """"" if the command may run for the vendor, else why not (a compromised front may ask for no more than a
        vendor may)."""
        if not (isinstance(vendor, str) and VENDOR_NAME.fullmatch(vendor) and (self.paths.vendors / f"{vendor}.pub").is_file()):
            return f"{RULE}: no vendor {str(vendor)[:32]!r}"
        if not (isinstance(words, list) and all(isinstance(w, str) for w in words)):
            return "a malformed command"
        if why := allowed(words):
            return why
        if len(self.running) >= MAX_COMMANDS:
            return f"{RULE}: at most {MAX_COMMANDS} commands at once; try again when one has finished"
        return ""

    def request(self, message: dict) -> None:
        """A command asked for: refused at once, or started."""
        ident, vendor, words = message.get("id"), message.get("vendor"), message.get("words")
        if why := self.check(vendor, words):
            self.send({"id": ident, "out": f"bastion: {why}\n"})
            self.send({"id": ident, "exit": 2})
            return
        task = asyncio.create_task(self.run(ident, vendor, words))
        self.running.add(task)
        task.add_done_callback(self.running.discard)

    async def run(self, ident: int, vendor: str, words: list[str]) -> None:
        """One command as `testbed COMMAND` on the state folder, its output sent as it comes."""
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "testbed.cli", "--state-dir", str(self.paths.state_dir), *words,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "TESTBED_OPERATOR": f"vendor:{vendor}"}, limit=LINK_LIMIT // 4)
        async for line in child.stdout:
            self.send({"id": ident, "out": line.decode(errors="replace")})
        self.send({"id": ident, "exit": await child.wait()})


async def serve(state_dir: Path, listen: str, limits: Limits | None = None) -> None:
    """The runner: start the front and run its commands until SIGTERM (or until the front exits)."""
    limits = limits or Limits()
    paths = Paths(state_dir)
    _prepare(paths)
    if why := witness.hand_down(state_dir, paths.state_dir / "logs" / "witness.log"):  # (the front cannot see the PKI)
        print(f"bastion: its audit heads are not witnessed for now: {why}", file=sys.stderr, flush=True)
    ours, theirs = socket.socketpair()
    front = await asyncio.create_subprocess_exec(*front_command(paths, listen, theirs.fileno(), limits),
                                                 stdin=asyncio.subprocess.DEVNULL, pass_fds=(theirs.fileno(),))
    theirs.close()
    reader, writer = await asyncio.open_unix_connection(sock=ours, limit=LINK_LIMIT)
    runner = Runner(paths, writer)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)

    async def listen_to_front() -> None:
        async for line in reader:
            message = json.loads(line)
            if "ready" in message:
                _published(paths, listen.rsplit(":", 1)[0], int(message["ready"]))
            else:
                runner.request(message)
    talking = asyncio.create_task(listen_to_front())
    await asyncio.wait([talking, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
    if front.returncode is None:
        front.terminate()
    await front.wait()
    talking.cancel()
    # the witness this bastion started (after the front's last head), unless nodes of the network run beside it
    witness.release(lambda: any(processes.running(pid, b"nodes") for pid in (paths.state_dir / "run").glob("*.pid")))


def _published(paths: Paths, host: str, port: int) -> None:
    """The front listens: its known_hosts line and port, for the client and for `testbed bastion start`."""
    host_pub = asyncssh.read_private_key(str(paths.host_key)).export_public_key().decode().strip()
    paths.known_hosts.write_text(f"[{host}]:{port} {host_pub}\n")
    paths.port.write_text(str(port))


def start(state_dir: Path, port: int = 0, limits: Limits | None = None) -> int:
    """Start the bastion (unless it runs) on port (0: the kernel's choice); its port, once the front listens and
    the runner has published it; ValueError if port_refused."""
    paths = Paths(state_dir)
    if running(paths):
        return int(paths.port.read_text())
    if why := port_refused(port):
        raise ValueError(why)
    paths.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    paths.port.unlink(missing_ok=True)
    program = [sys.executable, "-m", "testbed.bastion", "serve", "--state-dir", str(paths.state_dir),
               "--listen", f"127.0.0.1:{port}", *(limits or Limits()).argv()]
    return processes.start_helper(program, paths.pid, paths.state_dir / "logs" / "bastion.log", MARKER,
                                  what="the bastion", ready=processes.port_file(paths.port), timeout=START_TIMEOUT).port


def running(paths: Paths) -> int | None:
    """The bastion's process id (the runner's) while it runs."""
    return processes.running(paths.pid, MARKER)


def front_pid(paths: Paths) -> int | None:
    """The process id of the bastion's front (the SSH server, the runner's child) while it runs."""
    import psutil
    runner = running(paths)
    try:
        fronts = [p.pid for p in psutil.Process(runner).children() if "front" in p.cmdline()] if runner else []
    except psutil.Error:
        return None
    return fronts[0] if fronts else None


def stop(state_dir: Path) -> bool:
    """Stop the bastion; whether it was running."""
    paths = Paths(state_dir)
    return processes.stop_recorded(paths.pid, MARKER, paths.port)


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
    """`python -m testbed.bastion serve --state-dir DIR --listen H:P` (the runner; it starts the front itself)."""
    parser = argparse.ArgumentParser(prog="python -m testbed.bastion")
    parser.add_argument("command", choices=["serve", "front"])
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--listen", default="127.0.0.1:0")
    parser.add_argument("--runner-fd", type=int, help="(front) the socket to the runner")
    Limits().add_arguments(parser)
    args = parser.parse_args(argv)
    os.umask(0o077)
    limits = Limits.from_args(args)
    if args.command == "front":
        asyncio.run(serve_front(args.state_dir, args.listen, args.runner_fd, limits))
    else:
        asyncio.run(serve(args.state_dir, args.listen, limits))
    return 0


if __name__ == "__main__":
    sys.exit(main())
