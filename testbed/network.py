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

import grpc
import psutil
from cryptography import x509
from grpc_health.v1 import health_pb2, health_pb2_grpc

from certs.pki import PKI
from nodes import audit, witness
from nodes.clock import SIMULATED_ENV
from nodes.runtime import BIND_ENV, audit_path, checkpoints_path
from nodes.weaken import ENV as WEAKEN_ENV
from testbed import confine as confinement
from testbed import links as relay
from testbed import netns
from testbed.client import async_channel, monitor_cert
from testbed.topology import Topology

ISOLATED = "topology.isolated.yaml"  # the topology of an isolated network: each node at its segment address
NETNS_PLAN = "netns.json"
START_TIMEOUT = 30.0  # seconds to wait for every node's health check
STOP_TIMEOUT = 10.0  # seconds between SIGTERM and SIGKILL
HEALTH_PAUSE = 0.5  # seconds between two tries of a failed health check (`testbed status`)
BASTION_CHAIN = "bastion"  # the bastion's audit chain (testbed/bastion.py), verified beside the nodes'


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
        """The audit chains of nodes (NODE, NODE.search); by default every chain: also the bastion's, the archived ones
        and any other the witness holds heads of (whose log, then, has gone)."""
        chains = [label for n in (self.topology.all_nodes if nodes is None else nodes) for label, _ in n.ends()]
        if nodes is not None:
            return chains
        extra = []
        if self._bastion_paths().audit.exists():
            extra.append(BASTION_CHAIN)
        archive = self.state_dir / "archive"
        if archive.is_dir():
            extra += sorted(p.parent.name for p in archive.glob("*/audit.jsonl"))
        extra += sorted(witness.read_heads(self.witness_folder()).chains)
        return chains + [c for c in dict.fromkeys(extra) if c not in chains]

    def witness_folder(self) -> Path:
        """Where this network's audit witness keeps its key and its log (outside the state folder: nodes/witness.py)."""
        return witness.folder(self.state_dir, self.pki.dir)

    def start_witness(self) -> int:
        """Start this network's audit witness (once; nodes/witness.py); its process id."""
        try:
            return witness.start(self.witness_folder(), self.log_file("witness"), self.state_dir)
        except (witness.WitnessUnavailable, OSError) as exc:
            raise NetworkError(f"{exc}; the witness folder is {self.witness_folder()} (${witness.ENV} moves it)") from None

    def _bastion_paths(self):
        from testbed.bastion import Paths  # (here: the bastion module imports the migration, which imports this one)
        return Paths(self.state_dir)

    def _live(self, chain: str) -> bool:
        return any(chain == label for n in self.topology.all_nodes for label, _ in n.ends())

    def audit_file(self, chain: str) -> Path:
        """The hash-chained audit log of a chain: a node (NODE), its search process (NODE.search), the bastion, or
        the archived log of a decommissioned node."""
        if chain == BASTION_CHAIN:
            return self._bastion_paths().audit
        name, _, own = chain.partition(".")
        archived = self.state_dir / "archive" / name / "audit.jsonl"
        if not own and not self._live(chain) and archived.exists():
            return archived
        return audit_path(self.state_dir, name, own)

    def checkpoints_file(self, chain: str) -> Path:
        """Where a chain's signed checkpoints are published (outside the node's data folder; archived beside an
        archived log)."""
        name, _, own = chain.partition(".")
        archived = self.state_dir / "archive" / name / f"{name}.jsonl"
        if not own and not self._live(chain) and archived.exists():
            return archived
        return checkpoints_path(self.state_dir, name, own)

    def chain_of(self, path: Path) -> str | None:
        """The chain a file is the log of, by where it is (None for a file elsewhere, such as a copy)."""
        try:
            where = Path(path).resolve()
            return next((c for c in self.audit_chains() if self.audit_file(c).resolve() == where), None)
        except OSError:
            return None

    def verify_audit(self, chain: str, path: Path | None = None) -> audit.Verification:
        """Check an audit chain: keyed under its audit key, against its signed checkpoints and every head its witness
        holds; whatever is missing or unreadable is a problem in the result, never an exception."""
        # An archived chain's key and certificate went with its site: its witnessed heads (digests) check it alone.
        # The witness first: a head witnessed after the log was read would look like a cut.
        heads = witness.read_heads(self.witness_folder())
        witnessed = heads.of(chain)
        path = Path(path) if path else self.audit_file(chain)
        problems = [f"the witness's log: {p}" for p in heads.problems]
        name = chain.partition(".")[0]
        live = self._live(chain)
        key, marks, forged, signed = None, [], [], False
        if chain == BASTION_CHAIN:
            key_path = self._bastion_paths().audit_key
        else:
            key_path = self.pki.audit_key_path(name)
            cert_path = self.pki.node_files(name, "client")[0]
            try:
                public_key = x509.load_pem_x509_certificate(cert_path.read_bytes()).public_key()
                marks, forged = audit.read_checkpoints(self.checkpoints_file(chain), public_key)
                signed = True
            except (OSError, ValueError) as exc:
                if live:  # (a decommissioned node's certificate went with its site: its witnessed heads remain)
                    problems.append(f"its checkpoints cannot be checked: the node's certificate {cert_path} cannot be "
                                    f"read ({getattr(exc, 'strerror', None) or exc})")
        try:
            key = b"" if "audit-key" in self.weakened() and chain != BASTION_CHAIN else key_path.read_bytes()
        except OSError as exc:
            if live or chain == BASTION_CHAIN:
                problems.append(f"its audit key {key_path} cannot be read ({exc.strerror}): only the witnessed heads "
                                "are checked")
        try:
            result = audit.verify(path, key, marks, witnessed, node=chain)
        except OSError as exc:
            result = audit.Verification(str(path))
            if not isinstance(exc, FileNotFoundError):
                problems.append(f"{path} cannot be read ({exc.strerror})")
            elif witnessed and witnessed[-1]["seq"]:
                problems.append(f"the log {path} is gone, but the witness holds {witnessed[-1]['seq']} entries of it "
                                f"(witnessed {witnessed[-1]['time']}; rule audit/witnessed)")
            elif forged or marks:
                problems.append(f"the log {path} is gone, but checkpoints were published for it")
        result.problems[:0] = problems + forged
        if result.entries and not witnessed and not heads.problems:
            result.problems.append(f"no head of this chain was witnessed ({self.witness_folder()} "
                                   f"{'holds none' if heads.exists else 'does not exist'}): the witness runs beside the "
                                   f"nodes (`testbed up`); with ${witness.ENV}, give it as when the network ran "
                                   "(rule audit/witnessed)")
        if signed and result.entries and not marks and not forged:
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
        self.start_witness()  # before the nodes: each shows the witness its head as it opens its log
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

    def status(self, timeout: float = 1.0, tries: int = 1) -> list[dict]:
        """One row per node: name, kind, municipality, address, identity, pid, healthy (else "reason": why not)."""
        # (a failed health check is tried again, up to tries in all, timeout seconds each)
        return asyncio.run(self._status(timeout, tries))

    async def _status(self, timeout: float = 1.0, tries: int = 1) -> list[dict]:
        nodes = self.topology.all_nodes
        pids = [self.pid(n.name) for n in nodes]
        pki = self.pki

        async def why_not(node, pid) -> str:
            if not pid:
                return "not running"
            if not pki.exists():
                return f"no PKI in {pki.dir}"
            for attempt in range(tries):
                reason = await _healthy(node, monitor_cert(pki, node.kind), timeout)
                if not reason:
                    return ""
                if attempt + 1 < tries:
                    await asyncio.sleep(HEALTH_PAUSE)  # a node busy right after `up` answers a moment later
            return reason

        reasons = await asyncio.gather(*(why_not(n, pid) for n, pid in zip(nodes, pids)))
        return [
            {"name": n.name, "kind": n.kind, "municipality": n.municipality, "address": n.address,
             "identity": n.identity, "pid": pid, "healthy": not reason, "target": n in self.topology.targets,
             **({"reason": reason} if reason else {})}
            for n, pid, reason in zip(nodes, pids, reasons)
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
        witness.stop(self.witness_folder())  # after the nodes: their last heads are witnessed as they close
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


async def _healthy(node, cert, timeout: float = 1.0) -> str:
    """"" when a node serves, and so does its search process if it has one; else why not."""
    ends = [node] + ([node.search_end()] if node.search_address else [])
    reasons = await asyncio.gather(*(_health(end, cert, timeout) for end in ends))
    return "; ".join(f"{'search process: ' if end is not node else ''}{reason}"
                     for end, reason in zip(ends, reasons) if reason)


async def _health(end, cert, timeout: float) -> str:
    """"" when one end answers SERVING to its health check over mTLS; else why not, in a few words."""
    async with async_channel(end, cert, verify_server=False) as ch:  # a health check sends nothing to verify
        try:
            reply = await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            return _reason(exc, timeout)
    return "" if reply.status == health_pb2.HealthCheckResponse.SERVING else \
        health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


def _reason(exc: grpc.aio.AioRpcError, timeout: float) -> str:
    """A failed health check in a few words: refused, no answer in time, TLS, or gRPC's own first line."""
    details = (exc.details() or "").lower()
    if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
        return f"no answer within {timeout:g} s (deadline; busy? `testbed status --timeout 5`)"
    if "connection refused" in details:
        return "connection refused (nothing listens at its port)"
    if "handshake read failed" in details or "endpoint closing" in details:  # connected, and then no answer at all
        return f"no answer within {timeout:g} s (TLS handshake not answered: stopped or busy? `testbed status --timeout 5`)"
    if any(word in details for word in ("ssl", "tls", "handshake", "certificate")):
        return "TLS handshake failed (certificates? `testbed probe`)"
    first = (exc.details() or "").splitlines()[0] if exc.details() else ""
    return f"{exc.code().name}: {first[:120]}" if first else exc.code().name


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
    why = any(r.get("reason") for r in rows)  # (a column of reasons only when a node is down)
    header = ("NODE", "KIND", "MUNICIPALITY", "ADDRESS", "PID", "HEALTH", "IDENTITY") + (("WHY DOWN",) if why else ())
    lines = [header] + [
        (r["name"] + (" (target)" if r.get("target") else ""), r["kind"], r["municipality"] or "-", r["address"],
         str(r["pid"] or "-"), "SERVING" if r["healthy"] else "DOWN", r["identity"])
        + ((r.get("reason", ""),) if why else ())
        for r in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines)


def status_json(rows: list[dict], weakened: tuple[str, ...] = ()) -> str:
    """The status rows in the documented JSON form (each with "weakened" when the network is in training mode)."""
    keys = ("name", "kind", "municipality", "address", "identity", "healthy", "target")
    return json.dumps([{**{k: r[k] for k in keys}, **({"reason": r["reason"]} if r.get("reason") else {}),
                        **({"weakened": list(weakened)} if weakened else {})} for r in rows],
                      ensure_ascii=False, indent=2)
