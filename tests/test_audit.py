"""The hash-chained audit log (nodes/audit.py) and `testbed audit verify`."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nodes.audit import GENESIS, AuditLog, entry_hash, verify
from testbed.cli import main

CALLER = "spiffe://testbed.jp/lg/142140/terminal/T0001"


@pytest.fixture
def log(tmp_path) -> tuple[Path, list[dict]]:
    """A closed log of five entries and the entries as written."""
    path = tmp_path / "audit.jsonl"
    audit = AuditLog(path, "kizon-142140")
    entries = [
        audit.append(caller=CALLER, method="/testbed.v1.Kizon/RecordResident", status="OK",
                     subject=f"2472705960{i}", operator="op-1", terminal="T0001")
        for i in range(5)
    ]
    audit.close()
    return path, entries


def lines(path: Path) -> list[str]:
    return path.read_text("utf-8").splitlines(keepends=True)


def write(path: Path, rows: list[str]) -> None:
    path.write_text("".join(rows), "utf-8")


def dump(entry: dict) -> str:
    return json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n"


def assert_broken(path: Path, *marks: str, **kw) -> None:
    """verify reports a broken chain, with a problem naming each mark (e.g. 'line 3')."""
    result = verify(path, **kw)
    assert not result.ok
    for mark in marks:
        assert any(mark in p for p in result.problems), (mark, result.problems)


def test_intact_log_verifies(log):
    """An untouched log is ok, counts every entry and ends at the last entry's hash."""
    path, entries = log
    result = verify(path, expected_head=entries[-1]["hash"])
    assert result.ok, result.problems
    assert result.entries == 5
    assert result.head == entries[-1]["hash"]
    assert entries[0]["prev"] == GENESIS
    assert [e["seq"] for e in entries] == [1, 2, 3, 4, 5]


def test_empty_log_verifies(tmp_path):
    """An empty file is a whole chain of no entries whose head is the genesis hash."""
    path = tmp_path / "empty.jsonl"
    path.touch()
    result = verify(path)
    assert result.ok and result.entries == 0 and result.head == GENESIS


def test_edited_field_detected(log):
    """Changing the status of a middle entry breaks that entry's own hash."""
    path, _ = log
    rows = lines(path)
    entry = json.loads(rows[2])
    entry["status"] = "PERMISSION_DENIED"
    rows[2] = dump(entry)
    write(path, rows)
    assert_broken(path, "line 3: seq 3 content does not match")


def test_edited_and_rehashed_entry_detected_by_next(log):
    """An edited entry with a recomputed hash is still caught: the next entry's prev no longer matches."""
    path, _ = log
    rows = lines(path)
    entry = json.loads(rows[2])
    entry["subject"] = "99999999999"
    entry["hash"] = entry_hash(entry)
    rows[2] = dump(entry)
    write(path, rows)
    result = verify(path)
    assert not any("line 3" in p for p in result.problems)
    assert_broken(path, "line 4: seq 4 does not follow")


def test_removed_middle_entry_detected(log):
    """Deleting a middle entry breaks the chain where the next entry follows the gap."""
    path, _ = log
    rows = lines(path)
    del rows[2]
    write(path, rows)
    assert_broken(path, "line 3: seq 4 does not follow", "seq 4 where 3 was due")


def test_inserted_forged_entry_detected(log):
    """A forged entry, correctly hashed onto its predecessor, breaks the link of the entry after it."""
    path, entries = log
    rows = lines(path)
    forged = dict(entries[1], seq=3, subject="forged", prev=entries[1]["hash"])
    forged["hash"] = entry_hash(forged)
    rows.insert(2, dump(forged))
    write(path, rows)
    assert_broken(path, "line 4: seq 3 does not follow", "line 4: seq 3 where 4 was due")


def test_swapped_entries_detected(log):
    """Swapping two entries (reordering) breaks the chain at the swapped lines."""
    path, _ = log
    rows = lines(path)
    rows[1], rows[2] = rows[2], rows[1]
    write(path, rows)
    assert_broken(path, "line 2: seq 3 does not follow", "line 3: seq 2 does not follow")


def test_non_json_line_detected(log):
    """A line that is not JSON is reported by its line number."""
    path, _ = log
    rows = lines(path)
    rows[2] = "garbage {not json\n"
    write(path, rows)
    assert_broken(path, "line 3: not a JSON entry")


def test_json_non_object_line_detected(log):
    """A line that is valid JSON but not an entry object is reported, not a crash."""
    path, _ = log
    rows = lines(path)
    rows[2] = "42\n"
    write(path, rows)
    assert_broken(path, "line 3")


def test_removed_last_entry_needs_expected_head(log):
    """Dropping the last entry leaves a whole chain; passing the old head catches it."""
    path, entries = log
    write(path, lines(path)[:-1])
    assert verify(path).ok
    assert verify(path).entries == 4
    assert_broken(path, "head", expected_head=entries[-1]["hash"])


def test_reopen_continues_chain(log):
    """Reopening an existing log resumes seq and prev from its last entry."""
    path, entries = log
    audit = AuditLog(path, "kizon-142140")
    entry = audit.append(caller=CALLER, method="/testbed.v1.Kizon/GetResident", status="OK")
    audit.close()
    assert entry["seq"] == 6
    assert entry["prev"] == entries[-1]["hash"]
    result = verify(path, expected_head=entry["hash"])
    assert result.ok and result.entries == 6


def test_reopen_after_long_entry(tmp_path):
    """Reopening a log whose last entry exceeds 8 KiB still continues the chain."""
    path = tmp_path / "audit.jsonl"
    audit = AuditLog(path, "kizon-142140")
    audit.append(caller=CALLER, method="/testbed.v1.Kizon/GetResident", status="OK", operator="x" * 9000)
    audit.close()
    reopened = AuditLog(path, "kizon-142140")
    try:
        assert reopened.append(caller=CALLER, method="m", status="OK")["seq"] == 2
    finally:
        reopened.close()
    assert verify(path).ok


def test_log_file_is_private(log):
    """The audit file is readable by its owner only."""
    path, _ = log
    assert path.stat().st_mode & 0o777 == 0o600


def test_cli_verify_exit_codes(log, capsys):
    """`testbed audit verify` exits 0 for a whole chain and 1 for a tampered one."""
    path, entries = log
    assert main(["audit", "verify", str(path)]) == 0
    assert main(["audit", "verify", str(path), "--head", entries[-1]["hash"]]) == 0
    rows = lines(path)
    rows[1], rows[3] = rows[3], rows[1]
    write(path, rows)
    assert main(["audit", "verify", str(path)]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_cli_verify_as_installed_command(log):
    """The installed `testbed` script reports a tampered log with exit status 1."""
    path, _ = log
    script = Path(sys.executable).with_name("testbed")
    ok = subprocess.run([str(script), "audit", "verify", str(path)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    write(path, lines(path)[1:])
    bad = subprocess.run([str(script), "audit", "verify", str(path)], capture_output=True, text=True)
    assert bad.returncode == 1
    assert "FAIL" in bad.stdout
