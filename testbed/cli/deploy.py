"""Deployment's commands beyond compose: prometheus (config), k8s (render).

`testbed prometheus config` writes a Prometheus configuration for the network of a state folder as it runs on this
machine (its nodes' real metrics addresses, the monitor certificates where the PKI holds them); `testbed k8s render`
writes the kustomize base of testbed/k8s.py. (`testbed compose render` stays with the network's commands.)"""
from __future__ import annotations

import re
from pathlib import Path

from testbed import compose, k8s
from testbed.cli.common import Refusal, open_network
from testbed.topology import Topology

DURATION = re.compile(r"[1-9][0-9]*(ms|s|m|h)")


def register(sub) -> None:
    """Add the deployment commands to the subcommands of `testbed`."""
    prometheus = sub.add_parser("prometheus", help="Prometheus for the network on this machine").add_subparsers(
        dest="prometheus_command", required=True)
    p = prometheus.add_parser("config", help="a scrape configuration for the running network of the state folder: "
                              "its metrics addresses, the monitor certificates in its PKI, each node's DNS name")
    p.add_argument("--out", type=Path, help="write it there (default: standard output)")
    p.add_argument("--scrape-interval", default="15s", metavar="DURATION", help="how often each node is scraped "
                   "(default: 15s)")
    p.set_defaults(func=cmd_prometheus_config)

    k8s_ = sub.add_parser("k8s", help="Kubernetes manifests (a kustomize base) from the topology").add_subparsers(
        dest="k8s_command", required=True)
    p = k8s_.add_parser("render", help=f"write the kustomize base (default: {k8s.OUT}/)")
    p.add_argument("--out", type=Path, default=k8s.OUT, help=f"the base's folder (default: {k8s.OUT})")
    p.add_argument("--check", action="store_true", help="only say whether the files there are current (exit 1 if not)")
    p.set_defaults(func=cmd_k8s_render)


def cmd_prometheus_config(args) -> int:
    """testbed prometheus config [--out FILE]: scrape every node of the network of --state-dir where it listens."""
    if not DURATION.fullmatch(args.scrape_interval):
        raise Refusal(f"--scrape-interval {args.scrape_interval!r}: give a duration such as 15s, 500ms or 1m",
                      command="prometheus config")
    network = open_network(args)
    if not args.topology and not (network.state_dir / "topology.yaml").exists():
        raise Refusal(f"no network in {network.state_dir} (no topology.yaml): start one with `testbed up`, or name "
                      "its state folder with --state-dir", command="prometheus config")
    pki = network.pki
    if not pki.exists():
        raise Refusal(f"no PKI in {pki.dir}: the monitor certificates are made by `testbed pki init` (or `testbed up`)",
                      command="prometheus config")
    folder = pki.dir.resolve()
    config = compose.scrape_config(network.topology, str(pki.trust_bundle.resolve()),
                                   lambda domain: str(folder / "clients" / f"monitor-{domain}"), args.scrape_interval)
    text = (f"# Written by `testbed prometheus config` for the network of {network.state_dir.resolve()} "
            f"({network.topology.name}): every node at its metrics address, over HTTPS as its domain's monitor.\n"
            + compose.dump(config))
    if args.out is None:
        print(text, end="")
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"written {args.out} ({len(config['scrape_configs'])} scrape jobs)")
    return 0


def cmd_k8s_render(args) -> int:
    """testbed k8s render [--out DIR] [--check]: the kustomize base of the topology."""
    topology = Topology.load(args.topology) if args.topology else Topology.load()
    try:
        if args.check:
            stale = k8s.stale(args.out, topology)
            if stale:
                raise Refusal(f"stale: {', '.join(map(str, stale))}; run `testbed k8s render --out {args.out}`",
                              code=1, command="k8s render")
            print(f"the Kubernetes base in {args.out} is current")
            return 0
        written = k8s.write(args.out, topology)
    except ValueError as exc:  # a node name no Service can carry
        raise Refusal(str(exc), command="k8s render") from None
    print(f"written {len(written)} files to {args.out}: `testbed --topology {args.out / 'topology.yaml'} pki init "
          f"--pki-dir {args.out / k8s.PKI}`, then `kubectl apply -k {args.out}` (docs/deployment.md)")
    return 0
