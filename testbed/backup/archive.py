"""Archives of a node's state: what is in one, its key, making, reading and purging them (docs/backup.md)."""
from __future__ import annotations

import datetime as dt
import errno
import hashlib
import io
import json
import os
import shutil
import sqlite3
import tarfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"TESTBED-BACKUP/1\n"
FORMAT = 1
SUFFIX = ".backup"
RETENTION_DAYS = 30  # archives older than this are purged (their keys first): 保管期間の過ぎた…バックアップを完全に消去する
SPACE_MARGIN = 1.10  # free space wanted: what is written, and a tenth more
KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12
STAMP = "%Y%m%dT%H%M%S%fZ"  # in an archive's name: sorts as it was made
KEYRING = "backup-keys"  # in the state folder: backup.key and the wrapped key of each archive (never in an archive)

# What becomes of a file of the archive at restore (the manifest names each file's rule).
DATABASE = "database"  # the store: replaced by the snapshot (its WAL and shared memory removed with the old file)
APPEND_ONLY = "append-only"  # an audit log, a checkpoint file: kept when it continues the archived one
HIGHEST = "highest"  # the CRL numbers seen: the higher of the two, per domain
IF_MISSING = "if-missing"  # keys and certificates: put back only where missing
REPLACE = "replace"  # anything else of the data folder


class BackupError(Exception):
    """What a backup or restore cannot do, in one line saying what is wrong and what to do."""


@dataclass(frozen=True)
class Settings:
    """Where archives go and how long they are kept: the topology's `backup:` (directory, retention_days), else
    STATE_DIR/backups and RETENTION_DAYS."""

    directory: Path
    retention_days: float = RETENTION_DAYS


@dataclass
class Member:
    """One file of a node's state: its name in the archive, where it lives, and its rule at restore."""

    name: str
    path: Path
    rule: str


@dataclass
class Archive:
    """An archive read back and verified: its header, manifest and files (name → bytes)."""

    path: Path
    header: dict
    manifest: dict
    files: dict[str, bytes] = field(repr=False)


@dataclass
class Restored:
    """What a restore did: per file what became of it, and the CS's roll forward."""

    archive: Path
    outcomes: list[tuple[str, str]] = field(default_factory=list)  # (file, what became of it)
    rolled: "RollForward | None" = None


@dataclass
class RollForward:
    """A restored CS brought up to its prefecture: 更新順番号 before and after, people written, stale rows removed."""

    before: int = 0
    after: int = 0
    people: int = 0
    removed: int = 0
    prefecture: str = ""


# -- where things are ---------------------------------------------------------------------------------------

def settings(network) -> Settings:
    """The backup settings of a network: the topology file's `backup:` mapping if it has one (directory, relative to
    the state folder unless absolute; retention_days), else the defaults."""
    found = network.topology.backup
    directory = Path(str(found.get("directory", "backups")))
    try:
        days = float(found.get("retention_days", RETENTION_DAYS))
    except (TypeError, ValueError):
        raise BackupError(f"the topology's backup.retention_days {found.get('retention_days')!r} is not a number of "
                          "days: give one (e.g. 30)") from None
    if days <= 0:
        raise BackupError(f"the topology's backup.retention_days is {days:g}: give more than 0 days")
    return Settings(directory if directory.is_absolute() else network.state_dir / directory, days)


def keyring(network) -> Path:
    """The folder of the backup key and the archives' wrapped keys (0700, in the state folder, never committed)."""
    return network.state_dir / KEYRING


def node_of(network, name: str):
    """The topology's node called name, or a BackupError listing the nodes it has."""
    try:
        return network.topology.node(name)
    except KeyError:
        names = ", ".join(n.name for n in network.topology.all_nodes)
        raise BackupError(f"no node {name!r} in the {network.topology.name} topology ({names}): give one of "
                          "those") from None


def members(network, node) -> list[Member]:
    """Every file of a node's state, with its rule at restore."""
    data = network.state_dir / "data" / node.name
    found = [Member("data/store.sqlite", data / "store.sqlite", DATABASE)]
    chained = set()
    for chain, _ in node.ends():
        # the checkpoints before the log: a checkpoint read after the log could cover entries the copy lacks
        for path in (network.checkpoints_file(chain), network.audit_file(chain)):
            prefix = "checkpoints" if path.parent.name == "checkpoints" else "data"
            found.append(Member(f"{prefix}/{path.name}", path, APPEND_ONLY))
            chained.add(path)
    if data.is_dir():
        for path in sorted(p for p in data.iterdir() if p.is_file()):
            if path in chained or path.name.startswith("store.sqlite") or path.name.startswith("."):
                continue
            found.append(Member(f"data/{path.name}", path, HIGHEST if path.name == "crl_numbers.json" else REPLACE))
    keys = network.pki.dir / "nodes" / node.name
    if keys.is_dir():
        for path in sorted(p for p in keys.rglob("*") if p.is_file() and not p.name.endswith(".tmp")):
            found.append(Member(f"keys/{path.relative_to(keys).as_posix()}", path, IF_MISSING))
    return found


# -- the backup key and the archives' keys -------------------------------------------------------------------

def backup_key(network, create: bool = False) -> bytes:
    """The network's backup key (32 bytes, 0600, made on first use when create)."""
    path = keyring(network) / "backup.key"
    if not path.exists():
        if not create:
            raise BackupError(f"no backup key in {path.parent}: the archives of this network cannot be read without "
                              "it (restore it from where it is kept apart, or give the --state-dir of the network "
                              "that made them)")
        _private_folder(path.parent)
        write_atomic(path, os.urandom(KEY_BYTES))
    key = path.read_bytes()
    if len(key) != KEY_BYTES:
        raise BackupError(f"{path} is not a backup key ({len(key)} bytes, not {KEY_BYTES}): put the right one back")
    return key


def _key_file(network, node: str, archive: Path) -> Path:
    return keyring(network) / node / (archive.name.removesuffix(SUFFIX) + ".key")


def _wrap_aad(header: dict) -> bytes:
    return f"{header['archive']}|{header['node']}|{header['created']}".encode()


# -- backup ---------------------------------------------------------------------------------------------------

def backup(network, name: str, directory: Path | None = None, now: dt.datetime | None = None) -> tuple[Path, dict]:
    """Back up one node (running or not) into an encrypted archive; (its path, its manifest)."""
    node = node_of(network, name)
    place = Path(directory) if directory else settings(network).directory
    if not (network.state_dir / "data" / node.name / "store.sqlite").exists():
        raise BackupError(f"{node.name} has no store in {network.state_dir / 'data' / node.name}: nothing to back up "
                          "(has the network run? `testbed up`)")
    created = (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
    files: list[tuple[Member, bytes]] = []
    for member in members(network, node):
        content = _snapshot(member)
        if content is not None:
            files.append((member, content))
    manifest = {
        "format": FORMAT, "node": node.name, "kind": node.kind, "municipality": node.municipality,
        "topology": network.topology.name, "created": created.isoformat(timespec="microseconds"),
        "files": [{"name": m.name, "rule": m.rule, "size": len(c), "sha256": hashlib.sha256(c).hexdigest()}
                  for m, c in files],
    }
    plain = _tar([("manifest.json", json.dumps(manifest, ensure_ascii=False, indent=1).encode())]
                 + [(m.name, c) for m, c in files])
    header = {"format": FORMAT, "node": node.name, "created": manifest["created"], "archive": uuid.uuid4().hex,
              "cipher": "AES-256-GCM", "nonce": os.urandom(NONCE_BYTES).hex()}
    head = _head(header)
    data_key = AESGCM.generate_key(bit_length=256)
    sealed = AESGCM(data_key).encrypt(bytes.fromhex(header["nonce"]), plain, head)
    folder = place / node.name
    path = folder / f"{node.name}-{created.strftime(STAMP)}{SUFFIX}"
    _private_folder(place)
    _private_folder(folder)
    require_room(folder, len(head) + len(sealed) + 1024, f"the archive of {node.name}")
    master = backup_key(network, create=True)
    wrap_nonce = os.urandom(NONCE_BYTES)
    sealed_key = AESGCM(master).encrypt(wrap_nonce, data_key, _wrap_aad(header))
    wrapped = {"archive": header["archive"], "node": node.name, "created": header["created"],
               "nonce": wrap_nonce.hex(), "wrapped": sealed_key.hex()}
    key_file = _key_file(network, node.name, path)
    _private_folder(key_file.parent)
    write_atomic(key_file, json.dumps(wrapped).encode())  # the key first: an archive never lacks its key
    try:
        write_atomic(path, head + sealed)
    except BackupError:
        key_file.unlink(missing_ok=True)
        raise
    return path, manifest


def _snapshot(member: Member) -> bytes | None:
    """A consistent copy of one file as it is now (None when it does not exist)."""
    if member.rule == DATABASE:
        return _database_snapshot(member.path)
    try:
        content = member.path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise BackupError(f"{member.path} cannot be read ({exc.strerror}): nothing was backed up") from None
    if member.rule == APPEND_ONLY and content and not content.endswith(b"\n"):
        content = content[:content.rfind(b"\n") + 1]  # an entry being written: up to the last complete one
    return content


def _database_snapshot(path: Path) -> bytes:
    """The store as one consistent snapshot (SQLite's online backup API: a read transaction on the live WAL
    database, never blocking its writer), checked, as the bytes of a database file; nothing written to disk."""
    try:
        source = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10, isolation_level=None)
        copy = sqlite3.connect(":memory:", isolation_level=None)
        try:
            source.backup(copy)  # (every page in one step: one snapshot)
            verdict = copy.execute("PRAGMA quick_check").fetchone()[0]
            if verdict != "ok":
                raise BackupError(f"the store {path} fails SQLite's quick_check ({verdict}): it is damaged; restore it "
                                  "from an earlier archive rather than back up the damage")
            return copy.serialize()
        finally:
            copy.close()
            source.close()
    except sqlite3.Error as exc:
        raise BackupError(f"the store {path} cannot be read for a snapshot ({exc}): is it a node's store?") from None


def _tar(entries: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=6) as tar:
        for name, content in entries:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(content), 0o600, int(time.time())
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def _head(header: dict) -> bytes:
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    return MAGIC + len(text).to_bytes(4, "big") + text


# -- reading an archive ----------------------------------------------------------------------------------------

def archives(network, name: str, directory: Path | None = None) -> list[Path]:
    """A node's archives in the backup directory, oldest first."""
    folder = (Path(directory) if directory else settings(network).directory) / name
    return sorted(folder.glob(f"{name}-*{SUFFIX}")) if folder.is_dir() else []


def latest(network, name: str, directory: Path | None = None) -> Path:
    """A node's newest archive, or a BackupError saying there is none."""
    found = archives(network, name, directory)
    if not found:
        place = (Path(directory) if directory else settings(network).directory) / name
        raise BackupError(f"no archive of {name} in {place}: make one with `testbed backup {name}`, or name one with "
                          "--from ARCHIVE")
    return found[-1]


def read_header(path: Path) -> tuple[dict, bytes, bytes]:
    """(header, its bytes, the sealed body) of an archive file; a BackupError when it is not one."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise BackupError(f"no archive {path}: give an archive's path (see `ls` of the backup directory)") from None
    except OSError as exc:
        raise BackupError(f"{path} cannot be read ({exc.strerror})") from None
    if not raw.startswith(MAGIC) or len(raw) < len(MAGIC) + 4:
        raise BackupError(f"{path} is not a testbed backup archive (no {MAGIC.strip().decode()} header): give one "
                          "`testbed backup` made")
    size = int.from_bytes(raw[len(MAGIC):len(MAGIC) + 4], "big")
    end = len(MAGIC) + 4 + size
    try:
        header = json.loads(raw[len(MAGIC) + 4:end])
        assert isinstance(header, dict) and {"node", "created", "archive", "nonce"} <= set(header)
        bytes.fromhex(header["nonce"])
    except (ValueError, AssertionError, TypeError):
        raise BackupError(f"{path}: the archive's header is damaged or edited: nothing was changed; restore from "
                          "another archive") from None
    return header, raw[:end], raw[end:]


def open_archive(network, path: Path) -> Archive:
    """Decrypt and verify an archive (tag, then every file against the manifest); nothing is written."""
    header, head, sealed = read_header(path)
    key_file = _key_file(network, str(header["node"]), Path(path))
    try:
        wrapped = json.loads(key_file.read_text())
    except FileNotFoundError:
        raise BackupError(f"the key of {Path(path).name} is not in {key_file.parent} (purged: the archive was "
                          "crypto-shredded; or it is another network's archive): it cannot be read; restore from "
                          "another archive") from None
    except (OSError, ValueError) as exc:
        raise BackupError(f"the key file {key_file} cannot be read ({exc}): put it back from the keyring's "
                          "copy") from None
    master = backup_key(network)
    try:
        data_key = AESGCM(master).decrypt(bytes.fromhex(wrapped["nonce"]), bytes.fromhex(wrapped["wrapped"]),
                                          _wrap_aad(header))
        plain = AESGCM(data_key).decrypt(bytes.fromhex(header["nonce"]), sealed, head)
    except (InvalidTag, KeyError, ValueError, TypeError):
        raise BackupError(f"{path} fails its authentication (AES-256-GCM tag): it was tampered with, damaged or not "
                          "made under this network's backup key; nothing was changed; restore from another archive "
                          "(--from ARCHIVE)") from None
    files: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(plain), mode="r:gz") as tar:
            for info in tar.getmembers():
                if info.isfile():
                    files[info.name] = tar.extractfile(info).read()
        manifest = json.loads(files.pop("manifest.json"))
    except (tarfile.TarError, KeyError, ValueError, OSError):
        raise BackupError(f"{path}: its contents are not an archive's (no manifest): nothing was changed") from None
    for entry in manifest.get("files", ()):
        content = files.get(entry["name"])
        if content is None or len(content) != entry["size"] or hashlib.sha256(content).hexdigest() != entry["sha256"]:
            raise BackupError(f"{path}: {entry['name']} does not match its manifest: nothing was changed; restore from "
                              "another archive")
    if manifest.get("node") != header["node"] or manifest.get("created") != header["created"]:
        raise BackupError(f"{path}: its manifest names another node or time than its header: nothing was changed")
    return Archive(Path(path), header, manifest, files)


# -- retention -------------------------------------------------------------------------------------------------------

def purge(network, directory: Path | None = None, retention_days: float | None = None,
          now: dt.datetime | None = None) -> list[Path]:
    """Delete every archive older than the retention, its key first (crypto-shredding: a copy of the archive left
    anywhere can no longer be read); the archives purged. A key whose archive has gone goes too, once as old."""
    place = Settings(Path(directory), RETENTION_DAYS) if directory else settings(network)
    days = place.retention_days if retention_days is None else retention_days
    cutoff = (now or dt.datetime.now(dt.timezone.utc)) - dt.timedelta(days=days)
    purged = []
    if place.directory.is_dir():
        for folder in sorted(p for p in place.directory.iterdir() if p.is_dir()):
            for path in sorted(folder.glob(f"*{SUFFIX}")):
                created = _created(path)
                if created is not None and created < cutoff:
                    _key_file(network, folder.name, path).unlink(missing_ok=True)
                    path.unlink(missing_ok=True)
                    purged.append(path)
    ring = keyring(network)
    if ring.is_dir():
        for key_file in ring.glob("*/*.key"):
            created = _created(key_file)
            if created is not None and created < cutoff:
                key_file.unlink(missing_ok=True)
    return purged


def _created(path: Path) -> dt.datetime | None:
    """When an archive (or its key file) was made, from its name: NODE-YYYYmmddTHHMMSSffffffZ."""
    stem = path.name.removesuffix(SUFFIX).removesuffix(".key")
    try:
        return dt.datetime.strptime(stem.rsplit("-", 1)[1], STAMP).replace(tzinfo=dt.timezone.utc)
    except (IndexError, ValueError):
        return None


# -- files ---------------------------------------------------------------------------------------------------------

def _private_folder(path: Path) -> None:
    """A folder only its owner may enter (0700), made if need be."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)


PLACE_HINT = ("free some (`testbed backup --purge` deletes archives past their retention) or give another place "
              "(--to DIR, or the topology's backup.directory)")


def require_room(folder: Path, size: int, what: str, hint: str = PLACE_HINT) -> None:
    """Refuse before writing when the file system of folder lacks the room for size bytes (and a margin)."""
    probe = Path(folder)
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if size * SPACE_MARGIN > free:
        raise BackupError(f"no space for {what} in {probe}: {size / 2**20:.1f} MiB needed, {free / 2**20:.1f} MiB "
                          f"free; {hint}")


def write_atomic(path: Path, content: bytes, database: bool = False) -> None:
    """Write a file beside its place (0600), fsync it, rename it over the old one and fsync the folder: a reader, or
    a crash, sees the old file or the new one. For a database, the old one's WAL and shared memory go first (a WAL
    left beside the new file would be applied to it)."""
    path = Path(path)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.restoring")
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(content)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        if database:
            for extra in ("-wal", "-shm", "-journal"):
                path.with_name(path.name + extra).unlink(missing_ok=True)
        os.replace(partial, path)
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        if exc.errno == errno.ENOSPC:
            raise BackupError(f"no space left while writing {path}: it is unchanged; free some space and run the "
                              "command again") from None
        raise BackupError(f"{path} cannot be written ({exc.strerror}): it is unchanged") from None
