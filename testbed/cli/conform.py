"""The command that holds a node to the network's rules: `testbed conform ROLE --target NODE` (docs/conformance.md)."""
from __future__ import annotations

from pathlib import Path

from testbed.cli.common import Refusal, open_network

PROFILE_CHOICES = ("wire", "rules", "delivery", "security", "all")
HEALTH_TIMEOUT, HEALTH_TRIES = 2.0, 3  # the node under test's health check before the run: each try, and tries


def register(sub) -> None:
    """Add `conform` to the subcommands of `testbed`."""
    p = sub.add_parser("conform", help="the conformance suite: the cases of a node role (wire, rules, delivery, "
                                       "security) against a node; exit 1 on a failure the expected-failures file "
                                       "does not list")
    p.add_argument("role", help="the node role: cs, kizon, or any role for the wire cases (national, atena …)")
    p.add_argument("--target", help="the node under test, by its name in the topology (default: the first of the role)")
    p.add_argument("--profile", default="all", choices=PROFILE_CHOICES, help="the cases to run (default all)")
    p.add_argument("--case", action="append", default=[], metavar="ID", help="run only this case (repeatable)")
    p.add_argument("--expected-failures", metavar="FILE",
                   help="case ids known to fail, one a line (`# why` after it): reported, not failing the run")
    p.add_argument("--resident", default="", metavar="CODE",
                   help="a 住民票コード the node holds: the run's person at a migration target, which takes no 国外転入 "
                        "before its cut over (elsewhere the suite registers its own)")
    p.add_argument("--list", action="store_true", help="list the role's cases (id, profiles, rules) and run nothing")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    p.add_argument("--junit", metavar="FILE", help="also write the results as JUnit XML (for CI)")
    p.add_argument("--html", metavar="FILE", help="also write an HTML report")
    p.set_defaults(func=cmd_conform)


def cmd_conform(args) -> int:
    """testbed conform ROLE [--target NODE]: run the role's cases against the node; exit 1 on an unexpected failure."""
    from testbed import conform
    from testbed.conform import output
    try:
        cases = conform.select(args.role, args.profile, tuple(args.case))
    except conform.SelectionError as exc:
        raise Refusal(str(exc)) from None
    if args.list:
        for c in cases:
            print(f"{c.id}  [{', '.join(c.profiles)}]  {', '.join(c.rules) or c.standard}")
        return 0
    known = {}
    if args.expected_failures:
        try:
            known = conform.read_expected_failures(Path(args.expected_failures))
        except OSError as exc:
            raise Refusal(f"--expected-failures: {exc.strerror}: {args.expected_failures}") from None
        except ValueError as exc:
            raise Refusal(f"--expected-failures: {exc}") from None
    network = open_network(args)
    node = _target(network, args.role, args.target)
    row = next(r for r in network.status(HEALTH_TIMEOUT, HEALTH_TRIES) if r["name"] == node.name)
    if not row["healthy"]:  # (asked a few times: a node busy right after `up` answers a moment later)
        raise Refusal(f"{node.name} does not answer ({row.get('reason', 'not healthy')}): start the network "
                      "(`testbed up`) or the node first")
    results = conform.run_cases(network, node, cases, known, args.resident)
    print(output.table(results))
    meta = {"role": args.role, "node": node.name, "address": node.address, "profile": args.profile}
    for option, write in (("json", output.write_json), ("junit", output.write_junit), ("html", output.write_html)):
        if getattr(args, option):
            write(results, Path(getattr(args, option)), meta)
    return 1 if conform.unexpected(results) else 0


def _target(network, role: str, name: str | None):
    """The node under test: the one named, which must be of the role, or the topology's first node of the role."""
    if name is None:
        try:
            return network.topology.find(role)
        except KeyError:
            raise Refusal(f"no {role} node in the {network.topology.name} topology: give --target NODE") from None
    try:
        found = network.topology.node(name)
    except KeyError:
        raise Refusal(f"no node {name!r} in the {network.topology.name} topology: `testbed status` lists them") from None
    if found.kind != role:
        raise Refusal(f"{name} is a {found.kind}, not a {role}: give `testbed conform {found.kind} --target {name}`")
    return found
