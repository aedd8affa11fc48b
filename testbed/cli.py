"""The one command-line entry point: ``testbed``."""
from __future__ import annotations

import argparse
import logging
import json
import os
import signal
import sys
from pathlib import Path

import grpc

from certs.pki import BAD_CASES, PASSPHRASE_ENV, PKI, PassphraseError
from nodes import audit, witness
from testbed.client import default_state_dir
from testbed.network import Network, NetworkError, status_json, status_table
from testbed.topology import Topology


STATUS_TRIES = 3  # `testbed status`: tries of a failed health check, half a second apart


def _network(args) -> Network:
    return Network.open(args.state_dir, args.topology)


class Refusal(Exception):
    """A command that cannot go on: one line saying what is wrong and what to do (exit 2)."""


class Parser(argparse.ArgumentParser):
    """The testbed's parsers (every subparser is one too): options only by their full names, a mistake in one line."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)  # `up --isolate` or `run --resident 100` must not be taken silently
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message}; see `{self.prog} --help`\n")

    def parse_args(self, args=None, namespace=None):
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:  # named after the subcommand that was given them, with the option meant when it is a near miss
            command, deeper = self, True
            while deeper:
                deeper = next((a.choices.get(getattr(parsed, a.dest, None) or "") for a in command._actions
                               if isinstance(a, argparse._SubParsersAction)), None)
                command = deeper or command
            import difflib
            near = [m for e in extras if e.startswith("--")
                    for m in difflib.get_close_matches(e.split("=")[0], command._option_string_actions, 1, 0.8)]
            command.error(f"unrecognized arguments: {' '.join(extras)}" + (f" (did you mean {near[0]}?)" if near else ""))
        return parsed


def _municipality(network: Network, code: str) -> str:
    """A municipality the topology names, or a Refusal listing those it does."""
    known = {m.code: m.name for m in network.topology.municipalities}
    if code not in known:
        raise Refusal(f"no municipality {code!r} in the {network.topology.name} topology "
                      f"({', '.join(f'{c} {n}' for c, n in known.items())}): give one of those, or --topology FILE "
                      "of a topology that names it")
    return code


def cmd_pki_init(args) -> int:
    """testbed pki init: create the PKI for a topology."""
    pki = PKI(args.pki_dir or args.state_dir / "pki")
    if args.if_missing and pki.exists():
        print(f"a PKI exists in {pki.dir}: kept")
        return 0
    try:
        pki.init(Topology.load(args.topology) if args.topology else _network(args).topology, force=args.force,
                 localhost_san=args.localhost_san)
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
    """testbed pki revoke IDENTITY | --serial N: put certificates on their CA's CRL."""
    pki = PKI(args.pki_dir or args.state_dir / "pki")
    if (args.identity is None) == (args.serial is None):
        print("pki revoke: give an identity (URI SAN) or --serial N, not both; see `testbed pki revoke --help`",
              file=sys.stderr)
        return 2
    try:
        already = pki.revoked_already(args.identity, args.serial)
        if already:
            print(f"{args.identity or f'serial {args.serial}'} is already revoked (serial{'s' if len(already) > 1 else ''} "
                  f"{', '.join(already)}); nothing changed")
            return 0
        serials = pki.revoke(args.identity, args.serial)
    except KeyError as exc:
        print(f"{exc.args[0]}; `pki/index.json` lists every certificate issued", file=sys.stderr)
        return 2
    what = args.identity or f"serial {args.serial}"
    print(f"revoked {what}: serial{'s' if len(serials) > 1 else ''} {', '.join(serials)}")
    return 0


def cmd_up(args) -> int:
    """testbed up: start every node and wait until all are healthy."""
    import time
    started = time.monotonic()
    from nodes.weaken import WEAKNESSES, parse
    weaken = None
    if args.weaken:
        if args.weaken == "list":
            for name, what in WEAKNESSES.items():
                print(f"{name:18s} {what}")
            return 0
        try:
            weaken = parse(args.weaken)
        except ValueError as exc:
            print(f"testbed up: {exc}", file=sys.stderr)
            return 2
    network = _network(args)
    try:
        rows = network.up(weaken, confine=args.confine, links=args.links, isolated=args.isolated)
    except RuntimeError as exc:
        print(f"testbed up: {exc}", file=sys.stderr)
        return 2
    print(status_table(rows))
    print(f"{sum(r['healthy'] for r in rows)}/{len(rows)} nodes healthy in {time.monotonic() - started:.1f} s "
          f"(state in {network.state_dir}; {'each node confined to its own secrets' if network.confined() else 'not confined'}"
          f"{'; isolated in network namespaces' if network.isolated() else ''}"
          f"{'; links relayed' if network.relayed() else ''})")
    _warn_weakened(network)
    return 0


def _warn_weakened(network) -> None:
    weakened = network.weakened()
    if weakened:
        print(f"WARNING: WEAKENED ON PURPOSE (training mode): {', '.join(weakened)} — never use this network for "
              "anything but training; `testbed down` and `testbed up` restore every rule")


def cmd_status(args) -> int:
    """testbed status: one line per node, or JSON."""
    if not args.timeout > 0:
        raise Refusal(f"--timeout {args.timeout:g}: give the seconds each try may take, more than 0 (e.g. --timeout 5)")
    network = _network(args)
    rows = network.status(args.timeout, STATUS_TRIES)  # (a node busy right after `up` answers a moment later)
    print(status_json(rows, network.weakened()) if args.json else status_table(rows))
    if not args.json:
        _warn_weakened(network)
        from testbed.check import alarms
        for line in alarms(network):
            print(f"ALARM {line}")
    return 0 if all(r["healthy"] for r in rows) else 1


def cmd_down(args) -> int:
    """testbed down: stop every node."""
    from testbed import bastion, netns
    bastion.stop(args.state_dir)
    stopped = _network(args).down()
    spaces, links = netns.leftovers()
    if spaces or links:
        if args.namespaces:
            removed = netns.destroy()
            print(f"removed {len(removed)} namespaces and bridges left by an isolated network")
        else:
            print(f"note: {len(spaces)} network namespaces of another isolated network are left (e.g. {(spaces or links)[0]});"
                  " `testbed --state-dir DIR down` of that network removes them, or `testbed down --namespaces`")
    print(f"stopped {len(stopped)} node{'s' if len(stopped) != 1 else ''}" + (f": {', '.join(stopped)}" if stopped else ""))
    return 0


def cmd_audit_verify(args) -> int:
    """testbed audit verify: every chain (nodes, search processes, bastion, archives) under its key, checkpoints, witness."""
    network = _network(args)
    if args.paths:
        targets = [(_chain_of_file(network, path), path) for path in map(Path, args.paths)]
    else:
        targets = [(c, network.audit_file(c)) for c in network.audit_chains()]
        # (a chain the witness knows stays in the list when its log is gone: that is a finding, not nothing to check)
        known = witness.read_heads(network.witness_folder()).chains
        targets = [(c, path) for c, path in targets if path.exists() or c in known]
    if not targets:
        print(f"no audit logs in {network.state_dir}; run `testbed up` first", file=sys.stderr)
        return 2
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


def cmd_population_generate(args) -> int:
    """testbed population generate: a deterministic population, summarised (and written with --out)."""
    import time
    from scenarios.population import Generator
    from testbed.load import place_name
    network = _network(args)
    _municipality(network, args.municipality)  # (its addresses begin with the topology's name of it)
    started = time.perf_counter()
    generator = Generator(args.municipality, place_name(network.topology, args.municipality), args.seed)
    records = list(generator.residents(args.residents))
    seconds = time.perf_counter() - started
    if args.out:
        write_population(Path(args.out), records)
    shares = generator.summary.shares()
    print(f"{len(records)} residents of {args.municipality} in {generator.summary.households} households "
          f"(seed {args.seed}, {seconds:.1f} s)" + (f", written to {args.out}" if args.out else ""))
    print("  " + ", ".join(f"{k} {v:.3f}" for k, v in shares.items()))
    return 0


def write_population(path: Path, records) -> None:
    """Residents as JSON Lines (.jsonl) or length-delimited protobuf (anything else)."""
    from google.protobuf import json_format
    with path.open("wb") as f:
        for record in records:
            if path.suffix == ".jsonl":
                f.write((json_format.MessageToJson(record, indent=None, ensure_ascii=False) + "\n").encode())
            else:
                data = record.SerializeToString()
                f.write(len(data).to_bytes(4, "big") + data)


def cmd_load(args) -> int:
    """testbed load: generate and load residents into running municipalities (移行)."""
    import asyncio
    from testbed.load import generate_population, load_records
    network = _network(args)
    for municipality in args.municipality or [m.code for m in network.topology.municipalities]:
        _municipality(network, municipality)
        records, _ = generate_population(network, municipality, args.residents, args.seed)
        try:
            result = asyncio.run(load_records(network, municipality, records))
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.ALREADY_EXISTS:
                raise
            raise Refusal(f"{municipality} already holds some of these residents ({exc.details()}): seed {args.seed} "
                          "was loaded before, or one of its generated 住民票コード is one of another seed's (rare); give "
                          "another --seed to add more (the batches before the refused one are loaded)") from None
        print(f"{municipality}: {result['records']} residents through kizon → cs → prefecture → national in "
              f"{result['seconds']:.1f} s ({result['records'] / result['seconds']:.0f}/s)")
    return 0


def cmd_migrate(args) -> int:
    """testbed migrate M --to SITE: the migration rehearsal; exit 1 when a check failed (after the rollback)."""
    from testbed.migration import layout, rehearsal, report
    if args.layout:
        print(layout.markdown())
        return 0
    unknown = [i for i in args.inject if i not in rehearsal.INJECTIONS]
    if not args.municipality or not args.to or unknown:
        what = f"unknown fault {', '.join(unknown)} (known: {', '.join(rehearsal.INJECTIONS)})" if unknown else \
            "give the municipality and --to SITE"
        print(f"testbed migrate: {what}; see `testbed migrate --help`", file=sys.stderr)
        return 2
    network = _network(args)
    # the cut over rewrites the topology: the targets take the place of the nodes they replace, keeping their site
    moved = [n.name for n in network.topology.nodes if n.municipality == args.municipality and n.site == args.to]
    if moved and args.to not in network.topology.sites(args.municipality):
        print(f"{args.municipality} has already moved to {args.to}: {' and '.join(moved)} serve it (the topology in use "
              "says so since the cut over); nothing to do")
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("asyncssh").setLevel(logging.WARNING)
    try:
        run = rehearsal.Rehearsal(network, args.municipality, args.to, tuple(args.inject)).run()
    except rehearsal.StepFailed as exc:
        print(f"testbed migrate: {exc}", file=sys.stderr)
        return 2
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


def cmd_bastion(args) -> int:
    """testbed bastion start [--port P]|stop|add-vendor NAME [--public-key FILE]: the SSH maintenance bastion."""
    from testbed import bastion
    paths = bastion.Paths(args.state_dir)
    if args.action == "add-vendor":
        if not args.name:
            print("testbed bastion add-vendor: give the vendor's name (e.g. vendor-a)", file=sys.stderr)
            return 2
        try:
            key = bastion.add_vendor(paths, args.name, args.public_key)
        except ValueError as exc:
            print(f"testbed bastion add-vendor: {exc}", file=sys.stderr)
            return 2
        print(f"vendor {args.name}: its own key {args.public_key} authorized at the bastion (as {key})" if args.public_key
              else f"vendor {args.name}: key {key} (keep it with the vendor); authorized at the bastion")
        return 0
    if args.public_key:
        print("testbed bastion: --public-key goes with add-vendor NAME", file=sys.stderr)
        return 2
    if args.action == "stop":
        print("bastion stopped" if bastion.stop(args.state_dir) else "the bastion was not running")
        return 0
    if bastion.running(paths) and args.port and paths.port.exists() and int(paths.port.read_text()) != args.port:
        print(f"testbed bastion start: it already runs on 127.0.0.1:{paths.port.read_text()}; "
              f"`testbed bastion stop` first to move it to {args.port}", file=sys.stderr)
        return 2
    try:
        port = bastion.start(args.state_dir, args.port)
    except ValueError as exc:
        print(f"testbed bastion start: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"testbed bastion start: {exc}", file=sys.stderr)
        return 1
    print(f"bastion on 127.0.0.1:{port}; e.g. ssh -i {paths.vendor_key('VENDOR')} -p {port} -o "
          f"UserKnownHostsFile={paths.known_hosts} -o IdentitiesOnly=yes VENDOR@127.0.0.1 status")
    return 0


def cmd_ssh(args) -> int:
    """testbed ssh VENDOR COMMAND...: run an allowed command at the bastion with the vendor's key."""
    import asyncio
    from testbed import bastion
    paths = bastion.Paths(args.state_dir)
    if not bastion.running(paths):
        print("testbed ssh: the bastion is not running; run `testbed bastion start`", file=sys.stderr)
        return 2
    if not paths.vendor_key(args.vendor).exists():
        print(f"testbed ssh: no key for vendor {args.vendor}; run `testbed bastion add-vendor {args.vendor}`",
              file=sys.stderr)
        return 2
    import shlex
    try:
        return asyncio.run(bastion.run_command(args.state_dir, args.vendor, shlex.join(args.words)))
    except (OSError, Exception) as exc:  # asyncssh's refusals (PermissionDenied, ...) and connection errors
        print(f"testbed ssh: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


def cmd_health(args) -> int:
    """testbed health NODE: exit 0 when the node answers SERVING to the gRPC health check (as its domain's monitor)."""
    import asyncio
    from testbed.client import check_health, monitor_cert
    network = _network(args)
    try:
        node = network.topology.node(args.node)
    except KeyError:
        print(f"testbed health: no node {args.node!r} in the topology", file=sys.stderr)
        return 2
    healthy = asyncio.run(check_health(node, monitor_cert(network.pki, node.kind), timeout=args.timeout))
    print(f"{node.name}: {'SERVING' if healthy else 'not serving'}")
    return 0 if healthy else 1


def cmd_metrics(args) -> int:
    """testbed metrics NODE: a node's Prometheus metrics (NODE.search: a CS's search process's), read as its
    domain's monitor."""
    from testbed.client import fetch_metrics, monitor_cert
    network = _network(args)
    ends = dict(end for n in network.topology.all_nodes for end in n.ends())  # (NODE.search: a CS's search process)
    node = ends.get(args.node)
    if node is None:
        print(f"testbed metrics: no node {args.node!r} (nodes: {', '.join(ends)})", file=sys.stderr)
        return 2
    try:
        status, body = fetch_metrics(node, monitor_cert(network.pki, node.kind))
    except OSError as exc:
        print(f"testbed metrics: {node.name} does not answer at {node.metrics_address} ({exc}); run `testbed up`",
              file=sys.stderr)
        return 2
    if status != 200:
        print(f"testbed metrics: {node.name} answered {status}: {body.strip()}", file=sys.stderr)
        return 1
    lines = [line for line in body.splitlines() if line and not line.startswith("#")]
    print("\n".join(lines if not args.raw else body.splitlines()))
    return 0


def cmd_link(args) -> int:
    """testbed link list | cut A B | restore A B | set A B --profile P: the links of a relayed network."""
    from testbed import links
    network = _network(args)
    paths = links.Paths(network.state_dir)
    if not network.relayed():
        print("testbed link: this network's links are not relayed; run `testbed down` and `testbed up --links`",
              file=sys.stderr)
        return 2
    if args.action == "list":
        for link in links.describe(paths):
            state = "CUT" if link.get("cut") else link.get("profile", "lan")
            values = link["profile_values"]
            print(f"{link['link']:42s} {link['segment']:13s} {state:10s} rtt {values['rtt_ms']:g} ms ±{values['jitter_ms']:g}"
                  f"  loss {values['loss']:g}  rate {values['rate'] or '-'}  via {link['listen']}")
        return 0
    if not args.a or not args.b or (args.action == "set" and not args.profile):
        print(f"testbed link {args.action}: give two nodes" + (" and --profile P" if args.action == "set" else ""),
              file=sys.stderr)
        return 2
    what = {"cut": {"cut": True}, "restore": {"cut": False}, "set": {"profile": args.profile}}[args.action]
    try:
        changed = links.change(paths, args.a, args.b, **what)
    except KeyError as exc:
        print(f"testbed link: {exc.args[0]}", file=sys.stderr)
        return 2
    import time
    time.sleep(links.POLL_SECONDS * 3)  # the relay has taken the change when the command returns
    print(f"{args.action}: {', '.join(changed)}" + (f" → {args.profile}" if args.action == "set" else ""))
    return 0


def cmd_compose(args) -> int:
    """testbed compose render [--check]: docker-compose.yml and its companions from the topology."""
    from testbed import compose
    topology = Topology.load(args.topology) if args.topology else Topology.load()
    root = Path(args.root)
    if args.check:
        stale = compose.stale(root, topology)
        if stale:
            print(f"testbed compose: stale: {', '.join(map(str, stale))}; run `testbed compose render`", file=sys.stderr)
            return 1
        print("docker-compose.yml and its companions are current")
        return 0
    for path in compose.write(root, topology):
        print(f"written {path}")
    return 0


def cmd_consistency(args) -> int:
    """testbed consistency MUNICIPALITY: compare kizon, cs, prefecture and national; list every difference."""
    from protos import common_pb2
    from testbed.client import Counter
    network = _network(args)
    _municipality(network, args.municipality)
    with Counter(network, args.municipality, args.terminal, args.operator) as counter:
        report = counter(counter.kizon.CheckConsistency, common_pb2.ConsistencyRequest(municipality_code=args.municipality),
                         timeout=600)
    if args.json:
        print(json.dumps({
            "municipality": report.municipality_code,
            "compared": {"kizon": report.records_kizon, "cs": report.records_cs, "prefecture": report.records_prefecture,
                         "national": report.records_national},
            "differences": [{"resident_code": d.resident_code, "node": d.node, "items": list(d.items)}
                            for d in report.differences],
            "seconds": round(report.seconds, 3),
        }, ensure_ascii=False, indent=2))
        return 1 if report.differences else 0
    print(f"整合性確認 {report.municipality_code}: kizon {report.records_kizon}, cs {report.records_cs}, prefecture "
          f"{report.records_prefecture}, national {report.records_national} records; {len(report.differences)} differences "
          f"({report.seconds:.2f} s)")
    for diff in report.differences:
        print(f"  {diff.resident_code}  {diff.node:10s}  {', '.join(diff.items)}")
    return 1 if report.differences else 0


def cmd_check(args) -> int:
    """testbed check: the network-wide invariants (DESIGN §13) in one pass; exit 1 if any is broken."""
    from testbed.check import check_network, report_lines
    network = _network(args)
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
    from testbed.probe import report_table, run_probe
    network = _network(args)
    down = [r["name"] for r in network.status() if not r["healthy"]]
    if down:
        print(f"testbed probe: {', '.join(down)} not running; run `testbed up` first", file=sys.stderr)
        return 2
    cases, seconds = run_probe(network, args.json and Path(args.json), args.html and Path(args.html))
    print(report_table(cases))
    print(f"({seconds:.1f} s" + (f"; JSON {args.json}" if args.json else "") + (f"; HTML {args.html}" if args.html else "")
          + ")")
    return 1 if any(c.verdict == "FAIL" for c in cases) else 0


def cmd_bench(args) -> int:
    """testbed bench: the DESIGN §9 figures on a fresh network, with the echo yardstick."""
    from testbed.bench import report, run_bench, write_json
    topology = None
    if args.topology:
        if not Path(args.topology).is_file():
            raise Refusal(f"no topology file {args.topology}; make one with `testbed topology generate --municipalities N "
                          "--out FILE`")
        topology = Topology.load(args.topology)
        if args.migrate and not topology.targets:
            raise Refusal(f"--migrate needs a topology with a 移行 target; {args.topology} names none")
    figures = run_bench(args.residents, args.flows, seed=args.seed, migrate=args.migrate, topology=topology)
    print(report(figures))
    if args.json:
        write_json(figures, args.json)
        print(f"written to {args.json}")
    if figures["flow_errors"]:  # the mix asks only for valid operations: an error is a defect
        counts = ", ".join(f"{code} ×{seen['count']}" for code, seen in figures["flow_errors_by_code"].items())
        print(f"testbed bench: {figures['flow_errors']} flows failed ({counts})",
              file=sys.stderr)
        return 1
    return 0


def cmd_topology_generate(args) -> int:
    """testbed topology generate: a topology of N municipalities of 神奈川県, for the scale curve."""
    from testbed.scale import generate
    try:
        topology = generate(args.municipalities)
    except ValueError as exc:
        raise Refusal(str(exc)) from None
    try:
        path = topology.save(args.out)
    except OSError as exc:
        raise Refusal(f"cannot write {args.out}: {exc.strerror}; give a path in a folder you can write to") from None
    count = len(topology.municipalities)
    print(f"{path}: {count} municipalit{'y' if count == 1 else 'ies'} ({', '.join(m.name for m in topology.municipalities)}), "
          f"{len(topology.nodes)} nodes; measure it with `testbed bench --topology {path}`")
    return 0


def cmd_run(args) -> int:
    """testbed run SCENARIO: the main job, through the emulated network, with a report."""
    from testbed.run import run_scenario
    from testbed.faults import PlanError, parse, require_links
    for name, value, least, example in (("--minutes", args.minutes, 0, "--minutes 1"), ("--speed", args.speed, 0, "--speed 600"),
                                        ("--residents", args.residents, 1, "--residents 1000"),
                                        ("--concurrency", args.concurrency, 1, "--concurrency 16")):
        if value is not None and not (value > 0 if least == 0 else value >= least):  # (before anything is started)
            raise Refusal(f"{name} {value:g}: give {'more than 0' if least == 0 else f'at least {least}'} (e.g. {example})")
    if args.keep_up and args.down:
        raise Refusal("--keep-up and --down ask for opposite things; give one of them")
    network = _network(args)
    try:
        faults = parse(args.faults, network.topology) if args.faults else None
        require_links(faults or [], network)
    except PlanError as exc:
        raise Refusal(str(exc)) from None
    try:
        return run_scenario(network, args.scenario, args.residents, args.seed, args.speed, args.minutes,
                            args.concurrency, Path(args.report_dir), args.keep_up, args.migrate, args.wall_clock, faults,
                            down=args.down)
    except ValueError as exc:
        print(f"testbed run: {exc}", file=sys.stderr)
        return 2


def cmd_trace(args) -> int:
    """testbed trace SCENARIO: generate a workload trace (SimPy) without running it."""
    import time
    from scenarios.workload import generate, write_trace
    sizes = {m: args.residents for m in (args.municipality or ["142140"])}
    started = time.perf_counter()
    header, events, counter = generate(args.scenario, sizes, args.seed)
    seconds = time.perf_counter() - started
    write_trace(args.out, header, events, counter)
    print(f"{len(events):,} events of {args.scenario} for {sizes} in {seconds:.1f} s → {args.out}")
    for code, stats in counter.items():
        print(f"  counter {code}: {stats['served']:,} served, mean wait {stats['mean_wait_min']:.1f} min, "
              f"p95 {stats['p95_wait_min']:.1f} min, longest queue {stats['max_queue']}")
    return 0


def cmd_batch(args) -> int:
    """testbed batch NAME: run a batch job on every node that has it (as the nightly window would)."""
    from protos import ops_pb2, ops_pb2_grpc
    from testbed.client import channel, console_cert
    network = _network(args)
    for node in network.topology.nodes:
        with channel(node, console_cert(network.pki, node.kind)) as ch:
            result = ops_pb2_grpc.OperationsStub(ch).RunBatch(ops_pb2.BatchRequest(name=args.name), timeout=120)
        if result.detail == "done":
            print(f"{node.name:18s} {args.name}: {result.affected} records")
    return 0


def cmd_audit_follow(args) -> int:
    """testbed audit follow KEY: every audit entry, on every node, about one 住民票コード (or other key)."""
    import re
    if not re.fullmatch(r"[0-9]{11}|[0-9]{12}|[0-9]{15}|[0-9A-F]{24}", args.key):
        raise Refusal(f"{args.key!r} is not a key the audit follows: give a 住民票コード (11 digits), a 個人番号 "
                      "(12), a 宛名番号 (15) or a 符号 (24 hexadecimal characters)")
    network = _network(args)
    paths = [network.audit_file(c) for c in network.audit_chains() if network.audit_file(c).exists()]
    entries = audit.follow(paths, args.key)
    for e in entries:
        who = e["caller"].removeprefix("spiffe://testbed.jp/")
        operator = f" operator {e['operator']} at {e['terminal']}" if e["operator"] else ""
        print(f"{e['time']}  {e['node']:18s} {e['method'].rsplit('/', 1)[-1]:28s} {e['status']:18s} from {who}{operator}")
    print(f"{len(entries)} entries on {len({e['node'] for e in entries})} nodes")
    return 0 if entries else 1


def cmd_tour(args) -> int:
    """testbed tour: a scripted walk through every node, on a network of its own (the user's is left alone)."""
    import tempfile
    from testbed.demo import run_demo
    from testbed.topology import Topology as Plan
    with tempfile.TemporaryDirectory(prefix="testbed-tour-") as folder:
        topology = Plan.load(args.topology).with_free_ports()  # its own ports too: the user's network may be up
        print(f"== the tour runs on a network of its own in {folder} (yours, if any, is not touched)")
        return run_demo(Network(Path(folder), topology))


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = Parser(prog="testbed", description="Simulated municipal network testbed (住基ネット over gRPC with mutual TLS).")
    parser.add_argument("--state-dir", type=Path, default=default_state_dir(),
                        help="working folder for PKI, data, logs (default: $TESTBED_HOME or ./.testbed)")
    parser.add_argument("--topology", help="topology file (default: the one in use, else kanagawa)")
    sub = parser.add_subparsers(dest="command", required=True)

    pki = sub.add_parser("pki", help="the testbed PKI").add_subparsers(dest="pki_command", required=True)
    p = pki.add_parser("init", help="create root CA, issuing CAs, CRLs, node/terminal certificates and the bad kit")
    p.add_argument("--pki-dir", type=Path, help="default: STATE_DIR/pki")
    p.add_argument("--force", action="store_true", help="replace an existing PKI")
    p.add_argument("--if-missing", action="store_true", help="do nothing (exit 0) when a PKI exists (compose's pki service)")
    p.add_argument("--localhost-san", action="store_true",
                   help="also name 'localhost' in every server certificate (off: each server has a name of its own)")
    p.set_defaults(func=cmd_pki_init)
    p = pki.add_parser("revoke", help="revoke every certificate of an identity (URI SAN), or one by serial")
    p.add_argument("identity", nargs="?", help="e.g. spiffe://testbed.jp/lg/142140/terminal/T0001")
    p.add_argument("--serial", type=int, help="revoke only the certificate with this serial (see pki/index.json)")
    p.add_argument("--pki-dir", type=Path)
    p.set_defaults(func=cmd_pki_revoke)
    p = pki.add_parser("reissue", help="issue a fresh certificate and key for one identity (URI SAN); the old one is revoked")
    p.add_argument("identity", help="e.g. spiffe://testbed.jp/lg/142140/terminal/T0001")
    p.add_argument("--pki-dir", type=Path)
    p.set_defaults(func=cmd_pki_reissue)
    p = pki.add_parser("protect", help=f"encrypt the CA keys with the passphrase in ${PASSPHRASE_ENV} (set it for every "
                       "later pki command and probe)")
    p.add_argument("--pki-dir", type=Path)
    p.set_defaults(func=cmd_pki_protect)

    p = sub.add_parser("up", help="start every node as its own process")
    p.add_argument("--weaken", help="training mode: switch named weaknesses on (NAME[,NAME]); `--weaken list` lists them")
    p.add_argument("--isolated", action=argparse.BooleanOptionalAction, default=None,
                   help="each node in its own network namespace on bridges per segment (root; links relayed)")
    p.add_argument("--links", action=argparse.BooleanOptionalAction, default=None,
                   help="relay every node-to-node link with its segment's profile (latency, jitter, loss, rate) so "
                        "that `testbed link` can cut it or change it (default: direct)")
    p.add_argument("--confine", action=argparse.BooleanOptionalAction, default=None,
                   help="each node in a mount namespace that shows it only its own secrets (default: on where the "
                        "machine allows it, Linux as root)")
    p.set_defaults(func=cmd_up)
    p = sub.add_parser("status", help="health of every node")
    p.add_argument("--json", action="store_true", help="a JSON list of name, kind, municipality, address, identity, healthy "
                   "(and reason, when not)")
    p.add_argument("--timeout", type=float, default=1.5, metavar="SECONDS",
                   help=f"each try of a node's health check (a failed one is tried {STATUS_TRIES} times; default 1.5)")
    p.set_defaults(func=cmd_status)
    p = sub.add_parser("down", help="stop every node (and remove the namespaces of an isolated network)")
    p.add_argument("--namespaces", action="store_true", help="also remove every namespace, bridge and veth a testbed made "
                   "(found by name), whichever network left them")
    p.set_defaults(func=cmd_down)

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

    pop = sub.add_parser("population", help="generated populations").add_subparsers(dest="population_command", required=True)
    p = pop.add_parser("generate", help="generate a deterministic population and print its mix")
    p.add_argument("--municipality", default="142140")
    p.add_argument("--residents", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", help="write it: .jsonl for JSON Lines, else length-delimited protobuf")
    p.set_defaults(func=cmd_population_generate)

    p = sub.add_parser("load", help="generate and load residents into the running network (移行)")
    p.add_argument("--residents", type=int, default=10_000, help="per municipality")
    p.add_argument("--municipality", action="append", help="default: every municipality")
    p.add_argument("--seed", type=int, default=1)
    p.set_defaults(func=cmd_load)

    p = sub.add_parser("migrate", help="移行 rehearsal: freeze, export, SFTP, load, verify, cut over, decommission "
                       "(rolls back on a failed check)")
    p.add_argument("municipality", nargs="?", help="e.g. 142140")
    p.add_argument("--to", help="the target site the topology names (e.g. gcloud)")
    p.add_argument("--inject", action="append", default=[], metavar="FAULT",
                   help="make a fault happen in the run: corrupt-file, drop-record, interrupt-transfer, slow-link")
    p.add_argument("--json", help="write the report as JSON to this file")
    p.add_argument("--report-dir", default="reports", help="where the HTML report goes (default: reports)")
    p.add_argument("--layout", action="store_true", help="print the migration layout (docs/migration-layout.md) and exit")
    p.set_defaults(func=cmd_migrate)
    p = sub.add_parser("compose", help="render docker-compose.yml, deploy/prometheus.yml and the compose topology")
    p.add_argument("action", choices=["render"])
    p.add_argument("--check", action="store_true", help="only say whether the committed files are current (exit 1 if not)")
    p.add_argument("--root", default=".", help="the repository root to write into (default: here)")
    p.set_defaults(func=cmd_compose)
    p = sub.add_parser("link", help="the links of a relayed network: list, cut A B, restore A B, set A B --profile P")
    p.add_argument("action", choices=["list", "cut", "restore", "set"])
    p.add_argument("a", nargs="?")
    p.add_argument("b", nargs="?")
    p.add_argument("--profile", help="lan, lgwan, jukinet, gcloud, wan-lossy")
    p.set_defaults(func=cmd_link)
    p = sub.add_parser("health", help="one node's gRPC health check, as its domain's monitor (exit 0 when SERVING)")
    p.add_argument("node")
    p.add_argument("--timeout", type=float, default=3.0)
    p.set_defaults(func=cmd_health)
    p = sub.add_parser("metrics", help="a node's Prometheus metrics (HTTPS, as its domain's monitor)")
    p.add_argument("node")
    p.add_argument("--raw", action="store_true", help="the exposition as served (with HELP and TYPE lines)")
    p.set_defaults(func=cmd_metrics)
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
    p = sub.add_parser("consistency", help="整合性確認: compare kizon, cs, prefecture and national; exit 1 on any difference")
    p.add_argument("municipality")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
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
    p.set_defaults(func=cmd_probe)

    p = sub.add_parser("bench", help="measure the DESIGN §9 figures on a fresh network (its own ports and folder)")
    p.add_argument("--residents", type=int, default=300_000,
                   help="residents loaded (per municipality with --topology)")
    p.add_argument("--flows", type=int, default=5_000, help="full-flow 異動 at the counter (shared among the municipalities)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", help="also write the figures to this file")
    p.add_argument("--migrate", action="store_true",
                   help="then move 伊勢原市 to its government-cloud target and time the migration (freeze to re-open)")
    p.set_defaults(func=cmd_bench)

    top = sub.add_parser("topology", help="topologies").add_subparsers(dest="topology_command", required=True)
    p = top.add_parser("generate", help="a topology of N municipalities of 神奈川県 and the national systems (scale curve)")
    p.add_argument("--municipalities", type=int, required=True, help="how many (1 to 12)")
    p.add_argument("--out", required=True, help="the topology file to write")
    p.set_defaults(func=cmd_topology_generate)

    from scenarios.workload import SCENARIOS
    p = sub.add_parser("run", help="the main job: a scenario through the network, verified, with an HTML report")
    p.add_argument("scenario", choices=sorted(SCENARIOS))
    p.add_argument("--residents", type=int, default=10_000, help="per municipality, loaded when its register is empty")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--speed", type=float, help="time compression (default: fit the scenario into --minutes)")
    p.add_argument("--minutes", type=float, default=2.0, help="wall time to replay the scenario in, without --speed")
    p.add_argument("--concurrency", type=int, default=16, help="calls in flight at most")
    p.add_argument("--report-dir", default="reports")
    p.add_argument("--keep-up", action="store_true", help="leave a network the run started running afterwards")
    p.add_argument("--down", action="store_true",
                   help="stop the network afterwards even when it was running before the run (by default left running)")
    p.add_argument("--faults", metavar="PLAN",
                   help="faults during the replay: a named plan (prefecture-outage, kizon-crash-loop, national-maintenance, "
                        "jukinet-partition), a YAML file, or 'kill NODE at 30%% for 5s; stop NODE at 50%% for 3s; "
                        "cut A B at 60%% for 4s'")
    p.add_argument("--wall-clock", action="store_true",
                   help="judge the time-of-day rules (kiosk hours) by the wall clock, not the scenario's (production-like)")
    p.add_argument("--migrate", nargs="?", const="auto", metavar="M:SITE",
                   help="cutover-weekend: run the migration rehearsal in the freeze window (default: the first target "
                        "the topology names) and replay Monday against the new site")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("trace", help="generate a scenario's workload trace (SimPy) into a file")
    p.add_argument("scenario", choices=sorted(SCENARIOS))
    p.add_argument("--residents", type=int, default=100_000)
    p.add_argument("--municipality", action="append")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", default="trace.jsonl")
    p.set_defaults(func=cmd_trace)

    p = sub.add_parser("batch", help="run a batch job now on every node that has it")
    p.add_argument("name", choices=["purge"], help="purge: 送付先情報 past its retention, 転出証明書情報 past its deadline")
    p.set_defaults(func=cmd_batch)

    sub.add_parser("tour", help="a scripted walk through every node: up, counter operations, probes, checks, down"
                   ).set_defaults(func=cmd_tour)
    return parser


def cmd_pki_reissue(args) -> int:
    """testbed pki reissue IDENTITY: a fresh certificate (and key) for one identity, the old one revoked."""
    pki = PKI(args.pki_dir or args.state_dir / "pki")
    try:
        issued = pki.reissue(args.identity)
    except KeyError as exc:
        raise Refusal(f"{exc.args[0]}; `pki/index.json` lists every identity issued") from None
    for entry in issued:
        print(f"reissued {entry['identity']} ({entry['role']}): serial {entry['serial']} in {entry['cert']}")
    print("the old certificate is revoked; a running node takes the new one when restarted (`testbed down`, `testbed up`)")
    return 0


def cmd_pki_protect(args) -> int:
    """testbed pki protect: encrypt the CA keys with the passphrase of TESTBED_CA_PASSPHRASE."""
    pki = PKI(args.pki_dir or args.state_dir / "pki")
    done = pki.protect()
    print(f"CA keys protected: {', '.join(done)}" if done else "every CA key was already protected")
    return 0


def _everywhere(parser: argparse.ArgumentParser) -> None:
    """--state-dir and --topology are taken before or after the subcommand (after it, they win)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                if "--state-dir" not in sub._option_string_actions:
                    sub.add_argument("--state-dir", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
                if "--topology" not in sub._option_string_actions:
                    sub.add_argument("--topology", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
                _everywhere(sub)


def main(argv: list[str] | None = None) -> int:
    """Run the testbed command line."""
    parser = build_parser()
    _everywhere(parser)
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
        sys.stdout.flush()  # (a reader that went away, as `| head` does, is found here, not at exit)
        return code
    except BrokenPipeError:  # the reader of our output went away: stop quietly, as other Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # (nothing more to flush at exit)
        return 128 + signal.SIGPIPE
    except KeyboardInterrupt:  # Ctrl-C in a command that has no clean stop of its own (`run` has)
        print(f"testbed {args.command}: interrupted", file=sys.stderr)
        return 128 + signal.SIGINT
    except Refusal as exc:
        print(f"testbed {args.command}: {exc}", file=sys.stderr)
        return 2
    except PassphraseError as exc:
        print(f"testbed {args.command}: {exc}", file=sys.stderr)
        return 2
    except NetworkError as exc:  # from any command that brings the network up (run, bench, tour, migrate ...)
        print(f"testbed {args.command}: {exc}", file=sys.stderr)
        return 2
    except grpc.RpcError as exc:  # a node refused or could not be reached: one line, never a traceback
        details = (exc.details() or "").splitlines()[0] if hasattr(exc, "details") else str(exc)
        hint = "; is the network up? (`testbed status`)" if exc.code() in (
            grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED) else ""
        print(f"testbed {args.command}: {exc.code().name}: {details}{hint}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 (a migration that cannot start, from run or bench too: one line)
        from testbed.migration.rehearsal import StepFailed  # (imported only then: it brings asyncssh)
        if not isinstance(exc, StepFailed):
            raise
        print(f"testbed {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
