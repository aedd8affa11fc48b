"""docker-compose.yml, generated from the topology: current, and right when read (this machine has no Docker
engine, so the file is checked statically): a service per node on exactly its segments, internal networks,
mounts that exist once the PKI is made, and a scrape job per node with the monitor certificate."""
from __future__ import annotations

from pathlib import Path

import yaml

from certs.identity import KIND_DOMAIN
from certs.pki import PKI
from testbed import compose
from testbed.topology import Topology

ROOT = Path(__file__).resolve().parent.parent


def load(path: Path) -> dict:
    return yaml.safe_load((ROOT / path).read_text(encoding="utf-8"))


def test_the_generated_files_are_current():
    """docker-compose.yml, deploy/prometheus.yml and deploy/topology.compose.yaml are what the topology gives."""
    assert compose.stale(ROOT, Topology.load()) == [], "run `testbed compose render`"
    assert (ROOT / "Dockerfile").exists()


def test_every_node_has_a_service_on_exactly_its_segments():
    """One service per node (targets included), attached to the segments the real network gives it, by its name."""
    topology = Topology.load()
    services = load(compose.COMPOSE)["services"]
    networks = load(compose.COMPOSE)["networks"]
    assert set(networks) == set(topology.segments()) and all(n["internal"] for n in networks.values())
    for node in topology.all_nodes:
        service = services[node.name]
        assert set(service["networks"]) == set(topology.segments_of(node)), node.name
        assert all(a["aliases"] == [node.host_name] for a in service["networks"].values())
        assert service["environment"]["TESTBED_BIND"] == "0.0.0.0"
        assert service["depends_on"]["pki"]["condition"] == "service_completed_successfully"
    kizon = services["kizon-142140"]
    assert "jukinet" not in kizon["networks"]  # kizon has no path to national at all


def test_every_mount_exists_after_pki_init_and_holds_only_the_nodes_own_secrets(tmp_path):
    """Each node mounts the anchors, CRLs and public session keys read-only and only its own folder of keys; every
    path it mounts from the state volume exists once `testbed pki init` has run."""
    topology = compose.compose_topology(Topology.load())
    PKI(tmp_path / "pki").init(topology)
    services = load(compose.COMPOSE)["services"]
    for name, service in services.items():
        for mount in service.get("volumes", []):
            subpath = mount.get("volume", {}).get("subpath")
            if subpath:
                assert (tmp_path / subpath).exists(), (name, subpath)
    for node in topology.all_nodes:
        keys = [m["volume"]["subpath"] for m in services[node.name]["volumes"] if "volume" in m
                and m["volume"]["subpath"].startswith("pki/nodes/")]
        assert keys == [f"pki/nodes/{node.name}"]
        clients = [m["volume"]["subpath"] for m in services[node.name]["volumes"] if "volume" in m
                   and m["volume"]["subpath"].startswith("pki/clients/")]
        assert clients == [f"pki/clients/monitor-{KIND_DOMAIN[node.kind]}"]  # its health check's, read-only
        assert services[node.name]["healthcheck"]["test"][-2:] == ["health", node.name]
        assert not [m for m in services[node.name]["volumes"] if m.get("source") == "state" and "volume" not in m]


def test_prometheus_scrapes_every_node_with_its_domains_monitor():
    """A job per node over HTTPS, checking the node's own name, presenting the monitor certificate of its domain,
    which the Prometheus service mounts."""
    topology = Topology.load()
    jobs = {j["job_name"]: j for j in load(compose.PROMETHEUS)["scrape_configs"]}
    mounted = {m["target"] for m in load(compose.COMPOSE)["services"]["prometheus"]["volumes"]}
    for node in topology.all_nodes:
        job = jobs[node.name]
        assert job["scheme"] == "https" and job["tls_config"]["server_name"] == node.host_name
        assert job["static_configs"][0]["targets"] == [f"{node.host_name}:{node.metrics_address.rsplit(':', 1)[1]}"]
        assert Path(job["tls_config"]["cert_file"]).parent.as_posix() in mounted
        assert f"monitor-{KIND_DOMAIN[node.kind]}" in job["tls_config"]["cert_file"]
