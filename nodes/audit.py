"""The audit log: one keyed hash chain (JSON Lines) per node, with signed checkpoints published outside
the node's folder, verifiable by `testbed audit verify`.

Each entry records who called (certificate identity), the operator and terminal for terminal calls,
the method, the subject (usually a 住民票コード), the status code and the time, and carries an HMAC
(the node's own audit key) over itself and the MAC of the entry before: an edited, removed,
inserted or reordered entry breaks the chain, and without the key it cannot be re-chained. Every few
seconds and on shutdown the node signs a checkpoint (node, entry count, head) with its own key and
appends it to a file outside its folder: a log cut short, emptied or re-chained with the key no
longer matches what was checkpointed. A node refuses to start on a damaged log. The file is written
with one write() per entry: an entry survives kill -9.
"""
from __future__ import annotations

import contextvars
import datetime as dt
import hashlib
import hmac
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

log = logging.getLogger(__name__)

GENESIS = "0" * 64
CHECKPOINT_SECONDS = 2.0  # a new checkpoint at most this often, when entries were added

# The servicer names the record a call is about; the interceptor writes it into the entry.
subject_var: contextvars.ContextVar[str] = contextvars.ContextVar("audit_subject", default="")


def set_subject(subject: str) -> None:
    """Name the record (e.g. 住民票コード) the current call is about, for its audit entry."""
    subject_var.set(subject)


BATCH_SUBJECT_LIMIT = 20  # a batch names each of its people up to this many, so each can be followed


def set_batch_subject(keys) -> None:
    """Name the records of a batch call: each of them when few, else the first, the last and how many."""
    keys = list(keys)
    if not keys:
        return
    subject_var.set(",".join(keys) if len(keys) <= BATCH_SUBJECT_LIMIT else f"{keys[0]}..{keys[-1]} ({len(keys)})")


def _canonical(record: dict, without: str) -> bytes:
    body = {k: v for k, v in record.items() if k != without}
    return json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def entry_mac(key: bytes, entry: dict) -> str:
    """The HMAC-SHA256, under the node's audit key, of an entry's canonical JSON without its own MAC."""
    return hmac.new(key, _canonical(entry, "mac"), hashlib.sha256).hexdigest()


def entry_hash(entry: dict) -> str:
    """The unkeyed SHA-256 of an entry of the earlier format (a "hash" field): kept to read old logs."""
    return hashlib.sha256(_canonical(entry, "hash")).hexdigest()


def _link(entry: dict) -> str:
    return entry.get("mac") or entry.get("hash") or ""


class AuditDamaged(Exception):
    """A node's audit log (or its checkpoints) shows tampering or damage: the node must not start on it."""


class Signer:
    """Signs checkpoints with a node's private key (ECDSA P-256, SHA-256)."""

    def __init__(self, key_pem: bytes):
        self.key = serialization.load_pem_private_key(key_pem, password=None)

    def sign(self, data: bytes) -> str:
        """The signature of data, hex."""
        return self.key.sign(data, ec.ECDSA(hashes.SHA256())).hex()


def checkpoint_valid(public_key, checkpoint: dict) -> bool:
    """Whether a checkpoint's signature is the node's."""
    try:
        public_key.verify(bytes.fromhex(checkpoint.get("sig", "")), _canonical(checkpoint, "sig"), ec.ECDSA(hashes.SHA256()))
        return True
    except (InvalidSignature, ValueError, TypeError):
        return False


def read_checkpoints(path: Path, public_key) -> tuple[list[dict], list[str]]:
    """(the checkpoints whose signatures hold, the problems found) of a checkpoint file."""
    good, problems = [], []
    if not path.exists():
        return good, problems
    for line_no, line in enumerate(path.read_text("utf-8", errors="replace").splitlines(), 1):
        try:
            checkpoint = json.loads(line)
        except json.JSONDecodeError:
            checkpoint = None
        if not isinstance(checkpoint, dict) or not checkpoint_valid(public_key, checkpoint):
            problems.append(f"checkpoint line {line_no}: not signed by the node (forged or damaged)")
            continue
        good.append(checkpoint)
    return good, problems


class AuditLog:
    """An append-only keyed chain in a file; checks and resumes the chain after a restart."""

    def __init__(self, path: str | Path, node: str, key: bytes, checkpoints: Path | None = None,
                 signer: Signer | None = None, public_key=None):
        self.path = Path(path)
        self.node = node
        self.key = key
        self.checkpoints, self.signer = checkpoints, signer
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            marks = []
            if checkpoints is not None and public_key is not None:
                marks, problems = read_checkpoints(checkpoints, public_key)
                if problems:
                    raise AuditDamaged(f"{checkpoints}: {problems[0]}")
            result = verify(self.path, key, marks)
            if not result.ok:
                raise AuditDamaged(f"{self.path}: {result.problems[0]}"
                                   + (f" (and {len(result.problems) - 1} more)" if len(result.problems) > 1 else ""))
            self.seq, self.head = result.entries, result.head
        else:
            self.seq, self.head = 0, GENESIS
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._checkpointed = -1
        self.checkpoint()

    def append(self, *, caller: str, method: str, status: str, subject: str = "",
               operator: str = "", terminal: str = "") -> dict:
        """Add one entry to the chain and write it through to the file."""
        self.seq += 1
        entry = {
            "seq": self.seq,
            "time": dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds"),
            "node": self.node,
            "caller": caller,
            "operator": operator,
            "terminal": terminal,
            "method": method,
            "subject": subject,
            "status": status,
            "prev": self.head,
        }
        entry["mac"] = self.head = entry_mac(self.key, entry)
        os.write(self._fd, (json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8"))
        return entry

    def checkpoint(self) -> dict | None:
        """Publish a signed checkpoint of (node, entries, head) if entries were added since the last one."""
        if self.checkpoints is None or self.signer is None or self.seq == self._checkpointed:
            return None
        mark = {"node": self.node, "seq": self.seq, "head": self.head,
                "time": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
        mark["sig"] = self.signer.sign(_canonical(mark, "sig"))
        self.checkpoints.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.checkpoints, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (json.dumps(mark, separators=(",", ":")) + "\n").encode())
        finally:
            os.close(fd)
        self._checkpointed = self.seq
        return mark

    def close(self) -> None:
        """A last checkpoint, then close the file."""
        self.checkpoint()
        os.close(self._fd)


def follow(paths, key: str) -> list[dict]:
    """Every entry of the given logs whose subject names key, in time order: one person's path."""
    entries = []
    for path in paths:
        with Path(path).open(encoding="utf-8") as f:
            for line in f:
                if key in line:
                    entry = json.loads(line)
                    if key in entry.get("subject", ""):
                        entries.append(entry)
    return sorted(entries, key=lambda e: e["time"])


@dataclass
class Verification:
    """What `verify` found: entries read, the head, the last checkpoint matched, and every problem."""

    path: str
    entries: int = 0
    head: str = GENESIS
    checkpointed: int = 0  # entries covered by the last checkpoint that matched
    legacy: int = 0  # entries of the earlier, unkeyed format at the start of the log
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether the chain is whole and agrees with every checkpoint."""
        return not self.problems


def verify(path: str | Path, key: bytes, checkpoints: list[dict] | None = None) -> Verification:
    """Walk the chain: every entry that was edited, removed, inserted or reordered, and every checkpoint
    the log no longer matches (a cut tail, an emptied file, a chain rewritten with the key)."""
    result = Verification(str(path))
    prev, expected_seq, keyed = GENESIS, 1, False
    links: dict[int, str] = {}
    with Path(path).open("r", encoding="utf-8", errors="replace") as f:
        for line_no, line in enumerate(f, 1):
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                entry = None
            if not isinstance(entry, dict):
                result.problems.append(f"line {line_no}: not a JSON entry (edited or damaged)")
                continue
            result.entries += 1
            seq = entry.get("seq")
            if "mac" in entry:
                keyed = True
                if not hmac.compare_digest(entry_mac(key, entry), str(entry["mac"])):
                    result.problems.append(f"line {line_no}: seq {seq} does not carry its MAC (edited, or chained "
                                           "without the node's key)")
            elif keyed or entry_hash(entry) != entry.get("hash"):
                result.problems.append(f"line {line_no}: seq {seq} is not a keyed entry of this chain (edited)")
            else:
                result.legacy += 1
            if entry.get("prev") != prev:
                result.problems.append(f"line {line_no}: seq {seq} does not follow the entry before it "
                                       "(an entry was removed, inserted or reordered)")
            if seq != expected_seq:
                result.problems.append(f"line {line_no}: seq {seq} where {expected_seq} was due")
            prev = _link(entry)
            if isinstance(seq, int):
                links[seq] = prev
            expected_seq = (seq if isinstance(seq, int) else expected_seq) + 1
    result.head = prev
    for mark in checkpoints or ():
        seq = mark.get("seq", 0)
        if seq > result.entries:
            result.problems.append(f"checkpoint of {mark.get('time')}: {seq} entries were checkpointed, the log has "
                                   f"{result.entries} (entries cut from the end)")
        elif seq and links.get(seq) != mark.get("head"):
            result.problems.append(f"checkpoint of {mark.get('time')}: entry {seq} is not the one checkpointed "
                                   "(the chain was rewritten)")
        else:
            result.checkpointed = max(result.checkpointed, seq)
    return result
