"""The commands that check the network: audit verify/follow, check, consistency, probe, and the rule catalogue."""
from __future__ import annotations

import json
import re
from pathlib import Path

from nodes import audit, witness
from nodes.reasons import catalogue
from protos import common_pb2
from testbed.catalogue import write as write_rules_document
from testbed.check import check_network, report_lines
from testbed.cli.common import STATUS_TIMEOUT, STATUS_TRIES, Refusal, known_municipality, open_network
from testbed.client import Counter
from testbed.network import Network
from testbed.probe import GROUPS, report_table, run_probe


def register(sub) -> None:
    """Add the checking commands to the subcommands of `testbed`."""
    aud = sub.add_parser("audit", help="audit logs").add_subparsers(dest="audit_command", required=True)
    p = aud.add_parser("verify", help="check every audit chain (nodes, search processes, the bastion, archived sites) "
                                      "under its key, its signed checkpoints and its witnessed heads; exit 1 on any "
                                      "edited, removed, inserted, reordered, unkeyed or cut entry, a rewritten chain or a "
                                      f"log gone (the witness folder: ${witness.ENV}, else ~/.local/state/testbed-witness)")
    p.add_argument("paths", nargs="*", help="audit files (default: every chain of the network)")
    p.set_defaults(func=cmd_audit_verify)
    p = aud.add_parser("follow", help="every audit entry about one 住民票コード, across all nodes, in time order")
    p.add_argument("key", help="a 住民票コード (or any key the logs name)")
    p.set_defaults(func=cmd_audit_follow)

    p = sub.add_parser("consistency", help="整合性確認: compare kizon, cs, prefecture and national; exit 1 on any difference")
    p.add_argument("municipality")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--deep", action="store_true", help="re-hash every stored record at every hop instead of comparing "
                   "the trees of ranges first (the scrubbers re-hash in the background)")
    p.add_argument("--terminal", default="T0003")
    p.add_argument("--operator", default="OP0003", help="an operator with the manager or operations role")
    p.set_defaults(func=cmd_consistency)
    p = sub.add_parser("check", help="the network-wide invariants: one residence, one 個人番号, the dead stay removed, "
                       "outboxes delivered, audit chains intact; exit 1 if any is broken")
    p.add_argument("--outbox-age", type=float, default=120.0, metavar="SECONDS",
                   help="how long an outbox item may wait before it counts as stuck (default 120)")
    p.add_argument("--json", action="store_true", help="the findings as JSON")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("probe", help="security probe: kit, identities, policy matrix, TLS, CRLs, audit, rules; exit 1 "
                                      "if anything was accepted that should not be")
    p.add_argument("--json", help="also write every case to this JSON file")
    p.add_argument("--html", help="also write an HTML report")
    p.add_argument("--skip", default="", metavar="GROUP[,GROUP]",
                   help=f"leave these groups of cases out (of {', '.join(GROUPS)}); e.g. policy on a large topology")
    p.set_defaults(func=cmd_probe)

    p = sub.add_parser("rules", help="the rule catalogue: each rule id nodes refuse with, its owner, status and "
                                     "reference")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="a JSON list of reason, owner, code, reference, summary")
    out.add_argument("--write", action="store_true",
                     help="write docs/rules.md (the catalogue by owner, with the tests that name each rule)")
    p.set_defaults(func=cmd_rules)


def cmd_audit_verify(args) -> int:
    """testbed audit verify: every chain (nodes, search processes, bastion, archives) under its key, checkpoints, witness."""
    network = open_network(args)
    if args.paths:
        targets = [(_chain_of_file(network, path), path) for path in map(Path, args.paths)]
    else:
        targets = [(c, network.audit_file(c)) for c in network.audit_chains()]
        # (a chain the witness knows stays in the list when its log is gone: that is a finding, not nothing to check)
        known = witness.read_heads(network.witness_folder()).chains
        targets = [(c, path) for c, path in targets if path.exists() or c in known]
    if not targets:
        raise Refusal(f"no audit logs in {network.state_dir}; run `testbed up` first")
    failed = 0
    for chain, path in targets:
        result = network.verify_audit(chain, path)
        print(f"{'OK  ' if result.ok else 'FAIL'} {chain}: {result.entries} entries, {result.checkpointed} checkpointed, "
              f"{result.witnessed} witnessed, head {result.head}")
        for problem in result.problems:
            print(f"     {problem}")
        failed += not result.ok
    return 1 if failed else 0


def _chain_of_file(network: Network, path: Path) -> str:
    """The chain a file named on the command line is the log of (by where it is, else by its first entry), or a
    Refusal saying what is wrong with it and what to do."""
    every = f"or no path to check every chain of {network.state_dir}"
    if path.is_dir():
        raise Refusal(f"{path} is a folder; give an audit log in it (such as {path / 'audit.jsonl'}), {every}")
    if not path.exists():
        raise Refusal(f"{path}: no such file; give an existing audit log, {every}")
    try:
        with path.open("rb") as f:
            f.read(1)
    except OSError as exc:
        raise Refusal(f"{path} cannot be read ({exc.strerror}); give a file you may read, {every}") from None
    chain = network.chain_of(path) or audit_node(path)
    if chain is None:
        raise Refusal(f"{path}: not an audit log of a node of this network (its first entry names no node of "
                      f"{network.topology.name}); give the node's own file, {every}")
    if chain not in network.audit_chains():
        raise Refusal(f"{path}: its first entry names {chain!r}, no chain of the network in {network.state_dir}; give a "
                      f"log of its nodes, bastion or archive, {every}")
    return chain


def audit_node(path: Path) -> str | None:
    """The chain an audit file names in its first entry (a node, NODE.search, the bastion)."""
    try:
        with path.open(encoding="utf-8", errors="replace") as f:
            first = json.loads(f.readline() or "{}")
    except (OSError, json.JSONDecodeError):
        return None
    node = first.get("node") if isinstance(first, dict) else None
    return node if isinstance(node, str) else None


def cmd_audit_follow(args) -> int:
    """testbed audit follow KEY: every audit entry, on every node, about one 住民票コード (or other key)."""
    if not re.fullmatch(r"[0-9]{11}|[0-9]{12}|[0-9]{15}|[0-9A-F]{24}", args.key):
        raise Refusal(f"{args.key!r} is not a key the audit follows: give a 住民票コード (11 digits), a 個人番号 "
                      "(12), a 宛名番号 (15) or a 符号 (24 hexadecimal characters)")
    network = open_network(args)
    paths = [network.audit_file(c) for c in network.audit_chains() if network.audit_file(c).exists()]
    entries = audit.follow(paths, args.key)
    for e in entries:
        who = e["caller"].removeprefix("spiffe://testbed.jp/")
        operator = f" operator {e['operator']} at {e['terminal']}" if e["operator"] else ""
        print(f"{e['time']}  {e['node']:18s} {e['method'].rsplit('/', 1)[-1]:28s} {e['status']:18s} from {who}{operator}")
    print(f"{len(entries)} entries on {len({e['node'] for e in entries})} nodes")
    return 0 if entries else 1


def cmd_consistency(args) -> int:
    """testbed consistency MUNICIPALITY: compare kizon, cs, prefecture and national; list every difference."""
    network = open_network(args)
    known_municipality(network, args.municipality)
    with Counter(network, args.municipality, args.terminal, args.operator) as counter:
        report = counter(counter.kizon.CheckConsistency,
                         common_pb2.ConsistencyRequest(municipality_code=args.municipality, deep=args.deep), timeout=600)
    if args.json:
        print(json.dumps({
            "municipality": report.municipality_code,
            "compared": {"kizon": report.records_kizon, "cs": report.records_cs, "prefecture": report.records_prefecture,
                         "national": report.records_national},
            "differences": [{"resident_code": d.resident_code, "node": d.node, "items": list(d.items)}
                            for d in report.differences],
            "seconds": round(report.seconds, 3),
            "deep": args.deep,
        }, ensure_ascii=False, indent=2))
        return 1 if report.differences else 0
    print(f"整合性確認 {report.municipality_code}: kizon {report.records_kizon}, cs {report.records_cs}, prefecture "
          f"{report.records_prefecture}, national {report.records_national} records; {len(report.differences)} differences "
          f"({report.seconds:.2f} s{', deep' if args.deep else ''})")
    for diff in report.differences:
        print(f"  {diff.resident_code}  {diff.node:10s}  {', '.join(diff.items)}")
    return 1 if report.differences else 0


def cmd_check(args) -> int:
    """testbed check: the network-wide invariants (DESIGN §13) in one pass; exit 1 if any is broken."""
    network = open_network(args)
    if not (network.state_dir / "data").exists():
        raise Refusal(f"no node data in {network.state_dir}; run `testbed up` (or give --state-dir) first")
    report = check_network(network, outbox_age_limit=args.outbox_age)
    if args.json:
        print(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    else:
        print("\n".join(report_lines(report)))
    return 0 if report.ok else 1


def cmd_probe(args) -> int:
    """testbed probe: the security tester's run against the network; exit 1 if anything should have been refused."""
    network = open_network(args)
    # (as `testbed status` asks: a node busy right after `up` answers a moment later, and is not down)
    down = [r["name"] for r in network.status(STATUS_TIMEOUT, STATUS_TRIES) if not r["healthy"]]
    if down:
        raise Refusal(f"{', '.join(down)} not running; run `testbed up` first")
    skip = frozenset(g.strip() for g in args.skip.split(",") if g.strip())
    if skip - set(GROUPS):
        raise Refusal(f"no group {', '.join(sorted(skip - set(GROUPS)))} in the probe; its groups are {', '.join(GROUPS)}")
    cases, seconds = run_probe(network, args.json and Path(args.json), args.html and Path(args.html), skip)
    print(report_table(cases))
    print(f"({seconds:.1f} s" + (f"; JSON {args.json}" if args.json else "") + (f"; HTML {args.html}" if args.html else "")
          + ")")
    return 1 if any(c.verdict == "FAIL" for c in cases) else 0


def cmd_rules(args) -> int:
    """testbed rules [--json | --write]: the rule catalogue (nodes/reasons/), one rule per line; as JSON; or written
    to docs/rules.md."""
    rules = catalogue()
    if args.write:
        print(f"written {write_rules_document()} ({len(rules)} rules)")
    elif args.json:
        print(json.dumps([{"reason": r.reason, "owner": r.owner, "code": r.code.name, "reference": r.reference,
                           "summary": r.summary} for r in rules], ensure_ascii=False, indent=2))
    else:
        print(rules_table(rules))
    return 0


def rules_table(rules) -> str:
    """The rules as a fixed-width table: a header, then one rule per line (id, owner, status code, reference)."""
    lines = [("RULE", "OWNER", "CODE", "REFERENCE")] + [(r.reason, r.owner, r.code.name, r.reference) for r in rules]
    widths = [max(len(line[i]) for line in lines) for i in range(3)]
    return "\n".join("  ".join([*(c.ljust(w) for c, w in zip(line, widths)), line[3]]).rstrip() for line in lines)
