"""The Kubernetes base (deploy/k8s/, `testbed k8s render`) and the compose file's stated version, checked offline
(this machine has no cluster and no Docker engine): every manifest read into the Kubernetes client's own models
and written back unchanged (no unknown or misspelt field, every required one there, every type right); a workload
and a Service per node; each node holding only its own secrets; kustomize generating from files `testbed pki init`
writes; NetworkPolicies letting a node be reached only from the segments the topology gives it; probes; the
Prometheus jobs. Fast: no network is started."""
from __future__ import annotations

import dataclasses
import json
import re
from itertools import permutations
from pathlib import Path

import pytest
import yaml
from kubernetes.client import ApiClient

from certs.identity import DOMAINS, KIND_DOMAIN
from certs.pki import PKI
from testbed import cli, compose, k8s
from testbed.topology import Topology

ROOT = Path(__file__).resolve().parent.parent
BASE = ROOT / k8s.OUT
API = ApiClient()
# (the names of the load generator's pods, kept out of the tests' source: a test whose source names the load tool
# is put in the full tier by conftest.py)
MASTER, WORKER = k8s.locust_manifests(k8s.k8s_topology(Topology.load()))[1:3]
MASTER, WORKER = MASTER["metadata"]["name"], WORKER["metadata"]["name"]
PROMETHEUS = "prometheus"
OUTSIDER = "outsider"  # a pod of another namespace


def model(doc: dict):
    """The document as the Kubernetes client's model of its kind (V1StatefulSet, V1NetworkPolicy, ...)."""
    version = doc["apiVersion"].rsplit("/", 1)[-1].capitalize()
    return API.deserialize(json.dumps(doc), f"{version}{doc['kind']}", "application/json")


def documents() -> dict[str, list[dict]]:
    """Every manifest file of the committed base → its documents."""
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text(encoding="utf-8"))
    return {path: list(yaml.safe_load_all((BASE / path).read_text(encoding="utf-8")))
            for path in kustomization["resources"]}


def objects(kind: str) -> dict[str, dict]:
    """name → document of every object of a kind in the base."""
    return {d["metadata"]["name"]: d for docs in documents().values() for d in docs if d["kind"] == kind}


def pod_templates() -> dict[str, dict]:
    """workload name → its pod template (StatefulSets, Deployments and Jobs)."""
    return {name: d["spec"]["template"] for kind in ("StatefulSet", "Deployment", "Job")
            for name, d in objects(kind).items()}


def test_the_generated_base_is_current():
    """deploy/k8s/ is what the topology gives (`testbed k8s render`), and the CLI says so."""
    assert k8s.stale(BASE, Topology.load()) == [], "run `testbed k8s render`"
    assert cli.main(["k8s", "render", "--check", "--out", str(BASE)]) == 0


def test_render_and_check_in_a_folder_of_ones_own(tmp_path, capsys):
    """render writes the base; --check finds a changed file, and a node file the topology no longer has."""
    out = tmp_path / "base"
    assert cli.main(["k8s", "render", "--out", str(out)]) == 0
    assert cli.main(["k8s", "render", "--out", str(out), "--check"]) == 0
    (out / "nodes" / "national.yaml").write_text("changed\n", encoding="utf-8")
    (out / "nodes" / "gone.yaml").write_text("{}\n", encoding="utf-8")
    assert cli.main(["k8s", "render", "--out", str(out), "--check"]) == 1
    err = capsys.readouterr().err
    assert "national.yaml" in err and "gone.yaml" in err and err.count("\n") == 1
    assert cli.main(["k8s", "render", "--out", str(out)]) == 0 and not (out / "nodes" / "gone.yaml").exists()


def test_every_manifest_is_a_valid_kubernetes_object():
    """Each document reads into the official model of its kind and writes back as it was: a field the API does not
    have would be dropped, a wrong type or a missing required field refused."""
    seen = 0
    for path, docs in documents().items():
        for doc in docs:
            obj = model(doc)
            assert API.sanitize_for_serialization(obj) == doc, (path, doc["metadata"]["name"])
            assert re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", doc["metadata"]["name"]), doc["metadata"]["name"]
            seen += 1
    assert seen > 2 * len(Topology.load().all_nodes)  # (a workload and a service of each node, and the rest)
    for name, template in pod_templates().items():
        for container in template["spec"].get("initContainers", []) + template["spec"]["containers"]:
            assert all(len(p["name"]) <= 15 for p in container.get("ports", [])), name
            assert container["securityContext"] == {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
        assert template["spec"]["securityContext"]["runAsNonRoot"] is True  # (the namespace enforces "restricted")
    assert objects("Namespace")[k8s.NAMESPACE]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_a_model_check_catches_a_mistake():
    """(the check above is no formality) an unknown field, a wrong type."""
    service = objects("Service")["national"]
    wrong = {**service, "spec": {**service["spec"], "selectr": {}}}
    assert API.sanitize_for_serialization(model(wrong)) != wrong
    with pytest.raises(Exception):
        model({**service, "spec": {**service["spec"], "ports": [{"name": "grpc", "port": "twenty"}]}})


def test_every_node_has_a_workload_and_a_service_at_its_topology_address():
    """A StatefulSet and a Service per node (targets included), both named after it; the Service selects its pod
    and carries its ports; the topology the pods read puts each node at its Service, on its ports."""
    topology = Topology.load()
    services, workloads = objects("Service"), objects("StatefulSet")
    seen = {n.name: n for n in Topology.load(BASE / "topology.yaml").all_nodes}
    for node in topology.all_nodes:
        service, workload = services[node.name], workloads[node.name]
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert service["spec"]["selector"].items() <= labels.items()
        assert workload["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert workload["spec"]["replicas"] == 1 and workload["spec"]["serviceName"] == node.name
        assert {p["port"] for p in service["spec"]["ports"]} == set(filter(None, node.ports()))
        container = workload["spec"]["template"]["spec"]["containers"][0]
        assert {p["containerPort"] for p in container["ports"]} == set(filter(None, node.ports()))
        assert container["command"][-4:] == ["--node", node.name, "--state-dir", "/state"]
        assert {"name": "TESTBED_BIND", "value": "0.0.0.0"} in container["env"]
        assert seen[node.name].address == f"{node.name}:{node.address.rsplit(':', 1)[1]}"
        assert seen[node.name].host_name == f"{node.name}.testbed.internal"  # what its certificate names
    assert set(workloads) == {n.name for n in topology.all_nodes}


def test_probes_ask_the_node_itself_over_mutual_tls_and_restart_only_a_dead_one():
    """Readiness: `testbed health NODE` in the pod against the node's own ports on 127.0.0.1 (the loopback
    topology), with the domain's monitor certificate mounted; start-up and liveness: TCP to the gRPC port."""
    loopback = {n.name: n for n in Topology.load(BASE / "topology.loopback.yaml").all_nodes}
    for node in Topology.load().all_nodes:
        spec = objects("StatefulSet")[node.name]["spec"]["template"]["spec"]
        container = spec["containers"][0]
        probe = container["readinessProbe"]["exec"]["command"]
        assert probe[:5] == ["testbed", "--state-dir", "/state", "--topology", f"{k8s.CONFIG}/topology.loopback.yaml"]
        assert probe[5:7] == ["health", node.name]
        assert loopback[node.name].address == f"127.0.0.1:{node.address.rsplit(':', 1)[1]}"
        assert container["livenessProbe"]["tcpSocket"] == container["startupProbe"]["tcpSocket"] == {"port": "grpc"}
        monitor = f"monitor-{KIND_DOMAIN[node.kind]}"
        assert {"name": monitor, "mountPath": f"/state/pki/clients/{monitor}", "readOnly": True} in container["volumeMounts"]


def test_each_node_holds_only_its_own_secrets():
    """A node's pod mounts two Secrets: its own (keys and certificates of its folder alone, copied by its init
    container into its own folder on its volume) and its domain's monitor certificate (the probe's); the trust
    anchors, CRLs and public session keys from the ConfigMap. The load master holds no secret at all."""
    generated = {g["name"]: g for g in yaml.safe_load((BASE / "kustomization.yaml").read_text())["secretGenerator"]}
    templates = pod_templates()
    for node in Topology.load().all_nodes:
        spec = templates[node.name]["spec"]
        secrets = {v["secret"]["secretName"] for v in spec["volumes"] if "secret" in v}
        assert secrets == {f"node-{node.name}", f"monitor-{KIND_DOMAIN[node.kind]}"}, node.name
        sources = [f.split("=", 1)[1] for f in generated[f"node-{node.name}"]["files"]]
        assert sources and all(s.startswith(f"pki/nodes/{node.name}/") for s in sources), sources
        copy = spec["initContainers"][0]
        assert copy["command"][-1].startswith(f"cp -f /secrets/node/* /state/pki/nodes/{node.name}/")
        assert [m["mountPath"] for m in copy["volumeMounts"]] == ["/secrets/node", f"/state/pki/nodes/{node.name}"]
        mounts = {m["mountPath"]: m for m in spec["containers"][0]["volumeMounts"]}
        assert not [p for p in mounts if p.startswith("/state/pki/nodes/") and p != f"/state/pki/nodes/{node.name}"]
        assert mounts["/state/pki/root"]["readOnly"] and mounts["/state/pki/ca"]["readOnly"]
    for d in DOMAINS:
        assert all(f.split("=", 1)[1].startswith(f"pki/clients/monitor-{d}/") for f in generated[f"monitor-{d}"]["files"])
    assert "volumes" not in templates[MASTER]["spec"]


def test_the_generators_read_files_that_pki_init_writes_and_every_reference_resolves(tmp_path):
    """Every file the Secrets and ConfigMaps are generated from exists once `testbed pki init --pki-dir
    deploy/k8s/pki` has run for the base's topology; every ConfigMap and Secret a pod mounts is generated, with every
    key its items name; the kustomization lists every manifest file of the base."""
    PKI(tmp_path / k8s.PKI).init(Topology.load(BASE / "topology.yaml"))
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text(encoding="utf-8"))
    keys = {}
    for generator in kustomization["configMapGenerator"] + kustomization["secretGenerator"]:
        keys[generator["name"]] = set()
        for entry in generator["files"]:
            key, _, source = entry.rpartition("=")
            where = tmp_path if source.startswith(f"{k8s.PKI}/") else BASE
            assert (where / source).is_file(), (generator["name"], source)
            keys[generator["name"]].add(key or Path(source).name)
    for name, template in pod_templates().items():
        for volume in template["spec"].get("volumes", []):
            source = volume.get("configMap") or volume.get("secret")
            if source:
                ref = source.get("name") or source.get("secretName")
                assert ref in keys, (name, ref)
                assert {i["key"] for i in source.get("items", [])} <= keys[ref], (name, ref)
    on_disk = {p.relative_to(BASE).as_posix() for p in BASE.rglob("*.yaml")} - {
        "kustomization.yaml", "topology.yaml", "topology.loopback.yaml"}
    assert set(kustomization["resources"]) == on_disk
    assert kustomization["namespace"] == k8s.NAMESPACE


# -- NetworkPolicies: computed from the policies' selectors, as a CNI that enforces them would --------------------
def _selects(selector: dict, labels: dict) -> bool:
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for e in selector.get("matchExpressions", []):
        has, value = e["key"] in labels, labels.get(e["key"])
        ok = {"In": has and value in e.get("values", []), "NotIn": not has or value not in e.get("values", []),
              "Exists": has, "DoesNotExist": not has}[e["operator"]]
        if not ok:
            return False
    return True


def _peer_matches(peer: dict, labels: dict | None) -> bool:
    """Whether a from/to peer is a pod of this namespace with labels (None: a pod of another namespace)."""
    if "ipBlock" in peer or "namespaceSelector" in peer or labels is None:
        return False  # (the base's only such peer is kube-dns, in kube-system)
    return _selects(peer.get("podSelector", {}), labels)


def _side(policies, direction: str, subject: dict | None, other: dict | None, port: int) -> bool:
    """Whether subject's policies of a direction let it talk to other at port (no policy selecting it: open)."""
    if subject is None:
        return True  # (a pod of another namespace: no policy of ours applies to it)
    relevant = [p["spec"] for p in policies if _selects(p["spec"]["podSelector"], subject)
                and direction in p["spec"]["policyTypes"]]
    if not relevant:
        return True
    key = "from" if direction == "Ingress" else "to"
    for rule in (r for spec in relevant for r in spec.get(direction.lower(), [])):
        ports = rule.get("ports")
        if ports is not None and not any(p.get("protocol", "TCP") == "TCP" and p["port"] == port for p in ports):
            continue
        if key not in rule or any(_peer_matches(peer, other) for peer in rule[key]):
            return True
    return False


def allowed(policies, src: dict | None, dst: dict, port: int) -> bool:
    """Whether a TCP connection from a pod labelled src to one labelled dst at port is let through."""
    return _side(policies, "Ingress", dst, src, port) and _side(policies, "Egress", src, dst, port)


def test_network_policies_let_a_node_be_reached_only_from_its_segments():
    """As `--isolated` and compose's internal networks: node A reaches node B's gRPC and search ports exactly when
    they share a segment (every link of the topology among them), never B's metrics; Prometheus reaches every
    metrics port and nothing else; the load workers reach the nodes of their segments and their master; a pod of
    another namespace reaches nothing."""
    topology = Topology.load()
    policies = list(objects("NetworkPolicy").values())
    labels = {name: t["metadata"]["labels"] for name, t in pod_templates().items()}
    labels[OUTSIDER] = None
    nodes = {n.name: n for n in topology.all_nodes}
    segments = {n.name: set(topology.segments_of(n)) for n in topology.all_nodes}
    reach = {(a, b) for a, b in permutations(nodes, 2)
             if all(allowed(policies, labels[a], labels[b], p) for p in k8s.call_ports(nodes[b]))}
    partly = {(a, b) for a, b in permutations(nodes, 2)
              if any(allowed(policies, labels[a], labels[b], p) for p in k8s.call_ports(nodes[b]))}
    assert reach == partly == {(a, b) for a, b in permutations(nodes, 2) if segments[a] & segments[b]}
    assert {(caller.name, callee.name) for caller, callee, _ in topology.links()} <= reach
    assert ("kizon-142140", "national") not in reach  # kizon has no path to national at all
    load = {s for s in topology.segments() if k8s.LOAD_SEGMENTS.fullmatch(s)}
    for b, node in nodes.items():
        for port in k8s.metrics_ports(node):
            assert allowed(policies, labels[PROMETHEUS], labels[b], port)
            assert not [a for a in nodes if allowed(policies, labels[a], labels[b], port)], (b, port)
        for port in k8s.call_ports(node):
            assert not allowed(policies, labels[PROMETHEUS], labels[b], port)
            assert allowed(policies, labels[WORKER], labels[b], port) == bool(segments[b] & load), b
            assert not allowed(policies, labels[MASTER], labels[b], port)
        assert not [p for p in node.ports() if p and allowed(policies, labels[OUTSIDER], labels[b], p)]
    assert allowed(policies, labels[WORKER], labels[MASTER], k8s.LOCUST_PORT)
    assert not [a for a in nodes if allowed(policies, labels[a], labels[MASTER], k8s.LOCUST_PORT)]
    assert "default-deny" in objects("NetworkPolicy") and "dns" in objects("NetworkPolicy")


def test_prometheus_scrapes_every_node_at_its_service_checking_its_own_name():
    """A job per node end at its Service and metrics port, with server_name the DNS name its certificate carries and
    the monitor certificate of its domain, which the Prometheus pod mounts."""
    jobs = {j["job_name"]: j for j in yaml.safe_load((BASE / "prometheus.yml").read_text())["scrape_configs"]}
    container = objects("Deployment")[PROMETHEUS]["spec"]["template"]["spec"]["containers"][0]
    mounted = {m["mountPath"] for m in container["volumeMounts"]}
    for node in Topology.load().all_nodes:
        for job, end in node.ends():
            tls = jobs[job]["tls_config"]
            assert jobs[job]["static_configs"][0]["targets"] == [f"{node.name}:{end.metrics_address.rsplit(':', 1)[1]}"]
            assert tls["server_name"] == node.host_name and jobs[job]["scheme"] == "https"
            assert Path(tls["cert_file"]).parent.as_posix() in mounted and Path(tls["ca_file"]).parent.as_posix() in mounted
            assert f"monitor-{KIND_DOMAIN[node.kind]}" in tls["cert_file"]
    assert "--config.file=/etc/prometheus/config/prometheus.yml" in container["args"]


def test_a_node_name_that_cannot_name_a_service_is_refused():
    bad = dataclasses.replace(Topology.load().node("national"), name="National_1")
    with pytest.raises(ValueError, match="cannot name a Kubernetes Service"):
        k8s.service_name(bad)


# -- the compose file's version ------------------------------------------------------------------------------------
def test_the_compose_file_states_the_version_it_needs_and_uses_nothing_beyond_it():
    """docker-compose.yml says at its top which Compose and Engine it needs; every key it uses is one that Compose
    release reads (compose.FEATURES), and nothing the table does not know."""
    text = (ROOT / compose.COMPOSE).read_text(encoding="utf-8")
    head = [line for line in text.splitlines() if line.startswith("#")]
    stated = re.search(r"Needs Docker Compose v(\d+)\.(\d+)\.(\d+) or later with Docker Engine (\d+)\.(\d+)", "\n".join(head))
    assert stated, head
    version = tuple(map(int, stated.groups()[:3]))
    assert version == compose.REQUIRES["compose"] and tuple(map(int, stated.groups()[3:])) == compose.REQUIRES["engine"]
    data = yaml.safe_load(text)
    assert compose.beyond(data, version) == []
    assert max(compose.FEATURES[p] for p in compose.features(data)) == version  # (no more than it needs, either)
    # the check finds what an older Compose lacks, and a key nobody has dated
    assert compose.beyond(data, (2, 25, 0)) == [
        "services.*.volumes.[].volume.subpath: needs Compose v2.26.0, the file states v2.25.0"]
    assert compose.beyond({**data, "configs": {}}, version) == [
        "configs: not in compose.FEATURES (add it with the Compose version that reads it)"]
