"""The audit log: one hash-chained JSON Lines file per node, verifiable by `testbed audit verify`.

Each entry records who called (certificate identity), the operator and terminal for terminal
calls, the method, the subject (usually a 住民票コード), the status code and the time. Each
entry carries the hash of the one before, so an edited, removed, inserted or reordered entry
breaks the chain. The file is written with one write() per entry: an entry survives kill -9.
"""
from __future__ import annotations

import contextvars
import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

GENESIS = "0" * 64

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


def entry_hash(entry: dict) -> str:
    """The SHA-256 of an entry's canonical JSON, without its own hash field."""
    body = {k: v for k, v in entry.items() if k != "hash"}
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class AuditLog:
    """An append-only hash chain in a file; resumes the chain after a restart."""

    def __init__(self, path: str | Path, node: str):
        self.path = Path(path)
        self.node = node
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.seq, self.head = _tail(self.path)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

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
        entry["hash"] = self.head = entry_hash(entry)
        os.write(self._fd, (json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8"))
        return entry

    def close(self) -> None:
        """Close the file."""
        os.close(self._fd)


def _tail(path: Path) -> tuple[int, str]:
    """(last seq, last hash) of an existing log, or (0, GENESIS)."""
    if not path.exists() or path.stat().st_size == 0:
        return 0, GENESIS
    size, chunk = path.stat().st_size, 8192
    with path.open("rb") as f:
        while True:  # read back far enough to hold the whole last line, however long
            f.seek(max(0, size - chunk))
            lines = f.read().rstrip(b"\n").split(b"\n")
            if len(lines) > 1 or chunk >= size:
                break
            chunk *= 4
    entry = json.loads(lines[-1])
    return entry["seq"], entry["hash"]


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
    """What `verify` found: entries read, the head hash, and every break in the chain."""

    path: str
    entries: int = 0
    head: str = GENESIS
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether the chain is whole."""
        return not self.problems


def verify(path: str | Path, expected_head: str | None = None) -> Verification:
    """Walk the chain and report every entry that was edited, removed, inserted or reordered."""
    result = Verification(str(path))
    prev, expected_seq = GENESIS, 1
    with Path(path).open("r", encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                entry = None
            if not isinstance(entry, dict):
                result.problems.append(f"line {line_no}: not a JSON entry (edited)")
                continue
            result.entries += 1
            if entry_hash(entry) != entry.get("hash"):
                result.problems.append(f"line {line_no}: seq {entry.get('seq')} content does not match its hash (edited)")
            if entry.get("prev") != prev:
                result.problems.append(
                    f"line {line_no}: seq {entry.get('seq')} does not follow the entry before it "
                    "(an entry was removed, inserted or reordered)"
                )
            if entry.get("seq") != expected_seq:
                result.problems.append(f"line {line_no}: seq {entry.get('seq')} where {expected_seq} was due")
            prev = entry.get("hash", "")
            expected_seq = (entry.get("seq") or expected_seq) + 1
    result.head = prev
    if expected_head is not None and expected_head != prev:
        result.problems.append(f"head {prev[:16]}… is not the expected {expected_head[:16]}… (entries removed from the end?)")
    return result
