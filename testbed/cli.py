"""The one command-line entry point: ``testbed``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from certs.pki import BAD_CASES, PKI
from nodes import audit
from testbed.client import default_state_dir
from testbed.network import Network, status_json, status_table
from testbed.topology import Topology


def _network(args) -> Network:
    return Network.open(args.state_dir, args.topology)


def cmd_pki_init(args) -> int:
    """testbed pki init: create the PKI for a topology."""
    pki = PKI(args.pki_dir or args.state_dir / "pki")
    try:
        pki.init(Topology.load(args.topology) if args.topology else _network(args).topology, force=args.force)
    except FileExistsError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"PKI written to {pki.dir}: root CA, issuing CAs {', '.join(sorted(p.name for p in (pki.dir / 'ca').iterdir()))}, "
          f"{len(pki.index())} certificates")
    print("bad-certificate kit:")
    for case, what in BAD_CASES.items():
        print(f"  {pki.bad_files(case)[0].parent}  {what}")
    return 0


def cmd_pki_revoke(args) -> int:
    """testbed pki revoke IDENTITY: put its certificates on the CRL."""
    pki = PKI(args.pki_dir or args.state_dir / "pki")
    try:
        serials = pki.revoke(args.identity)
    except KeyError as exc:
        print(exc.args[0], file=sys.stderr)
        return 2
    print(f"revoked {args.identity}: serial{'s' if len(serials) > 1 else ''} {', '.join(serials)}")
    return 0


def cmd_up(args) -> int:
    """testbed up: start every node and wait until all are healthy."""
    import time
    started = time.monotonic()
    network = _network(args)
    rows = network.up()
    print(status_table(rows))
    print(f"{sum(r['healthy'] for r in rows)}/{len(rows)} nodes healthy in {time.monotonic() - started:.1f} s "
          f"(state in {network.state_dir})")
    return 0


def cmd_status(args) -> int:
    """testbed status: one line per node, or JSON."""
    rows = _network(args).status()
    print(status_json(rows) if args.json else status_table(rows))
    return 0 if all(r["healthy"] for r in rows) else 1


def cmd_down(args) -> int:
    """testbed down: stop every node."""
    stopped = _network(args).down()
    print(f"stopped {len(stopped)} node{'s' if len(stopped) != 1 else ''}" + (f": {', '.join(stopped)}" if stopped else ""))
    return 0


def cmd_audit_verify(args) -> int:
    """testbed audit verify: check the hash chain of audit logs (files, or every node of the network)."""
    paths = [Path(p) for p in args.paths]
    if not paths:
        network = _network(args)
        paths = [network.audit_file(n.name) for n in network.topology.nodes if network.audit_file(n.name).exists()]
    if not paths:
        print("no audit logs found", file=sys.stderr)
        return 2
    failed = 0
    for path in paths:
        result = audit.verify(path, args.head)
        print(f"{'OK  ' if result.ok else 'FAIL'} {path}: {result.entries} entries, head {result.head[:16]}")
        for problem in result.problems:
            print(f"     {problem}")
        failed += not result.ok
    return 1 if failed else 0


def cmd_demo(args) -> int:
    """testbed demo: up, real calls across the nodes, down."""
    from testbed.demo import run_demo
    return run_demo(_network(args))


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="testbed", description="Simulated municipal network testbed (住基ネット over gRPC with mutual TLS).")
    parser.add_argument("--state-dir", type=Path, default=default_state_dir(),
                        help="working folder for PKI, data, logs (default: $TESTBED_HOME or ./.testbed)")
    parser.add_argument("--topology", help="topology file (default: the one in use, else kanagawa)")
    sub = parser.add_subparsers(dest="command", required=True)

    pki = sub.add_parser("pki", help="the testbed PKI").add_subparsers(dest="pki_command", required=True)
    p = pki.add_parser("init", help="create root CA, issuing CAs, CRLs, node/terminal certificates and the bad kit")
    p.add_argument("--pki-dir", type=Path, help="default: STATE_DIR/pki")
    p.add_argument("--force", action="store_true", help="replace an existing PKI")
    p.set_defaults(func=cmd_pki_init)
    p = pki.add_parser("revoke", help="revoke every certificate of an identity (URI SAN)")
    p.add_argument("identity", help="e.g. spiffe://testbed.jp/lg/142140/terminal/T0001")
    p.add_argument("--pki-dir", type=Path)
    p.set_defaults(func=cmd_pki_revoke)

    sub.add_parser("up", help="start every node as its own process").set_defaults(func=cmd_up)
    p = sub.add_parser("status", help="health of every node")
    p.add_argument("--json", action="store_true", help="a JSON list of name, kind, municipality, address, identity, healthy")
    p.set_defaults(func=cmd_status)
    sub.add_parser("down", help="stop every node").set_defaults(func=cmd_down)

    aud = sub.add_parser("audit", help="audit logs").add_subparsers(dest="audit_command", required=True)
    p = aud.add_parser("verify", help="verify hash chains; exit 1 if any entry was edited, removed, inserted or reordered")
    p.add_argument("paths", nargs="*", help="audit files (default: every node's)")
    p.add_argument("--head", help="the head hash recorded earlier, to detect entries removed from the end")
    p.set_defaults(func=cmd_audit_verify)

    sub.add_parser("demo", help="bring the network up, make calls across the nodes, take it down").set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the testbed command line."""
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
