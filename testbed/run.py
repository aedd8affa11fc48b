"""`testbed run SCENARIO`: the main job. Make or reuse the PKI and population, start the network,
load, generate the scenario's trace, replay it, verify (整合性確認 and audit chains), print a
summary, write the result and an HTML report, and stop the network."""
from __future__ import annotations

import asyncio
import datetime as dt
import time
from pathlib import Path

from protos import common_pb2
from scenarios.workload import generate, write_trace
from testbed.check import check_network, report_lines
from testbed import report
from testbed.client import Counter, MANAGER, node_status
from testbed.load import generate_population, load_records
from testbed.migration import report as migration_report
from testbed.migration.rehearsal import Rehearsal, write_json
from testbed.network import Network, status_table
from testbed.replay import replay, write_result


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


def environment(network: Network, options: dict) -> dict:
    """What a reader needs to trust or repeat a run: commit, versions, machine, topology, modes, options."""
    import os
    import platform
    import subprocess
    import grpc
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                                cwd=Path(__file__).resolve().parent).stdout.strip() or "not a git checkout"
    except OSError:
        commit = "unknown"
    return {"commit": commit, "python": platform.python_version(), "grpcio": grpc.__version__,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores", "topology": network.topology.name,
            "nodes": len(network.topology.all_nodes), "confined": network.confined(), "isolated": network.isolated(),
            "links relayed": network.relayed(), "time": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            **options}


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


def run_scenario(network: Network, scenario: str, residents: int, seed: int, speed: float | None, minutes: float,
                 concurrency: int, report_dir: Path, keep_up: bool = False, migrate: str | None = None,
                 wall_clock: bool = False, faults: list | None = None) -> int:
    """The whole run; the exit code (0 when every event succeeded and every check passed). With migrate (a
    scenario with a freeze), the replay stops at the freeze, the migration runs, and the rest is replayed
    against the new site."""
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = report_dir / f"{scenario}-{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    print(f"== {scenario}: bringing the network up ({network.state_dir})")
    running = any(network.pid(n.name) for n in network.topology.all_nodes)
    # the time-of-day rules by the scenario's clock, unless asked for the wall clock (or the network runs as it is)
    print(status_table(network.up(simulated_clock=None if running else not wall_clock)))
    print(f"   time-of-day rules (kiosk hours) by the {'scenario' if network.simulated_clock() else 'wall'} clock")
    try:
        print("== population")
        sizes = ensure_population(network, residents, seed)
        started = time.perf_counter()
        header, events, counter = generate(scenario, sizes, seed)
        trace = write_trace(out / "trace.jsonl", header, events, counter)
        span = (events[-1].t - events[0].t) if events else 0.0
        speed = speed or max(1.0, span / (minutes * 60))
        print(f"== trace: {len(events):,} events over {span / 86400:.1f} simulated days in "
              f"{time.perf_counter() - started:.1f} s → {trace}")
        print(f"== replay at ×{speed:,.0f} (about {span / speed / 60:.1f} min), at most {concurrency} calls in flight")
        migration, before = None, None
        if migrate:
            if not header.get("freeze"):
                raise ValueError(f"{scenario} has no freeze window to migrate in (cutover-weekend has one)")
            municipality, site = migration_target(network, migrate)
            cut = (dt.datetime.fromisoformat(header["freeze"][0]) - dt.datetime.fromisoformat(header["start"])).total_seconds()
            first, events = [e for e in events if e.t < cut], [e for e in events if e.t >= cut]
            print(f"== replay until the freeze: {len(first):,} events")
            before = replay(network, {**header, "counter": counter}, first, speed, concurrency, seed)
            wait_for_quiet(network)
            print(f"== migration of {municipality} to {site} in the freeze window")
            migration = Rehearsal(network, municipality, site).run()
            for step in migration["steps"]:
                print(f"   {step['name']:13s} {step['result']:10s} {step['seconds']:7.2f} s  {step['message']}")
            print(f"   downtime {migration['downtime']['seconds']} s; {migration['result']}")
            write_json(migration, out / "migration.json")
            migration_report.write(migration, out / "migration.html")
            print(f"== replay after the freeze (deferred and new work) against "
                  f"{network.topology.find('kizon', municipality).name}: {len(events):,} events")
        if faults:
            print("== faults: " + "; ".join(f.label() for f in faults))
        result = replay(network, {**header, "counter": counter}, events, speed, concurrency, seed, faults=faults)
        wait_for_quiet(network)
        consistent, chained, checks = verify(network)
        acknowledged = result.pop("acknowledged_records") + (before.pop("acknowledged_records") if before else [])
        invariants = check_acknowledged(network, acknowledged)
        checks.insert(0, f"acknowledged changes: {invariants['acknowledged']:,}, lost {len(invariants['lost'])}, "
                         f"applied twice {len(invariants['applied_twice'])}")
        network_wide = check_network(network, audit=False)  # (the audit chains were verified just above)
        invariants["network_wide"] = network_wide.as_dict()
        invariants["ok"] &= network_wide.ok
        checks.insert(1, report_lines(network_wide)[0].replace("testbed check: ", "network-wide invariants: "))
        checks[2:2] = [f.line() for f in network_wide.findings]
    finally:
        if not keep_up:
            network.down()
    run = {"scenario": scenario, "seed": seed, "municipalities": sizes, "trace": str(trace), "replay": result,
           "consistency_ok": consistent, "audit_ok": chained, "checks": checks, "invariants": invariants,
           "environment": environment(network, {
               "scenario": scenario, "residents": residents, "seed": seed, "speed": round(speed, 1), "minutes": minutes,
               "concurrency": concurrency, "faults": "; ".join(f.label() for f in faults or []) or "none",
               "migrate": migrate or "no", "clock": "scenario" if network.simulated_clock() else "wall"})}
    if migration is not None:
        run.update({"migration": migration, "replay_before": before})
    write_result(run, out / "result.json")
    page = report.write(run, out / "report.html")
    print("== summary")
    for op, o in result["operations"].items():
        errors = sum(o["errors"].values())
        print(f"   {op:8s} {o['count']:7,} done {errors:4} errors {o['skipped']:5} skipped   p50 {o['p50_ms']:6.1f} ms   "
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
    print(f"\nreport: {page}\nresult: {out / 'result.json'}")
    migrated = migration is None or migration["result"] == "passed"
    if migration is not None:
        print(f"   migration: {migration['result']}, downtime {migration['downtime']['seconds']} s "
              f"({out / 'migration.html'})")
    errors = result["errors"] + (before["errors"] if before else 0)
    return 0 if errors == 0 and consistent and chained and migrated and invariants["ok"] else 1
