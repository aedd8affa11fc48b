"""Secrets held apart, tried as someone with a copy of a node's files would: the CA keys are not beside
the certificates nodes read, node files are their owner's alone, and a copy of the card system's store
does not give a PIN away."""
from __future__ import annotations

import hashlib
import hmac
import sqlite3
import stat

from certs.identity import DOMAINS
from helpers import card_holder
from nodes.card import pin_hash
from testbed.client import Counter

A = "142140"


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_ca_keys_live_apart_from_what_nodes_read(network):
    """Nodes read ca/<domain>/ and root/ (certificates, CRLs); the CA keys are under private/ (0700)."""
    pki = network.pki
    for domain in DOMAINS:
        assert not (pki.ca_dir(domain) / "ca.key").exists()
        assert mode(pki.private_dir(domain) / "ca.key") == 0o600
    assert not (pki.dir / "root" / "ca.key").exists()
    assert mode(pki.dir / "private") == 0o700


def test_node_files_are_their_owners_alone(network):
    """Stores, audit logs, checkpoints and logs are 0600 in 0700 folders."""
    for node in network.topology.nodes:
        data = network.state_dir / "data" / node.name
        assert mode(data) == 0o700, node.name
        assert mode(data / "store.sqlite") == 0o600 and mode(data / "audit.jsonl") == 0o600, node.name
        assert mode(network.log_file(node.name)) == 0o600, node.name
    assert mode(network.state_dir / "checkpoints") == 0o700


def test_a_copy_of_the_card_store_does_not_give_the_pin_away(network):
    """The PIN is kept as an HMAC under the card system's own key: with the store alone, trying all 10,000
    PINs (the earlier PBKDF2 form, or a plain hash) finds nothing."""
    with Counter(network, A) as counter:
        holder = card_holder(counter, pin="4821")
    store = network.state_dir / "data" / "card" / "store.sqlite"
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
        number, stored = db.execute("SELECT card_number, pin_hash FROM cards WHERE resident_code=?",
                                    (holder.resident_code,)).fetchone()
    assert stored.startswith(b"k1:")
    guesses = [f"{n:04d}" for n in range(10_000)]
    without_key = [p for p in guesses if stored in (b"k1:" + hashlib.sha256(f"{number}:{p}".encode()).digest(),
                                                     b"k1:" + hmac.new(b"", f"{number}:{p}".encode(), "sha256").digest())]
    assert without_key == []
    key_file = network.pki.dir / "nodes" / "card" / "pin.key"
    assert mode(key_file) == 0o600
    with_key = [p for p in guesses if stored == pin_hash(key_file.read_bytes(), number, p)]
    assert with_key == ["4821"]  # the key, not the store, is what a brute force would need


def test_sessions_are_signed_by_kizon_alone(network):
    """Session tokens carry an Ed25519 signature: the CS and the 中間サーバ check them with the public key, and
    a token signed with any other key (as a node holding only the public key would have to) is refused."""
    import grpc
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from nodes.guard import SESSION_KEY
    from nodes.sessions import issue_session
    from protos import common_pb2, cs_pb2_grpc
    from testbed.client import channel, terminal_cert
    pki = network.pki
    assert pki.session_public_key(A) is not None
    forged, _ = issue_session(ed25519.Ed25519PrivateKey.generate(), "OP0003", ["clerk", "manager"], A, "T0001", "x")
    with channel(network.topology.find("cs", A), terminal_cert(pki, A, "T0001")) as ch:
        try:
            cs_pb2_grpc.CommunicationServerStub(ch).GetPoolStatus(common_pb2.Empty(), metadata=((SESSION_KEY, forged),),
                                                                   timeout=5)
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.UNAUTHENTICATED and "signature" in exc.details(), exc.details()
        else:
            raise AssertionError("a forged session was accepted")


def test_kizon_keeps_no_operator_credential(network):
    """kizon checks credentials against salted hashes; the credentials themselves are the terminals' side."""
    kept = network.pki.operator_verifiers(f"kizon-{A}", A)
    assert set(kept) == {o.id for o in network.topology.municipality(A).operators}
    assert all(set(entry) == {"roles", "salt", "verifier"} for entry in kept.values())
