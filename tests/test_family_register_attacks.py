"""The 戸籍 links tried as an attacker would (docs/threat-model.md, 戸籍 and the 附票): who may send the 住基GW a notice,
a 附票通知 a CS did not make, out of order or addressed elsewhere, a counter terminal at the gateway, a forged load."""
from __future__ import annotations

import grpc
import pytest
from helpers import refused

from protos import cs_pb2_grpc, gateway_pb2_grpc, identity_pb2, koseki_pb2, koseki_pb2_grpc
from testbed.client import channel, console_cert, node_cert, terminal_cert

A, B = "142140", "142115"
CODE = "12345678903"  # (a 住民票コード of the right shape; nobody's)


def _gateway(network, cert, municipality=A):
    return gateway_pb2_grpc.KizonGatewayStub(channel(network.topology.find("kizon", municipality), cert))


def test_only_the_municipalitys_own_koseki_reaches_the_gateway(network):
    notice = koseki_pb2.FamilyRegisterNoticeBatch(items=[koseki_pb2.FamilyRegisterNotice(
        sequence=1, kind="死亡", resident_code=CODE, event_date="2026-01-01")])
    for cert, rule in ((terminal_cert(network.pki, A, "T0001"), "DEFAULT_DENY"),
                       (node_cert(network.pki, f"koseki-{B}"), "POLICY_SCOPE"),
                       (node_cert(network.pki, f"cs-{A}"), "DEFAULT_DENY"),
                       (node_cert(network.pki, f"atena-{A}"), "DEFAULT_DENY")):
        with refused(grpc.StatusCode.PERMISSION_DENIED, reason=rule):
            _gateway(network, cert).ApplyFamilyRegisterNotices(notice, timeout=10)


def test_a_notice_out_of_order_is_refused_and_changes_nothing(network):
    """The koseki's own certificate, with a notice far ahead of the next one: refused, the 住民票 untouched."""
    gateway = _gateway(network, node_cert(network.pki, f"koseki-{A}"))
    ahead = koseki_pb2.FamilyRegisterNoticeBatch(items=[koseki_pb2.FamilyRegisterNotice(
        sequence=10_000, kind="死亡", resident_code=CODE, event_date="2026-01-01")])
    with refused(grpc.StatusCode.FAILED_PRECONDITION, reason="FAMILY_NOTICE_GAP"):
        gateway.ApplyFamilyRegisterNotices(ahead, timeout=10)


def test_annex_notices_only_from_their_sender_addressed_here_in_order(network):
    """CS ↔ CS: 秦野市's CS may send only its own 附票通知, addressed to 伊勢原市, the next of its numbers."""
    cs_a = cs_pb2_grpc.CommunicationServerStub(channel(network.topology.find("cs", A), node_cert(network.pki, f"cs-{B}")))
    forged = identity_pb2.AnnexNotice(resident_code=CODE, from_municipality_code="131016", to_municipality_code=A,
                                      address="東京都千代田区", reason="転居", sequence=1)
    with refused(grpc.StatusCode.PERMISSION_DENIED, reason="ANNEX_NOTICE_SENDER"):
        cs_a.ReceiveAnnexNotice(forged, timeout=10)
    elsewhere = identity_pb2.AnnexNotice(resident_code=CODE, from_municipality_code=B, to_municipality_code="131016",
                                         reason="転居", sequence=1)
    with refused(grpc.StatusCode.PERMISSION_DENIED, reason="ANNEX_NOTICE_SENDER"):
        cs_a.ReceiveAnnexNotice(elsewhere, timeout=10)
    ahead = identity_pb2.AnnexNotice(resident_code=CODE, from_municipality_code=B, to_municipality_code=A,
                                     reason="転居", sequence=1_000_000)
    with refused(grpc.StatusCode.FAILED_PRECONDITION, reason="ANNEX_NOTICE_GAP"):
        cs_a.ReceiveAnnexNotice(ahead, timeout=10)
    # a terminal, kizon or atena never reach that method of a CS
    for cert in (terminal_cert(network.pki, A, "T0001"), node_cert(network.pki, f"kizon-{A}")):
        stub = cs_pb2_grpc.CommunicationServerStub(channel(network.topology.find("cs", A), cert))
        with pytest.raises(grpc.RpcError) as caught:
            stub.ReceiveAnnexNotice(ahead, timeout=10)
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_the_koseki_refuses_an_annex_notice_addressed_elsewhere_and_a_load_by_anyone_but_the_console(network):
    koseki = network.topology.find("koseki", A)
    by_kizon = koseki_pb2_grpc.FamilyRegisterSystemStub(channel(koseki, node_cert(network.pki, f"kizon-{A}")))
    with refused(grpc.StatusCode.INVALID_ARGUMENT, reason="ANNEX_NOTICE_ADDRESSEE"):
        by_kizon.RecordAnnexNotices(koseki_pb2.AnnexNoticeBatch(items=[identity_pb2.AnnexNotice(
            resident_code=CODE, from_municipality_code=B, to_municipality_code=B, sequence=1)]), timeout=10)
    load = koseki_pb2.FamilyRegisterLoad(registers=[koseki_pb2.FamilyRegister(register_number="9999999999",
                                                                              honseki="神奈川県伊勢原市1番地")])
    for cert in (node_cert(network.pki, f"kizon-{A}"), terminal_cert(network.pki, A, "T0001"),
                 node_cert(network.pki, f"koseki-{B}")):
        stub = koseki_pb2_grpc.FamilyRegisterSystemStub(channel(koseki, cert))
        with pytest.raises(grpc.RpcError) as caught:
            stub.LoadFamilyRegisters(load, timeout=10)
        assert caught.value.code() in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED)
    # the console of another domain is refused too; the LAN's console may load
    jukinet = console_cert(network.pki, "cs")
    with pytest.raises(grpc.RpcError) as caught:
        koseki_pb2_grpc.FamilyRegisterSystemStub(channel(koseki, jukinet)).LoadFamilyRegisters(load, timeout=10)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    lan = koseki_pb2_grpc.FamilyRegisterSystemStub(channel(koseki, console_cert(network.pki, "koseki")))
    assert lan.LoadFamilyRegisters(load, timeout=10).applied == 1
    assert lan.LoadFamilyRegisters(load, timeout=10).applied == 0  # (a repeat is answered, not loaded twice)
    other = koseki_pb2.FamilyRegisterLoad(registers=[koseki_pb2.FamilyRegister(register_number="9999999999",
                                                                               honseki="神奈川県伊勢原市2番地")])
    with refused(grpc.StatusCode.ALREADY_EXISTS, reason="KOSEKI_LOAD_TAKEN"):
        lan.LoadFamilyRegisters(other, timeout=10)


def test_a_terminal_of_another_municipality_files_nothing_here(network):
    koseki = koseki_pb2_grpc.FamilyRegisterSystemStub(channel(network.topology.find("koseki", A),
                                                              terminal_cert(network.pki, B, "T0001")))
    with refused(grpc.StatusCode.PERMISSION_DENIED, reason="POLICY_SCOPE"):
        koseki.RecordDeath(koseki_pb2.DeathNotification(resident_code=CODE, death_date="2026-01-01"), timeout=10)
