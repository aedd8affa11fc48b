"""Run one node: ``python -m nodes --topology FILE --node NAME --state-dir DIR``."""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
from pathlib import Path

from nodes import settings, weaken
from nodes.audit import AuditDamaged
from nodes.confined import harden_self
from nodes.server import serve
from nodes.topology import Topology


def main() -> None:
    """Parse the arguments and serve the node until SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m nodes", description=__doc__)
    parser.add_argument("--topology", help="topology file (default: the kanagawa network)")
    parser.add_argument("--node", required=True, help="node name in the topology")
    parser.add_argument("--state-dir", required=True, type=Path, help="where data and audit logs live")
    parser.add_argument("--pki-dir", type=Path, help="PKI directory (default: STATE_DIR/pki)")
    args = parser.parse_args()
    os.umask(0o077)  # everything this node writes (store, WAL, checkpoints, secrets) is its owner's alone
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {args.node} %(levelname)s %(name)s: %(message)s")
    if harden_self():
        logging.getLogger("nodes").info("confined: own mount namespace, only this node's secrets in view, non-dumpable")
    try:  # the process's configuration, read once, here (nodes/settings.py), its weaknesses known ones
        settings.configure(settings.Settings.from_environment())
        weaken.parse(",".join(settings.current().weaknesses))
    except ValueError as exc:
        logging.getLogger("nodes").error("refusing to start: %s", exc)
        raise SystemExit(2) from None
    topology = Topology.load(args.topology)
    try:
        asyncio.run(serve(topology, args.node, args.state_dir, args.pki_dir or args.state_dir / "pki"))
    except AuditDamaged as exc:
        logging.getLogger("nodes").error("refusing to start: the audit log is damaged: %s; keep it as evidence, "
                                         "run `testbed audit verify` to see every problem, and move it aside to start "
                                         "a new chain", exc)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
