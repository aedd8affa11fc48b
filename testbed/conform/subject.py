"""The node under test, as a conformance case reaches it: channels to it as any identity of the topology, a
counter operator's session at its municipality, and a person registered for the run.

A case talks to the subject only over the wire, exactly as the network's own callers do; what a case needs made
first (a person, a session) it makes through the network's doors (kizon's counter), never in a store. A migration
target before its cut over takes no change, so its person is one it already holds (the migration names them) and
a case that needs a change accepted there is SKIPPED by the run (testbed/conform/run.py).
"""
from __future__ import annotations

import time

import grpc

from nodes.clock import office_today
from nodes.tls import ClientCert
from protos import common_pb2, cs_pb2_grpc, kizon_pb2, kizon_pb2_grpc, records_pb2
from scenarios.towns import towns
from testbed.client import (channel, login_request, monitor_cert, node_cert, server_verdict, session_metadata,
                            terminal_cert)
from testbed.conform.case import Skipped
from testbed.kit import Minter
from testbed.requests import with_notifier

CALL_TIMEOUT = 10.0
ARRIVAL = 20.0  # seconds a person registered at kizon may take to reach the subject CS


class Subject:
    """The node under test in its network (whose PKI issues its callers' certificates)."""

    def __init__(self, network, node, resident: str = ""):
        self.network, self.node = network, node
        self.target = node in network.topology.targets  # a migration target not yet cut over to (frozen)
        self.resident = resident  # a 住民票コード the node holds, the person of the run at a target
        self.role, self.municipality = node.kind, node.municipality
        self.pki, self.topology = network.pki, network.topology
        self.minter = Minter(network.pki, "conform")
        self._channels: dict[tuple, grpc.Channel] = {}  # (certificate, address) → one channel, for every case
        self._judged: dict[str, str] = {}  # address → the peer rule's verdict on its server certificate ("" good)
        self._sessions: dict[str, tuple] = {}  # operator → session metadata
        self._person: records_pb2.ResidentRecord | None = None

    # -- channels ---------------------------------------------------------------------------------------------
    def channel(self, cert: ClientCert, end=None) -> grpc.Channel:
        """A channel to the subject (or to one of its ends, e.g. a CS's search process) with this certificate: the
        same one for every case that asks (one handshake, not one a case)."""
        end = end or self.node
        key = (str(cert.cert), end.address)
        if key not in self._channels:
            if end.address not in self._judged:  # the peer rule, once an end: its certificate is the same to every caller
                self._judged[end.address] = server_verdict(end, monitor_cert(self.pki, end.kind))
            self._channels[key] = channel(end, cert, verify_server=bool(self._judged[end.address]))
        return self._channels[key]

    def as_node(self, name: str) -> grpc.Channel:
        """A channel to the subject as the node name of the topology calls it."""
        return self.channel(node_cert(self.pki, name))

    def as_monitor(self) -> grpc.Channel:
        """A channel to the subject with its trust domain's monitor certificate."""
        return self.channel(monitor_cert(self.pki, self.role))

    def home(self) -> str:
        """The municipality the subject serves, or the first of the topology for a node of the whole network."""
        return self.municipality or self.topology.municipalities[0].code

    def terminal(self) -> ClientCert:
        """The first counter terminal of the subject's municipality."""
        return terminal_cert(self.pki, self.home(), self.topology.municipality(self.home()).terminals[0])

    def kizon(self):
        """The 既存住基 that serves the subject's municipality: the subject itself when it is one."""
        if self.role == "kizon":
            return self.node
        try:
            return self.topology.find("kizon", self.home())
        except KeyError:
            raise Skipped(f"no 既存住基 serves {self.home()} in this topology") from None

    # -- what cases need made first ---------------------------------------------------------------------------
    def session(self, operator: str | None = None) -> tuple[tuple[str, str], ...]:
        """Call metadata of an operator (default: the municipality's first) logged in at its first terminal (made
        once each)."""
        place = self.topology.municipality(self.home())
        operator = operator or place.operators[0].id
        if operator not in self._sessions:
            stub = kizon_pb2_grpc.KizonStub(self.channel(self.terminal(), self.kizon()))
            token = stub.Login(login_request(self.network, place.code, operator), timeout=CALL_TIMEOUT)
            self._sessions[operator] = session_metadata(token.token)
        return self._sessions[operator]

    def person(self) -> records_pb2.ResidentRecord:
        """A person registered for the run (国外転入 at the municipality's counter), once; at a CS subject, once
        the CS holds them."""
        if self._person is None and self.target:
            self._person = self._held()
        if self._person is None:
            stub = kizon_pb2_grpc.KizonStub(self.channel(self.terminal(), self.kizon()))
            reply = stub.MoveIn(with_notifier(kizon_pb2.MoveInRequest(
                person=records_pb2.ResidentRecord(name_kanji="適合 試験", name_kana="テキゴウ シケン",
                                                  birth_date="1990-04-01", sex="9"),
                address=records_pb2.Address(town_code=towns(self.home())[0].code, address_line="1番地"),
                move_in_date=office_today().isoformat(), from_abroad=True)), metadata=self.session(), timeout=30)
            if self.role == "cs":  # (once: the first case that needs the person waits for them)
                self._arrived(reply.records[0].resident_code)
            self._person = reply.records[0]
        return self._person

    def _held(self) -> records_pb2.ResidentRecord:
        """The person at a target: one its register holds (a target takes no 国外転入 before the cut over)."""
        if not self.resident:
            raise Skipped(f"{self.node.name} is a migration target not yet cut over to, and takes no 国外転入: "
                          "name a resident it holds (`--resident CODE`)")
        stub = kizon_pb2_grpc.KizonStub(self.channel(self.terminal(), self.kizon()))
        try:
            return stub.GetResident(common_pb2.ResidentKey(resident_code=self.resident), metadata=self.session(),
                                    timeout=CALL_TIMEOUT)
        except grpc.RpcError as exc:
            raise Skipped(f"the resident {self.resident} named for the run cannot be read at {self.kizon().name} "
                          f"({exc.code().name})") from None

    def _arrived(self, code: str) -> None:
        cs = cs_pb2_grpc.CommunicationServerStub(self.as_node(f"kizon-{self.municipality}"))
        deadline = time.monotonic() + ARRIVAL
        while True:
            try:
                cs.GetIdentity(common_pb2.ResidentKey(resident_code=code), timeout=CALL_TIMEOUT)
                return
            except grpc.RpcError as exc:
                if exc.code() != grpc.StatusCode.NOT_FOUND or time.monotonic() > deadline:
                    raise Skipped(f"the person registered at kizon did not reach the CS ({exc.code().name})") from None
            time.sleep(0.1)  # (a bounded wait for the CS to apply the change kizon sent)

    def close(self) -> None:
        """Close every channel and revoke every certificate minted for the run."""
        for ch in self._channels.values():
            ch.close()
        self._channels.clear()
        self.minter.close()
