"""Training mode tried as the probe and the conformance suite see it, one weakness at a time (tests/test_probe.py and
tests/test_probe_weakened.py share it: each half of the weaknesses on a network of its own, side by side)."""
from __future__ import annotations

from nodes.weaken import RULES as WEAKENED_RULES, cases_of
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
HERE = ("bulk-output", "number-in-copy")  # tried in tests/test_probe.py
ELSEWHERE = ("search-rule", "crl", "topology-identity")  # tried in tests/test_probe_weakened.py


def failed_rules(cases) -> set[str]:
    """The rules of the probe's failed cases."""
    return {c.rule for c in cases if c.verdict == "FAIL"}


def probe_and_suite_fail_exactly(probed, weakness, monkeypatch, tmp_path, capsys) -> None:
    """With one weakness switched on, the probe fails on that rule and on nothing else; and the conformance suite
    fails, at the CS and kizon, exactly the cases of the rules it switches off (nodes/weaken.RULES), and, with the
    search rule off (the command's handling of the file is the same for every weakness), listed as expected failures
    the run passes, a listed case that passes being a WARNING. (The network is left down: the next case starts it
    with its own weakness, and no case after these needs it unweakened. No weakness is of TLS, and the handshake
    cases still run: sslyze's scan, which the default network's case runs, is left out.)"""
    monkeypatch.setattr(tlsscan, "find_sslyze", lambda: None)  # (the scan's cases SKIP, naming why)
    probed.down()
    probed.up(weaken=(weakness,))
    try:
        assert probed.weakened() == (weakness,)
        assert "WEAKENED ON PURPOSE" in probed.log_file("kizon-142140").read_text()
        cases, _ = run_probe(probed)
        assert failed_rules(cases) == {RULE_OF[weakness]}, [c for c in cases if c.verdict == "FAIL"][:3]
        _suite_fails_exactly(probed, weakness, tmp_path, capsys)
    finally:
        probed.down()


def _suite_fails_exactly(network, weakness: str, tmp_path, capsys) -> None:
    """The conformance suite's half of probe_and_suite_fail_exactly."""
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
