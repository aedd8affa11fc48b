"""The commands that run the whole network through something: run, bench, tour."""
from __future__ import annotations

import tempfile
from pathlib import Path

from scenarios.workload import SCENARIOS
from testbed.cli.common import Refusal, open_network
from testbed.cli.network import add_base_port, at_base_port
from testbed.faults import PlanError, parse as parse_faults, require_links
from testbed.network import Network
from testbed.topology import Topology

# testbed.run, testbed.bench and testbed.demo are imported in their commands, not here: they bring Faker (and
# asyncssh, multiprocessing), which `testbed --help` and the other commands need not load.


def register(sub) -> None:
    """Add the run commands to the subcommands of `testbed`."""
    p = sub.add_parser("bench", help="measure the DESIGN §9 figures on a fresh network (its own ports and folder)")
    p.add_argument("--residents", type=int, default=300_000,
                   help="residents loaded (per municipality with --topology)")
    p.add_argument("--flows", type=int, default=5_000, help="full-flow 異動 at the counter (shared among the municipalities)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", help="also write the figures to this file")
    p.add_argument("--migrate", action="store_true",
                   help="then move 伊勢原市 to its government-cloud target and time the migration (freeze to re-open)")
    add_base_port(p, "in place of free ports the bench chooses itself; the bare mTLS echo takes the port after them")
    p.set_defaults(func=cmd_bench)

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
    add_base_port(p, "a network the run starts is started there (one running on other ports is refused)")
    p.set_defaults(func=cmd_run)

    sub.add_parser("tour", help="a scripted walk through every node: up, counter operations, probes, checks, down"
                   ).set_defaults(func=cmd_tour)


def cmd_run(args) -> int:
    """testbed run SCENARIO: the main job, through the emulated network, with a report."""
    for name, value, least, example in (("--minutes", args.minutes, 0, "--minutes 1"), ("--speed", args.speed, 0, "--speed 600"),
                                        ("--residents", args.residents, 1, "--residents 1000"),
                                        ("--concurrency", args.concurrency, 1, "--concurrency 16")):
        if value is not None and not (value > 0 if least == 0 else value >= least):  # (before anything is started)
            raise Refusal(f"{name} {value:g}: give {'more than 0' if least == 0 else f'at least {least}'} (e.g. {example})")
    if args.keep_up and args.down:
        raise Refusal("--keep-up and --down ask for opposite things; give one of them")
    network = at_base_port(args, open_network(args))
    try:
        faults = parse_faults(args.faults, network.topology) if args.faults else None
        require_links(faults or [], network)
    except PlanError as exc:
        raise Refusal(str(exc)) from None
    from testbed.run import RunOptions, run_scenario  # (Faker, asyncssh: see the top)
    try:
        return run_scenario(network, RunOptions(
            args.scenario, args.residents, args.seed, args.speed, args.minutes, args.concurrency, Path(args.report_dir),
            args.keep_up, args.migrate, args.wall_clock, faults, args.down))
    except ValueError as exc:
        raise Refusal(str(exc)) from None


def cmd_bench(args) -> int:
    """testbed bench: the DESIGN §9 figures on a fresh network, with the echo yardstick."""
    from testbed.bench import BenchOptions, report, run_bench, write_json  # (Faker, multiprocessing: see the top)
    topology = None
    if args.topology:
        if not Path(args.topology).is_file():
            raise Refusal(f"no topology file {args.topology}; make one with `testbed topology generate --municipalities N "
                          "--out FILE`")
        topology = Topology.load(args.topology)
        if args.migrate and not topology.targets:
            raise Refusal(f"--migrate needs a topology with a 移行 target; {args.topology} names none")
    if args.base_port is not None:
        try:  # (the range checked before anything starts; the echo's port too)
            (topology or Topology.load()).at_base_port(args.base_port, spare=1)
        except ValueError as exc:
            raise Refusal(f"--base-port {args.base_port}: {exc}") from None
    figures = run_bench(BenchOptions(args.residents, args.flows, seed=args.seed, migrate=args.migrate,
                                     topology=topology, base_port=args.base_port))
    print(report(figures))
    if args.json:
        write_json(figures, args.json)
        print(f"written to {args.json}")
    if figures["flow_errors"]:  # the mix asks only for valid operations: an error is a defect
        counts = ", ".join(f"{code} ×{seen['count']}" for code, seen in figures["flow_errors_by_code"].items())
        raise Refusal(f"{figures['flow_errors']} flows failed ({counts})", code=1)
    return 0


def cmd_tour(args) -> int:
    """testbed tour: a scripted walk through every node, on a network of its own (the user's is left alone)."""
    from testbed.demo import run_demo  # (Faker: see the top)
    with tempfile.TemporaryDirectory(prefix="testbed-tour-") as folder:
        topology = Topology.load(args.topology).with_free_ports()  # its own ports too: the user's network may be up
        print(f"== the tour runs on a network of its own in {folder} (yours, if any, is not touched)")
        return run_demo(Network(Path(folder), topology))
