"""The 移行 commands: migrate, and the maintenance bastion vendors reach it through (bastion, ssh)."""
from __future__ import annotations

import argparse
import asyncio
import logging
import shlex
from pathlib import Path

from testbed.cli.common import Refusal, known_municipality, open_network
from testbed.migration import layout, report

# testbed.bastion and testbed.migration.rehearsal are imported in the commands that use them, not here: they bring
# asyncssh, which `testbed --help` (and every other command) need not load.


def register(sub) -> None:
    """Add the 移行 commands to the subcommands of `testbed`."""
    p = sub.add_parser("migrate", help="移行 rehearsal: freeze, export, SFTP, load, verify, cut over, decommission "
                       "(rolls back on a failed check)")
    p.add_argument("municipality", nargs="?", help="e.g. 142140; or `precheck` followed by the municipality: the "
                   "cleansing precheck (what would fail the move, by rule, with counts), changing nothing")
    p.add_argument("precheck_of", nargs="?", metavar="M", help=argparse.SUPPRESS)
    p.add_argument("--to", help="the target site the topology names (e.g. gcloud)")
    p.add_argument("--vendor-layout", choices=["intermediate"],
                   help="carry the 住民票 in a foreign vendor's export (中間標準レイアウト, docs/intermediate-layout.md) "
                        "and identify its 外字 (文字同定) at the target before the load")
    p.add_argument("--encoding", choices=["cp932", "utf-8"], default="cp932", help="the vendor export's 文字コード")
    p.add_argument("--accept-unmapped", action="append", default=[], metavar="CODE",
                   help="a vendor 外字 with no standard character to carry as it is (U+E000 or its CP932 code F040); "
                        "without, such a 外字 stops the run before the load")
    p.add_argument("--export", type=Path, metavar="DIR",
                   help="(precheck) a vendor's export to check, in place of the live register")
    p.add_argument("--target", choices=["jisx0213", "mj"], default="jisx0213",
                   help="(precheck) the characters the target holds: JIS X 0213 (with 代替文字), or every standard one")
    p.add_argument("--inject", action="append", default=[], metavar="FAULT",
                   help="make a fault happen in the run: corrupt-file, drop-record, interrupt-transfer, slow-link")
    p.add_argument("--expected-failures", type=Path, metavar="FILE",
                   help="conformance cases the target is known to fail (one id a line, `# why` after it): listed in "
                        "the report, not stopping the cut over (docs/conformance.md)")
    p.add_argument("--json", help="write the report as JSON to this file")
    p.add_argument("--report-dir", default="reports", help="where the HTML report goes (default: reports)")
    p.add_argument("--layout", action="store_true", help="print the migration layout (docs/migration-layout.md) and exit")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("bastion", help="the SSH maintenance bastion: start, stop, add-vendor NAME")
    p.add_argument("action", choices=["start", "stop", "add-vendor"])
    p.add_argument("name", nargs="?", help="the vendor (add-vendor)")
    p.add_argument("--port", type=int, default=0,
                   help="where to listen, outside the ephemeral port range (default: the kernel chooses; printed)")
    p.add_argument("--public-key", type=Path, help="(add-vendor) the vendor's own OpenSSH public key, e.g. id_ed25519.pub")
    p.set_defaults(func=cmd_bastion)
    p = sub.add_parser("ssh", help="run an allowed command at the bastion as a vendor: testbed ssh VENDOR migrate 142140 --to gcloud")
    p.add_argument("vendor")
    p.add_argument("words", nargs=argparse.REMAINDER, help="the command and its arguments")
    p.set_defaults(func=cmd_ssh)


def cmd_migrate(args) -> int:
    """testbed migrate M --to SITE: the migration rehearsal; exit 1 when a check failed (after the rollback)."""
    if args.layout:
        print(layout.markdown())
        return 0
    if args.municipality == "precheck":
        return cmd_precheck(args)
    if args.precheck_of:
        raise Refusal(f"unexpected {args.precheck_of!r} after the municipality; see `testbed migrate --help`")
    from testbed.migration import rehearsal  # (asyncssh: see the top)
    unknown = [i for i in args.inject if i not in rehearsal.INJECTIONS]
    if not args.municipality or not args.to or unknown:
        what = f"unknown fault {', '.join(unknown)} (known: {', '.join(rehearsal.INJECTIONS)})" if unknown else \
            "give the municipality and --to SITE"
        raise Refusal(f"{what}; see `testbed migrate --help`")
    from testbed.migration import conformance
    try:
        known = conformance.expected_failures(args.expected_failures)
    except OSError as exc:
        raise Refusal(f"--expected-failures: {exc.strerror}: {args.expected_failures}") from None
    except ValueError as exc:
        raise Refusal(f"--expected-failures: {exc}") from None
    network = open_network(args)
    # the cut over rewrites the topology: the targets take the place of the nodes they replace, keeping their site
    moved = [n.name for n in network.topology.nodes if n.municipality == args.municipality and n.site == args.to]
    if moved and args.to not in network.topology.sites(args.municipality):
        print(f"{args.municipality} has already moved to {args.to}: {' and '.join(moved)} serve it (the topology in use "
              "says so since the cut over); nothing to do")
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("asyncssh").setLevel(logging.WARNING)
    try:
        run = rehearsal.Rehearsal(network, args.municipality, args.to, tuple(args.inject),
                                  vendor_layout=args.vendor_layout, encoding=args.encoding,
                                  accept_unmapped=tuple(args.accept_unmapped), expected_failures=known).run()
    except rehearsal.StepFailed as exc:
        raise Refusal(str(exc)) from None
    for step in run["steps"]:
        print(f"{step['name']:13s} {step['result']:10s} {step['seconds']:7.2f} s  {step['message']}")
        for check, result, detail in step["checks"]:
            print(f"{'':13s} {result:10s} {'':9s}  {check}: {detail}")
    down = run["downtime"]
    print(f"{report.verdict(run)}: downtime {down['seconds'] if down['seconds'] is not None else '-'} s "
          f"({down['start']} → {down['end']})")
    if args.json:
        rehearsal.write_json(run, Path(args.json))
    page = report.write(run, Path(args.report_dir) / f"migration-{run['run']}.html")
    print(f"report: {page}" + (f", JSON {args.json}" if args.json else ""))
    if run["result"] == "passed":
        return 0
    return 1 if run["rolled_back"] else 3  # (3: the rollback did not restore everything: look before anything else)


def cmd_precheck(args) -> int:
    """testbed migrate precheck M: the records that would fail the move, by rule, with counts; exit 1 when any."""
    from testbed.migration import precheck
    if not args.precheck_of:
        raise Refusal("give the municipality: testbed migrate precheck 142140 [--export DIR]")
    network = open_network(args)
    known_municipality(network, args.precheck_of)
    try:
        if args.export:
            found = precheck.from_export(args.export, args.precheck_of, args.target, network=network)
        else:
            found = precheck.from_network(network, args.precheck_of, args.target)
    except (precheck.PrecheckError, ValueError) as exc:
        raise Refusal(str(exc)) from None
    for line in found.table():
        print(line)
    if args.json:
        precheck.write_json(found, Path(args.json))
        print(f"JSON: {args.json}")
    return 0 if found.ok else 1


def cmd_bastion(args) -> int:
    """testbed bastion start [--port P]|stop|add-vendor NAME [--public-key FILE]: the SSH maintenance bastion."""
    from testbed import bastion  # (asyncssh: see the top)
    paths = bastion.Paths(args.state_dir)
    if args.action == "add-vendor":
        if not args.name:
            raise Refusal("give the vendor's name (e.g. vendor-a)", command="bastion add-vendor")
        try:
            key = bastion.add_vendor(paths, args.name, args.public_key)
        except ValueError as exc:
            raise Refusal(str(exc), command="bastion add-vendor") from None
        print(f"vendor {args.name}: its own key {args.public_key} authorized at the bastion (as {key})" if args.public_key
              else f"vendor {args.name}: key {key} (keep it with the vendor); authorized at the bastion")
        return 0
    if args.public_key:
        raise Refusal("--public-key goes with add-vendor NAME")
    if args.action == "stop":
        print("bastion stopped" if bastion.stop(args.state_dir) else "the bastion was not running")
        return 0
    if bastion.running(paths) and args.port and paths.port.exists() and int(paths.port.read_text()) != args.port:
        raise Refusal(f"it already runs on 127.0.0.1:{paths.port.read_text()}; `testbed bastion stop` first to move it "
                      f"to {args.port}", command="bastion start")
    try:
        port = bastion.start(args.state_dir, args.port)
    except ValueError as exc:
        raise Refusal(str(exc), command="bastion start") from None
    except RuntimeError as exc:
        raise Refusal(str(exc), code=1, command="bastion start") from None
    print(f"bastion on 127.0.0.1:{port}; e.g. ssh -i {paths.vendor_key('VENDOR')} -p {port} -o "
          f"UserKnownHostsFile={paths.known_hosts} -o IdentitiesOnly=yes VENDOR@127.0.0.1 status")
    return 0


def cmd_ssh(args) -> int:
    """testbed ssh VENDOR COMMAND...: run an allowed command at the bastion with the vendor's key."""
    from testbed import bastion  # (asyncssh: see the top)
    paths = bastion.Paths(args.state_dir)
    if not bastion.running(paths):
        raise Refusal("the bastion is not running; run `testbed bastion start`")
    if not paths.vendor_key(args.vendor).exists():
        raise Refusal(f"no key for vendor {args.vendor}; run `testbed bastion add-vendor {args.vendor}`")
    try:
        return asyncio.run(bastion.run_command(args.state_dir, args.vendor, shlex.join(args.words)))
    except (OSError, Exception) as exc:  # asyncssh's refusals (PermissionDenied, ...) and connection errors
        raise Refusal(f"{type(exc).__name__}: {exc}") from None
