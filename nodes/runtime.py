"""The shared node runtime: what every node's parts use (its identity, the topology, authentication, the audit
chain, the durable store, secrets, peer channels and the outbox, background work and clean shutdown). The process
around it, its server, health, reflection and metrics, is nodes/server.py; Operations is nodes/operations.py.

A node module supplies only its servicer; everything here is the same for all of them.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path

import grpc
from cryptography import x509

from certs.identity import parse
from certs.pki import PKI, write_private
from nodes import audit, kinds, witness
from nodes.authn import Authenticator
from nodes.guard import CallContext
from nodes.metrics import NodeMetrics
from nodes.outbox import Outbox, Target
from nodes.peers import PeerWatch
from nodes.reasons import common as C
from nodes.rules import Violation
from nodes.store import Store
from nodes.topology import SEARCH_END
from nodes.tls import ClientCert, aio_channel, pinned
from nodes.weaken import weakened

log = logging.getLogger(__name__)

BIND_ENV = "TESTBED_BIND"
PEER_TIMEOUT = 10.0  # seconds a node waits on a peer's answer


SEARCH_CHAIN = SEARCH_END  # the audit chain of a node's search process, beside the node's own


def checkpoints_path(state_dir: Path, node_name: str, chain: str = "") -> Path:
    """Where a node (or, with chain, its search process) publishes its audit checkpoints: outside its data folder."""
    return Path(state_dir) / "checkpoints" / f"{node_name}{'.' + chain if chain else ''}.jsonl"


def audit_path(state_dir: Path, node_name: str, chain: str = "") -> Path:
    """A node's audit log, or (with chain) the audit log of its search process, in the node's data folder."""
    return Path(state_dir) / "data" / node_name / (f"{chain}-audit.jsonl" if chain else "audit.jsonl")


def _said_if_failed(task: asyncio.Task) -> None:
    """Log a background task that ended by an exception: it would otherwise stop in silence (a comparison at start,
    a poller), and the node would go on without it."""
    if not task.cancelled() and task.exception() is not None:
        log.error("background task %s stopped: %r", task.get_name(), task.exception(), exc_info=task.exception())


class NodeRuntime:
    """Everything a servicer needs: its node, the topology, store, audit log, outbox and peers."""

    def __init__(self, topology, node_name: str, state_dir: str | Path, pki_dir: str | Path, search: bool = False):
        self.topology = topology
        self.search = search  # the node's search process: reads the node's store, audits in a chain of its own
        self.label = f"{node_name}.{SEARCH_CHAIN}" if search else node_name  # (in messages and the audit)
        self.node = topology.node(node_name)
        self.identity = parse(self.node.identity)
        self.state_dir = Path(state_dir)
        self.pki = PKI(pki_dir)
        data = self.state_dir / "data" / node_name
        self.kind = kinds.kind(self.node.kind)
        self.module = kinds.load(self.kind)
        self.store = (Store(data / "store.sqlite", read_only=True) if search
                      else Store(data / "store.sqlite", self.module.schema))
        cert_path, key_path = self.pki.node_files(node_name, "client")
        public_key = x509.load_pem_x509_certificate(cert_path.read_bytes()).public_key()
        audit_key = b"" if weakened("audit-key") else self.pki.audit_key(node_name, create=True)
        chain = SEARCH_CHAIN if search else ""
        # Heads go to the witness of this network (outside the state folder, found from the environment: never
        # from a setting in the state folder, which whoever can write it could point elsewhere).
        self.audit = audit.AuditLog(audit_path(self.state_dir, node_name, chain), self.label, audit_key,
                                    checkpoints_path(self.state_dir, node_name, chain),
                                    audit.Signer(key_path.read_bytes()), public_key,
                                    witness.Client(witness.folder(self.state_dir, self.pki.dir)))
        self.authenticator = Authenticator(pki_dir, topology.identities(), data / "crl_numbers.json",
                                           topology.target_identities())
        self.topology_path: Path | None = topology.source
        cert, key = self.pki.node_files(node_name, "client")
        self.client_cert = ClientCert(cert, key, self.pki.trust_bundle)
        self.peer_addresses = self._links_plan()
        self.peer_watch = PeerWatch(self.authenticator, self.client_cert, self.peer_address)
        self.metrics = NodeMetrics(self)
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._background: list = []
        self._tasks: list[asyncio.Task] = []
        self.scrubbers: list = []  # (nodes/scrubber.py: the metrics read what each has found)
        self.outbox: Outbox | None = None
        self.servicer: kinds.NodeServicer | None = None
        self.peer_timeout = PEER_TIMEOUT
        # Operator sessions are signed per municipality; a node of one municipality checks only its own.
        # Sessions are checked with public keys: of this node's municipality, or of every municipality for a
        # node without one (the 中間サーバ's staff logins). Only kizon holds a signing key (see session_signer).
        self.session_keys = {m.code: key for m in topology.municipalities
                             if self.node.municipality in (None, m.code)
                             and (key := self.pki.session_public_key(m.code)) is not None}

    def own_secret(self, name: str, size: int = 32) -> bytes:
        """A secret of this node alone, in its own PKI folder (made on first use)."""
        path = self.pki.dir / "nodes" / self.node.name / name
        if not path.exists():
            write_private(path, os.urandom(size))
        return path.read_bytes()

    def _links_plan(self) -> dict[str, str]:
        """callee → the address to reach it at, from the links plan when the network relays its links
        (testbed/links.py): the relay of the link, with its profile; else every peer at its own address."""
        try:
            plan = json.loads((self.state_dir / "links" / "plan.json").read_text())
        except (OSError, ValueError):
            return {}
        prefix = f"{self.node.name}->"
        return {name[len(prefix):]: spec["listen"] for name, spec in plan.items() if name.startswith(prefix)}

    def peer_address(self, node) -> str:
        """Where this node reaches a peer: the relay of their link, or the peer's own address."""
        return self.peer_addresses.get(node.name, node.address)

    def channel(self, node) -> grpc.aio.Channel:
        """A cached mTLS channel to a peer node, presenting this node's client certificate."""
        ch = self._channels.get(node.name)
        if ch is None:
            self.peer_watch.watch(node)
            ch = self._channels[node.name] = aio_channel(self.peer_address(node), node.host_name,
                                                         pinned(self.client_cert, kinds.kind(node.kind).domain),
                                                         self.peer_watch.interceptors(node))
        return ch

    def stub(self, stub_class, kind: str, municipality: str | None = None, prefecture: str | None = None):
        """A stub of stub_class on the peer node of kind (for a municipality or prefecture); a migration target
        talks to the targets of its own site where there are some (its kizon to its atena)."""
        own_site = [n for n in self.topology.targets if self.node.site and n.site == self.node.site
                    and n.kind == kind and n.municipality == municipality]
        return stub_class(self.channel(own_site[0] if own_site else self.topology.find(kind, municipality, prefecture)))

    def reload_topology(self) -> bool:
        """Read the topology file again (after a cut over, `testbed` sends SIGHUP): admit whom it names now, the
        targets read-only. Whether anything changed."""
        if self.topology_path is None:
            return False
        try:
            topology = type(self.topology).load(self.topology_path)
            node = topology.node(self.node.name)
        except (OSError, ValueError, KeyError) as exc:
            log.error("topology not reloaded from %s: %s; keeping the one in use", self.topology_path, exc)
            return False
        if topology.to_dict() == self.topology.to_dict():
            return False
        self.topology, self.node = topology, node
        self.authenticator.set_roster(topology.identities(), topology.target_identities())
        log.info("topology reloaded: %d nodes, %d targets; admitted identities updated", len(topology.nodes),
                 len(topology.targets))
        return True

    async def call_peer(self, method, request, peer: str, unreachable: str = ""):
        """Call a peer; its refusal comes back as a Violation with the same status, naming the peer.
        With `unreachable`, a peer that cannot be reached is UNAVAILABLE with that explanation."""
        try:
            return await method(request, timeout=self.peer_timeout)
        except grpc.aio.AioRpcError as exc:
            if unreachable and exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise C.PEER_UNAVAILABLE(f"{peer} unreachable ({exc.code().name}): {unreachable}") from None
            raise Violation.relayed(exc, peer) from None

    def use_outbox(self, targets: dict[str, Target]) -> Outbox:
        """Give this node a durable outbox delivering to the given targets."""
        self.outbox = Outbox(self.store, targets, timeout=PEER_TIMEOUT)
        return self.outbox

    @property
    def municipality(self):
        """The municipality this node belongs to (its topology entry), or None."""
        return self.topology.municipality(self.node.municipality) if self.node.municipality else None

    def may_see_number(self, call: "CallContext") -> bool:
        """個人番号 is shown to nodes, and to operators with the permission on registered terminals."""
        if not call.is_terminal:
            return True
        return (call.session is not None and "individual_number" in call.session.roles
                and call.terminal in self.municipality.number_terminals)

    def background(self, coroutine_function) -> None:
        """Run coroutine_function() as a task while the server runs (batches, pollers)."""
        self._background.append(coroutine_function)

    def scrub(self, scrubber) -> None:
        """Run a scrubber over one of the node's tables while the server runs."""
        self.scrubbers.append(scrubber)
        self.background(scrubber.run)

    def start_background(self) -> None:
        """Start the outbox and the background tasks once the server is up."""
        if self.outbox is not None:
            self.outbox.start()
        self._background.append(self._checkpoints)
        self._background.append(self.peer_watch.run)
        self._tasks = [asyncio.create_task(f(), name=f.__name__) for f in self._background]
        for task in self._tasks:
            task.add_done_callback(_said_if_failed)

    async def _checkpoints(self) -> None:
        """Publish a signed checkpoint of the audit log, and show its head to the witness, every few seconds."""
        while True:
            await asyncio.sleep(audit.CHECKPOINT_SECONDS)
            self.audit.checkpoint(show=False)
            if self.audit.unwitnessed:  # (from a thread: a slow or stopped witness never holds up the node's calls)
                await asyncio.to_thread(self.audit.show, self.audit.head_now())

    async def close(self) -> None:
        """Stop background work and deliveries, close peer channels, the store and the audit log."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.outbox is not None:
            await self.outbox.stop()
        for ch in self._channels.values():
            await ch.close()
        self.store.close()
        self.audit.close()
