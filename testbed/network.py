"""Bring a topology up as one process per node, report its status, and take it down."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
from cryptography import x509

from certs.pki import PKI
from nodes import audit
from nodes.clock import SIMULATED_ENV
from nodes.runtime import BIND_ENV, audit_path, checkpoints_path
from nodes.weaken import ENV as WEAKEN_ENV
from testbed import confine as confinement
from testbed import links as relay
from testbed import netns
from testbed.client import check_health, monitor_cert
from testbed.topology import Topology

ISOLATED = "topology.isolated.yaml"  # the topology of an isolated network: each node at its segment address
NETNS_PLAN = "netns.json"
START_TIMEOUT = 30.0  # seconds to wait for every node's health check
STOP_TIMEOUT = 10.0  # seconds between SIGTERM and SIGKILL


class NetworkError(RuntimeError):
    """The network cannot be brought up as asked (ports taken, nodes running otherwise, a node that does not
    start): a message that says what to do, for the command line to print in one line."""


@dataclass
class Network:
    """A topology bound to a state folder: PKI, data, logs, pid files and the topology in use."""

    state_dir: Path
    topology: Topology

    @classmethod
    def open(cls, state_dir: Path, topology_path: str | None = None) -> "Network":
        """The network of a state folder: its saved topology, else the given or default one."""
        saved, placed = state_dir / "topology.yaml", state_dir / ISOLATED
        if topology_path is None and placed.exists():  # an isolated network: its nodes at their segment addresses
            return cls(state_dir, Topology.load(placed))
        if topology_path is None and saved.exists():
            return cls(state_dir, Topology.load(saved))
        return cls(state_dir, Topology.load(topology_path))

    def isolated(self) -> bool:
        """Whether the nodes run in network namespaces of their own (testbed/netns.py)."""
        return (self.state_dir / ISOLATED).exists()

    @property
    def topology_file(self) -> Path:
        """The topology file the nodes read (and re-read on SIGHUP)."""
        return self.state_dir / (ISOLATED if self.isolated() else "topology.yaml")

    def replace_topology(self, topology: Topology) -> None:
        """Make topology the one in use (a cut over): the nodes' file, and the logical one for the next `up`."""
        if self.isolated():
            topology.save(self.state_dir / ISOLATED)
            logical = Topology.load(self.state_dir / "topology.yaml")
            by_name = {n.name: n for n in logical.all_nodes}
            Topology(topology.name, [by_name[n.name] for n in topology.nodes], list(topology.municipalities),
                     dict(topology.prefectures), kiosks=topology.kiosks,
                     targets=[by_name[n.name] for n in topology.targets]).save(self.state_dir / "topology.yaml")
        else:
            topology.save(self.state_dir / "topology.yaml")
        self.topology = topology

    @property
    def pki(self) -> PKI:
        """The network's PKI."""
        return PKI(self.state_dir / "pki")

    def pid_file(self, name: str) -> Path:
        """Where a node's process id is kept while it runs."""
        return self.state_dir / "run" / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        """A node's log."""
        return self.state_dir / "logs" / f"{name}.log"

    def audit_chains(self, nodes=None) -> list[str]:
        """The audit chains of nodes (default: all): each node's own, and NODE.search of a CS's search process."""
        return [label for n in (self.topology.all_nodes if nodes is None else nodes) for label, _ in n.ends()]

    def audit_file(self, chain: str) -> Path:
        """The hash-chained audit log of a node (NODE) or of its search process (NODE.search)."""
        name, _, own = chain.partition(".")
        return audit_path(self.state_dir, name, own)

    def checkpoints_file(self, chain: str) -> Path:
        """Where a chain's signed checkpoints are published (outside the node's data folder)."""
        name, _, own = chain.partition(".")
        return checkpoints_path(self.state_dir, name, own)

    def verify_audit(self, chain: str, path: Path | None = None) -> audit.Verification:
        """Check an audit chain (NODE or NODE.search): keyed under the node's audit key, and every signed
        checkpoint published for it."""
        name = chain.partition(".")[0]
        path = path or self.audit_file(chain)
        cert = x509.load_pem_x509_certificate(self.pki.node_files(name, "client")[0].read_bytes())
        marks, forged = audit.read_checkpoints(self.checkpoints_file(chain), cert.public_key())
        key = b"" if "audit-key" in self.weakened() else self.pki.audit_key(name)  # as the nodes were told to
        result = audit.verify(path, key, marks)
        result.problems[:0] = forged
        if result.entries and not marks and not forged:
            result.problems.append(f"no checkpoint published for {result.entries} entries (checkpoints removed?)")
        return result

    def pid(self, name: str) -> int | None:
        """The running process of a node, or None."""
        try:
            pid = int(self.pid_file(name).read_text())
        except (OSError, ValueError):
            return None
        return pid if alive(pid) else None

    def weakened(self) -> tuple[str, ...]:
        """The weaknesses this network was started with on purpose (training mode), if any."""
        path = self.state_dir / "weaken"
        return tuple(path.read_text().split(",")) if path.exists() and path.read_text().strip() else ()

    def confined(self) -> bool:
        """Whether this network's nodes run confined, each seeing only its own secrets (testbed/confine.py)."""
        return (self.state_dir / "confine").exists()

    def relayed(self) -> bool:
        """Whether node-to-node links go through the links relay (profiles, cuts: testbed/links.py)."""
        return relay.Paths(self.state_dir).plan.exists()

    def simulated_clock(self) -> bool:
        """Whether the nodes take the time of day of their time-of-day rules from the replay (nodes/clock.py)."""
        return (self.state_dir / "simulated-clock").exists()

    def up(self, weaken: tuple[str, ...] | None = None, confine: bool | None = None,
           links: bool | None = None, isolated: bool | None = None, simulated_clock: bool | None = None) -> list[dict]:
        """Start every node not already running, wait until all are healthy, return the status. With weaken,
        the nodes start with those weaknesses switched on on purpose (training mode); with confine, each in
        a view of the state folder that holds only its own secrets (None: as the running nodes are, else
        confined wherever the machine allows it)."""
        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        running = any(self.pid(n.name) for n in self.topology.all_nodes)
        marker = self.state_dir / "weaken"
        if weaken is not None:
            if running and tuple(weaken) != self.weakened():
                raise NetworkError("nodes are running with other weaknesses; `testbed down` first")
            marker.write_text(",".join(weaken))
        elif not running:
            marker.unlink(missing_ok=True)
        if confine is None and not running:
            confine = not confinement.available()  # confined wherever the machine allows it
        if confine is not None:
            if running and confine != self.confined():
                raise NetworkError(f"nodes are running {'un' if confine else ''}confined; `testbed down` first")
            if confine and (why := confinement.available()):
                raise NetworkError(f"{why}; run `testbed up --no-confine`")
            (self.state_dir / "confine").touch() if confine else (self.state_dir / "confine").unlink(missing_ok=True)
        if isolated is not None or not running:
            if running and isolated is not None and isolated != self.isolated():
                raise NetworkError(f"nodes are running {'not ' if isolated else ''}isolated; `testbed down` first")
            if isolated and not running:
                if why := netns.available():
                    raise NetworkError(why)
                self.topology.save(self.state_dir / "topology.yaml")  # the logical topology, for a later `up`
                layout = netns.plan(self.topology)
                netns.create(self.topology, layout)
                netns.save(self.state_dir / NETNS_PLAN, layout)
                placed = netns.placed(self.topology, layout)
                placed.save(self.state_dir / ISOLATED)
                self.topology = placed
                relay.write_plan(relay.Paths(self.state_dir), relay.isolated_plan(self.topology, layout))
                links = True
            elif not isolated and not running and self.isolated():
                self._leave_namespaces()
        if links is not None or not running:
            if running and links is not None and bool(links) != self.relayed():
                raise NetworkError(f"nodes are running {'without' if links else 'with'} relayed links; `testbed down` first")
            if links and not running and not self.isolated():
                relay.write_plan(relay.Paths(self.state_dir), relay.loopback_plan(self.topology))
            elif not links:
                relay.Paths(self.state_dir).plan.unlink(missing_ok=True)
        clock = self.state_dir / "simulated-clock"
        if simulated_clock is not None:
            if running and simulated_clock != self.simulated_clock():
                raise NetworkError(f"nodes are running {'without' if simulated_clock else 'with'} the simulated clock; "
                                   "`testbed down` first")
            clock.touch() if simulated_clock else clock.unlink(missing_ok=True)
        elif not running:
            clock.unlink(missing_ok=True)
        env = {**os.environ, WEAKEN_ENV: ",".join(self.weakened()),
               SIMULATED_ENV: "1" if self.simulated_clock() else "0"}
        if not self.pki.exists():
            self.pki.init(self.topology)
        else:
            self.pki.issue_missing(self.topology)  # a target site named since the PKI was made
        if not self.isolated():
            self.topology.save(self.state_dir / "topology.yaml")
        for folder in ("run", "logs"):
            (self.state_dir / folder).mkdir(mode=0o700, exist_ok=True)
        for node in self.topology.all_nodes:
            pid = self.pid(node.name)
            if pid and _stopped(pid):
                os.kill(pid, signal.SIGCONT)  # stopped (SIGSTOP, a drill): `up` means running again
        if not self.isolated():
            taken = [_taken(address, node.name) for node in self.topology.all_nodes if not self.pid(node.name)
                     for address in node.listening]
            taken = [t for t in taken if t]
            if taken:
                raise NetworkError(f"{taken[0]}; stop that program, or give a topology with other ports (--topology)")
        if self.relayed():  # (after the check: a refused `up` leaves no relay behind)
            relay.start(self.state_dir, self.log_file("links"))
        for node in self.topology.all_nodes:
            if self.pid(node.name):
                continue
            log = open(os.open(self.log_file(node.name), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "ab")
            program = [sys.executable, "-m", "nodes", "--topology", str(self.topology_file),
                       "--node", node.name, "--state-dir", str(self.state_dir)]
            if self.confined():
                program = confinement.command(self, node, program)
            if self.isolated():  # in its own namespace, listening on every segment it is on
                program = netns.command(node.name, program)
            proc = subprocess.Popen(program, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True,
                                    env={**env, BIND_ENV: "0.0.0.0"} if self.isolated() else env)
            self.pid_file(node.name).write_text(str(proc.pid))
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            status = self.status()
            if all(s["healthy"] for s in status):
                return status
            dead = [s["name"] for s in status if s["pid"] is None]
            if dead or time.monotonic() > deadline:
                sick = ", ".join(f"{s['name']} (pid {s['pid']}{', stopped' if s['pid'] and _stopped(s['pid']) else ''})"
                                 for s in status if not s["healthy"])
                why = f"exited: {', '.join(dead)}" if dead else f"not healthy after {START_TIMEOUT:.0f} s: {sick}"
                raise NetworkError(f"network did not come up ({why}); see {self.state_dir / 'logs'}")
            time.sleep(0.1)

    def status(self) -> list[dict]:
        """One row per node: name, kind, municipality, address, identity, pid, healthy."""
        return asyncio.run(self._status())

    async def _status(self) -> list[dict]:
        nodes = self.topology.all_nodes
        pids = [self.pid(n.name) for n in nodes]
        pki = self.pki
        checks = [_healthy(n, monitor_cert(pki, n.kind)) if pid and pki.exists() else _false()
                  for n, pid in zip(nodes, pids)]
        healthy = await asyncio.gather(*checks)
        return [
            {"name": n.name, "kind": n.kind, "municipality": n.municipality, "address": n.address,
             "identity": n.identity, "pid": pid, "healthy": bool(ok), "target": n in self.topology.targets}
            for n, pid, ok in zip(nodes, pids, healthy)
        ]

    def down(self) -> list[str]:
        """Stop every node: SIGTERM, then SIGKILL after STOP_TIMEOUT; return the names stopped."""
        stopped = []
        running = {n.name: self.pid(n.name) for n in self.topology.all_nodes}
        for pid in running.values():
            if pid:
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for name, pid in running.items():
            if pid:
                while alive(pid) and time.monotonic() < deadline:
                    time.sleep(0.05)
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)
                stopped.append(name)
            self.pid_file(name).unlink(missing_ok=True)
        relay.stop(self.state_dir)
        if self.isolated():  # (the marker outlives a crash: what the crash left is found by name and removed)
            self._leave_namespaces()
        return stopped

    def _leave_namespaces(self) -> None:
        """Remove the namespaces, bridges and veths (also those a crash left), and go back to the logical topology."""
        netns.destroy()
        for name in (ISOLATED, NETNS_PLAN):
            (self.state_dir / name).unlink(missing_ok=True)
        relay.Paths(self.state_dir).plan.unlink(missing_ok=True)
        if (self.state_dir / "topology.yaml").exists():
            self.topology = Topology.load(self.state_dir / "topology.yaml")


async def _false() -> bool:
    return False


async def _healthy(node, cert) -> bool:
    """A node serves, and so does its search process if it has one."""
    ends = [node] + ([node.search_end()] if node.search_address else [])
    return all(await asyncio.gather(*(check_health(end, cert) for end in ends)))


def _stopped(pid: int) -> bool:
    """Whether a process is stopped (SIGSTOP)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T"
    except (OSError, IndexError):
        return False


def _taken(address: str, node: str) -> str:
    """"" if a node's address can be listened on, else who holds it."""
    import socket
    host, port = address.rsplit(":", 1)
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, int(port)))
            return ""
        except OSError:
            pass
    holder = ""
    try:
        for conn in psutil.net_connections("tcp"):
            if conn.laddr and conn.laddr.port == int(port) and conn.status == psutil.CONN_LISTEN and conn.pid:
                holder = f" by pid {conn.pid} ({' '.join(psutil.Process(conn.pid).cmdline()[:4]).replace(chr(10), ' ')[:80]})"
                break
    except (psutil.Error, OSError):
        pass
    return f"port {port} of {node} ({address}) is taken{holder}"


def alive(pid: int) -> bool:
    """Whether a process runs (a zombie does not; a child of ours is reaped on the way)."""
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    # A zombie of another parent still answers kill(0); /proc says whether it is really running.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def status_table(rows: list[dict]) -> str:
    """The status rows as a fixed-width table."""
    header = ("NODE", "KIND", "MUNICIPALITY", "ADDRESS", "PID", "HEALTH", "IDENTITY")
    lines = [header] + [
        (r["name"] + (" (target)" if r.get("target") else ""), r["kind"], r["municipality"] or "-", r["address"],
         str(r["pid"] or "-"),
         "SERVING" if r["healthy"] else "DOWN", r["identity"])
        for r in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines)


def status_json(rows: list[dict], weakened: tuple[str, ...] = ()) -> str:
    """The status rows in the documented JSON form (each with "weakened" when the network is in training mode)."""
    keys = ("name", "kind", "municipality", "address", "identity", "healthy", "target")
    return json.dumps([{**{k: r[k] for k in keys}, **({"weakened": list(weakened)} if weakened else {})} for r in rows],
                      ensure_ascii=False, indent=2)
