"""Roles, as a clerk or a monitor would try to overstep them: batches, full 整合性確認 and bulk output
need their role, the monitor only reads, and a search's 住所 key names at least the municipality."""
from __future__ import annotations

import grpc
from grpc import StatusCode as Code

from helpers import refused
from protos import common_pb2, identity_pb2, ops_pb2, ops_pb2_grpc
from testbed.client import Counter, channel, console_cert, monitor_cert

A = "142140"


def run_batch(network, node_kind: str, cert) -> tuple[grpc.StatusCode, str]:
    """Operations.RunBatch('purge') on a node with a certificate."""
    node = network.topology.find(node_kind, A if node_kind in ("kizon", "cs") else None)
    with channel(node, cert) as ch:
        try:
            ops_pb2_grpc.OperationsStub(ch).RunBatch(ops_pb2.BatchRequest(name="purge"), timeout=10)
        except grpc.RpcError as exc:
            return exc.code(), exc.details()
    return Code.OK, ""


def test_the_monitor_reads_and_the_console_runs_batches(network):
    """A domain monitor may read a node's status but not run its batch; the domain's console may."""
    for kind in ("cs", "card"):
        code, details = run_batch(network, kind, monitor_cert(network.pki, kind))
        assert code == Code.PERMISSION_DENIED and "default deny" in details, details
        assert run_batch(network, kind, console_cert(network.pki, kind))[0] == Code.OK


def test_a_clerk_runs_neither_purges_nor_the_full_consistency_check(network, clerk):
    """Purges and the full 整合性確認 need the manager (or operations) role; a manager may."""
    request = common_pb2.ConsistencyRequest(municipality_code=A)
    with refused(Code.PERMISSION_DENIED, "batch rule", "manager or operations", reason="OPERATOR_ROLE"):
        clerk(clerk.cs.PurgeExpiredCertificates, common_pb2.Empty())
    with refused(Code.PERMISSION_DENIED, "整合性確認 rule", reason="OPERATOR_ROLE"):
        clerk(clerk.kizon.CheckConsistency, request, timeout=120)
    with refused(Code.PERMISSION_DENIED, "整合性確認 rule", reason="OPERATOR_ROLE"):
        clerk(clerk.cs.CheckConsistency, request, timeout=120)
    with Counter(network, A, "T0003", "OP0003") as manager:
        assert manager(manager.kizon.CheckConsistency, request, timeout=120).municipality_code == A
        manager(manager.cs.PurgeExpiredCertificates, common_pb2.Empty())


def test_a_search_address_names_the_municipality(clerk):
    """氏名 with a one-character 住所 is not two items; with 都道府県 and 市区町村 it is."""
    with refused(Code.INVALID_ARGUMENT, "検索 rule", reason="SEARCH_ADDRESS_KEY"):
        clerk(clerk.cs.SearchIdentity, identity_pb2.IdentitySearch(name_kana="シケン タロウ", address="神"))
    found = clerk(clerk.cs.SearchIdentity, identity_pb2.IdentitySearch(name_kana="シケン タロウ", address="神奈川県伊勢原市"))
    assert found.source == "cs"
