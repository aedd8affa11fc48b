"""Bring a topology up as one process per node, report its status, and take it down."""
from __future__ import annotations

import asyncio
import json
import os
import signal
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
from testbed import modes, netns, processes
from testbed.client import async_channel, monitor_cert
from testbed.modes import Modes
from testbed.processes import alive  # (here too: where callers have found it)
from testbed.topology import Topology

ISOLATED = "topology.isolated.yaml"  # the topology of an isolated network: each node at its segment address
NETNS_PLAN = "netns.json"
START_TIMEOUT = 30.0  # seconds to wait for every node's health check …
START_PER_NODE = 1.5  # … or this many per node, if more (52 processes of 16 municipalities starting on two cores)
WAIT_HEALTH_TIMEOUT = 2.0  # seconds one health check may take while the network starts
STOP_TIMEOUT = 10.0  # seconds between SIGTERM and SIGKILL
HEALTH_PAUSE = 0.5  # seconds between two tries of a failed health check (`testbed status`)
NODE_MARKER = b"nodes"  # in every node's command line (also confined, or in its namespace, or forked by the zygote)
ZYGOTE_MARKER = b"nodes.zygote"  # the command line of the nodes' zygote
ZYGOTE_ENV = "TESTBED_ZYGOTE"  # "0": every node starts its own interpreter (as confined and isolated nodes do)
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
        return processes.running(self.pid_file(name))

    def modes(self) -> Modes:
        """The modes this network's nodes run in (or ran in, once stopped): testbed/modes.py."""
        return modes.load(self.state_dir, links=self.relayed(), isolated=self.isolated())

    def weakened(self) -> tuple[str, ...]:
        """The weaknesses this network was started with on purpose (training mode), if any."""
        return self.modes().weaken

    def confined(self) -> bool:
        """Whether this network's nodes run confined, each seeing only its own secrets (testbed/confine.py)."""
        return self.modes().confine

    def relayed(self) -> bool:
        """Whether node-to-node links go through the links relay (profiles, cuts: testbed/links.py)."""
        return relay.Paths(self.state_dir).plan.exists()  # (the plan the nodes read: the source of truth)

    def simulated_clock(self) -> bool:
        """Whether the nodes take the time of day of their time-of-day rules from the replay (nodes/clock.py)."""
        return self.modes().simulated_clock

    def up(self, weaken: tuple[str, ...] | None = None, confine: bool | None = None,
           links: bool | None = None, isolated: bool | None = None, simulated_clock: bool | None = None) -> list[dict]:
        """Start every node not already running, wait until all are healthy, return the status. With weaken,
        the nodes start with those weaknesses switched on on purpose (training mode); with confine, each in
        a view of the state folder that holds only its own secrets (None: as the running nodes are, else
        confined wherever the machine allows it)."""
        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._settle_modes(Modes(weaken, confine, links, isolated, simulated_clock))
        self._prepare_state()
        self._continue_stopped()
        self._check_ports()
        if self.relayed():  # (after the port check: a refused `up` leaves no relay behind)
            relay.start(self.state_dir, self.log_file("links"))
        self.start_witness()  # before the nodes: each shows the witness its head as it opens its log
        self._start_nodes()
        return self._wait_healthy()

    def _settle_modes(self, asked: Modes) -> None:
        """The modes asked for (None: as the running nodes are; when none run, the default), refused in one message
        naming every mode running nodes differ in; with none running, made the network's."""
        running = any(self.pid(n.name) for n in self.topology.all_nodes)
        if running and (differences := asked.differences(self.modes())):
            raise NetworkError(modes.refusal(differences))
        if asked.confine and (why := confinement.available()):
            raise NetworkError(f"{why}; run `testbed up --no-confine`")
        if running:
            return  # (as they run: nothing to change)
        settled = Modes(tuple(asked.weaken or ()),
                        not confinement.available() if asked.confine is None else asked.confine,  # where it can
                        bool(asked.links or asked.isolated), bool(asked.isolated), bool(asked.simulated_clock))
        if settled.isolated:
            self._enter_namespaces()
        elif self.isolated():  # (what a crash of an isolated network left)
            self._leave_namespaces()
        if settled.links and not settled.isolated:
            relay.write_plan(relay.Paths(self.state_dir), relay.loopback_plan(self.topology))
        elif not settled.links:
            relay.Paths(self.state_dir).plan.unlink(missing_ok=True)
        modes.save(self.state_dir, settled)

    def _enter_namespaces(self) -> None:
        """A network namespace for each node, its links relayed between them; the topology of their addresses."""
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

    def _prepare_state(self) -> None:
        """The PKI (made, or given what a target site named since needs), the topology the nodes read, run/, logs/."""
        if not self.pki.exists():
            self.pki.init(self.topology)
        else:
            self.pki.issue_missing(self.topology)
        if not self.isolated():
            self.topology.save(self.state_dir / "topology.yaml")
        for folder in ("run", "logs"):
            (self.state_dir / folder).mkdir(mode=0o700, exist_ok=True)

    def _continue_stopped(self) -> None:
        """A node stopped with SIGSTOP (a drill) runs again: `up` means running."""
        for node in self.topology.all_nodes:
            pid = self.pid(node.name)
            if pid and _stopped(pid):
                os.kill(pid, signal.SIGCONT)

    PORT_RELEASE_SECONDS = 3.0  # a node killed a moment ago may hold its port while its last threads exit

    def _check_ports(self) -> None:
        """Refuse to start when another program holds a port of a node to be started (an isolated network's nodes
        have their namespaces' addresses to themselves)."""
        if self.isolated():
            return
        held = [(address, node.name) for node in self.topology.all_nodes if not self.pid(node.name) and not node.external
                for address in node.listening if _taken(address, node.name)]
        # (asked again for a moment, together: a node killed just now lets go of its port a little after it is gone)
        deadline = time.monotonic() + self.PORT_RELEASE_SECONDS
        while held and time.monotonic() < deadline:
            time.sleep(0.05)
            held = [(address, name) for address, name in held if _taken(address, name)]
        taken = [_taken(address, name) for address, name in held]
        if taken:
            raise NetworkError(f"{taken[0]}; stop that program, or give a topology with other ports (--topology)")

    def _start_nodes(self) -> None:
        """Start each node not running, in the modes of the network: a process of its own, logged, recorded."""
        running = self.modes()
        env = {**os.environ, WEAKEN_ENV: ",".join(running.weaken), SIMULATED_ENV: "1" if running.simulated_clock else "0",
               **({BIND_ENV: "0.0.0.0"} if running.isolated else {})}  # (isolated: on every segment it is on)
        starting = [n for n in self.topology.all_nodes if not self.pid(n.name) and not n.external]  # (theirs to run)
        zygote = self._zygote(running) if starting else None
        for node in starting:
            program = [sys.executable, "-m", "nodes", "--topology", str(self.topology_file),
                       "--node", node.name, "--state-dir", str(self.state_dir)]
            if running.confine:
                program = confinement.command(self, node, program)
            if running.isolated:  # in its own namespace
                program = netns.command(node.name, program)
            if zygote:  # forked from the zygote: the same node, without its interpreter's start and imports
                started = processes.fork_node(zygote, program, self.log_file(node.name), env)
            else:
                started = processes.spawn(program, self.log_file(node.name), env)
            processes.write_record(self.pid_file(node.name), processes.Record.of(started, program, NODE_MARKER))

    def _zygote(self, modes: Modes) -> Path | None:
        """The socket of this network's nodes' zygote (nodes/zygote.py), started if need be; None where nodes are
        started with their own interpreter: isolated (each entered into its namespace by `ip netns exec`), or
        TESTBED_ZYGOTE=0."""
        if modes.isolated or os.environ.get(ZYGOTE_ENV) == "0":
            return None
        path = self.state_dir / "run" / "zygote.sock"
        processes.start_helper([sys.executable, "-m", "nodes.zygote", "--socket", str(path)],
                               self.state_dir / "run" / "zygote.json", self.log_file("zygote"), ZYGOTE_MARKER,
                               what="the nodes' zygote", ready=lambda: _answers(path), timeout=START_TIMEOUT)
        return path

    def _wait_healthy(self) -> list[dict]:
        """The status once every node answers its health check; NetworkError when one exits first, or the start
        timeout passes."""
        limit = start_timeout(len(self.topology.all_nodes))
        deadline = time.monotonic() + limit
        answered: set[str] = set()  # nodes that have answered SERVING once: not asked again (only their pid is looked at)
        while True:
            # (asking every node each turn, 50 handshakes at once on a machine still starting 50 processes, kept a few
            # of them over the timeout every turn: a network of 16 municipalities never came up)
            status = asyncio.run(self._status(WAIT_HEALTH_TIMEOUT, 1, answered))
            answered |= {s["name"] for s in status if s["healthy"]}
            if all(s["healthy"] for s in status):
                return status
            dead = [s["name"] for s in status if s["pid"] is None and not s["external"]]
            if dead or time.monotonic() > deadline:
                away = [s for s in status if s["external"] and not s["healthy"]]
                if away and not dead:  # (an external node is its operator's to start: say so, and where)
                    raise NetworkError(f"the external node {away[0]['name']} does not answer at {away[0]['address']} "
                                       f"({away[0]['reason']}): start it there (`testbed pki issue {away[0]['name']}` "
                                       "hands over its certificates), then `testbed up` again")
                sick = ", ".join(f"{s['name']} (pid {s['pid']}{', stopped' if s['pid'] and _stopped(s['pid']) else ''})"
                                 for s in status if not s["healthy"])
                why = f"exited: {', '.join(dead)}" if dead else f"not healthy after {limit:.0f} s: {sick}"
                raise NetworkError(f"network did not come up ({why}); see {self.state_dir / 'logs'}")
            time.sleep(0.1)  # (until every node answers, one exits, or the deadline)

    def status(self, timeout: float = 1.0, tries: int = 1) -> list[dict]:
        """One row per node: name, kind, municipality, address, identity, pid, healthy (else "reason": why not)."""
        # (a failed health check is tried again, up to tries in all, timeout seconds each)
        return asyncio.run(self._status(timeout, tries))

    async def _status(self, timeout: float = 1.0, tries: int = 1, answered: set[str] = frozenset()) -> list[dict]:
        nodes = self.topology.all_nodes
        pids = [self.pid(n.name) for n in nodes]
        pki = self.pki

        async def why_not(node, pid) -> str:
            if not pid and not node.external:  # (an external node runs elsewhere: only its answer tells)
                return "not running"
            if not pki.exists():
                return f"no PKI in {pki.dir}"
            if node.name in answered:
                return ""
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
             "external": n.external,
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
                    time.sleep(processes.POLL)  # (until it has exited, or STOP_TIMEOUT)
                if alive(pid):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass  # (it exited between the look and the kill)
                stopped.append(name)
            self.pid_file(name).unlink(missing_ok=True)
        processes.stop_recorded(self.state_dir / "run" / "zygote.json", ZYGOTE_MARKER,
                                self.state_dir / "run" / "zygote.sock")
        relay.stop(self.state_dir)
        witness.stop(self.witness_folder())  # after the nodes: their last heads are witnessed as they close
        if self.isolated():  # (its topology outlives a crash: what the crash left is found by name and removed)
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


def start_timeout(nodes: int) -> float:
    """Seconds a network of this many nodes has for every node to answer its health check."""
    return max(START_TIMEOUT, START_PER_NODE * nodes)


def _answers(path: Path) -> bool:
    """Whether a unix socket accepts a connection."""
    import socket
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        probe.connect(str(path))  # (OSError while it does not: not ready yet)
    return True


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


def status_table(rows: list[dict]) -> str:
    """The status rows as a fixed-width table."""
    why = any(r.get("reason") for r in rows)  # (a column of reasons only when a node is down)
    header = ("NODE", "KIND", "MUNICIPALITY", "ADDRESS", "PID", "HEALTH", "IDENTITY") + (("WHY DOWN",) if why else ())
    lines = [header] + [
        (r["name"] + (" (target)" if r.get("target") else "") + (" (external)" if r.get("external") else ""), r["kind"], r["municipality"] or "-", r["address"],
         str(r["pid"] or "-"), "SERVING" if r["healthy"] else "DOWN", r["identity"])
        + ((r.get("reason", ""),) if why else ())
        for r in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines)


def status_json(rows: list[dict], weakened: tuple[str, ...] = ()) -> str:
    """The status rows in the documented JSON form (each with "weakened" when the network is in training mode)."""
    keys = ("name", "kind", "municipality", "address", "identity", "healthy", "target")
    return json.dumps([{**{k: r[k] for k in keys}, **({"external": True} if r.get("external") else {}),
                        **({"reason": r["reason"]} if r.get("reason") else {}),
                        **({"weakened": list(weakened)} if weakened else {})} for r in rows],
                      ensure_ascii=False, indent=2)
