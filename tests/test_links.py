"""Every link of the policy against real node processes: the allowed call succeeds, and the
negative matrix fails with the exact status: no client certificate, rogue CA, expired, not yet
valid, no clientAuth, revoked, wrong trust domain, wrong municipality, wrong role."""
from __future__ import annotations


import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from helpers import TODAY, NotYet, eventually, move_in_from_abroad
from helpers import person as person_items
from nodes.tls import channel_options
from protos import (atena_pb2, atena_pb2_grpc, card_pb2_grpc, common_pb2, cs_pb2, cs_pb2_grpc, identity_pb2,
                    intermediate_pb2, intermediate_pb2_grpc, kizon_pb2, kizon_pb2_grpc, national_pb2, national_pb2_grpc,
                    prefecture_pb2_grpc, records_pb2)
from testbed.client import (Counter, bad_cert, channel, monitor_cert, named_cert, node_cert, operator_metadata,
                            terminal_cert)

OP = operator_metadata("OP0001")
HOME, OTHER = "142140", "142115"
NODES = ["kizon-142140", "cs-142140", "atena-142140", "kizon-142115", "cs-142115", "atena-142115",
         "prefecture-140007", "national", "card", "intermediate"]


@pytest.fixture(scope="module")
def person(network):
    """A resident of 伊勢原市 recorded at the counter and carried to every node, and a terminal session."""
    with Counter(network, HOME, "T0002", "OP0001") as counter:
        record = move_in_from_abroad(counter, person_items("連携 確認", "レンケイ カクニン"))
        # Someone who moved out to 秦野市: the 転入通知 link closes a 転出 that exists.
        mover = move_in_from_abroad(counter, person_items("連携 転出", "レンケイ テンシュツ"))
        counter(counter.kizon.MoveOut, kizon_pb2.MoveOutRequest(
            resident_code=mover.resident_code, destination_address="神奈川県秦野市", destination_municipality_code=OTHER,
            planned_date=TODAY))
        session = counter.metadata
    topo, pki = network.topology, network.pki
    key = common_pb2.ResidentKey(resident_code=record.resident_code)
    with channel(topo.find("national"), node_cert(pki, "cs-142140")) as ch:
        eventually(lambda: national_pb2_grpc.NationalServerStub(ch).GetIdentity(key, timeout=5))
    with channel(topo.find("card"), node_cert(pki, "cs-142140")) as ch:
        eventually(lambda: card_pb2_grpc.CardManagementStub(ch).GetDeliveryInfo(key, timeout=5))
    entry = eventually(lambda: _atena_entry(network, record))
    with channel(topo.find("intermediate"), named_cert(pki, "infonws")) as ch:
        eventually(lambda: intermediate_pb2_grpc.IntermediateServerStub(ch).ProvideInfo(
            intermediate_pb2.ProvisionRequest(tenant=HOME, fugo=entry.fugo, inquiry_id="T-1", jimu="19-8-2-53"), timeout=5))
    full = _full_record(network, record)
    copy = records_pb2.ResidentRecord()
    copy.CopyFrom(full)
    copy.ClearField("individual_number")  # a 副本 carries 符号, never the 個人番号
    return {"record": full, "copy": copy, "key": key, "unified": entry.unified_atena_number, "fugo": entry.fugo,
            "session": session, "mover": mover}


def _full_record(network, record):
    """The record with its 個人番号 as kizon holds it (the test's terminal may see it masked)."""
    with Counter(network, HOME, "T0001", "OP0001") as counter:
        return counter(counter.kizon.GetResident, common_pb2.ResidentKey(resident_code=record.resident_code))


def _atena_entry(network, record):
    """atena's entry of a person, found by asking atena to match the 住民票 again (as kizon does)."""
    with channel(network.topology.find("atena", HOME), node_cert(network.pki, "kizon-142140")) as ch:
        full = _full_record(network, record)
        replies = atena_pb2_grpc.AtenaStub(ch).NotifyResidentChanges(
            atena_pb2.ResidentChangeBatch(items=[atena_pb2.ResidentChange(record=full)]), timeout=10)
        entry = atena_pb2_grpc.AtenaStub(ch).GetEntry(
            atena_pb2.AtenaKey(unified_atena_number=replies.replies[0].unified_atena_number), timeout=5)
    if not entry.fugo:
        raise NotYet()
    return entry


def _key(p):
    return p["key"]


# (caller, certificate getter, server node, call) for every link the policy allows.
LINKS = [
    ("terminal→kizon", lambda pki: terminal_cert(pki, HOME, "T0002"), "kizon-142140",
     lambda ch, p: kizon_pb2_grpc.KizonStub(ch).GetResident(_key(p), metadata=p["session"], timeout=5)),
    ("terminal→cs", lambda pki: terminal_cert(pki, HOME, "T0002"), "cs-142140",
     lambda ch, p: cs_pb2_grpc.CommunicationServerStub(ch).GetIdentity(_key(p), metadata=p["session"], timeout=5)),
    ("kizon→cs", lambda pki: node_cert(pki, "kizon-142140"), "cs-142140",
     lambda ch, p: cs_pb2_grpc.CommunicationServerStub(ch).GetIdentity(_key(p), timeout=5)),
    ("kizon→atena", lambda pki: node_cert(pki, "kizon-142140"), "atena-142140",
     lambda ch, p: atena_pb2_grpc.AtenaStub(ch).GetEntry(atena_pb2.AtenaKey(unified_atena_number=p["unified"]), timeout=5)),
    ("cs→prefecture", lambda pki: node_cert(pki, "cs-142140"), "prefecture-140007",
     lambda ch, p: prefecture_pb2_grpc.PrefectureServerStub(ch).GetIdentity(_key(p), timeout=5)),
    ("prefecture→national", lambda pki: node_cert(pki, "prefecture-140007"), "national",
     lambda ch, p: national_pb2_grpc.NationalServerStub(ch).ApplyIdentityUpdates(
         identity_pb2.IdentityUpdateBatch(municipality_code=HOME), timeout=5)),
    ("cs→cs (転入通知)", lambda pki: node_cert(pki, "cs-142115"), "cs-142140",
     lambda ch, p: cs_pb2_grpc.CommunicationServerStub(ch).ReceiveMoveInNotice(identity_pb2.MoveInNotice(
         resident_code=p["mover"].resident_code, from_municipality_code=OTHER, to_municipality_code=HOME,
         new_address="神奈川県秦野市", move_in_date="2026-04-01"), timeout=5)),
    ("cs→national", lambda pki: node_cert(pki, "cs-142115"), "national",
     lambda ch, p: national_pb2_grpc.NationalServerStub(ch).GetIdentity(_key(p), timeout=5)),
    ("atena→national", lambda pki: node_cert(pki, "atena-142140"), "national",
     lambda ch, p: national_pb2_grpc.NationalServerStub(ch).IssueFugo(
         national_pb2.FugoRequest(individual_number=p["record"].individual_number), timeout=5)),
    ("cs→card", lambda pki: node_cert(pki, "cs-142140"), "card",
     lambda ch, p: card_pb2_grpc.CardManagementStub(ch).GetDeliveryInfo(_key(p), timeout=5)),
    ("atena→intermediate", lambda pki: node_cert(pki, "atena-142140"), "intermediate",
     lambda ch, p: intermediate_pb2_grpc.IntermediateServerStub(ch).RegisterCopies(intermediate_pb2.CopyBatch(items=[
         intermediate_pb2.CopyRegistration(unified_atena_number=p["unified"], fugo=p["fugo"], record=p["copy"])]),
         timeout=5)),
    ("infonws→intermediate", lambda pki: named_cert(pki, "infonws"), "intermediate",
     lambda ch, p: intermediate_pb2_grpc.IntermediateServerStub(ch).ProvideInfo(
         intermediate_pb2.ProvisionRequest(tenant=HOME, fugo=p["fugo"], inquiry_id="T-2", jimu="19-8-2-53"), timeout=5)),
]


CALL = {name: call for name, _, _, call in LINKS}


def _status(network, node_name, cert, call, person):
    node = network.topology.node(node_name)
    with channel(node, cert) as ch:
        try:
            call(ch, person)
        except grpc.RpcError as exc:
            return exc.code(), exc.details() or ""
    return grpc.StatusCode.OK, ""


@pytest.mark.parametrize("name,cert_of,node_name,call", LINKS, ids=[link[0] for link in LINKS])
def test_allowed_link_succeeds(network, person, name, cert_of, node_name, call):
    """The policy's allowed caller completes a real call that reads or writes the node's store."""
    assert _status(network, node_name, cert_of(network.pki), call, person) == (grpc.StatusCode.OK, "")


# Refused at the TLS handshake: the call never reaches the application (UNAVAILABLE). The TLS
# library itself refuses a leaf without clientAuth; the runtime checks it again behind it.
HANDSHAKE_CASES = ["rogue_ca", "expired", "not_yet_valid", "no_client_auth"]
# Pass TLS but refused by the runtime's authentication (UNAUTHENTICATED).
AUTHN_CASES = {"revoked": "revocation", "wrong_domain": "trust-domain separation"}


@pytest.mark.parametrize("link", LINKS, ids=[link[0] for link in LINKS])
def test_no_client_certificate_completes_no_call(network, person, link):
    """A client that presents no certificate completes no call on any node."""
    _, _, node_name, call = link
    node = network.topology.node(node_name)
    creds = grpc.ssl_channel_credentials(root_certificates=network.pki.trust_bundle.read_bytes())
    with grpc.secure_channel(node.address, creds, options=channel_options(node.host_name)) as ch:
        with pytest.raises(grpc.RpcError) as err:
            call(ch, person)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize("case", HANDSHAKE_CASES)
@pytest.mark.parametrize("link", LINKS, ids=[link[0] for link in LINKS])
def test_bad_certificate_fails_handshake(network, person, link, case):
    """Rogue CA, expired, not-yet-valid and no-clientAuth certificates complete no call on any link."""
    _, _, node_name, call = link
    code, _ = _status(network, node_name, bad_cert(network.pki, case), call, person)
    assert code == grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize("case", sorted(AUTHN_CASES))
@pytest.mark.parametrize("link", LINKS, ids=[link[0] for link in LINKS])
def test_bad_certificate_unauthenticated(network, person, link, case):
    """Revoked and wrong-trust-domain certificates are refused with UNAUTHENTICATED."""
    _, _, node_name, call = link
    code, detail = _status(network, node_name, bad_cert(network.pki, case), call, person)
    assert code == grpc.StatusCode.UNAUTHENTICATED
    assert AUTHN_CASES[case] in detail


# (caller certificate, server node, call, rule named in the refusal)
REFUSED = [
    ("wrong municipality: terminal of 秦野市 → kizon of 伊勢原市", lambda pki: bad_cert(pki, "wrong_municipality"),
     "kizon-142140", CALL["terminal→kizon"], "same-municipality"),
    ("wrong municipality: terminal of 秦野市 → cs of 伊勢原市", lambda pki: terminal_cert(pki, OTHER, "T0001"),
     "cs-142140", CALL["terminal→cs"], "same-municipality"),
    ("wrong municipality: kizon of 秦野市 → cs of 伊勢原市", lambda pki: node_cert(pki, "kizon-142115"),
     "cs-142140", CALL["kizon→cs"], "same-municipality"),
    ("wrong municipality: kizon of 秦野市 → atena of 伊勢原市", lambda pki: node_cert(pki, "kizon-142115"),
     "atena-142140", CALL["kizon→atena"], "same-municipality"),
    ("wrong role: atena → kizon", lambda pki: bad_cert(pki, "wrong_role"), "kizon-142140", CALL["terminal→kizon"], "default deny"),
    ("CS and atena never connect: atena → cs", lambda pki: node_cert(pki, "atena-142140"),
     "cs-142140", CALL["kizon→cs"], "never connect"),
    ("CS and atena never connect: cs → atena", lambda pki: node_cert(pki, "cs-142140"),
     "atena-142140", CALL["kizon→atena"], "never connect"),
    ("wrong role: cs of another municipality → cs", lambda pki: node_cert(pki, "cs-142115"),
     "cs-142140", CALL["kizon→cs"], "default deny"),
    ("wrong role: terminal → cs update (only kizon)", lambda pki: terminal_cert(pki, HOME, "T0001"), "cs-142140",
     lambda ch, p: cs_pb2_grpc.CommunicationServerStub(ch).SubmitIdentityUpdates(
         identity_pb2.IdentityUpdateBatch(municipality_code=HOME), metadata=p["session"], timeout=5),
     "default deny"),
    ("cs ↔ cs: only 転出証明書情報 and 転入通知", lambda pki: node_cert(pki, "cs-142115"), "cs-142140",
     lambda ch, p: cs_pb2_grpc.CommunicationServerStub(ch).TakeMoveInNotices(cs_pb2.NoticeCursor(), timeout=5),
     "default deny"),
    ("wrong trust domain: terminal → prefecture", lambda pki: terminal_cert(pki, HOME, "T0001"),
     "prefecture-140007", CALL["cs→prefecture"], "trust-domain separation"),
    ("wrong trust domain: infonws → kizon", lambda pki: named_cert(pki, "infonws"),
     "kizon-142140", CALL["terminal→kizon"], "trust-domain separation"),
    ("wrong role: card → prefecture", lambda pki: node_cert(pki, "card"), "prefecture-140007", CALL["cs→prefecture"], "default deny"),
    ("wrong role: kizon → national", lambda pki: node_cert(pki, "kizon-142140"), "national", CALL["cs→national"],
     "default deny"),
    ("wrong role: cs → national updates (only the prefecture)", lambda pki: node_cert(pki, "cs-142140"), "national",
     CALL["prefecture→national"], "default deny"),
    ("wrong method: atena → national identity (符号 only)", lambda pki: node_cert(pki, "atena-142140"), "national",
     CALL["cs→national"], "default deny"),
    ("wrong role: prefecture → card", lambda pki: node_cert(pki, "prefecture-140007"), "card", CALL["cs→card"], "default deny"),
    ("wrong method: atena → 情報提供", lambda pki: node_cert(pki, "atena-142140"), "intermediate", CALL["infonws→intermediate"],
     "default deny"),
    ("wrong role: infonws → 副本 registration", lambda pki: named_cert(pki, "infonws"), "intermediate", CALL["atena→intermediate"],
     "default deny"),
    ("wrong trust domain: cs → intermediate", lambda pki: node_cert(pki, "cs-142140"), "intermediate", CALL["infonws→intermediate"],
     "trust-domain separation"),
]


@pytest.mark.parametrize("name,cert_of,node_name,call,rule", REFUSED, ids=[r[0] for r in REFUSED])
def test_refused_with_permission_denied(network, person, name, cert_of, node_name, call, rule):
    """A valid certificate of a caller the policy does not name is refused with PERMISSION_DENIED naming the rule."""
    code, detail = _status(network, node_name, cert_of(network.pki), call, person)
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert rule in detail


def test_terminal_call_without_session_is_refused(network, person):
    """A terminal call must carry an operator session; an operator id alone is not enough."""
    node = network.topology.node("kizon-142140")
    with channel(node, terminal_cert(network.pki, HOME, "T0001")) as ch:
        with pytest.raises(grpc.RpcError) as err:
            kizon_pb2_grpc.KizonStub(ch).GetResident(person["key"], metadata=OP, timeout=5)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "operator rule" in err.value.details()


def test_session_replayed_from_another_terminal_is_refused(network, person):
    """A session is bound to the terminal certificate it was issued to (here T0002's)."""
    node = network.topology.node("kizon-142140")
    with channel(node, terminal_cert(network.pki, HOME, "T0001")) as ch:
        with pytest.raises(grpc.RpcError) as err:
            kizon_pb2_grpc.KizonStub(ch).GetResident(person["key"], metadata=person["session"], timeout=5)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "session rule" in err.value.details()


def test_terminal_id_must_match_certificate(network, person):
    """A terminal may not claim another terminal's id in its metadata."""
    node = network.topology.node("kizon-142140")
    with channel(node, terminal_cert(network.pki, HOME, "T0002")) as ch:
        with pytest.raises(grpc.RpcError) as err:
            kizon_pb2_grpc.KizonStub(ch).GetResident(
                person["key"], metadata=person["session"] + (("x-terminal-id", "T0003"),), timeout=5)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize("node_name", NODES)
def test_health_and_reflection(network, node_name):
    """Every node answers its health check and lists its services by reflection to a valid client."""
    node = network.topology.node(node_name)
    with channel(node, monitor_cert(network.pki, node.kind)) as ch:
        health = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        replies = reflection_pb2_grpc.ServerReflectionStub(ch).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5)
        services = {s.name for r in replies for s in r.list_services_response.service}
    assert "grpc.health.v1.Health" in services
    assert any(s.startswith("testbed.v1.") for s in services)


@pytest.mark.parametrize("node_name", NODES)
def test_monitor_of_another_domain_is_refused(network, node_name):
    """A monitor may look only at nodes of its own trust domain."""
    node = network.topology.node(node_name)
    other = {"kizon": "cs", "atena": "cs", "cs": "kizon", "prefecture": "kizon", "national": "kizon",
             "card": "intermediate", "intermediate": "card"}[node.kind]
    with channel(node, monitor_cert(network.pki, other)) as ch:
        with pytest.raises(grpc.RpcError) as err:
            health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_refusals_are_audited(network, person):
    """A refused call leaves an audit entry with the caller, method and status."""
    _status(network, "kizon-142140", bad_cert(network.pki, "wrong_municipality"), CALL["terminal→kizon"], person)
    lines = network.audit_file("kizon-142140").read_text().splitlines()
    assert any('"status":"PERMISSION_DENIED"' in line and "kit/wrong_municipality" in line for line in lines)
