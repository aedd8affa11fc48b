"""`testbed probe`: passes on a well-run network, and in training mode fails on exactly the weakened rule (and so
does the conformance suite, on the same weakened network)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import make_network, network_with_residents
from nodes.weaken import RULES as WEAKENED_RULES, WEAKNESSES, cases_of
from testbed import cli, conform, tlsscan
from testbed.probe import run_probe

RULE_OF = {  # the rule each weakness must show up under, and nothing else
    "crl": "crl",
    "topology-identity": "identity rule",
    "search-rule": "検索 rule (PIA Ⅲ(2)2)",
    "bulk-output": "bulk output rule (PIA Ⅲ(2)3)",
    "number-in-copy": "number-in-copy (符号 only)",
    "audit-key": "audit-key",
}
GROUPS = {"kit", "identity", "policy", "tls", "crl", "audit", "search", "bulk-output", "符号", "invariants"}


@pytest.fixture(scope="module")
def probed(tmp_path_factory):
    """A network of its own with 120 residents of 伊勢原市 (enough to try the bulk-output rule)."""
    yield from network_with_residents(tmp_path_factory, "probe", 120, seed=5)


def failed_rules(cases) -> set[str]:
    return {c.rule for c in cases if c.verdict == "FAIL"}


def test_the_probe_passes_on_the_default_network(probed, tmp_path):
    """`testbed probe --json --html` exits 0; the JSON lists every group of cases, none failed or skipped."""
    probed.up()  # (as the fixture left it, or again after a weakened case run before this one)
    out = tmp_path / "probe.json"
    page = tmp_path / "probe.html"
    run = subprocess.run([sys.executable, "-m", "testbed.cli", "--state-dir", str(probed.state_dir), "probe",
                          "--json", str(out), "--html", str(page)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["failed"] == 0
    assert {c["group"] for c in report["cases"]} == GROUPS
    assert not [c for c in report["cases"] if c["verdict"] != "PASS"]
    scanned = {c["node"] for c in report["cases"] if c["case"].startswith("sslyze: ")}
    ports = {n.name for n in probed.topology.nodes} | {f"{n.name}.search" for n in probed.topology.nodes if n.search_address}
    assert scanned == ports  # every port scanned by sslyze, the CS's search ports too (make setup installs it)
    assert "0 failed" in page.read_text()


def test_probe_skip_leaves_out_exactly_the_groups_named(probed, tmp_path):
    """`testbed probe --skip` runs every group but those named (the report says which were left out); a group the
    probe does not have is refused in one line."""
    probed.up()
    out = tmp_path / "probe.json"
    left_out = sorted(GROUPS - {"crl", "audit"})
    run = subprocess.run([sys.executable, "-m", "testbed.cli", "--state-dir", str(probed.state_dir), "probe",
                          "--skip", ",".join(left_out), "--json", str(out)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    report = json.loads(out.read_text())
    assert {c["group"] for c in report["cases"]} == {"crl", "audit"} and report["skipped_groups"] == left_out
    wrong = subprocess.run([sys.executable, "-m", "testbed.cli", "--state-dir", str(probed.state_dir), "probe",
                            "--skip", "policy,tsl"], capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 2 and "no group tsl in the probe" in wrong.stderr and "Traceback" not in wrong.stderr
    assert len(wrong.stderr.strip().splitlines()) == 1, wrong.stderr


def _suite(name):
    return {"cipher_suite": {"name": name}}


def _scan(**results):
    return {command: {"status": "COMPLETED", "result": result} for command, result in results.items()}


GOOD_SCAN = _scan(
    ssl_3_0_cipher_suites={"accepted_cipher_suites": []}, tls_1_0_cipher_suites={"accepted_cipher_suites": []},
    tls_1_1_cipher_suites={"accepted_cipher_suites": []},
    tls_1_2_cipher_suites={"accepted_cipher_suites": [_suite("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256")]},
    tls_1_3_cipher_suites={"accepted_cipher_suites": [_suite("TLS_AES_128_GCM_SHA256")]},
    tls_compression={"supports_compression": False}, heartbleed={"is_vulnerable_to_heartbleed": False},
    openssl_ccs_injection={"is_vulnerable_to_ccs_injection": False}, robot={"robot_result": "NOT_VULNERABLE_NO_ORACLE"},
    session_renegotiation={"supports_secure_renegotiation": True, "is_vulnerable_to_client_renegotiation_dos": False},
    tls_fallback_scsv={"supports_fallback_scsv": True},
    elliptic_curves={"supported_curves": [{"name": "X25519"}, {"name": "secp256r1"}]},
)


def test_an_sslyze_scan_is_judged_case_by_case():
    """A clean scan passes every case; old versions, CBC or RSA suites, known flaws and small curves each fail theirs."""
    from testbed.tlsscan import judge

    assert all(ok for *_, ok in judge(GOOD_SCAN))
    bad = {**GOOD_SCAN, **_scan(
        tls_1_0_cipher_suites={"accepted_cipher_suites": [_suite("TLS_RSA_WITH_AES_128_CBC_SHA")]},
        tls_1_2_cipher_suites={"accepted_cipher_suites": [_suite("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256")]},
        heartbleed={"is_vulnerable_to_heartbleed": True},
        elliptic_curves={"supported_curves": [{"name": "secp192r1"}]})}
    verdicts = {case: (actual, ok) for case, _, actual, ok in judge(bad)}
    assert not verdicts["sslyze: SSL 3.0, TLS 1.0, TLS 1.1"][1] and "TLS 1.0" in verdicts["sslyze: SSL 3.0, TLS 1.0, TLS 1.1"][0]
    assert verdicts["sslyze: TLS 1.2 suites"] == ("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", False)
    assert verdicts["sslyze: known TLS flaws"] == ("Heartbleed", False)
    assert verdicts["sslyze: key-exchange curves"] == ("secp192r1", False)
    assert verdicts["sslyze: TLS 1.3"][1]
    errored = {**GOOD_SCAN, "heartbleed": {"status": "ERROR", "result": None}}
    assert dict((c, ok) for c, _, _, ok in judge(errored))["sslyze: known TLS flaws"] is None  # SKIP, not PASS


@pytest.mark.parametrize("weakness", [w for w in WEAKNESSES if w != "audit-key"])
def test_the_probe_and_the_suite_name_exactly_the_weakened_rule(probed, weakness, monkeypatch, tmp_path, capsys):
    """With one weakness switched on, the probe fails on that rule and on nothing else; and the conformance suite
    fails, at the CS and kizon, exactly the cases of the rules it switches off (nodes/weaken.RULES), and, with the
    search rule off (the command's handling of the file is the same for every weakness), listed as expected failures
    the run passes, a listed case that passes being a WARNING. (The network is left down: the next case starts it
    with its own weakness, and no case after these needs it unweakened. No weakness is of TLS, and the handshake
    cases still run: sslyze's scan, which the default network's case runs, is left out. Nor is any of the policy:
    the probe's matrix of 9,000 calls, which the default network's case runs, is left out too (`--skip policy`),
    and the conformance suite's own matrix still runs at the CS and kizon, where every weakness acts.)"""
    monkeypatch.setattr(tlsscan, "find_sslyze", lambda: None)  # (the scan's cases SKIP, naming why)
    probed.down()
    probed.up(weaken=(weakness,))
    try:
        assert probed.weakened() == (weakness,)
        assert "WEAKENED ON PURPOSE" in probed.log_file("kizon-142140").read_text()
        cases, _ = run_probe(probed, skip=frozenset({"policy"}))
        assert failed_rules(cases) == {RULE_OF[weakness]}, [c for c in cases if c.verdict == "FAIL"][:3]
        assert {c.group for c in cases} == GROUPS - {"policy"}
        _suite_fails_exactly(probed, weakness, tmp_path, capsys)
    finally:
        probed.down()


def _suite_fails_exactly(network, weakness: str, tmp_path, capsys) -> None:
    """The conformance suite's half of the case above."""
    if not WEAKENED_RULES[weakness]:
        return
    for role in ("cs", "kizon"):
        results = conform.run_cases(network, network.topology.find(role, "142140"), conform.select(role))
        failed = {r.case for r in results if r.verdict == "FAILED"}
        assert failed == cases_of(weakness, conform.select(role)), (weakness, role, failed)
    if weakness != "search-rule":
        return
    listed = sorted(cases_of(weakness, conform.select("cs")))
    known = tmp_path / "known.txt"
    known.write_text("".join(f"{c}  # {weakness} on purpose\n" for c in listed) + "health/serving\n", encoding="utf-8")
    code = cli.main(["--state-dir", str(network.state_dir), "conform", "cs", "--expected-failures", str(known)])
    printed, err = capsys.readouterr()
    assert code == 0 and f"FAILED {len(listed)} ({len(listed)} expected)" in printed, printed + err
    assert "WARNING  health/serving" in printed, printed


def test_the_probe_finds_an_unkeyed_audit_chain(tmp_path, monkeypatch):
    """A network whose nodes key their audit chain with an empty key: the probe fails on audit-key alone (a
    fresh state folder: a chain cannot change key half way; sslyze's scan and the policy matrix left out, as above)."""
    monkeypatch.setattr(tlsscan, "find_sslyze", lambda: None)
    network = make_network(tmp_path)
    network.up(weaken=("audit-key",))
    try:
        cases, _ = run_probe(network, skip=frozenset({"policy"}))
        assert failed_rules(cases) == {"audit-key"}
    finally:
        network.down()


def test_every_weakness_has_its_rule():
    """Every weakness `testbed up --weaken list` offers is one the probe knows how to find."""
    assert set(WEAKNESSES) == set(RULE_OF)
