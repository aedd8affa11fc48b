"""The default-deny authorization policy (nodes/policy.py)."""
from __future__ import annotations

import importlib
import pkgutil

import pytest
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2

import protos
from certs.identity import KIND_DOMAIN, local_government_code_valid, parse
from nodes.policy import INTROSPECTION, LOAD_RIGHTS, MIGRATION_RIGHTS, POLICY, Decision, authorize, rules_for
from testbed.topology import NODE_KINDS

ROOT = "spiffe://testbed.jp/"
KIZON, CS, ATENA = "lg/142140/kizon", "lg/142140/cs", "lg/142140/atena"
TERMINAL, TERMINAL_115 = "lg/142140/terminal/T0001", "lg/142115/terminal/T0001"
PREF, NATIONAL, CARD = "pref/140007/server", "jlis/national", "jlis/card"
INTERMEDIATE, INFONWS = "platform/intermediate", "platform/infonws"
TOKYO_CS = "lg/131016/cs"
HEALTH = "/grpc.health.v1.Health/Check"
REFLECTION = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"


def ident(path: str):
    return parse(ROOT + path)


def m(service: str, name: str) -> str:
    return f"/testbed.v1.{service}/{name}"


ALLOWED = [
    (KIZON, TERMINAL, m("Kizon", "RecordResident")),
    (KIZON, TERMINAL, m("Kizon", "GetResident")),
    (CS, KIZON, m("CommunicationServer", "SubmitIdentityUpdates")),
    (CS, TERMINAL, m("CommunicationServer", "GetIdentity")),
    (ATENA, KIZON, m("Atena", "NotifyResidentChanges")),
    (PREF, CS, m("PrefectureServer", "ApplyIdentityUpdates")),
    (PREF, "lg/142115/cs", m("PrefectureServer", "GetIdentity")),
    (NATIONAL, PREF, m("NationalServer", "ApplyIdentityUpdates")),
    (NATIONAL, CS, m("NationalServer", "GetIdentity")),
    (NATIONAL, ATENA, m("NationalServer", "IssueFugo")),
    (CARD, CS, m("CardManagement", "SubmitDeliveryInfos")),
    (INTERMEDIATE, ATENA, m("IntermediateServer", "RegisterCopies")),
    (INTERMEDIATE, INFONWS, m("IntermediateServer", "ProvideInfo")),
    (KIZON, "ops/lan/monitor", HEALTH),
    (CS, "ops/jukinet/monitor", HEALTH),
    (INTERMEDIATE, "ops/platform/monitor", HEALTH),
    (KIZON, TERMINAL, REFLECTION),
    (NATIONAL, ATENA, REFLECTION),
]

REFUSED = [
    (KIZON, TERMINAL_115, m("Kizon", "RecordResident"), "same-municipality"),
    (KIZON, TERMINAL_115, HEALTH, "same-municipality"),
    (CS, "lg/142115/kizon", m("CommunicationServer", "SubmitIdentityUpdates"), "same-municipality"),
    (CS, ATENA, m("CommunicationServer", "GetIdentity"), "CS–atena separation"),
    (CS, "lg/142115/atena", HEALTH, "CS–atena separation"),
    (ATENA, CS, m("Atena", "NotifyResidentChanges"), "CS–atena separation"),
    (ATENA, CS, REFLECTION, "CS–atena separation"),
    (CS, TERMINAL, m("CommunicationServer", "SubmitIdentityUpdates"), "default deny"),
    (ATENA, TERMINAL, m("Atena", "GetEntry"), "default deny"),
    (NATIONAL, ATENA, m("NationalServer", "GetIdentity"), "default deny"),
    (NATIONAL, ATENA, m("NationalServer", "ApplyIdentityUpdates"), "default deny"),
    (PREF, TERMINAL, m("PrefectureServer", "GetIdentity"), "trust-domain separation"),
    (KIZON, INFONWS, m("Kizon", "GetResident"), "trust-domain separation"),
    (PREF, TOKYO_CS, m("PrefectureServer", "ApplyIdentityUpdates"), "same-prefecture"),
    (PREF, KIZON, m("PrefectureServer", "GetIdentity"), "trust-domain separation"),
    (KIZON, "ops/platform/monitor", HEALTH, "trust-domain separation"),
    (NATIONAL, "ops/lan/monitor", HEALTH, "own-domain"),
    (KIZON, "ops/lan/monitor", m("Kizon", "GetResident"), "default deny"),
    (INTERMEDIATE, ATENA, m("IntermediateServer", "ProvideInfo"), "default deny"),
    (INTERMEDIATE, INFONWS, m("IntermediateServer", "RegisterCopies"), "default deny"),
] + [
    # An unknown method on each server, from a caller its policy names: default deny.
    (server, caller, m("Admin", "Shutdown"), "default deny")
    for server, caller in [(KIZON, TERMINAL), (CS, KIZON), (ATENA, KIZON), (PREF, CS), (NATIONAL, CS),
                           (CARD, CS), (INTERMEDIATE, ATENA)]
] + [
    (CS, KIZON, m("CommunicationServer", "DeleteIdentity"), "default deny"),
    (NATIONAL, PREF, m("NationalServer", "Nope"), "default deny"),
    (KIZON, TERMINAL, m("Kizon", "GetResident").lower(), "default deny"),
    (KIZON, TERMINAL, "/testbed.v1.KizonX/GetResident", "default deny"),
]


def test_tokyo_code_is_valid():
    """The other-prefecture CS of the tests carries a genuine 地方公共団体コード."""
    assert local_government_code_valid(TOKYO_CS.split("/")[1])


@pytest.mark.parametrize("server,caller,method", ALLOWED)
def test_allowed(server, caller, method):
    """Calls that DESIGN §3 permits pass authorize without a Decision."""
    assert authorize(ident(server), ident(caller), method) is None


@pytest.mark.parametrize("server,caller,method,rule", REFUSED)
def test_refused(server, caller, method, rule):
    """Calls outside the policy raise Decision naming the refusing rule."""
    with pytest.raises(Decision) as refusal:
        authorize(ident(server), ident(caller), method)
    assert str(refusal.value).startswith(rule), str(refusal.value)


def test_cs_and_atena_never_named_as_callers():
    """No allow rule lets the CS call atena or atena call the CS."""
    assert "atena" not in {r.caller for r in POLICY["cs"]}
    assert "cs" not in {r.caller for r in POLICY["atena"]}


def test_every_node_kind_has_rules():
    """Each node kind has a policy entry with at least one rule naming a known caller kind."""
    assert set(POLICY) == set(NODE_KINDS)
    for kind, rules in POLICY.items():
        assert rules, kind
        for rule in rules:
            assert rule.caller in KIND_DOMAIN and rule.methods, (kind, rule)


def test_monitor_may_only_introspect():
    """The domain monitor reads (health, reflection, the operations status) and nothing else; only the
    operations console of the domain runs batches, (on kizon and atena) the migration and (on the 戸籍 system) the
    load of a population's 戸籍."""
    for kind in POLICY:
        monitor = [r for r in rules_for(kind) if r.caller == "monitor"]
        assert [r.methods for r in monitor] == [INTROSPECTION + ("/testbed.v1.Operations/GetStatus",)]
        console = [r for r in rules_for(kind) if r.caller == "console"]
        assert [r.methods for r in console] == [INTROSPECTION + ("/testbed.v1.Operations/*",)] + \
            ([MIGRATION_RIGHTS[kind]] if kind in MIGRATION_RIGHTS else []) + ([LOAD_RIGHTS[kind]] if kind in LOAD_RIGHTS else [])


def served_methods() -> dict[str, set[str]]:
    """Full service name -> method names, from every generated protos.*_pb2 module and health/reflection."""
    modules = [importlib.import_module(f"protos.{info.name}")
               for info in pkgutil.iter_modules(protos.__path__) if info.name.endswith("_pb2")]
    services = {}
    for module in modules + [health_pb2, reflection_pb2]:
        for service in module.DESCRIPTOR.services_by_name.values():
            services[service.full_name] = set(service.methods_by_name)
    return services


def test_policy_methods_exist():
    """Every method POLICY names (or service it opens with /*) is defined in a generated descriptor."""
    services = served_methods()
    assert "testbed.v1.Kizon" in services and "grpc.health.v1.Health" in services
    for kind, rules in POLICY.items():
        for rule in rules:
            for method in rule.methods:
                service, name = method.strip("/").split("/")
                assert service in services, (kind, method)
                assert name == "*" or name in services[service], (kind, method)


def test_every_served_testbed_method_reachable():
    """Every testbed.v1 method except the benchmark echo is allowed to some caller by POLICY."""
    named = {method for kind in POLICY for rule in rules_for(kind) for method in rule.methods}
    for service, names in served_methods().items():
        if not service.startswith("testbed.v1.") or service == "testbed.v1.Echo":
            continue
        for name in names:
            assert f"/{service}/{name}" in named or f"/{service}/*" in named, (service, name)
