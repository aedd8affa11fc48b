"""The audit log: one keyed hash chain (JSON Lines) per node, with signed checkpoints published outside
the node's folder and heads witnessed by a party apart (nodes/witness.py), verifiable by `testbed audit verify`.

Each entry records who called (certificate identity), the operator and terminal for terminal calls,
the method, the subject (usually a 住民票コード), the status code and the time, and carries an HMAC
(the node's own audit key) over itself and the MAC of the entry before: an edited, removed,
inserted or reordered entry breaks the chain, and without the key it cannot be re-chained. Every entry
carries its MAC: a chain of the older, unkeyed format (a "hash" field) is refused, by verify and at start
(rule audit/keyed-chain), since anyone could rewrite it. Every few seconds and on shutdown the node signs a
checkpoint (node, entry count, head, digest) with its own key and appends it to a file outside its folder,
and shows the same head to the witness, which keeps it in a signed log of its own outside the state folder:
a log cut short, emptied or re-chained (with the key, checkpoints and all) no longer matches what was
witnessed. A node refuses to start on a damaged log, or on one that does not reach its last witnessed head.
The file is written with one write() per entry: an entry survives kill -9.
"""
from __future__ import annotations

import contextvars
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

from nodes import clock
from nodes.witness import EMPTY_DIGEST, WitnessUnavailable

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
    """The unkeyed SHA-256 of an entry of the earlier format (a "hash" field): kept to recognise, and refuse, it."""
    return hashlib.sha256(_canonical(entry, "hash")).hexdigest()


def _link(entry: dict) -> str:
    return str(entry.get("mac") or entry.get("hash") or "")


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
    """An append-only keyed chain in a file; checks and resumes the chain after a restart, shows its heads to the witness."""

    def __init__(self, path: str | Path, node: str, key: bytes, checkpoints: Path | None = None,
                 signer: Signer | None = None, public_key=None, witness=None, eager: bool = False):
        self.path = Path(path)
        self.node = node
        self.key = key
        self.checkpoints, self.signer = checkpoints, signer
        self.witness = witness  # a nodes.witness.Client, or None (no witness: tests of the chain alone)
        self.eager = eager  # a checkpoint after every entry (a chain of few entries and no checkpoint timer: the bastion's)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        witnessed = self._last_witnessed()
        if self.path.exists():
            marks = []
            if checkpoints is not None and public_key is not None:
                marks, problems = read_checkpoints(checkpoints, public_key)
                if problems:
                    raise AuditDamaged(f"{checkpoints}: {problems[0]}")
            result = verify(self.path, key, marks, witnessed, node=node)
            if not result.ok:
                raise AuditDamaged(f"{self.path}: {result.problems[0]}"
                                   + (f" (and {len(result.problems) - 1} more)" if len(result.problems) > 1 else ""))
            self.seq, self.head, self._digest = result.entries, result.head, result.hasher
        else:
            if witnessed and witnessed[0]["seq"] > 0:  # a log deleted: a new chain must not begin in its place
                raise AuditDamaged(f"{self.path}: the log is gone, but the witness holds {witnessed[0]['seq']} entries "
                                   f"of {node} (witnessed {witnessed[0].get('time')}): put the log back (rule audit/witnessed)")
            self.seq, self.head, self._digest = 0, GENESIS, hashlib.sha256()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._checkpointed = self._witnessed = -1
        self._unwitnessed = False  # (a witness that does not answer is logged once, not every checkpoint)
        self.checkpoint()

    def _last_witnessed(self) -> list[dict]:
        """The witness's last head of this chain (to check the log against before going on), if a witness answers."""
        if self.witness is None:
            return []
        try:
            last = self.witness.last(self.node)
        except WitnessUnavailable as exc:
            log.warning("the audit log of %s is not checked against its witnessed head: %s", self.node, exc)
            return []
        return [last] if last else []

    def append(self, *, caller: str, method: str, status: str, subject: str = "",
               operator: str = "", terminal: str = "") -> dict:
        """Add one entry to the chain and write it through to the file."""
        self.seq += 1
        entry = {
            "seq": self.seq,
            "time": clock.stamp("microseconds"),
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
        line = (json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
        os.write(self._fd, line)
        self._digest.update(line)
        if self.eager:
            self.checkpoint()
        return entry

    def checkpoint(self, show: bool = True) -> dict | None:
        """Publish a signed checkpoint of (node, entries, head, digest) if entries were added; with show, show the
        head to the witness too."""
        mark = None
        if self.checkpoints is not None and self.signer is not None and self.seq != self._checkpointed:
            mark = {"node": self.node, "seq": self.seq, "head": self.head, "digest": self._digest.hexdigest(),
                    "time": clock.stamp()}
            mark["sig"] = self.signer.sign(_canonical(mark, "sig"))
            self.checkpoints.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.checkpoints, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, (json.dumps(mark, separators=(",", ":")) + "\n").encode())
            finally:
                os.close(fd)
            self._checkpointed = self.seq
        if show:
            self.show(self.head_now())
        return mark

    def head_now(self) -> tuple[int, str, str]:
        """(entries, MAC of the last, digest of the file) as of now: the head to show the witness."""
        return self.seq, self.head, self._digest.hexdigest()

    @property
    def unwitnessed(self) -> bool:
        """Whether the witness has yet to see the current head."""
        return self.witness is not None and self.seq != self._witnessed

    def show(self, head: tuple[int, str, str]) -> None:
        """Show a head (from head_now) to the witness unless it was witnessed; safe in a thread (it touches no entry)."""
        seq, mac, digest = head
        if self.witness is None or seq == self._witnessed:
            return
        try:
            why = self.witness.show(self.node, seq, mac, digest)
        except WitnessUnavailable as exc:
            if not self._unwitnessed:
                log.warning("audit heads of %s are not witnessed for now: %s; the head is shown again at the next "
                            "checkpoint", self.node, exc)
            self._unwitnessed = True
            return
        if why:  # the witness holds a longer or other chain than this one: said once per head, loudly
            log.error("the witness refused the audit head of %s at %d entries: %s; run `testbed audit verify`",
                      self.node, seq, why)
        elif self._unwitnessed:
            log.info("audit heads of %s are witnessed again (%d entries)", self.node, seq)
        self._unwitnessed = False
        self._witnessed = max(self._witnessed, seq)

    def close(self) -> None:
        """A last checkpoint (and witnessed head), then close the file."""
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
    """What `verify` found: entries read, the head, the last checkpoint and witnessed head matched, every problem."""

    path: str
    entries: int = 0
    head: str = GENESIS
    checkpointed: int = 0  # entries covered by the last checkpoint that matched
    witnessed: int = 0  # entries covered by the last witnessed head that matched
    digest: str = EMPTY_DIGEST  # SHA-256 of the log's bytes
    problems: list[str] = field(default_factory=list)
    hasher: object = field(default=None, repr=False, compare=False)  # (the digest, to go on appending)

    @property
    def ok(self) -> bool:
        """Whether the chain is whole and agrees with every checkpoint and witnessed head."""
        return not self.problems


KEYED_RULE = ("rule audit/keyed-chain: every entry carries a MAC under the node's audit key; a chain of the older, "
              "unkeyed format is a downgrade anyone can rewrite")


def verify(path: str | Path, key: bytes | None, checkpoints: list[dict] | None = None,
           witnessed: list[dict] | None = None, node: str | None = None) -> Verification:
    """Walk the chain: every entry edited, removed, inserted, reordered or unkeyed, and every checkpoint or witnessed
    head the log no longer matches (a cut tail, an emptied file, a chain rewritten with the key)."""
    # With key None (a chain whose key was destroyed with its site) the MACs cannot be checked: the witnessed
    # digests pin the entries instead, and entries after the last witnessed head are reported as unauthenticated.
    # With node, every entry must name that chain (an entry copied from another chain is found).
    result = Verification(str(path))
    prev, expected_seq = GENESIS, 1
    links: dict[int, str] = {0: GENESIS}
    wanted = {w.get("seq") for w in witnessed or ()}
    digests: dict[int, str] = {0: EMPTY_DIGEST}
    hasher = hashlib.sha256()
    unkeyed: list[int] = []
    with Path(path).open("rb") as f:
        for line_no, raw in enumerate(f, 1):
            hasher.update(raw)
            if line_no in wanted:
                digests[line_no] = hasher.hexdigest()
            try:
                entry = json.loads(raw.decode("utf-8", errors="replace"))
            except json.JSONDecodeError:
                entry = None
            if not isinstance(entry, dict):
                result.problems.append(f"line {line_no}: not a JSON entry (edited or damaged)")
                continue
            result.entries += 1
            seq = entry.get("seq")
            if "mac" not in entry:
                unkeyed.append(line_no)
                if "hash" not in entry:
                    result.problems.append(f"line {line_no}: seq {seq} carries no MAC (edited)")
            elif key is not None and not hmac.compare_digest(entry_mac(key, entry), str(entry["mac"])):
                result.problems.append(f"line {line_no}: seq {seq} does not carry its MAC (edited, or chained "
                                       "without the node's key)")
            if node is not None and entry.get("node") != node:
                result.problems.append(f"line {line_no}: seq {seq} names {entry.get('node')!r}, not {node} "
                                       "(an entry of another chain)")
            if entry.get("prev") != prev:
                result.problems.append(f"line {line_no}: seq {seq} does not follow the entry before it "
                                       "(an entry was removed, inserted or reordered)")
            if seq != expected_seq:
                result.problems.append(f"line {line_no}: seq {seq} where {expected_seq} was due")
            prev = _link(entry)
            if isinstance(seq, int):
                links[seq] = prev
            expected_seq = (seq if isinstance(seq, int) else expected_seq) + 1
    if unkeyed:
        result.problems.insert(0, f"{len(unkeyed)} entries (line {unkeyed[0]} the first) are not keyed: refused ({KEYED_RULE})")
    result.head, result.hasher, result.digest = prev, hasher, hasher.hexdigest()
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
    for head in witnessed or ():
        seq = head.get("seq", 0)
        if seq > result.entries:
            result.problems.append(f"witnessed head of {head.get('time')}: the witness saw {seq} entries, the log has "
                                   f"{result.entries} (entries cut from the end; rule audit/witnessed)")
        elif links.get(seq) != head.get("head") or digests.get(seq) != head.get("digest"):
            result.problems.append(f"witnessed head of {head.get('time')}: entries up to {seq} are not the ones "
                                   "witnessed (the chain was rewritten; rule audit/witnessed)")
        else:
            result.witnessed = max(result.witnessed, seq)
    if key is None and result.entries > result.witnessed:
        result.problems.append(f"entries {result.witnessed + 1}..{result.entries} come after the last witnessed head and "
                               "cannot be authenticated without the node's key (rule audit/witnessed)")
    return result
