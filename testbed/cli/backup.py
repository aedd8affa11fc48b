"""The commands for backups: backup (and --purge), restore. The work is testbed/backup/'s; docs/backup.md says what
an archive holds, where it goes, its key and its retention."""
from __future__ import annotations

import time
from pathlib import Path

from testbed import backup as backups
from testbed.cli.common import Refusal, open_network


def register(sub) -> None:
    """Add the backup commands to the subcommands of `testbed`."""
    p = sub.add_parser("backup", help="an encrypted archive of each node's store, audit log and keys (then purge "
                       "archives past their retention)")
    p.add_argument("nodes", nargs="*", metavar="NODE", help="the nodes to back up (see `testbed status`)")
    p.add_argument("--all", action="store_true", help="every node of the topology")
    p.add_argument("--to", type=Path, metavar="DIR", help="the backup directory (default: the topology's "
                   "backup.directory, else STATE_DIR/backups)")
    p.add_argument("--purge", action="store_true", help="only delete the archives past their retention (and their "
                   f"keys), backing nothing up (default retention: {backups.RETENTION_DAYS} days, or the topology's "
                   "backup.retention_days)")
    p.set_defaults(func=cmd_backup)

    p = sub.add_parser("restore", help="restore a node from an archive: verified first, files replaced atomically, a "
                       "CS rolled forward from its prefecture, the node started again")
    p.add_argument("node", metavar="NODE")
    p.add_argument("--from", dest="archive", type=Path, metavar="ARCHIVE", help="the archive (default: the node's "
                   "newest in the backup directory)")
    p.add_argument("--backups", type=Path, metavar="DIR", help="the backup directory to take the newest archive from "
                   "(default: as for backup)")
    p.add_argument("--stop", action="store_true", help="stop the node if it runs (else a running node is refused)")
    p.add_argument("--no-start", action="store_true", help="leave the node stopped after the restore")
    p.set_defaults(func=cmd_restore)


def cmd_backup(args) -> int:
    """testbed backup [NODE ...|--all] [--to DIR] [--purge]: archive each node, then purge what is past retention."""
    network = open_network(args)
    try:
        if args.purge and not (args.nodes or args.all):
            _purged(network, args.to)
            return 0
        if bool(args.nodes) == bool(args.all):
            raise Refusal("name the nodes to back up (e.g. `testbed backup cs-142140`), or give --all, not both")
        names = [n.name for n in network.topology.all_nodes] if args.all else args.nodes
        for name in names:
            backups.node_of(network, name)  # (every name checked before anything is written)
        for name in names:
            if args.all and not (network.state_dir / "data" / name / "store.sqlite").exists():
                print(f"{name:18s} no store yet: skipped")
                continue
            started = time.perf_counter()
            path, manifest = backups.backup(network, name, args.to)
            size = path.stat().st_size
            print(f"{name:18s} {len(manifest['files'])} files, {sum(f['size'] for f in manifest['files']) / 1024:.0f} "
                  f"KiB → {path} ({size / 1024:.0f} KiB encrypted, {time.perf_counter() - started:.2f} s)")
        _purged(network, args.to)
    except backups.BackupError as exc:
        raise Refusal(str(exc)) from None
    return 0


def _purged(network, directory) -> None:
    purged = backups.purge(network, directory)
    days = backups.settings(network).retention_days
    print(f"purged {len(purged)} archives older than {days:g} days (their keys first)"
          + (": " + ", ".join(p.name for p in purged) if purged else ""))


def cmd_restore(args) -> int:
    """testbed restore NODE [--from ARCHIVE] [--stop] [--no-start]: the node's state from an archive."""
    network = open_network(args)
    try:
        done = backups.restore(network, args.node, args.archive, stop=args.stop,
                               start=False if args.no_start else None, directory=args.backups)
    except backups.BackupError as exc:
        raise Refusal(str(exc)) from None
    print(f"{args.node}: restored from {done.archive}")
    for name, what in done.outcomes:
        print(f"  {name:32s} {what}")
    if done.rolled is not None:
        r = done.rolled
        print(f"  rolled forward from {r.prefecture}: 更新順番号 {r.before} → {r.after}, {r.people} people written, "
              f"{r.removed} renamed away")
    running = network.pid(args.node)
    municipality = network.topology.node(args.node).municipality
    state = "running again" if running else "stopped: start it with `testbed up`"
    print(f"{args.node} is {state}; then compare it with its peers: " + (f"`testbed consistency {municipality}`, " if municipality else "") + "`testbed check`")
    return 0
