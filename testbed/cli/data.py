"""The commands for data: population, load, batch, trace."""
from __future__ import annotations

import asyncio
import time
from pathlib import Path

import grpc
from google.protobuf import json_format

from protos import ops_pb2, ops_pb2_grpc
from scenarios.workload import SCENARIOS, generate as generate_trace, write_trace
from testbed.cli.common import Refusal, known_municipality, open_network
from testbed.client import channel, console_cert


EXPORT = "population export"  # the command its refusals name


def register(sub) -> None:
    """Add the data commands to the subcommands of `testbed`."""
    pop = sub.add_parser("population", help="generated populations").add_subparsers(dest="population_command", required=True)
    p = pop.add_parser("generate", help="generate a deterministic population and print its mix")
    p.add_argument("--municipality", default="142140")
    p.add_argument("--residents", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", help="write it: .jsonl for JSON Lines, else length-delimited protobuf")
    p.set_defaults(func=cmd_population_generate)
    p = pop.add_parser("export", help="write a generated population as a foreign vendor's export (中間標準レイアウト)")
    p.add_argument("--layout", choices=["intermediate"], default="intermediate",
                   help="intermediate: docs/intermediate-layout.md")
    p.add_argument("--encoding", choices=["cp932", "utf-8"], default="cp932")
    p.add_argument("--municipality", default="142140")
    p.add_argument("--residents", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--plant", action="append", default=[], metavar="RULE=RATE",
                   help="break a share of the records by a precheck rule (testbed/migration/plant.py); repeatable")
    p.add_argument("--out", required=True, help="the folder to write the export into")
    p.set_defaults(func=cmd_population_export)

    p = sub.add_parser("load", help="generate and load residents into the running network (移行)")
    p.add_argument("--residents", type=int, default=10_000, help="per municipality")
    p.add_argument("--municipality", action="append", help="default: every municipality")
    p.add_argument("--seed", type=int, default=1)
    p.set_defaults(func=cmd_load)

    p = sub.add_parser("trace", help="generate a scenario's workload trace (SimPy) into a file")
    p.add_argument("scenario", choices=sorted(SCENARIOS))
    p.add_argument("--residents", type=int, default=100_000)
    p.add_argument("--municipality", action="append")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", default="trace.jsonl")
    p.set_defaults(func=cmd_trace)

    p = sub.add_parser("batch", help="run a batch job now on every node that has it")
    p.add_argument("name", choices=["purge", "scrub"], help="purge: 送付先情報 past its retention, 転出証明書情報 past its "
                   "deadline; scrub: a whole pass of each store's scrubber now (records whose stored bytes no longer give "
                   "their digests, and ranges that do not hold what their records give)")
    p.set_defaults(func=cmd_batch)


def cmd_population_generate(args) -> int:
    """testbed population generate: a deterministic population, summarised (and written with --out)."""
    # (here, not at the top: both bring Faker, which `testbed --help` need not load)
    from scenarios.population import Generator
    from testbed.load import place_name
    network = open_network(args)
    known_municipality(network, args.municipality)  # (its addresses begin with the topology's name of it)
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


def cmd_population_export(args) -> int:
    """testbed population export: a generated population as a foreign vendor's export, with the municipality's
    vendor 外字 table (and records broken on purpose with --plant)."""
    rates = _plant_rates(args.plant)
    if args.residents < 1:
        raise Refusal(f"--residents {args.residents}: give at least 1", command=EXPORT)
    # (here, not at the top: they bring Faker, which `testbed --help` need not load)
    from scenarios.characters import vendor_table
    from scenarios.population import Generator
    from testbed.load import place_name
    from testbed.migration import intermediate
    from testbed.migration.plant import plant
    network = open_network(args)
    try:
        known_municipality(network, args.municipality)  # (its addresses begin with the topology's name of it)
    except Refusal as exc:
        raise Refusal(str(exc), command=EXPORT) from None
    started = time.perf_counter()
    generator = Generator(args.municipality, place_name(network.topology, args.municipality), args.seed)
    try:
        records = intermediate.as_vendor_register(generator.residents(args.residents))
    except ValueError as exc:
        raise Refusal(f"{exc}: give another --municipality or fewer --residents", command=EXPORT) from None
    planted = []
    if rates:
        try:
            records, planted = plant(records, rates, args.seed)
        except ValueError as exc:
            raise Refusal(f"--plant: {exc}", command=EXPORT) from None
    # (the vendor's table lists every 外字 its register holds: a planted one too, unidentified)
    table = intermediate.with_register_gaiji(vendor_table(args.municipality), records)
    try:
        manifest = intermediate.write_export(Path(args.out), args.municipality, records, table, args.encoding)
    except intermediate.VendorExportError as exc:
        raise Refusal(f"the export cannot be written: {exc}", command=EXPORT) from None
    except OSError as exc:
        raise Refusal(f"--out {args.out}: {exc.strerror or exc}", command=EXPORT) from None
    counts = {f["name"]: f["records"] for f in manifest["files"]}
    print(f"{counts['個人.csv']} residents of {args.municipality} in {counts['世帯.csv']} households, "
          f"{counts['外字.csv']} vendor 外字" + (f", {len(planted)} records planted" if rates else "") +
          f" ({manifest['layout']} {manifest['version']}, {manifest['文字コード']}, seed {args.seed}, "
          f"{time.perf_counter() - started:.1f} s) → {args.out}")
    return 0


def _plant_rates(given: list[str]) -> dict[str, float]:
    """--plant RULE=RATE options as rates by rule (the rules themselves are plant's to check)."""
    rates = {}
    for option in given:
        rule, _, rate = option.partition("=")
        try:
            rates[rule.strip()] = float(rate)
        except ValueError:
            raise Refusal(f"--plant {option!r}: give RULE=RATE, a rate between 0 and 1 (e.g. sex-code=0.01)",
                          command=EXPORT) from None
    return rates


def write_population(path: Path, records) -> None:
    """Residents as JSON Lines (.jsonl) or length-delimited protobuf (anything else)."""
    with path.open("wb") as f:
        for record in records:
            if path.suffix == ".jsonl":
                f.write((json_format.MessageToJson(record, indent=None, ensure_ascii=False) + "\n").encode())
            else:
                data = record.SerializeToString()
                f.write(len(data).to_bytes(4, "big") + data)


def cmd_load(args) -> int:
    """testbed load: generate and load residents into running municipalities (移行)."""
    from testbed.load import generate_population, load_records  # (here: it brings Faker and tqdm)
    network = open_network(args)
    for municipality in args.municipality or [m.code for m in network.topology.municipalities]:
        known_municipality(network, municipality)
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


def cmd_trace(args) -> int:
    """testbed trace SCENARIO: generate a workload trace (SimPy) without running it."""
    sizes = {m: args.residents for m in (args.municipality or ["142140"])}
    started = time.perf_counter()
    header, events, counter = generate_trace(args.scenario, sizes, args.seed)
    seconds = time.perf_counter() - started
    write_trace(args.out, header, events, counter)
    print(f"{len(events):,} events of {args.scenario} for {sizes} in {seconds:.1f} s → {args.out}")
    for code, stats in counter.items():
        print(f"  counter {code}: {stats['served']:,} served, mean wait {stats['mean_wait_min']:.1f} min, "
              f"p95 {stats['p95_wait_min']:.1f} min, longest queue {stats['max_queue']}")
    return 0


def cmd_batch(args) -> int:
    """testbed batch NAME: run a batch job on every node that has it (as the nightly window would)."""
    network = open_network(args)
    for node in network.topology.nodes:
        with channel(node, console_cert(network.pki, node.kind)) as ch:
            result = ops_pb2_grpc.OperationsStub(ch).RunBatch(ops_pb2.BatchRequest(name=args.name), timeout=120)
        if result.detail == "done":
            print(f"{node.name:18s} {args.name}: {result.affected} records")
    return 0
