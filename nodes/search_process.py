"""A node's search process: ``python -m nodes.search_process --node NAME --state-dir DIR [--topology FILE]``.

A CS answers its terminals' 本人確認情報検索 from a process of its own, so that a search never waits in the
CS's event loop behind the updates of the counters (DESIGN §9). The process is the CS in every way a caller
can see: the CS's certificate, its policy, the operator session checks and the audit of every call (in a
chain of its own, ``search-audit.jsonl``, with its own checkpoints). It reads the CS's store through a
read-only connection (SQLite WAL: readers never wait for the writer), and serves SearchIdentity alone (beside
health checking and reflection), with metrics of its own (the search port + 1000, to the domain's monitor, as a
node's).

The CS starts it as a child (so it shares the CS's confinement, namespace and container), restarts it when it
dies, stops it when the CS stops, and a child whose CS is killed dies with it (PR_SET_PDEATHSIG).
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from pathlib import Path

from nodes.audit import AuditDamaged
from nodes.children import die_with_parent
from nodes.confined import harden_self
from nodes.kinds import SEARCHING
from nodes.runtime import NodeRuntime
from nodes.server import run_server
from nodes.topology import Topology

log = logging.getLogger(__name__)

SEARCH_NICE = -10


async def serve(topology: Topology, node_name: str, state_dir: Path, pki_dir: Path) -> None:
    """Serve 本人確認情報検索 at the node's search address until SIGTERM: the node's runtime as its search process
    (read-only store, the search audit chain) and run_server's search end (the methods its kind names, at the search
    port, metrics at the search metrics port)."""
    runtime = NodeRuntime(topology, node_name, state_dir, pki_dir, search=True)
    stop = asyncio.Event()
    async with run_server(runtime):
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGHUP, runtime.reload_topology)
        await stop.wait()


def main() -> None:
    """Parse the arguments and serve until SIGTERM (or until the node that started it dies)."""
    parser = argparse.ArgumentParser(prog="python -m nodes.search_process", description=__doc__)
    parser.add_argument("--topology", help="topology file (default: the kanagawa network)")
    parser.add_argument("--node", required=True, help="node name in the topology (a CS)")
    parser.add_argument("--state-dir", required=True, type=Path)
    parser.add_argument("--pki-dir", type=Path)
    args = parser.parse_args()
    os.umask(0o077)
    if not die_with_parent():
        raise SystemExit("the node that started this search process is gone")
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {args.node}.search %(levelname)s %(name)s: %(message)s")
    harden_self()
    try:  # a terminal's search is interactive: ahead of the batch-like work of the nodes when cores are short
        os.nice(SEARCH_NICE)
    except OSError:
        pass  # (raising priority needs root; without it the search runs at the nodes' priority)
    topology = Topology.load(args.topology)
    if topology.node(args.node).search_address is None:
        raise SystemExit(f"{args.node} has no search process (only a {' or '.join(SEARCHING)} has one)")
    try:
        asyncio.run(serve(topology, args.node, args.state_dir, args.pki_dir or args.state_dir / "pki"))
    except AuditDamaged as exc:
        log.error("refusing to start: the search audit log is damaged: %s; keep it as evidence, run `testbed audit "
                  "verify`, and move it aside to start a new chain", exc)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
