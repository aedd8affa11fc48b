"""Restoring a node from an archive, and rolling a restored 市町村CS forward from its prefecture (docs/backup.md)."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from nodes import identityfile
from protos import records_pb2
from testbed import processes
from testbed.network import NODE_MARKER
from testbed.backup.archive import (APPEND_ONLY, DATABASE, HIGHEST, IF_MISSING, Archive, BackupError, Member, Restored,
                                    RollForward, require_room, write_atomic, latest, members, node_of, open_archive)

# -- restore ----------------------------------------------------------------------------------------------------

def restore(network, name: str, archive: Path | None = None, *, stop: bool = False, start: bool | None = None,
            directory: Path | None = None) -> Restored:
    """Restore one node from an archive (its newest by default): verified first, the node stopped (refused while it
    runs unless stop), every file replaced atomically, a CS rolled forward from its prefecture, the node started
    again (start None: when it was stopped here, or other nodes of the network run)."""
    node = node_of(network, name)
    path = Path(archive) if archive else latest(network, node.name, directory)
    opened = open_archive(network, path)  # (before anything is stopped or written)
    if opened.header["node"] != node.name:
        raise BackupError(f"{path} is a backup of {opened.header['node']}, not of {node.name}: give an archive of "
                          f"{node.name} (--from), or restore {opened.header['node']}")
    pid = network.pid(node.name)
    if pid and not stop:
        raise BackupError(f"{node.name} is running (pid {pid}): give --stop to stop it for the restore (it is started "
                          "again after), or stop the network first with `testbed down`")
    plan = _plan(network, node, opened)
    require_room(network.state_dir, sum(len(c) for _, _, c in plan if c is not None), f"the restore of {node.name}",
          "free some space there and run the restore again (nothing was changed)")
    if pid:
        processes.stop_recorded(network.pid_file(node.name), NODE_MARKER)
    result = Restored(path)
    for member, what, content in plan:
        if content is not None:
            write_atomic(member.path, content, database=member.rule == DATABASE)
        result.outcomes.append((member.name, what))
    if node.kind == "cs":
        result.rolled = roll_forward_cs(network, node)
    others = any(network.pid(n.name) for n in network.topology.all_nodes if n.name != node.name)
    if start or (start is None and (pid or others)):
        network.up()
    return result


def _plan(network, node, opened: Archive) -> list[tuple[Member, str, bytes | None]]:
    """(file, what becomes of it, the bytes to write or None) for every file of the archive, by its rule."""
    here = {m.name: m for m in members(network, node)}
    keys = network.pki.dir / "nodes" / node.name
    plan = []
    for entry in opened.manifest["files"]:
        name, rule, content = entry["name"], entry["rule"], opened.files[entry["name"]]
        member = here.get(name) or Member(name, _place(network, node, keys, name), rule)
        try:
            live = member.path.read_bytes()
        except FileNotFoundError:
            live = None
        if rule == APPEND_ONLY and live is not None and live.startswith(content):
            plan.append((member, f"kept: it continues the archived one ({len(live) - len(content)} bytes more)", None))
        elif rule == IF_MISSING and live is not None:
            plan.append((member, "kept (present)", None))
        elif rule == HIGHEST and live is not None:
            merged = _highest(live, content)
            plan.append((member, "kept: no archived number is higher" if merged == live else
                         "merged: the higher number of each domain", merged if merged != live else None))
        elif live == content and not (rule == DATABASE and _journal_beside(member.path)):
            # (a database's file alone is not the database: changes after its last checkpoint are in its WAL, which a
            # restore must not leave beside the archived file to be applied to it when the node opens it)
            plan.append((member, "unchanged", None))
        else:
            plan.append((member, "restored", content))
    return plan


def _journal_beside(path: Path) -> bool:
    """Whether a database has a WAL or rollback journal with something in it beside its file."""
    for extra in ("-wal", "-journal"):
        try:
            if path.with_name(path.name + extra).stat().st_size:
                return True
        except FileNotFoundError:
            pass
    return False


def _place(network, node, keys: Path, name: str) -> Path:
    """Where an archived file goes (one the node no longer has)."""
    folder, _, rest = name.partition("/")
    if folder == "keys":
        return keys / rest
    if folder == "checkpoints":
        return network.state_dir / "checkpoints" / rest
    return network.state_dir / "data" / node.name / rest


def _highest(live: bytes, archived: bytes) -> bytes:
    """Two {domain: number} files as one: the higher number of each."""
    try:
        ours, theirs = json.loads(live), json.loads(archived)
        merged = {k: max(v for v in (ours.get(k), theirs.get(k)) if isinstance(v, int)) for k in {*ours, *theirs}}
        return json.dumps(dict(sorted(merged.items()))).encode()
    except (ValueError, AttributeError, TypeError):
        return live


def roll_forward_cs(network, node) -> RollForward:
    """Bring a restored (stopped) CS up to its prefecture: the 本人確認情報 of every person the prefecture holds under a
    更新順番号 after the CS's, the 依頼管理番号 they answered, the CS's 更新順番号 where the prefecture's is; rows of
    people renamed away since, and 住民票コード now in use, leave the file and the pool."""
    municipality = node.municipality
    prefecture = network.topology.find("prefecture", prefecture=network.topology.municipality(municipality).prefecture)
    theirs_path = network.state_dir / "data" / prefecture.name / "store.sqlite"
    result = RollForward(prefecture=prefecture.name)
    if not theirs_path.exists():
        return result
    theirs = sqlite3.connect(f"file:{theirs_path}?mode=ro", uri=True, timeout=10, isolation_level=None)
    ours = sqlite3.connect(network.state_dir / "data" / node.name / "store.sqlite", timeout=10, isolation_level=None)
    try:
        theirs.execute("BEGIN")  # (one snapshot of the prefecture's file)
        counter = ours.execute("SELECT value FROM counters WHERE name='update_sequence'").fetchone()
        result.before = max(identityfile.last_sequence(ours, municipality), counter[0] if counter else 0)
        last = identityfile.last_sequence(theirs, municipality)
        infos = [records_pb2.IdentityInfo.FromString(blob) for (blob,) in theirs.execute(
            "SELECT info FROM identity WHERE municipality_code=? AND update_sequence>? ORDER BY update_sequence",
            (municipality, result.before))]
        known = {code for (code,) in theirs.execute("SELECT resident_code FROM identity WHERE municipality_code=?",
                                                    (municipality,))}
        theirs.execute("COMMIT")
        ours.execute("BEGIN IMMEDIATE")
        try:
            # a person the prefecture no longer holds, under a number it has applied: renamed (住民票コード変更) since
            gone = [code for (code, seq) in ours.execute(
                "SELECT resident_code, update_sequence FROM identity WHERE municipality_code=?", (municipality,))
                if code not in known and seq <= last]
            ours.executemany("DELETE FROM identity WHERE resident_code=? AND municipality_code=?",
                             [(code, municipality) for code in gone])
            identityfile.store_identities(ours, infos, register=True)
            ours.executemany("INSERT OR IGNORE INTO requests VALUES (?,?,?)",
                             [(i.request_control_number, i.update_sequence, identityfile.digest(i))
                              for i in infos if i.request_control_number])
            result.after = max(result.before, last)
            if result.after > result.before:
                ours.execute("INSERT INTO counters(name, value) VALUES ('update_sequence', ?) ON CONFLICT(name) "
                             "DO UPDATE SET value=excluded.value", (result.after,))
                identityfile.set_last_sequence(ours, municipality, result.after)
            used = "SELECT resident_code FROM identity"
            ours.execute(f"DELETE FROM code_pool WHERE resident_code IN ({used})")
            ours.execute(f"DELETE FROM code_reservations WHERE resident_code IN ({used})")
            ours.execute("COMMIT")
        except BaseException:
            ours.execute("ROLLBACK")
            raise
        result.people, result.removed = len(infos), len(gone)
    except sqlite3.Error as exc:
        raise BackupError(f"{node.name} was restored but not rolled forward from {prefecture.name} ({exc}): it is "
                          f"behind the prefecture; run `testbed restore {node.name}` again once {theirs_path} can be "
                          "read") from None
    finally:
        ours.close()
        theirs.close()
    return result
