"""Backups and restores (docs/backup.md) on a network of this module's own: the restore drill of a 市町村CS (backed
up, more 異動 at the counter, stopped, restored, started: every change acknowledged after the backup is at the CS,
the prefecture and national again, and the next change goes through), the archive's protection (0600 in 0700, the
backup key never inside, a flipped byte or an edited header refused with nothing changed), retention (an archive
past it is purged with its key: a copy left elsewhere cannot be read) and every refusal in one line."""
from __future__ import annotations

import datetime as dt
import hashlib
import shutil
import sqlite3
import stat

import pytest

from helpers import invariants_hold, key, move_in_from_abroad, person, poll
from protos import common_pb2
from testbed import backup as backups
from testbed import cli
from testbed.client import Counter

A = "142140"
CS = f"cs-{A}"


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    from conftest import network_of_its_own
    yield from network_of_its_own(tmp_path_factory, "backup")


def run_testbed(net, *args: str) -> int:
    """`testbed --state-dir STATE ARGS...` in this process (its output read with capsys)."""
    return cli.main(["--state-dir", str(net.state_dir), *args])


def one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def consistent(net) -> bool:
    """kizon, the CS, the prefecture and national agree on every person of A (整合性確認)."""
    with Counter(net, A, "T0003", "OP0003") as manager:
        report = manager(manager.kizon.CheckConsistency, common_pb2.ConsistencyRequest(municipality_code=A),
                         timeout=120)
    return not report.differences


def at_prefecture_and_national(net, codes) -> bool:
    """Every one of codes is in the prefecture's and national's file (read-only from their stores)."""
    for name in ("prefecture-140007", "national"):
        db = sqlite3.connect(f"file:{net.state_dir / 'data' / name / 'store.sqlite'}?mode=ro", uri=True, timeout=5)
        try:
            held = {c for (c,) in db.execute("SELECT resident_code FROM identity WHERE municipality_code=?", (A,))}
        finally:
            db.close()
        if not set(codes) <= held:
            return False
    return True


@pytest.fixture(scope="module")
def archive(net):
    """A backup of the CS taken while it runs, after a first change; (its path, the people before it)."""
    with Counter(net, A) as clerk:
        before = [move_in_from_abroad(clerk, person("前 太郎", "マエ タロウ")).resident_code]
    poll(lambda: at_prefecture_and_national(net, before), 20, "the first change at national")
    path, _ = backups.backup(net, CS)
    return path, before


def test_the_archive_is_private_and_holds_no_key(net, archive):
    path, _ = archive
    assert mode(path) == 0o600 and mode(path.parent) == 0o700 and mode(path.parent.parent) == 0o700
    ring = backups.keyring(net)
    master = (ring / "backup.key").read_bytes()
    assert len(master) == 32 and mode(ring / "backup.key") == 0o600 and mode(ring) == 0o700
    key_file = ring / CS / path.name.replace(".backup", ".key")
    assert mode(key_file) == 0o600
    body = path.read_bytes()
    assert master not in body and master.hex().encode() not in body
    assert b"audit" not in body and b"store.sqlite" not in body  # (encrypted: no file name shows through)
    opened = backups.open_archive(net, path)
    names = {f["name"] for f in opened.manifest["files"]}
    assert {"data/store.sqlite", "data/audit.jsonl", "data/search-audit.jsonl", f"checkpoints/{CS}.jsonl",
            "keys/client.key", "keys/audit.key"} <= names, names
    for entry in opened.manifest["files"]:  # the manifest: each file's size and SHA-256
        assert hashlib.sha256(opened.files[entry["name"]]).hexdigest() == entry["sha256"]
    assert opened.header["node"] == CS and opened.manifest["created"] == opened.header["created"]
    audit_log = opened.files["data/audit.jsonl"]
    assert audit_log.endswith(b"\n")  # up to the last complete entry


def test_a_flipped_byte_or_an_edited_header_is_refused_and_nothing_changes(net, archive, tmp_path, capsys):
    path, _ = archive
    store = net.state_dir / "data" / CS / "store.sqlite"
    pid, inode = net.pid(CS), store.stat().st_ino
    body = bytearray(path.read_bytes())
    flipped = path.with_name(path.name.replace(".backup", "1.backup"))  # (beside it: its key is found by name)
    edited = path.with_name(path.name.replace(".backup", "2.backup"))
    # a byte of the sealed body, and a byte of the header's archive id (associated data: the tag covers it)
    for copy, at in ((flipped, len(body) - 40), (edited, body.index(b'"archive":"') + 11)):
        damaged = bytearray(body)
        damaged[at] ^= 0x01
        copy.write_bytes(bytes(damaged))
        ring = backups.keyring(net) / CS
        shutil.copy(ring / path.name.replace(".backup", ".key"), ring / copy.name.replace(".backup", ".key"))
    try:
        assert run_testbed(net, "restore", CS, "--from", str(flipped), "--stop") == 2
        assert "fails its authentication" in one_line(capsys)
        assert run_testbed(net, "restore", CS, "--from", str(edited), "--stop") == 2
        assert "fails its authentication" in one_line(capsys)
        assert net.pid(CS) == pid and store.stat().st_ino == inode  # not stopped, not replaced
    finally:
        for copy in (flipped, edited):
            copy.unlink()
            (backups.keyring(net) / CS / copy.name.replace(".backup", ".key")).unlink()


def test_a_running_node_is_refused_without_stop(net, archive, capsys):
    store = net.state_dir / "data" / CS / "store.sqlite"
    inode = store.stat().st_ino
    assert run_testbed(net, "restore", CS) == 2
    line = one_line(capsys)
    assert f"{CS} is running" in line and "--stop" in line and "`testbed down`" in line, line
    assert store.stat().st_ino == inode


@pytest.mark.parametrize("args, says", [
    (["backup", "nosuch"], "no node 'nosuch' in the"),
    (["backup"], "name the nodes to back up"),
    (["restore", "nosuch"], "no node 'nosuch' in the"),
    (["restore", "card", "--backups", "{tmp}"], "no archive of card in"),
    (["restore", CS, "--from", "{tmp}/none.backup"], "no archive {tmp}/none.backup"),
    (["restore", CS, "--from", "{tmp}/junk.backup"], "is not a testbed backup archive"),
])
def test_bad_input_is_one_line(net, archive, tmp_path, capsys, args, says):
    (tmp_path / "junk.backup").write_bytes(b"not an archive")
    assert run_testbed(net, *(a.format(tmp=tmp_path) for a in args)) == 2
    assert says.format(tmp=tmp_path) in one_line(capsys)


def test_an_archive_of_another_node_is_refused(net, archive, capsys):
    path, _ = archive
    assert run_testbed(net, "restore", "card", "--from", str(path)) == 2
    assert f"is a backup of {CS}, not of card" in one_line(capsys)


def test_no_space_is_refused_before_anything_is_written(net, archive, monkeypatch, capsys):
    before = backups.archives(net, "card")
    monkeypatch.setattr(backups.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9, 0))
    assert run_testbed(net, "backup", "card") == 2
    assert "no space for the archive of card" in one_line(capsys)
    assert backups.archives(net, "card") == before


def test_purge_deletes_an_old_archive_and_its_key_so_a_copy_is_unreadable(net, archive, tmp_path, capsys):
    old, _ = backups.backup(net, "card", now=dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=31))
    copy = tmp_path / old.name  # a copy taken off site, which no purge reaches
    shutil.copy(old, copy)
    assert run_testbed(net, "backup", "card") == 0  # a backup, then the purge that follows every backup
    out = capsys.readouterr().out
    assert "card " in out and f"purged 1 archives older than 30 days (their keys first): {old.name}" in out, out
    fresh = backups.latest(net, "card")
    assert not old.exists() and fresh.exists() and fresh != old
    assert not (backups.keyring(net) / "card" / old.name.replace(".backup", ".key")).exists()
    with pytest.raises(backups.BackupError, match="crypto-shredded"):
        backups.open_archive(net, copy)
    backups.open_archive(net, fresh)  # (the fresh one still opens)
    assert run_testbed(net, "backup", "--purge") == 0
    assert "purged 0 archives" in capsys.readouterr().out and fresh.exists()


def test_restore_drill_of_a_cs(net, archive, tmp_path, capsys):
    """Backed up (the fixture), more 異動 at the counter, the CS stopped and restored from the backup, started: the
    roll forward from the prefecture brings every change acknowledged since back to the CS, the 整合性確認 finds no
    difference, the invariants hold, and the next change is numbered after the prefecture's and reaches national."""
    path, before = archive
    with Counter(net, A) as clerk:
        after = [move_in_from_abroad(clerk, person(f"後 {kanji}郎", f"アト {kana}ロウ")).resident_code
                 for kanji, kana in (("一", "イチ"), ("二", "ジ"), ("三", "サブ"))]
    poll(lambda: at_prefecture_and_national(net, after), 20, "the later changes at national")
    (tmp_path / "snapshot.sqlite").write_bytes(backups.open_archive(net, path).files["data/store.sqlite"])
    snapshot = sqlite3.connect(tmp_path / "snapshot.sqlite")
    held = {c for (c,) in snapshot.execute("SELECT resident_code FROM identity")}
    snapshot.close()
    assert set(before) <= held and not held & set(after)  # the archive predates the later changes
    pid = net.pid(CS)

    assert run_testbed(net, "restore", CS, "--stop") == 0
    out = capsys.readouterr().out
    assert "data/store.sqlite                restored" in out, out
    assert "data/audit.jsonl                 kept: it continues the archived one" in out, out
    assert "rolled forward from prefecture-140007" in out and "3 people written" in out, out
    assert net.pid(CS) and net.pid(CS) != pid  # started again

    with Counter(net, A) as clerk:
        for code in before + after:
            assert clerk(clerk.cs.GetIdentity, key(code)).resident_code == code
        poll(lambda: consistent(net), 30, "整合性確認 without differences")
        later = move_in_from_abroad(clerk, person("復 花子", "フク ハナコ", sex="2")).resident_code
    poll(lambda: at_prefecture_and_national(net, [later]), 20, "the change after the restore at national")
    poll(lambda: consistent(net), 30, "整合性確認 without differences after the next change")
    invariants_hold(net)


def test_a_cs_restored_without_its_roll_forward_numbers_nothing(net, tmp_path, monkeypatch, capsys):
    """The door beside the drill: a CS put back from an old copy by hand (here: the restore with its roll forward
    switched off) would number updates the prefecture has applied already, and the prefecture would drop them as
    duplicates, silently. It refuses to number anything instead (SEQUENCE_BEHIND_PREFECTURE), so the counter is told;
    rolled forward, it takes changes again and nothing is lost."""
    import grpc

    from nodes.reasons import cs as R
    import importlib
    restoring = importlib.import_module("testbed.backup.restore")  # (the module: its restore() is the package's too)
    from helpers import refused
    path, _ = backups.backup(net, CS)
    with Counter(net, A) as clerk:
        later = [move_in_from_abroad(clerk, person("後 四郎", "アト シロウ")).resident_code]
    poll(lambda: at_prefecture_and_national(net, later), 20, "the change after the backup at national")
    monkeypatch.setattr(restoring, "roll_forward_cs", lambda network, node: backups.RollForward())
    assert run_testbed(net, "restore", CS, "--stop", "--from", str(path)) == 0
    restored = capsys.readouterr().out
    log = net.state_dir / "data" / CS / "audit.jsonl"
    try:
        poll(lambda: "behind the prefecture" in log.read_text(encoding="utf-8"), 90,
             "the restarted CS to find itself behind its prefecture")  # (its comparison at start, audited)
    except AssertionError:  # (say what the CS did meanwhile: its log's end)
        raise AssertionError(restored + net.log_file(CS).read_text(encoding="utf-8")[-1500:]) from None
    with Counter(net, A) as clerk:
        with refused(grpc.StatusCode.FAILED_PRECONDITION, reason=R.SEQUENCE_BEHIND_PREFECTURE.reason):
            move_in_from_abroad(clerk, person("番号 重複", "バンゴウ チョウフク"))
    monkeypatch.undo()
    assert run_testbed(net, "restore", CS, "--stop", "--from", str(path)) == 0
    with Counter(net, A) as clerk:
        after = move_in_from_abroad(clerk, person("復 次郎", "フク ジロウ")).resident_code
        assert clerk(clerk.cs.GetIdentity, key(later[0])).resident_code == later[0]
    poll(lambda: at_prefecture_and_national(net, [after]), 20, "the change after the real restore at national")
    poll(lambda: consistent(net), 30, "整合性確認 without differences")


def test_a_store_whose_file_matches_the_archive_but_whose_wal_does_not_is_restored(tmp_path):
    """The found flake: a CS's store file equal, byte for byte, to the archived one while its WAL (kept open by the
    search process, so never checkpointed at the CS's stop) holds the later changes. A restore that called it
    "unchanged" left the WAL beside it, and the CS opened it with the later changes applied again."""
    import importlib
    restore = importlib.import_module("testbed.backup.restore")  # (the module: its restore() is the package's too)
    path = tmp_path / "store.sqlite"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA wal_autocheckpoint=0")
    db.execute("CREATE TABLE t (n)")
    db.execute("INSERT INTO t VALUES (1)")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    archived = path.read_bytes()  # (as the archive holds it)
    assert not restore._journal_beside(path)
    reader = sqlite3.connect(path)  # (the search process: a second connection keeps the WAL from being checkpointed)
    reader.execute("SELECT * FROM t").fetchall()
    db.execute("INSERT INTO t VALUES (2)")
    db.close()
    assert path.read_bytes() == archived and restore._journal_beside(path)
    reader.close()
