"""Backups of a node's state and its restore: one encrypted archive per node, a key per archive (crypto-shredded at
purge), and for a 市町村CS the roll forward that brings a restored store back in line (docs/backup.md).

An archive holds everything of one node: its store (a consistent snapshot through SQLite's online backup API, safe
against the running node's WAL), its audit logs and their checkpoints (up to the last complete entry), the small
files of its data folder (the CRL numbers it has seen) and its keys and secrets folder (pki/nodes/NODE), with a
manifest (node, time, every file's size and SHA-256). It is a gzipped tar, encrypted with AES-256-GCM under a key
of its own; the archive's header (node, creation time, archive id, nonce) is the associated data, so that an edited
header fails the tag as an edited body does. The archive's key is wrapped under the network's backup key (one
32-byte key kept for backups alone, made on first use) and kept in the network's keyring, never in the archive:
purging an archive deletes its key first, which leaves every copy of that archive (at the backup site, on a tape,
in a block the file system did not overwrite) unreadable.

A restore checks the archive's tag and manifest before anything is written (a tampered archive changes nothing),
refuses a running node unless asked to stop it, and replaces each file atomically (written beside, fsynced,
renamed). What grows only is not rolled back: an audit log or checkpoint file that continues the archived one is
kept (the witness has seen its entries: cutting them would stop the node, rule audit/witnessed), the CRL numbers
keep the higher of the two (an older CRL is never accepted again), and keys and certificates are put back only
where they are missing (a certificate reissued since stays). A restored CS is then rolled forward from its
prefecture's file: every 更新順番号 the prefecture applied after the backup, so that the CS's numbering goes on where
the prefecture's is and nothing it acknowledged is lost.
"""
from __future__ import annotations

from testbed.backup.archive import (RETENTION_DAYS, Archive, BackupError, Restored, RollForward, Settings, archives, backup,
                                    keyring, latest, node_of, open_archive, purge, settings)
from testbed.backup.archive import shutil  # noqa: F401 (what the tests make run out of room)
from testbed.backup.restore import restore, roll_forward_cs

__all__ = ["RETENTION_DAYS", "Archive", "BackupError", "Restored", "RollForward", "Settings", "archives", "backup",
           "keyring", "latest", "node_of", "open_archive", "purge", "restore", "roll_forward_cs", "settings"]
