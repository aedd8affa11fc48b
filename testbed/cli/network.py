"""The network's commands: pki, up, status, down, health, metrics, link, compose, topology."""
from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

from certs.identity import DOMAINS
from certs.pki import BAD_CASES, PASSPHRASE_ENV, PKI, write_private, write_public
from nodes import weaken
from testbed import compose, links, netns, scale
from testbed.check import alarms
from testbed.cli.common import STATUS_TIMEOUT, STATUS_TRIES, Refusal, open_network
from testbed.client import check_health, fetch_metrics, monitor_cert
from testbed.network import Network, status_json, status_table
from testbed.topology import Topology



def register(sub) -> None:
    """Add the network's commands to the subcommands of `testbed`."""
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
    p = pki.add_parser("issue", help="hand a node's operator what its system needs to take the node's place: its "
                       "server and client certificates and keys, the root it trusts and the CRL files (keys 0600)")
    p.add_argument("node", help="the node's name in the topology (mark it `external: true` there)")
    p.add_argument("--out", type=Path, required=True, help="a folder to write them to (created; not one with files)")
    p.set_defaults(func=cmd_pki_issue)
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
    add_base_port(p, "the network is started there, and later commands find it there")
    p.set_defaults(func=cmd_up)
    p = sub.add_parser("status", help="health of every node")
    p.add_argument("--json", action="store_true", help="a JSON list of name, kind, municipality, address, identity, healthy "
                   "(and reason, when not)")
    p.add_argument("--timeout", type=float, default=STATUS_TIMEOUT, metavar="SECONDS",
                   help=f"each try of a node's health check (a failed one is tried {STATUS_TRIES} times; default {STATUS_TIMEOUT})")
    p.set_defaults(func=cmd_status)
    p = sub.add_parser("down", help="stop every node (and remove the namespaces of an isolated network)")
    p.add_argument("--namespaces", action="store_true", help="also remove every namespace, bridge and veth a testbed made "
                   "(found by name), whichever network left them")
    p.set_defaults(func=cmd_down)

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

    top = sub.add_parser("topology", help="topologies").add_subparsers(dest="topology_command", required=True)
    p = top.add_parser("generate", help="a topology of N municipalities of 神奈川県 and the national systems (scale curve)")
    p.add_argument("--municipalities", type=int, required=True, help="how many (1 to 16)")
    p.add_argument("--out", required=True, help="the topology file to write")
    add_base_port(p, "(default: gRPC ports from 20101, metrics +1000, a CS's search +2000 and +3000)")
    p.set_defaults(func=cmd_topology_generate)


BASE_PORT_HELP = ("every node and target listens on consecutive ports from N: in the topology's order, each node's "
                  "gRPC and metrics ports, and a CS's search and search-metrics ports; refused when they would reach "
                  "below 1024, above 65535 or into the kernel's ephemeral range")


def add_base_port(parser, more: str = "") -> None:
    """The --base-port N option of up, run, bench and topology generate."""
    parser.add_argument("--base-port", type=int, metavar="N", help=BASE_PORT_HELP + (f"; {more}" if more else ""))


def at_base_port(args, network: Network) -> Network:
    """The network of the command line with its topology moved to consecutive ports from --base-port (as it is
    without the option). The moved topology is the one the network is started with and saved in its state folder
    (so that every later command finds the nodes there). A network of that state folder that runs on other ports
    is refused in one line: its nodes cannot be moved while they run."""
    if args.base_port is None:
        return network
    state_dir, logical = network.state_dir, network.topology
    leftover = network.isolated() and args.topology is None and (state_dir / "topology.yaml").exists()
    if leftover:  # (an isolated network's topology in use has its namespaces' addresses: the ports are the same)
        logical = Topology.load(state_dir / "topology.yaml")
    try:
        moved = logical.at_base_port(args.base_port)
    except ValueError as exc:
        raise Refusal(f"--base-port {args.base_port}: {exc}") from None
    running = Network.open(state_dir)  # (what runs there, whatever --topology names)
    live = [n for n in running.topology.all_nodes if running.pid(n.name)]
    if live:
        asked = {n.name: n.ports() for n in moved.all_nodes}
        have = {n.name: n.ports() for n in running.topology.all_nodes}
        if asked == have:
            return running  # (up again on the ports it runs on: as it is)
        other = next((n for n in live if asked.get(n.name) != n.ports()), live[0])
        where = f"not port {asked[other.name][0]}" if other.name in asked else "a node this topology does not name"
        raise Refusal(f"--base-port {args.base_port}: the network of {state_dir} runs on other ports ({other.name} at "
                      f"{other.address}, {where}); `testbed down` first, or leave out --base-port")
    if leftover:  # what an isolated network's crash left is undone by `up` from topology.yaml: the moved one
        moved.save(state_dir / "topology.yaml")
    return Network(state_dir, moved)


def _pki(args) -> PKI:
    """The PKI a pki command works on: --pki-dir, else STATE_DIR/pki."""
    return PKI(args.pki_dir or args.state_dir / "pki")


def cmd_pki_init(args) -> int:
    """testbed pki init: create the PKI for a topology."""
    pki = _pki(args)
    if args.if_missing and pki.exists():
        print(f"a PKI exists in {pki.dir}: kept")
        return 0
    try:
        pki.init(Topology.load(args.topology) if args.topology else open_network(args).topology, force=args.force,
                 localhost_san=args.localhost_san)
    except FileExistsError as exc:
        raise Refusal(str(exc)) from None
    print(f"PKI written to {pki.dir}: root CA, issuing CAs {', '.join(sorted(p.name for p in (pki.dir / 'ca').iterdir()))}, "
          f"{len(pki.index())} certificates")
    print("bad-certificate kit:")
    for case, what in BAD_CASES.items():
        print(f"  {pki.bad_files(case)[0].parent}  {what}")
    return 0


def cmd_pki_revoke(args) -> int:
    """testbed pki revoke IDENTITY | --serial N: put certificates on their CA's CRL."""
    pki = _pki(args)
    if (args.identity is None) == (args.serial is None):
        raise Refusal("give an identity (URI SAN) or --serial N, not both; see `testbed pki revoke --help`",
                      command="pki revoke")
    try:
        already = pki.revoked_already(args.identity, args.serial)
        if already:
            print(f"{args.identity or f'serial {args.serial}'} is already revoked (serial{'s' if len(already) > 1 else ''} "
                  f"{', '.join(already)}); nothing changed")
            return 0
        serials = pki.revoke(args.identity, args.serial)
    except KeyError as exc:
        raise Refusal(f"{exc.args[0]}; `pki/index.json` lists every certificate issued") from None
    what = args.identity or f"serial {args.serial}"
    print(f"revoked {what}: serial{'s' if len(serials) > 1 else ''} {', '.join(serials)}")
    return 0


def cmd_pki_reissue(args) -> int:
    """testbed pki reissue IDENTITY: a fresh certificate (and key) for one identity, the old one revoked."""
    pki = _pki(args)
    try:
        issued = pki.reissue(args.identity)
    except KeyError as exc:
        raise Refusal(f"{exc.args[0]}; `pki/index.json` lists every identity issued") from None
    for entry in issued:
        print(f"reissued {entry['identity']} ({entry['role']}): serial {entry['serial']} in {entry['cert']}")
    print("the old certificate is revoked; a running node takes the new one when restarted (`testbed down`, `testbed up`)")
    return 0


def cmd_pki_issue(args) -> int:
    """testbed pki issue NODE --out DIR: the node's certificates and keys, the trust root and the CRLs, for the
    operator of a system that takes the node's place (an external node)."""
    network = open_network(args)
    try:
        node = network.topology.node(args.node)
    except KeyError:
        raise Refusal(f"no node {args.node!r} in the {network.topology.name} topology: `testbed status` lists them") from None
    pki = network.pki
    files = {f"{role}.pem": pki.node_files(node.name, role)[0] for role in ("server", "client")}
    keys = {f"{role}.key": pki.node_files(node.name, role)[1] for role in ("server", "client")}
    files["root.pem"] = pki.trust_bundle
    files.update({f"crl-{domain}.pem": pki.crl_path(domain) for domain in DOMAINS})
    missing = [str(p) for p in {**files, **keys}.values() if not p.exists()]
    if missing:
        raise Refusal(f"{missing[0]} is not there: `testbed pki init` (or `testbed up`) issues the node's certificates first")
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        raise Refusal(f"{out} holds files already: give an empty or new folder (keys are never written over)")
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    for name, source in files.items():
        write_public(out / name, source.read_bytes())
    for name, source in keys.items():
        write_private(out / name, source.read_bytes())
    print(f"{node.name} ({node.identity}): server and client certificates, keys (0600), root and CRLs in {out}; "
          f"it listens at {node.address}" + ("" if node.external else
                                              " (mark it `external: true` in the topology so that `up` leaves it to you)"))
    return 0


def cmd_pki_protect(args) -> int:
    """testbed pki protect: encrypt the CA keys with the passphrase of TESTBED_CA_PASSPHRASE."""
    done = _pki(args).protect()
    print(f"CA keys protected: {', '.join(done)}" if done else "every CA key was already protected")
    return 0


def cmd_up(args) -> int:
    """testbed up: start every node and wait until all are healthy."""
    started = time.monotonic()
    weaknesses = None
    if args.weaken:
        if args.weaken == "list":
            for name, what in weaken.WEAKNESSES.items():
                print(f"{name:18s} {what}")
            return 0
        try:
            weaknesses = weaken.parse(args.weaken)
        except ValueError as exc:
            raise Refusal(str(exc)) from None
    network = at_base_port(args, open_network(args))
    try:
        rows = network.up(weaknesses, confine=args.confine, links=args.links, isolated=args.isolated)
    except RuntimeError as exc:
        raise Refusal(str(exc)) from None
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
    network = open_network(args)
    rows = network.status(args.timeout, STATUS_TRIES)  # (a node busy right after `up` answers a moment later)
    print(status_json(rows, network.weakened()) if args.json else status_table(rows))
    if not args.json:
        _warn_weakened(network)
        for line in alarms(network):
            print(f"ALARM {line}")
    return 0 if all(r["healthy"] for r in rows) else 1


def cmd_down(args) -> int:
    """testbed down: stop every node."""
    from testbed import bastion  # (here, not at the top: it brings asyncssh, which `testbed --help` need not load)
    bastion.stop(args.state_dir)
    stopped = open_network(args).down()
    spaces, veths = netns.leftovers()
    if spaces or veths:
        if args.namespaces:
            removed = netns.destroy()
            print(f"removed {len(removed)} namespaces and bridges left by an isolated network")
        else:
            print(f"note: {len(spaces)} network namespaces of another isolated network are left (e.g. {(spaces or veths)[0]});"
                  " `testbed --state-dir DIR down` of that network removes them, or `testbed down --namespaces`")
    print(f"stopped {len(stopped)} node{'s' if len(stopped) != 1 else ''}" + (f": {', '.join(stopped)}" if stopped else ""))
    return 0


def cmd_health(args) -> int:
    """testbed health NODE: exit 0 when the node answers SERVING to the gRPC health check (as its domain's monitor)."""
    network = open_network(args)
    try:
        node = network.topology.node(args.node)
    except KeyError:
        raise Refusal(f"no node {args.node!r} in the topology") from None
    healthy = asyncio.run(check_health(node, monitor_cert(network.pki, node.kind), timeout=args.timeout))
    print(f"{node.name}: {'SERVING' if healthy else 'not serving'}")
    return 0 if healthy else 1


def cmd_metrics(args) -> int:
    """testbed metrics NODE: a node's Prometheus metrics (NODE.search: a CS's search process's), read as its
    domain's monitor."""
    network = open_network(args)
    ends = dict(end for n in network.topology.all_nodes for end in n.ends())  # (NODE.search: a CS's search process)
    node = ends.get(args.node)
    if node is None:
        raise Refusal(f"no node {args.node!r} (nodes: {', '.join(ends)})")
    try:
        status, body = fetch_metrics(node, monitor_cert(network.pki, node.kind))
    except OSError as exc:
        raise Refusal(f"{node.name} does not answer at {node.metrics_address} ({exc}); run `testbed up`") from None
    if status != 200:
        raise Refusal(f"{node.name} answered {status}: {body.strip()}", code=1)
    lines = [line for line in body.splitlines() if line and not line.startswith("#")]
    print("\n".join(lines if not args.raw else body.splitlines()))
    return 0


def cmd_link(args) -> int:
    """testbed link list | cut A B | restore A B | set A B --profile P: the links of a relayed network."""
    network = open_network(args)
    paths = links.Paths(network.state_dir)
    if not network.relayed():
        raise Refusal("this network's links are not relayed; run `testbed down` and `testbed up --links`")
    if args.action == "list":
        for link in links.describe(paths):
            state = "CUT" if link.get("cut") else link.get("profile", "lan")
            values = link["profile_values"]
            print(f"{link['link']:42s} {link['segment']:13s} {state:10s} rtt {values['rtt_ms']:g} ms ±{values['jitter_ms']:g}"
                  f"  loss {values['loss']:g}  rate {values['rate'] or '-'}  via {link['listen']}")
        return 0
    if not args.a or not args.b or (args.action == "set" and not args.profile):
        raise Refusal("give two nodes" + (" and --profile P" if args.action == "set" else ""),
                      command=f"link {args.action}")
    what = {"cut": {"cut": True}, "restore": {"cut": False}, "set": {"profile": args.profile}}[args.action]
    try:
        changed = links.change(paths, args.a, args.b, **what)
    except KeyError as exc:
        raise Refusal(exc.args[0]) from None
    relay_took_control(paths)  # the relay has taken the change when the command returns
    print(f"{args.action}: {', '.join(changed)}" + (f" → {args.profile}" if args.action == "set" else ""))
    return 0


def relay_took_control(paths: links.Paths, timeout: float = 5.0) -> bool:
    """Wait until the relay has applied the control file just written (it says so in links/applied); whether it
    was seen to. No wait when no relay runs (it reads the file when it starts)."""
    return links.wait_applied(paths, timeout)


def cmd_compose(args) -> int:
    """testbed compose render [--check]: docker-compose.yml and its companions from the topology."""
    topology = Topology.load(args.topology) if args.topology else Topology.load()
    root = Path(args.root)
    if args.check:
        stale = compose.stale(root, topology)
        if stale:
            raise Refusal(f"stale: {', '.join(map(str, stale))}; run `testbed compose render`", code=1)
        print("docker-compose.yml and its companions are current")
        return 0
    for path in compose.write(root, topology):
        print(f"written {path}")
    return 0


def cmd_topology_generate(args) -> int:
    """testbed topology generate: a topology of N municipalities of 神奈川県, for the scale curve."""
    try:
        topology = scale.generate(args.municipalities)
    except ValueError as exc:
        raise Refusal(str(exc)) from None
    if args.base_port is not None:
        try:
            topology = topology.at_base_port(args.base_port)
        except ValueError as exc:
            raise Refusal(f"--base-port {args.base_port}: {exc}") from None
    try:
        path = topology.save(args.out)
    except OSError as exc:
        raise Refusal(f"cannot write {args.out}: {exc.strerror}; give a path in a folder you can write to") from None
    count = len(topology.municipalities)
    ports = sorted(p for n in topology.all_nodes for p in n.ports() if p)
    sites = ", ".join(sorted({t.site for t in topology.targets}))
    print(f"{path}: {count} municipalit{'y' if count == 1 else 'ies'} ({', '.join(m.name for m in topology.municipalities)}), "
          f"{len(topology.nodes)} nodes, {len(topology.targets)} 移行 target{'s' if len(topology.targets) != 1 else ''}"
          f"{f' (at {sites})' if sites else ''}, ports {ports[0]}-{ports[-1]}; "
          f"measure it with `testbed bench --topology {path}`")
    return 0
