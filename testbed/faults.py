"""Fault plans for the main job (`testbed run SCENARIO --faults PLAN`): nodes killed and stopped, links cut
and slowed, at points of the scenario, while the replay goes on.

A plan is a named plan, a YAML file (a list of {kind, target, at, for}) or one line of faults separated by
";", each `KIND TARGET [TARGET] at P% for Ns`:

    kill NODE at 30% for 5s       SIGKILL, restarted (`testbed up`) 5 s later
    stop NODE at 40% for 4s       SIGSTOP, SIGCONT 4 s later (a node that hangs)
    cut A B at 50% for 3s         the link A ↔ B cut, restored 3 s later (a relayed or isolated network)
    slow A B at 50% for 3s        the link A ↔ B on the wan-lossy profile, then back

P% is the share of the scenario's replay (simulated time) at which the fault begins. Each fault's record
says when it began, when it was undone and how long the node took to answer its health check again.
"""
from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from testbed import links as relay

NAMED = {
    "prefecture-outage": "kill prefecture-140007 at 30% for 5s",
    "kizon-crash-loop": "kill kizon-142140 at 20% for 1s; kill kizon-142140 at 45% for 1s; kill kizon-142140 at 70% for 1s",
    "national-maintenance": "stop national at 40% for 4s",
    "jukinet-partition": "cut cs-142140 prefecture-140007 at 30% for 5s",
}
KINDS = {"kill": 1, "stop": 1, "cut": 2, "slow": 2}  # kind → how many targets
LINE = re.compile(r"\s*(\w+)\s+(.+?)\s+at\s+(\d+(?:\.\d+)?)%\s+for\s+(\d+(?:\.\d+)?)s\s*")


class PlanError(ValueError):
    """A fault plan that cannot be run: names the fault and what is wrong with it."""


@dataclass
class Fault:
    """One fault of a plan, and, once run, what happened."""

    kind: str
    targets: tuple[str, ...]
    at: float  # share of the replay, 0–1
    hold: float  # seconds before it is undone
    started_s: float | None = None  # wall seconds from the replay's start
    undone_s: float | None = None
    recovered_s: float | None = None  # seconds from undoing it until the node answers again
    notes: list[str] = field(default_factory=list)

    def label(self) -> str:
        """How the plan wrote it."""
        return f"{self.kind} {' '.join(self.targets)} at {self.at:.0%} for {self.hold:g}s"


def parse(plan: str, topology) -> list[Fault]:
    """The faults of a plan (a name, a YAML file or one line), checked against the topology."""
    if plan in NAMED:
        plan = NAMED[plan]
    if plan.endswith((".yaml", ".yml")):
        try:
            items = yaml.safe_load(Path(plan).read_text(encoding="utf-8")) or []
        except OSError as exc:
            raise PlanError(f"fault plan {plan}: {exc.strerror}") from None
        faults = [Fault(str(i["kind"]), tuple(str(i["target"]).split()), float(str(i["at"]).rstrip("%")) / 100,
                        float(str(i["for"]).rstrip("s"))) for i in items]
    else:
        faults = []
        for part in filter(str.strip, plan.split(";")):
            match = LINE.fullmatch(part)
            if not match:
                raise PlanError(f"fault {part.strip()!r}: write `KIND TARGET [TARGET] at P% for Ns` "
                                f"(kinds: {', '.join(KINDS)}; named plans: {', '.join(NAMED)})")
            faults.append(Fault(match[1], tuple(match[2].split()), float(match[3]) / 100, float(match[4])))
    names = {n.name for n in topology.all_nodes}
    for fault in faults:
        if fault.kind not in KINDS or len(fault.targets) != KINDS[fault.kind]:
            raise PlanError(f"fault {fault.label()!r}: {fault.kind} takes {KINDS.get(fault.kind, '?')} node(s) "
                            f"(kinds: {', '.join(KINDS)})")
        unknown = [t for t in fault.targets if t not in names]
        if unknown:
            raise PlanError(f"fault {fault.label()!r}: no node {unknown[0]!r} in the topology")
        if not 0 <= fault.at <= 1:
            raise PlanError(f"fault {fault.label()!r}: the point must be between 0% and 100% of the replay")
    return sorted(faults, key=lambda f: f.at)


async def execute(network, faults: list[Fault], span_s: float, t0: float) -> None:
    """Run the faults at their points of a replay that started at t0 (perf_counter) and lasts span_s."""
    await asyncio.gather(*(_one(network, fault, span_s, t0) for fault in faults))


async def _one(network, fault: Fault, span_s: float, t0: float) -> None:
    await asyncio.sleep(max(0.0, t0 + fault.at * span_s - time.perf_counter()))
    fault.started_s = time.perf_counter() - t0
    if fault.kind in ("kill", "stop"):
        name = fault.targets[0]
        pid = network.pid(name)
        if pid is None:
            fault.notes.append(f"{name} was not running")
            return
        os.kill(pid, signal.SIGKILL if fault.kind == "kill" else signal.SIGSTOP)
        try:
            await asyncio.sleep(fault.hold)
        except asyncio.CancelledError:  # the run was interrupted: a node left stopped would not stop with the network
            if fault.kind == "stop":
                os.kill(pid, signal.SIGCONT)
            fault.undone_s = time.perf_counter() - t0
            fault.notes.append("cut short: the run was interrupted" + ("" if fault.kind == "stop" else
                                                                          " (the node is restarted before the checks)"))
            raise
        fault.undone_s = time.perf_counter() - t0
        undone = time.perf_counter()
        if fault.kind == "kill":  # restarts what is not running, waits until every node is healthy
            restart = asyncio.ensure_future(asyncio.to_thread(network.up))
            try:
                await asyncio.shield(restart)
            except asyncio.CancelledError:  # interrupted: finished all the same (an `up` beside it would start nodes twice)
                await restart
                raise
        else:
            os.kill(pid, signal.SIGCONT)
            await _healthy(network, name)
        fault.recovered_s = time.perf_counter() - undone
        return
    paths = relay.Paths(network.state_dir)
    if not network.relayed():
        fault.notes.append("skipped: the network's links are not relayed (start it with --links or --isolated)")
        return
    a, b = fault.targets
    before = {name: dict(spec) for name, spec in relay.read_control(paths).items()}
    try:
        relay.change(paths, a, b, **({"cut": True} if fault.kind == "cut" else {"profile": "wan-lossy"}))
    except KeyError as exc:
        fault.notes.append(f"skipped: {exc.args[0]}")
        return
    try:
        await relay.wait_applied_async(paths)  # taken by the relay
        await asyncio.sleep(fault.hold)
    except asyncio.CancelledError:  # the run was interrupted: the link is restored all the same
        fault.notes.append("cut short: the run was interrupted")
        raise
    finally:
        control = relay.read_control(paths)
        for name in (relay.link_name(a, b), relay.link_name(b, a)):
            if name in control and name in before:
                control[name] = before[name]
        relay.write_control(paths, control)
        fault.undone_s = time.perf_counter() - t0
    fault.recovered_s = 0.0  # the relay takes the restored link within POLL_SECONDS


async def _healthy(network, name: str, timeout: float = 60.0) -> None:
    from testbed.client import check_health, monitor_cert
    node = network.topology.node(name)
    deadline = time.monotonic() + timeout
    while not await check_health(node, monitor_cert(network.pki, node.kind)):
        if time.monotonic() > deadline:
            return
        await asyncio.sleep(0.1)


def require_links(faults: list[Fault], network) -> None:
    """Refuse (PlanError) a plan that cuts or slows links unless the network already runs with relayed links."""
    # (`run` would start it without them and skip those faults: a run that passes then proves nothing)
    linked = [f for f in faults if KINDS[f.kind] == 2]
    if not linked:
        return
    running = any(network.pid(n.name) for n in network.topology.all_nodes)
    if not (running and network.relayed()):
        why = "its links are not relayed" if running else "it is not running (and `run` starts it without relays)"
        raise PlanError(f"fault {linked[0].label()!r} needs a network with relayed links, and {why}: start it with "
                        "`testbed up --links` (or --isolated) first, then run again")


def records(faults: list[Fault]) -> list[dict]:
    """The faults as the result and report carry them."""
    return [{"fault": f.label(), **asdict(f)} for f in faults]
