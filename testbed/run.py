"""`testbed run SCENARIO`: the main job. Make or reuse the PKI and population, start the network,
load, generate the scenario's trace, replay it, verify (整合性確認 and audit chains), print a
summary, write the result and an HTML report, and stop the network."""
from __future__ import annotations

import asyncio
import datetime as dt
import html
import re
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import grpc

from protos import common_pb2
from scenarios.workload import generate, write_trace
from testbed.check import check_network, report_lines
from testbed import report
from testbed.client import Counter, MANAGER, node_status
from testbed.load import generate_population, load_records
from testbed.migration import report as migration_report
from testbed.migration.rehearsal import Rehearsal, write_json
from testbed.network import Network, NetworkError, status_table
from testbed.replay import Replay, write_result

INTERRUPTED = 130  # the exit code of a run ended by Ctrl-C: 128 + SIGINT, as a shell reports a process it interrupted
DRAIN_SECONDS = 30.0  # after Ctrl-C, how long the calls in flight and the outboxes are waited for (the user is waiting)


class Interrupt:
    """Ctrl-C (SIGINT) for the length of a run: the first ends it cleanly, every later one is ignored."""

    # The first stops the replay's sending, or abandons any other step (a migration is finished first: one cut short
    # leaves the counters frozen). Later ones, and one during the stop of a run not interrupted, are ignored: a stop
    # cut short leaves nodes running.

    def __init__(self):
        self.step = "starting"  # the step under way, for the report
        self.came: str | None = None  # the step the first Ctrl-C came in
        self.wake = None  # while the replay or a migration runs: told instead of raising KeyboardInterrupt
        self.shielded = False  # stopping: Ctrl-C is ignored

    def __enter__(self) -> "Interrupt":
        self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *_) -> None:
        # after an interrupted run only its last line is left to print: Ctrl-C pressed again then is ignored too
        signal.signal(signal.SIGINT, self._previous if self.came is None else signal.SIG_IGN)

    def _handle(self, signum, frame) -> None:
        if self.came is not None or self.shielded:
            return
        self.came = self.step
        if self.wake is not None:
            self.wake()
            return
        raise KeyboardInterrupt


class _Stoppable(Replay):
    """The replay, stoppable by Ctrl-C: once stopped it sends no event; the calls in flight are answered."""

    stopped = False
    in_flight = 0
    sent = 0

    async def _one(self, event, gate, bar) -> None:
        if self.stopped:
            gate.release()
            return
        self.in_flight += 1
        self.sent += 1
        try:
            await super()._one(event, gate, bar)
        finally:
            self.in_flight -= 1


def replay(network, header: dict, events, speed: float, concurrency: int, seed: int, faults=None,
           interrupt: Interrupt | None = None) -> dict:
    """testbed.replay.replay, ended early by Ctrl-C: the result of what was sent ("interrupted" when it was)."""
    run = _Stoppable(network, header, events, speed, concurrency, seed, True, faults)
    result = asyncio.run(_until_interrupted(run, interrupt or Interrupt()))
    result["acknowledged_records"] = run.acknowledged
    return result


async def _until_interrupted(run: _Stoppable, interrupt: Interrupt) -> dict:
    loop = asyncio.get_running_loop()
    asked = asyncio.Event()
    main = asyncio.create_task(run.run())
    waiting = asyncio.create_task(asked.wait())
    # (the handler runs in this thread, between two steps of the loop: call_soon_threadsafe also wakes a loop asleep)
    interrupt.wake = lambda: loop.call_soon_threadsafe(asked.set)
    try:
        await asyncio.wait({main, waiting}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        interrupt.wake = None
    if main.done():
        waiting.cancel()
        return main.result()
    run.stopped = True
    deadline = loop.time() + DRAIN_SECONDS
    while run.in_flight and loop.time() < deadline:
        await asyncio.sleep(0.05)
    # what is left (the schedule's sleep, the sampler, the faults, which undo themselves) ends here
    rest = asyncio.all_tasks() - {asyncio.current_task()}
    for task in rest:
        task.cancel()
    await asyncio.gather(*rest, return_exceptions=True)
    try:
        await run._close()
    except Exception:  # noqa: BLE001 (channels never opened when Ctrl-C came while preparing)
        pass
    result = run._result(time.perf_counter() - getattr(run, "t0", time.perf_counter()))
    result.update(interrupted=True, sent=run.sent)
    return result


def ensure_population(network: Network, residents: int, seed: int) -> dict[str, int]:
    """Load residents into every municipality whose register is empty; the residents of each."""
    sizes = {}
    for m in network.topology.municipalities:
        held = node_status(network, network.topology.find("kizon", m.code), counts=True).counts.get("residents", 0)
        if held == 0:
            records, _ = generate_population(network, m.code, residents, seed)
            result = asyncio.run(load_records(network, m.code, records))
            print(f"   {m.code} {m.name}: loaded {result['records']:,} residents in {result['seconds']:.1f} s")
            held = result["records"]
        else:
            print(f"   {m.code} {m.name}: reusing the {held:,} residents already registered")
        sizes[m.code] = held
    return sizes


def verify(network: Network) -> tuple[bool, bool, list[str]]:
    """(consistency ok, audit ok, lines describing each check)."""
    lines, consistent, chained = [], True, True
    for m in network.topology.municipalities:
        with Counter(network, m.code, *MANAGER) as counter:  # the full 整合性確認 is a manager's
            found = counter(counter.kizon.CheckConsistency, common_pb2.ConsistencyRequest(municipality_code=m.code), timeout=600)
        consistent &= not found.differences
        lines.append(f"整合性確認 {m.code}: kizon {found.records_kizon:,}, cs {found.records_cs:,}, prefecture {found.records_prefecture:,}, national "
                     f"{found.records_national:,} records, {len(found.differences)} differences ({found.seconds:.2f} s)")
    for chain in network.audit_chains():
        result = network.verify_audit(chain)
        chained &= result.ok
        lines.append(f"audit chain {chain}: {'OK' if result.ok else 'BROKEN'}, {result.entries:,} entries")
    return consistent, chained, lines


def wait_for_quiet(network: Network, timeout: float = 300) -> None:
    """Wait until every outbox has delivered what it holds (the last updates are still travelling)."""
    deadline = time.monotonic() + timeout
    while any(node_status(network, n).outbox_pending for n in network.topology.nodes):
        if time.monotonic() > deadline:
            raise TimeoutError("outboxes did not drain")
        time.sleep(0.2)


def migration_target(network: Network, asked: str) -> tuple[str, str]:
    """(municipality, site) of `--migrate [M:SITE]`: by default the first target the topology names."""
    if asked and asked != "auto":
        municipality, _, site = asked.partition(":")
        return municipality, site
    if not network.topology.targets:
        raise ValueError("the topology names no migration target (targets:); give --migrate M:SITE of one it names")
    first = network.topology.targets[0]
    return first.municipality, first.site


def environment(network: Network, options: dict, topology_file: Path | None = None,
                population: dict[str, int] | None = None) -> dict:
    """What a reader needs to trust or repeat a run: the topology file and the ports the nodes actually listened on,
    the population actually held per municipality, the machine (cores, memory, CPU), Python and grpcio versions,
    commit, modes and every option. topology_file: the file the run's topology was read from (None: the built-in
    one); population: the residents of each municipality when the replay began."""
    import os
    import platform
    import subprocess
    import grpc
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                                cwd=Path(__file__).resolve().parent).stdout.strip() or "not a git checkout"
    except OSError:
        commit = "unknown"
    topology = network.topology
    names = {m.code: m.name for m in topology.municipalities}
    return {"topology": topology.name,
            "topology file": str(topology_file) if topology_file else "built in (nodes/topologies/kanagawa.yaml)",
            "topology the nodes read": str(network.topology_file),
            "nodes": node_counts(topology), "ports": ports_by_kind(topology),
            "external nodes (run by their operators)": ", ".join(n.name for n in topology.all_nodes if n.external) or "none",
            "population (when the replay began)": {f"{code} {names.get(code, '')}".strip(): held
                                                   for code, held in (population or {}).items()},
            "machine": machine(), "python": f"{platform.python_version()} ({platform.python_implementation()})",
            "grpcio": grpc.__version__, "os": f"{platform.system()} {platform.release()}", "commit": commit,
            "confined": network.confined(), "isolated": network.isolated(), "links relayed": network.relayed(),
            "time": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), **options}


def node_counts(topology) -> str:
    """How many nodes of each kind: "12 (kizon 3, cs 2, ...)"."""
    kinds: dict[str, int] = {}
    for node in topology.all_nodes:
        kinds[node.kind] = kinds.get(node.kind, 0) + 1
    return f"{len(topology.all_nodes)} ({', '.join(f'{k} {n}' for k, n in kinds.items())})"


def ports_by_kind(topology) -> dict[str, str]:
    """The ports the nodes listen on, per kind: host, the gRPC ports, and the metrics (and search) ports."""
    kinds: dict[str, dict[str, list]] = {}
    for node in topology.all_nodes:
        of = kinds.setdefault(node.kind, {"hosts": [], "gRPC": [], "metrics": [], "search": []})
        of["hosts"].append(node.address.rsplit(":", 1)[0])
        for what, address in (("gRPC", node.address), ("metrics", node.metrics_address), ("search", node.search_address),
                              ("metrics", node.search_metrics_address)):
            if address:
                of[what].append(int(address.rsplit(":", 1)[1]))
    every = sorted(p for of in kinds.values() for what in ("gRPC", "metrics", "search") for p in of[what])
    return {"all": f"{every[0]}–{every[-1]} ({len(every)} ports)" if every else "none",
            **{kind: "; ".join([", ".join(dict.fromkeys(of["hosts"]))]
                               + [f"{what} {port_ranges(of[what])}" for what in ("gRPC", "metrics", "search") if of[what]])
               for kind, of in kinds.items()}}


def port_ranges(ports) -> str:
    """Ports as runs: "20101, 20111, 20201" or "32704–32707"."""
    ordered, runs = sorted(set(ports)), []
    for port in ordered:
        if runs and port == runs[-1][1] + 1:
            runs[-1][1] = port
        else:
            runs.append([port, port])
    return ", ".join(f"{a}" if a == b else f"{a}–{b}" if b > a + 1 else f"{a}, {b}" for a, b in runs)


def machine() -> str:
    """The machine: architecture, cores, memory, CPU model."""
    import os
    import platform
    try:
        import psutil
        physical, memory = psutil.cpu_count(logical=False), f", {psutil.virtual_memory().total / 2**30:.1f} GiB"
    except Exception:  # noqa: BLE001 (psutil missing or unreadable here: what is left)
        physical, memory = None, ""
    model = ""
    try:
        model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("model name")), "")
    except OSError:
        model = platform.processor()
    cores = f"{os.cpu_count()} cores" + (f" ({physical} physical)" if physical and physical != os.cpu_count() else "")
    return f"{platform.machine()}, {cores}{memory}" + (f", {model}" if model else "")


def check_acknowledged(network: Network, acknowledged: list) -> dict:
    """Every change the counters were told was recorded, held against kizon's register: none lost (its
    個人履歴番号 is there, written by that 依頼管理番号), none applied twice (no 依頼管理番号 twice in a history)."""
    lost, twice = [], []
    by_municipality: dict[str, dict[str, list]] = {}
    for municipality, code, history_number, control in acknowledged:
        by_municipality.setdefault(municipality, {}).setdefault(code, []).append((history_number, control))
    for municipality, people in by_municipality.items():
        # (a check of the whole register reads every person's history: under a manager's approval of those reads)
        with Counter(network, municipality, "T0001", "OP0001", reads=len(people)) as counter:
            for code, told in people.items():
                entries = counter(counter.kizon.GetHistory, common_pb2.ResidentKey(resident_code=code)).entries
                written = {e.history_number: e.request_control_number for e in entries}
                for history_number, control in told:
                    if written.get(history_number) != control:
                        lost.append(f"{code}/{history_number}")
                controls = [e.request_control_number for e in entries if e.request_control_number]
                twice += [f"{code}: {c}" for c in sorted(set(controls)) if controls.count(c) > 1]
    return {"acknowledged": len(acknowledged), "lost": lost, "applied_twice": twice,
            "ok": not lost and not twice}


@dataclass(frozen=True)
class RunOptions:
    """What a run is asked for: the scenario, its population and pace, and what becomes of the network around it
    (the defaults are `testbed run`'s)."""

    scenario: str
    residents: int = 10_000  # per municipality, loaded when its register is empty
    seed: int = 1
    speed: float | None = None  # time compression; None: fit the scenario into minutes
    minutes: float = 2.0
    concurrency: int = 16  # calls in flight at most
    report_dir: Path = Path("reports")
    keep_up: bool = False  # leave a network the run started running afterwards
    migrate: str | None = None  # M:SITE, or "auto": migrate in the scenario's freeze
    wall_clock: bool = False  # time-of-day rules by the wall clock, not the scenario's
    faults: list | None = None  # a parsed fault plan
    down: bool = False  # stop a network the run found running


def run_scenario(network: Network, options: RunOptions) -> int:
    """The whole run; the exit code (0 when every event succeeded and every check passed; 130 when Ctrl-C ended it,
    with a partial report). With migrate (a scenario with a freeze), the replay stops at the freeze, the migration
    runs, and the rest is replayed against the new site. A network that was running before is left running
    unless down."""
    with Interrupt() as interrupt:
        return _run(network, options, interrupt)


def _clock_line(network: Network, running: bool, wall_clock: bool) -> str:
    """By which clock the time-of-day rules go, and, for a network found running, why."""
    clock = "scenario" if network.simulated_clock() else "wall"
    if not running:
        return f"   time-of-day rules (kiosk hours) by the {clock} clock"
    if clock == "wall" and not wall_clock:
        return ("   the network was already running without the scenario's clock (as `testbed up` starts it): time-of-day "
                "rules (kiosk hours) by the wall clock; `testbed down` first to run by the scenario's clock")
    if clock == "scenario" and wall_clock:
        return ("   the network was already running with the scenario's clock: --wall-clock is not taken; "
                "`testbed down` first to run by the wall clock")
    return f"   the network was already running: used as it is, time-of-day rules (kiosk hours) by the {clock} clock"


def _network_line(stop: bool, running: bool) -> str:
    """What became of the network at the end, in one line."""
    if stop:
        return "   the network is stopped" + (" (--down)" if running else " (--keep-up leaves it running)")
    if running:
        return ("   the network was running before this run: left running (`testbed down` stops it; "
                "--down stops it after a run)")
    return "   the network is left running (--keep-up); `testbed down` stops it"


def checked_after_interrupt(network: Network, came: str, acknowledged: list) -> tuple[list[str], dict]:
    """After Ctrl-C, what was done, checked (acknowledged changes, network-wide invariants): (lines, invariants)."""
    lines = [f"INTERRUPTED (Ctrl-C) while {came}: a partial run; the 整合性確認 was not run"]
    invariants: dict = {"acknowledged": len(acknowledged), "lost": [], "applied_twice": [], "ok": True}
    if acknowledged:
        try:
            if not all(network.pid(n.name) for n in network.topology.all_nodes):
                network.up()  # a node a fault had killed when Ctrl-C came: its register is needed below
            wait_for_quiet(network, DRAIN_SECONDS)
        except (TimeoutError, NetworkError) as exc:
            lines.append(f"not everything was delivered ({exc}): the checks below see what had arrived")
        try:
            invariants = check_acknowledged(network, acknowledged)
        except grpc.RpcError as exc:
            invariants["ok"] = False
            lines.append(f"acknowledged changes not checked: {exc.code().name}: {exc.details()}")
    lines.append(f"acknowledged changes: {invariants['acknowledged']:,}, lost {len(invariants['lost'])}, "
                 f"applied twice {len(invariants['applied_twice'])}")
    network_wide = check_network(network)
    invariants["network_wide"] = network_wide.as_dict()
    invariants["ok"] &= network_wide.ok
    lines.append(report_lines(network_wide)[0].replace("testbed check: ", "network-wide invariants: "))
    lines += [f.line() for f in network_wide.findings]
    return lines, invariants


def _mark_interrupted(page: Path, run: dict) -> None:
    """The report's title says the run was interrupted, and while doing what (the report is otherwise as any)."""
    what = run["interrupted"]
    title = (f"<h1>{html.escape(run['scenario'])} — interrupted (Ctrl-C while {html.escape(what['while'])}): "
             f"a partial run, {what['sent']:,} of {what['events']:,} events sent</h1>")
    page.write_text(re.sub(r"<h1>.*?</h1>", lambda _: title, page.read_text(encoding="utf-8"), count=1, flags=re.S),
                    encoding="utf-8")


def _run(network: Network, options: RunOptions, interrupt: Interrupt) -> int:
    o = options
    scenario, residents, seed, speed, minutes = o.scenario, o.residents, o.seed, o.speed, o.minutes
    concurrency, report_dir, keep_up, migrate = o.concurrency, Path(o.report_dir), o.keep_up, o.migrate
    wall_clock, faults, down = o.wall_clock, o.faults, o.down
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    topology_file = network.topology.source  # (before `up`, which saves the topology in the state folder)
    out = report_dir / f"{scenario}-{stamp}"  # (made once the network is up: a refused `up` leaves no empty folder)
    print(f"== {scenario}: bringing the network up ({network.state_dir})")
    running = any(network.pid(n.name) for n in network.topology.all_nodes)
    stop = not keep_up and (down or not running)  # a network the run did not start is left as it was found
    sizes, trace, header, result, before, migration, acknowledged = {}, "", None, None, None, None, []
    consistent = chained = None
    checks, invariants = [], {"ok": False}
    try:
        try:
            interrupt.step = "bringing the network up"
            # the time-of-day rules by the scenario's clock, unless asked for the wall clock (or the network runs as it is)
            print(status_table(network.up(simulated_clock=None if running else not wall_clock)))
            print(_clock_line(network, running, wall_clock))
            out.mkdir(parents=True, exist_ok=True)
            interrupt.step = "loading the population"
            print("== population")
            sizes = ensure_population(network, residents, seed)
            interrupt.step = "generating the trace"
            started = time.perf_counter()
            header, events, counter = generate(scenario, sizes, seed)
            trace = write_trace(out / "trace.jsonl", header, events, counter)
            span = (events[-1].t - events[0].t) if events else 0.0
            speed = speed or max(1.0, span / (minutes * 60))
            print(f"== trace: {len(events):,} events over {span / 86400:.1f} simulated days in "
                  f"{time.perf_counter() - started:.1f} s → {trace}")
            print(f"== replay at ×{speed:,.0f} (about {span / speed / 60:.1f} min), at most {concurrency} calls in flight")
            if migrate:
                if not header.get("freeze"):
                    raise ValueError(f"{scenario} has no freeze window to migrate in (cutover-weekend has one)")
                municipality, site = migration_target(network, migrate)
                cut = (dt.datetime.fromisoformat(header["freeze"][0]) - dt.datetime.fromisoformat(header["start"])).total_seconds()
                first, events = [e for e in events if e.t < cut], [e for e in events if e.t >= cut]
                print(f"== replay until the freeze: {len(first):,} events")
                interrupt.step = "replaying until the freeze"
                before = replay(network, {**header, "counter": counter}, first, speed, concurrency, seed, interrupt=interrupt)
                acknowledged += before.pop("acknowledged_records")
                if interrupt.came is None:
                    interrupt.step = "waiting for the outboxes before the freeze"
                    wait_for_quiet(network)
                    print(f"== migration of {municipality} to {site} in the freeze window")
                    interrupt.step = "migrating"
                    interrupt.wake = lambda: None  # the migration is finished (or rolled back) first
                    try:
                        migration = Rehearsal(network, municipality, site).run()
                    finally:
                        interrupt.wake = None
                    for step in migration["steps"]:
                        print(f"   {step['name']:13s} {step['result']:10s} {step['seconds']:7.2f} s  {step['message']}")
                    print(f"   downtime {migration['downtime']['seconds']} s; {migration['result']}")
                    write_json(migration, out / "migration.json")
                    migration_report.write(migration, out / "migration.html")
                    print(f"== replay after the freeze (deferred and new work) against "
                          f"{network.topology.find('kizon', municipality).name}: {len(events):,} events")
            if interrupt.came is None:
                if faults:
                    print("== faults: " + "; ".join(f.label() for f in faults))
                interrupt.step = "replaying"
                result = replay(network, {**header, "counter": counter}, events, speed, concurrency, seed, faults=faults,
                                interrupt=interrupt)
                acknowledged += result.pop("acknowledged_records")
            if interrupt.came is None:
                interrupt.step = "waiting for the outboxes"
                wait_for_quiet(network)
                interrupt.step = "checking"
                consistent, chained, checks = verify(network)
                invariants = check_acknowledged(network, acknowledged)
                checks.insert(0, f"acknowledged changes: {invariants['acknowledged']:,}, lost {len(invariants['lost'])}, "
                                 f"applied twice {len(invariants['applied_twice'])}")
                network_wide = check_network(network, audit=False)  # (the audit chains were verified just above)
                invariants["network_wide"] = network_wide.as_dict()
                invariants["ok"] &= network_wide.ok
                checks.insert(1, report_lines(network_wide)[0].replace("testbed check: ", "network-wide invariants: "))
                checks[2:2] = [f.line() for f in network_wide.findings]
        except KeyboardInterrupt:
            pass  # the first Ctrl-C, outside the replay: the step under way is abandoned; what was done is checked below
        interrupt.shielded = True  # from here until the network is down, Ctrl-C is ignored
        if interrupt.came is not None:
            consistent = chained = None  # (not verified: the run did not get there)
            checks, invariants = checked_after_interrupt(network, interrupt.came, acknowledged)
    finally:
        interrupt.shielded = True
        if stop:
            network.down()
    if result is None:  # Ctrl-C before the replay: nothing was sent
        result = _Stoppable(network, header or {"scenario": scenario, "seed": seed}, [], speed or 1.0, concurrency,
                            seed)._result(0.0)
        result.update(interrupted=True, sent=0)
    errors = result["errors"] + (before["errors"] if before else 0)
    migrated = migration is None or migration["result"] == "passed"
    passed = errors == 0 and consistent and chained and migrated and invariants["ok"]
    run = {"scenario": scenario, "seed": seed, "outcome": "interrupted" if interrupt.came else "passed" if passed else "failed",
           "municipalities": sizes, "trace": str(trace), "replay": result,
           "consistency_ok": consistent, "audit_ok": chained, "checks": checks, "invariants": invariants,
           "environment": environment(network, {
               "scenario": scenario, "residents asked (per empty municipality)": residents, "seed": seed, "speed": round(speed or 0, 1), "minutes": minutes,
               "concurrency": concurrency, "faults": "; ".join(f.label() for f in faults or []) or "none",
               "migrate": migrate or "no", "clock": "scenario" if network.simulated_clock() else "wall"},
               topology_file, sizes)}
    if interrupt.came:
        run["interrupted"] = {"while": interrupt.came, "sent": result.get("sent", result["events"]),
                              "events": result["events"] + (before["events"] if before else 0)}
        run["environment"]["interrupted"] = f"Ctrl-C while {interrupt.came}"
    if migration is not None or before is not None:
        run.update({"migration": migration, "replay_before": before})
    out.mkdir(parents=True, exist_ok=True)
    write_result(run, out / "result.json")
    page = report.write(run, out / "report.html")
    if interrupt.came:
        _mark_interrupted(page, run)
        what = run["interrupted"]
        print(f"testbed run: interrupted (Ctrl-C) while {what['while']}: {what['sent']:,} of {what['events']:,} events "
              f"sent, {errors} errors; what was done {'passes every check' if invariants['ok'] else 'FAILS a check'}; "
              f"partial report {page}; the network is {'stopped' if stop else 'left running'}", file=sys.stderr)
        return INTERRUPTED
    print("== summary")
    for op, o in result["operations"].items():
        errors_of = sum(o["errors"].values())
        print(f"   {op:8s} {o['count']:7,} done {errors_of:4} errors {o['skipped']:5} skipped   p50 {o['p50_ms']:6.1f} ms   "
              f"p99 {o['p99_ms']:7.1f} ms" + (f"   ({o['note']})" if o.get("note") else "")
              + (f"   e.g. {o['error_examples'][0]}" if o["error_examples"] else ""))
    for line in checks[:len(sizes) + 2]:
        print(f"   {line}")
    for fault in result.get("faults", []):
        recovered = f"answered again {fault['recovered_s']:.1f} s after" if fault["recovered_s"] is not None else \
            "; ".join(fault["notes"]) or "not undone"
        print(f"   fault {fault['fault']}: at {fault['started_s'] or 0:.1f} s, {recovered}")
    if result.get("retried_calls"):
        print(f"   calls retried by the terminals (same 依頼管理番号): {result['retried_calls']}")
    print(f"   audit chains: {'all intact' if chained else 'BROKEN'}")
    print(f"   {result['completed']:,}/{result['events']:,} events, {result['errors']} errors, {result['wall_seconds']:.0f} s")
    print(_network_line(stop, running))
    print(f"\nreport: {page}\nresult: {out / 'result.json'}")
    if migration is not None:
        print(f"   migration: {migration['result']}, downtime {migration['downtime']['seconds']} s "
              f"({out / 'migration.html'})")
    return 0 if passed else 1
