"""Prometheus outside compose: `testbed prometheus config` for a network running on this machine, scraped by a real
Prometheus (Debian's /usr/bin/prometheus, when installed; skipped otherwise) until every node's target is up; and
the metrics' labels: gRPC status names under `code`, the metrics endpoint's own HTTP statuses under `http_code` of
a metric of their own, never mixed."""
from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import time
import urllib.parse
import urllib.request
from types import SimpleNamespace

import grpc
import pytest
import yaml

from conftest import make_network
from nodes import ports
from nodes.metrics import NodeMetrics
from testbed import cli

PROMETHEUS = shutil.which("prometheus") or ("/usr/bin/prometheus" if os.access("/usr/bin/prometheus", os.X_OK) else None)
GRPC_CODES = {code.name for code in grpc.StatusCode}
UP_TIMEOUT = 90.0  # seconds for every target to be scraped up (at a 1 s interval: the first scrape of each comes soon)


def series(body: str) -> dict[str, float]:
    """Series → value of an exposition."""
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in body.splitlines()
            if line and not line.startswith("#")}


def test_grpc_statuses_and_http_statuses_never_share_a_label(tmp_path):
    """Calls are counted by method and gRPC status name (anything else as UNKNOWN); the metrics endpoint's requests
    by HTTP status under http_code, in testbed_metrics_requests_total; no "/metrics" method label any more."""
    runtime = SimpleNamespace(label="cs-142140", outbox=None, audit=SimpleNamespace(seq=0),
                              store=SimpleNamespace(db=sqlite3.connect(":memory:"), path=tmp_path / "store.db"),
                              node=SimpleNamespace(kind="cs", identity="spiffe://testbed.jp/test"))
    metrics = NodeMetrics(runtime)
    metrics.serve_methods({"/testbed.v1.Test/Call"})
    metrics.observe("/testbed.v1.Test/Call", "OK", 0.001)
    metrics.observe("/testbed.v1.Test/Call", "200", 0.001)  # (not a gRPC status: counted as UNKNOWN)
    metrics.observe("/not.Served/Method", "UNIMPLEMENTED", 0.001)
    metrics.observe_scrape(200, 0.002)
    metrics.observe_scrape(403, 0.002)
    seen = series(metrics.exposition().decode())
    calls = [s for s in seen if s.startswith("testbed_requests_total{")]
    assert {s.split('code="')[1].split('"')[0] for s in calls} == {"OK", "UNKNOWN", "UNIMPLEMENTED"} <= GRPC_CODES
    assert seen['testbed_requests_total{code="OK",method="/testbed.v1.Test/Call"}'] == 1
    assert seen['testbed_requests_total{code="UNIMPLEMENTED",method="unknown"}'] == 1
    assert seen['testbed_metrics_requests_total{http_code="200"}'] == 1
    assert seen['testbed_metrics_requests_total{http_code="403"}'] == 1
    assert seen["testbed_metrics_request_seconds_count"] == 2
    assert not [s for s in seen if 'method="/metrics"' in s or ("http_code" in s and "code=" in s.replace("http_code", ""))]


def _api(port: int, path: str, **query) -> dict:
    url = f"http://127.0.0.1:{port}{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
    with urllib.request.urlopen(url, timeout=5) as answer:
        return json.loads(answer.read())


@pytest.mark.skipif(PROMETHEUS is None, reason="no Prometheus here (Debian: `apt-get install prometheus`, which puts "
                    "it at /usr/bin/prometheus)")
def test_prometheus_scrapes_every_node_of_a_network_on_this_machine(tmp_path):
    """`testbed prometheus config --out F` for a running network: Prometheus (on loopback) reports every node's
    target (and every search process's) up, over HTTPS as the domains' monitors; the series it stores keep gRPC
    statuses under code and the scrapes' HTTP statuses under http_code."""
    network = make_network(tmp_path / "state")
    network.up()
    try:
        config = tmp_path / "prometheus.yml"
        assert cli.main(["--state-dir", str(network.state_dir), "prometheus", "config", "--out", str(config),
                         "--scrape-interval", "1s"]) == 0
        jobs = {j["job_name"]: j for j in yaml.safe_load(config.read_text(encoding="utf-8"))["scrape_configs"]}
        ends = {job: end for n in network.topology.all_nodes for job, end in n.ends()}
        assert set(jobs) == set(ends)
        for job, end in ends.items():
            assert jobs[job]["static_configs"][0]["targets"] == [end.metrics_address]
            assert jobs[job]["tls_config"]["server_name"] == end.host_name
            assert os.path.isfile(jobs[job]["tls_config"]["cert_file"]) and os.path.isabs(jobs[job]["tls_config"]["ca_file"])
        port = ports.reserve("127.0.0.1", 1)[0]
        with open(tmp_path / "prometheus.log", "wb") as log:
            server = subprocess.Popen([PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                                       f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
        try:
            health: dict = {}
            deadline = time.monotonic() + UP_TIMEOUT
            while time.monotonic() < deadline:
                assert server.poll() is None, (tmp_path / "prometheus.log").read_text(errors="replace")[-2000:]
                try:
                    targets = _api(port, "/api/v1/targets")["data"]["activeTargets"]
                    health = {t["labels"]["job"]: (t["health"], t.get("lastError", "")) for t in targets}
                except OSError:
                    health = {}  # (not listening yet)
                if set(health) == set(ends) and all(h == "up" for h, _ in health.values()):
                    break
                time.sleep(0.5)
            assert set(health) == set(ends) and all(h == "up" for h, _ in health.values()), health
            # the series Prometheus stored: a code label of gRPC status names alone, the scrapes under http_code
            deadline = time.monotonic() + UP_TIMEOUT
            scraped: set = set()
            while time.monotonic() < deadline and scraped != set(ends):
                found = _api(port, "/api/v1/series", **{"match[]": 'testbed_metrics_requests_total{http_code="200"}'})
                scraped = {s["job"] for s in found["data"]}
                time.sleep(0.5)
            assert scraped == set(ends)
            calls = _api(port, "/api/v1/series", **{"match[]": "testbed_requests_total"})["data"]
            assert calls and {s["code"] for s in calls} <= GRPC_CODES and not [s for s in calls if "http_code" in s]
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    finally:
        network.down()


def test_the_config_command_needs_a_network(tmp_path, capsys):
    """No network in the state folder (no topology.yaml): one line saying to start one."""
    assert cli.main(["--state-dir", str(tmp_path), "prometheus", "config"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "testbed up" in err
