"""The witness of the audit chains: a process apart from the nodes that keeps, in a signed, hash-chained log of
its own, every head the writer of a chain showed it, so that a chain cut short or rewritten in the state folder
(together with the checkpoints beside it) no longer agrees with what was witnessed. Transparency logs do the
same: whoever holds the log cannot make it disagree with what a second party saw and kept.

The trust argument, and why a separate process:

- The attacker of DESIGN §3/§13 can write the state folder: logs, checkpoints, and the node keys kept there
  (an audit key, a certificate key) are theirs to read, so anything kept in that folder, or signed with a key
  kept in it, can be cut or made again. Hence the witness keeps its signing key (Ed25519) and its log in a
  folder outside the state folder: ``$TESTBED_WITNESS_DIR`` (else ``$XDG_STATE_HOME/testbed-witness``, else
  ``~/.local/state/testbed-witness``), one sub-folder per network named by a hash of the state folder's path
  and the network's root CA (a network made anew at the same path is a new network), 0700, files 0600.
  Where the witness folder is has to come from the environment, never from the state folder: a setting kept
  there would let the attacker point verification at a folder of their own.
- The witness is a process of its own (``python -m nodes.witness serve``), started by `testbed up` before the
  nodes and stopped by `testbed down` after them. The nodes and the bastion hold none of its keys and never
  write its folder: each chain's writer sends (chain, entry count, MAC of the entry there, SHA-256 of the
  log's bytes up to there) over the witness's unix socket with every checkpoint; the witness signs it, chains
  it to the record before and appends it. It refuses a head that goes back (fewer entries than it witnessed:
  rule witness/no-rollback) or forks (the same count under another head: rule witness/no-fork), and it never
  rewrites what it has signed. A unix socket rather than TCP: a node reaches it from its own network namespace
  (`--isolated`) and its own mount namespace (`--confine`) alike, and nobody reaches it from off the machine.
- `testbed audit verify` reads the witness's log directly (the process need not run), checks its chain and
  signatures, and requires of every chain that it is at least as long as its last witnessed head and holds,
  at every witnessed position, the witnessed MAC and digest; a chain the witness knows whose log is gone is
  reported too. The digest pins the entries without the node's key: an archived chain, whose key was
  destroyed with its site, is still checked entry by entry up to its last witnessed head.
- What it does not stop: someone who can also write the witness folder (a shell as the same user); entries
  forged after the last witnessed head by someone holding the node's audit key (what the writer has not yet
  shown the witness, at most a checkpoint interval's worth, is as safe as its key); a head the witness did not
  see because it was down (the writer shows its current head again at its next checkpoint, which covers every
  entry before it). The witness does not authenticate who shows it a head: a false head can make a chain fail
  verification (loudly), it cannot hide a cut.
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from nodes import clock, jsonlines

log = logging.getLogger(__name__)

ENV = "TESTBED_WITNESS_DIR"  # the folder that holds every network's witness folder
FOLDER_ENV = "TESTBED_WITNESS_FOLDER"  # one network's witness folder, named by a launcher for a child without the PKI
SOCKET, LOG, KEY, PUBLIC, PID, ABOUT = "witness.sock", "heads.jsonl", "witness.key", "witness.pub", "witness.pid", "about.json"
TIMEOUT = 2.0  # seconds a writer waits on the witness before going on unwitnessed (it shows the head again later)
START_TIMEOUT = 10.0
CHAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
HEX64 = re.compile(r"[0-9a-f]{64}")
EMPTY_DIGEST = hashlib.sha256(b"").hexdigest()


class WitnessUnavailable(Exception):
    """The witness does not answer (not running, or its socket is not reachable)."""


class WitnessDamaged(Exception):
    """The witness's own log is damaged: it will not append to it."""


def base_folder() -> Path:
    """The folder that holds the witness folders of every network (outside any state folder)."""
    if os.environ.get(ENV):
        return Path(os.environ[ENV]).expanduser().absolute()
    state_home = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state_home) / "testbed-witness"


def folder(state_dir: str | Path, pki_dir: str | Path | None = None) -> Path:
    """The witness folder of the network of a state folder: named by the folder's path and the network's root CA."""
    state = Path(state_dir).resolve()
    root = Path(pki_dir or state / "pki") / "root" / "ca.pem"
    try:
        anchor = root.read_bytes()
    except OSError:
        anchor = b""  # (no PKI yet: `testbed up` makes one before it starts the witness)
    return base_folder() / hashlib.sha256(str(state).encode() + b"\0" + anchor).hexdigest()[:16]


def _canonical(record: dict, without: str) -> bytes:
    body = {k: v for k, v in record.items() if k != without}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def _line_hash(line: bytes) -> str:
    return hashlib.sha256(line.rstrip(b"\n")).hexdigest()


@contextmanager
def _address(path: Path):
    """A unix socket address for path that fits the kernel's 108 bytes (a long path is reached through its folder's fd)."""
    if len(str(path)) < 100:
        yield str(path)
        return
    fd = os.open(path.parent, os.O_PATH)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


# -- the witness's log -----------------------------------------------------------------------------------------
@dataclass
class Heads:
    """What a witness folder holds: every witnessed head per chain (oldest first), and any damage to its log."""

    folder: Path
    exists: bool = False
    chains: dict[str, list[dict]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    records: int = 0
    last_hash: str = ""

    def of(self, chain: str) -> list[dict]:
        """The witnessed heads of one chain, oldest first."""
        return self.chains.get(chain, [])

    def last(self, chain: str) -> dict | None:
        """The last witnessed head of a chain, or None."""
        heads = self.chains.get(chain)
        return heads[-1] if heads else None


class _Reader:
    """Reads a witness log incrementally: a long run's records are checked once, then only those added (what was
    read before must be there unchanged, else the whole log is read again)."""

    def __init__(self, where: Path):
        self.heads = Heads(where)
        self.offset, self.prefix, self.public, self.seen = 0, hashlib.sha256().digest(), None, None

    def refresh(self) -> Heads:
        where = self.heads.folder
        try:
            st = (where / LOG).stat()
            if (st.st_ino, st.st_size, st.st_mtime_ns) == self.seen:
                return self.heads  # (unchanged since the last look: nothing to read)
            data = (where / LOG).read_bytes()
        except FileNotFoundError:
            self.__init__(where)
            return self.heads
        except OSError as exc:
            return Heads(where, True, problems=[f"the witness's log cannot be read ({exc.strerror})"])
        if hashlib.sha256(data[:self.offset]).digest() != self.prefix:  # edited, cut or replaced: read it all again
            self.__init__(where)
        self.heads.exists = True
        if self.public is None:
            try:
                self.public = ed25519.Ed25519PublicKey.from_public_bytes(
                    bytes.fromhex((where / PUBLIC).read_text().strip()))
            except (OSError, ValueError) as exc:
                return Heads(where, True, problems=[f"the witness's public key cannot be read ({exc})"])
        end = data.rfind(b"\n") + 1  # (a record is one write; a line without its end is still being written)
        if end > self.offset:
            for line in data[self.offset:end].splitlines(keepends=True):
                self._take(line)
            self.offset, self.prefix = end, hashlib.sha256(data[:end]).digest()
        self.seen = (st.st_ino, st.st_size, st.st_mtime_ns) if end == len(data) else None
        return self.heads

    def _take(self, line: bytes) -> None:
        heads = self.heads
        number = heads.records + 1
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            heads.problems.append(f"witness record {number}: not a record (its log was edited or damaged)")
        else:
            try:
                self.public.verify(bytes.fromhex(str(record.get("sig", ""))), _canonical(record, "sig"))
                signed = True
            except (InvalidSignature, ValueError):
                signed = False
            if not signed:
                heads.problems.append(f"witness record {number}: not signed by the witness (forged or damaged)")
            elif record.get("n") != number or record.get("prev", "") != heads.last_hash \
                    or not isinstance(record.get("chain"), str) or not isinstance(record.get("seq"), int):
                heads.problems.append(f"witness record {number}: does not follow the record before it "
                                      "(records were removed, inserted or reordered)")
            else:
                heads.chains.setdefault(record["chain"], []).append(record)
        heads.records = number
        heads.last_hash = _line_hash(line)


_readers: dict[str, _Reader] = {}


def read_heads(where: Path) -> Heads:
    """The heads a witness folder holds (its log's chain and signatures checked), read incrementally."""
    key = str(Path(where).resolve())
    reader = _readers.get(key) or _readers.setdefault(key, _Reader(Path(where)))
    return reader.refresh()


class WitnessLog:
    """The witness's own append-only log, which only the witness process writes: signed, hash-chained records."""

    def __init__(self, where: Path):
        self.folder = Path(where)
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.folder, 0o700)
        key_path = self.folder / KEY
        if not key_path.exists():
            key = ed25519.Ed25519PrivateKey.generate()
            _write_private(key_path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
        self.key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        public = self.key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()
        if not (self.folder / PUBLIC).exists():
            _write_private(self.folder / PUBLIC, (public + "\n").encode())
        if (self.folder / PUBLIC).read_text().strip() != public:
            raise WitnessDamaged(f"{self.folder / PUBLIC} is not the public half of {key_path}")
        heads = _Reader(self.folder).refresh()
        if heads.problems:
            raise WitnessDamaged(f"{self.folder / LOG}: {heads.problems[0]}")
        self.records, self.last_hash = heads.records, heads.last_hash
        self.last = {chain: records[-1] for chain, records in heads.chains.items()}
        self._fd = os.open(self.folder / LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def witness(self, chain: str, seq: int, head: str, digest: str) -> tuple[dict | None, str]:
        """(the record appended, or None if already witnessed; "") or (None, why the head is refused, naming the rule)."""
        last = self.last.get(chain)
        if last is not None:
            if seq < last["seq"]:
                return None, (f"witness/no-rollback: {chain} was witnessed at {last['seq']} entries on {last['time']}; "
                              f"a head of {seq} entries means entries were cut")
            if seq == last["seq"]:
                if (head, digest) == (last["head"], last["digest"]):
                    return None, ""
                return None, (f"witness/no-fork: {chain} was witnessed at {seq} entries under another head on "
                              f"{last['time']}; the chain was rewritten")
        self.records += 1
        record = {"n": self.records, "chain": chain, "seq": seq, "head": head, "digest": digest,
                  "time": clock.stamp("milliseconds"), "prev": self.last_hash}
        record["sig"] = self.key.sign(_canonical(record, "sig")).hex()
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        os.write(self._fd, line)
        self.last_hash, self.last[chain] = _line_hash(line), record
        return record, ""


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


# -- the process -----------------------------------------------------------------------------------------------
def _answer(witness_log: WitnessLog, request) -> dict:
    """The witness's answer to one request: show a head ("witness") or ask for a chain's last one ("last")."""
    if not isinstance(request, dict) or request.get("op") not in ("witness", "last", "ping"):
        return {"ok": False, "error": "witness/request: a request is {op: witness|last|ping, ...}"}
    if request["op"] == "ping":
        return {"ok": True}
    chain = request.get("chain")
    if not isinstance(chain, str) or not CHAIN_NAME.fullmatch(chain):
        return {"ok": False, "error": "witness/request: a chain is named by letters, digits, '.', '_' and '-'"}
    if request["op"] == "last":
        return {"ok": True, "head": witness_log.last.get(chain)}
    seq, head, digest = request.get("seq"), request.get("head"), request.get("digest")
    if not (isinstance(seq, int) and not isinstance(seq, bool) and 0 <= seq < 2**53
            and isinstance(head, str) and HEX64.fullmatch(head) and isinstance(digest, str) and HEX64.fullmatch(digest)):
        return {"ok": False, "error": "witness/request: a head is {seq: entries, head: 64 hex, digest: 64 hex}"}
    record, why = witness_log.witness(chain, seq, head, digest)
    if why:
        log.warning("refused a head of %s: %s", chain, why)
        return {"ok": False, "error": why}
    return {"ok": True, "n": record["n"] if record else None}


async def serve(where: Path) -> None:
    """Run the witness of a folder until SIGTERM: answer on its unix socket, append to its log."""
    witness_log = WitnessLog(where)
    about = where / ABOUT
    if not about.exists():  # (for a person looking at the folder: which network this is)
        _write_private(about, json.dumps({"created": clock.stamp(),
                                          "state_dir": os.environ.get("TESTBED_WITNESS_FOR", "")}).encode())

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), TIMEOUT)
            try:
                request = json.loads(line)
            except ValueError:
                request = None
            writer.write((json.dumps(_answer(witness_log, request)) + "\n").encode())
            await writer.drain()
        except (asyncio.TimeoutError, OSError, ValueError):  # (a request too long, or a caller gone: no answer)
            pass
        finally:
            writer.close()

    path = where / SOCKET
    path.unlink(missing_ok=True)
    with _address(path) as address:
        server = await asyncio.start_unix_server(handle, path=address)
    os.chmod(path, 0o600)
    log.info("witness of %s serving (%d heads kept)", where, witness_log.records)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()
    path.unlink(missing_ok=True)


class Client:
    """How a chain's writer (a node, the bastion) shows its heads to the witness, over the witness's socket."""

    def __init__(self, where: Path):
        self.folder = Path(where)
        self.path = self.folder / SOCKET

    def _ask(self, request: dict) -> dict:
        try:
            with _address(self.path) as address:
                return jsonlines.ask(address, request, TIMEOUT)
        except (OSError, ValueError) as exc:
            raise WitnessUnavailable(f"no witness answers at {self.path} ({exc}); `testbed up` starts it") from None

    def show(self, chain: str, seq: int, head: str, digest: str) -> str:
        """Show the witness a chain's head: "" once witnessed, else why it refused (WitnessUnavailable if it is not there)."""
        answer = self._ask({"op": "witness", "chain": chain, "seq": seq, "head": head, "digest": digest})
        return "" if answer.get("ok") else str(answer.get("error", "refused"))

    def last(self, chain: str) -> dict | None:
        """The last head of a chain the witness holds, or None (WitnessUnavailable if it is not there)."""
        answer = self._ask({"op": "last", "chain": chain})
        return answer.get("head") if answer.get("ok") else None

    def alive(self) -> bool:
        """Whether the witness answers."""
        try:
            return bool(self._ask({"op": "ping"}).get("ok"))
        except WitnessUnavailable:
            return False


def hand_down(state_dir: Path, log_path: Path) -> str:
    """Start the network's witness if it is not running and name its folder for this process's children; "" or why
    not. (For a launcher whose child writes a chain but cannot see the root CA: the bastion's confined front.)"""
    global _started_here
    where = folder(state_dir)
    os.environ[FOLDER_ENV] = str(where)
    running_before = running(where)
    try:
        pid = start(where, log_path, state_dir)
    except (WitnessUnavailable, OSError) as exc:
        return str(exc)
    if pid != running_before:
        _started_here = where
    return ""


_started_here: Path | None = None  # the witness hand_down started (for release)


def release(in_use) -> bool:
    """Stop the witness hand_down started in this process unless in_use() (nodes still run); whether it stopped."""
    global _started_here
    where, _started_here = _started_here, None
    return where is not None and not in_use() and stop(where)


def handed_client(state_dir: Path) -> Client:
    """The witness client of a chain's writer whose launcher named the witness folder (else its network's own)."""
    return Client(Path(os.environ.get(FOLDER_ENV) or folder(state_dir)))


def running(where: Path) -> int | None:
    """The witness process of a folder while it runs (its pid file, and a command line that names the folder)."""
    try:
        pid = int((Path(where) / PID).read_text())
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read().split(b"\0")
    except (OSError, ValueError):
        return None
    return pid if b"nodes.witness" in cmdline and str(where).encode() in cmdline else None


def start(where: Path, log_path: Path, state_dir: Path | None = None) -> int:
    """Start the witness of a folder (once); its process id, when it answers."""
    where = Path(where)
    pid = running(where)
    if pid and Client(where).alive():
        return pid
    base = where.parent
    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    where.mkdir(mode=0o700, exist_ok=True)
    out = open(os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "ab")
    env = {**os.environ, "TESTBED_WITNESS_FOR": str(Path(state_dir).resolve()) if state_dir else ""}
    with out:
        proc = subprocess.Popen([sys.executable, "-m", "nodes.witness", "serve", "--folder", str(where)], stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, env=env)
    fd = os.open(where / PID, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, str(proc.pid).encode())
    os.close(fd)
    deadline = time.monotonic() + START_TIMEOUT
    while not Client(where).alive():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise WitnessUnavailable(f"the audit witness did not start; see {log_path}")
        time.sleep(0.05)
    return proc.pid


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return True


def stop(where: Path, timeout: float = 5.0) -> bool:
    """Stop the witness of a folder (after the chains' writers, so that their last heads are witnessed); whether it ran."""
    pid = running(where)
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG)[0]:
                break
        except ChildProcessError:
            if _gone(pid):
                break
        time.sleep(0.02)
    else:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (OSError, ChildProcessError):
            pass
    (Path(where) / PID).unlink(missing_ok=True)
    return True


def main(argv: list[str] | None = None) -> int:
    """`python -m nodes.witness serve --folder DIR`."""
    parser = argparse.ArgumentParser(prog="python -m nodes.witness")
    parser.add_argument("command", choices=["serve"])
    parser.add_argument("--folder", type=Path, required=True)
    args = parser.parse_args(argv)
    os.umask(0o077)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s witness %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(serve(args.folder))
    except WitnessDamaged as exc:
        log.error("refusing to start: the witness's own log is damaged: %s; keep the folder as evidence and give the "
                  "network another witness folder (%s) only after it has been examined", exc, ENV)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
