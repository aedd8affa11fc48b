"""The conformance suite (testbed/conform/, `testbed conform`): the reference implementation passes every case of
every role; the expected-failures file, the outputs and the command's refusals. (Each training weakness fails
exactly the cases of its rules: tests/test_probe.py, on the network the probe's weakened cases start.)"""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import network_with_residents
from nodes.refusal import CATALOGUE
from testbed import cli, conform
from testbed.conform import output

ROOT = Path(__file__).resolve().parent.parent
# (node, case) pairs that cannot be tried on the default network, and why: no identity of the platform domain names
# a place outside the topology; a migration target's cases need a target (the migration runs them before its cut
# over: tests/test_migration_conform.py).
NOT_TRIED = {("intermediate", "identity/not-in-topology"), ("kizon", "site/reopen/target"),
             ("kizon", "site/frozen/changes-closed"), ("atena", "site/reopen/target")}


# -- the catalogue of cases ---------------------------------------------------------------------------------------
def test_every_case_names_rules_of_the_catalogue_and_says_what_it_asserts():
    """Each case: a stable id of its role or topic, rules the catalogue holds (or a standard), a request, what it
    asserts, a procedure with a docstring; the reference comes from its rules."""
    assert len(conform.CASES) >= 30
    for c in conform.CASES.values():
        assert c.id.split("/")[0] in set(c.roles) | {"tls", "identity", "policy", "health", "errors", "message", "audit", "site"}, c.id
        assert all(r in CATALOGUE for r in c.rules), c.id
        assert c.rules or c.standard, c.id
        assert c.request and c.asserts and c.procedure.__doc__, c.id
        assert c.reference, c.id
    assert {"cs", "kizon"} <= set(conform.roles())


def test_every_rule_of_the_catalogue_has_a_case_or_says_why_not():
    """Each rule the nodes keep is checked by a case, or named in NOT_A_CASE with why no caller can try it over the
    wire; never both."""
    from nodes.reasons import catalogue
    checked = {r for c in conform.CASES.values() for r in c.rules}
    rules = {r.reason for r in catalogue()}
    assert not set(conform.NOT_A_CASE) - rules, "NOT_A_CASE names rules the catalogue does not hold"
    assert not checked & set(conform.NOT_A_CASE), checked & set(conform.NOT_A_CASE)
    assert all(len(why) > 20 for why in conform.NOT_A_CASE.values())
    missing = sorted(rules - checked - set(conform.NOT_A_CASE))
    assert not missing, f"{len(missing)} rules have no case: {missing}"
    from nodes.weaken import RULES as WEAKENED
    assert all(r in rules for switched in WEAKENED.values() for r in switched)


def test_docs_hold_the_case_list():
    """docs/conformance.md ends with the generated case list (regenerate it after adding a case)."""
    text = (ROOT / "docs" / "conformance.md").read_text(encoding="utf-8")
    assert text == output.document(text), "regenerate it: python -m testbed.conform.output"


@pytest.mark.parametrize("role, profile, ids, said", [
    ("nosuch", "all", (), "no node role 'nosuch'"),
    ("cs", "fast", (), "no profile 'fast'"),
    ("cs", "all", ("cs/検索/nothing",), "no case 'cs/検索/nothing'"),
    ("kizon", "all", ("cs/検索/two-items",), "is not one of the kizon role's"),
])
def test_a_selection_naming_nothing_is_refused(role, profile, ids, said):
    """A role, profile or case the suite does not know, or a case of another role: refused, saying which."""
    with pytest.raises(conform.SelectionError, match=said):
        conform.select(role, profile, ids)


def test_profiles_select_subsets():
    """wire is of every role; rules of a role are its own; the profiles together are all."""
    wire = {c.id for c in conform.select("national", "wire")}
    assert wire and all(c.startswith(("tls/", "identity/", "policy/", "health/", "errors/", "message/", "audit/")) for c in wire)
    rules = {c.id for c in conform.select("cs", "rules")}
    assert "cs/検索/two-items" in rules and not any(c.startswith("kizon/") for c in rules)
    every = {c.id for c in conform.select("kizon")}
    assert every == set().union(*({c.id for c in conform.select("kizon", p)} for p in conform.PROFILES))


def test_the_expected_failures_file(tmp_path):
    """One id a line with an optional `# why`; comments and blank lines; an unknown id refused naming its line."""
    path = tmp_path / "known.txt"
    path.write_text("# our gaps\n\ncs/検索/two-items   # TICKET-1\nkizon/依頼管理番号/retry\n", encoding="utf-8")
    assert conform.read_expected_failures(path) == {"cs/検索/two-items": "TICKET-1", "kizon/依頼管理番号/retry": "listed"}
    path.write_text("cs/検索/two-items\ncs/検索/renamed\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"known.txt:2: no case 'cs/検索/renamed'"):
        conform.read_expected_failures(path)


# -- against the reference implementation --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def net(tmp_path_factory):
    """A network of its own with 120 residents of 伊勢原市 (enough to try the bulk-output rules)."""
    yield from network_with_residents(tmp_path_factory, "conform", 120, seed=7)


def test_the_reference_passes_every_case_of_every_role(net):
    """A node of each role of the default topology (伊勢原市's where the role is a municipality's), every case of its
    role: PASSED (no case skipped but NOT_TRIED)."""
    for kind in dict.fromkeys(n.kind for n in net.topology.nodes):
        node = next(n for n in net.topology.nodes if n.kind == kind and n.municipality in (None, "142140"))
        results = conform.run_cases(net, node, conform.select(node.kind))
        bad = [(r.case, r.verdict, r.observed) for r in results
               if r.verdict != "PASSED" and (node.kind, r.case) not in NOT_TRIED]
        assert not bad, (node.name, bad)


def test_the_command_writes_its_results(net, tmp_path, capsys):
    """`testbed conform cs --json --junit --html`: exit 0, a table on stdout, and the same results in each file."""
    files = {kind: tmp_path / f"cs.{kind}" for kind in ("json", "junit", "html")}
    code = cli.main(["--state-dir", str(net.state_dir), "conform", "cs", "--target", "cs-142140",
                     *(w for kind, path in files.items() for w in (f"--{kind}", str(path)))])
    printed, err = capsys.readouterr()
    count = len(conform.select("cs"))
    assert code == 0 and f"PASSED {count}, FAILED 0" in printed, printed + err
    report = json.loads(files["json"].read_text(encoding="utf-8"))
    assert report["node"] == "cs-142140" and len(report["results"]) == count
    suite = ET.parse(files["junit"]).getroot()
    assert (suite.tag, suite.get("tests"), suite.get("failures")) == ("testsuite", str(count), "0")
    assert {t.get("name") for t in suite.iter("testcase")} == {c.id for c in conform.select("cs")}
    assert "cs/検索/two-items" in files["html"].read_text(encoding="utf-8")


@pytest.mark.parametrize("words, said", [
    (["conform", "kizon", "--target", "cs-142140"], "cs-142140 is a cs, not a kizon"),
    (["conform", "cs", "--target", "cs-999999"], "no node 'cs-999999'"),
    (["conform", "cs", "--expected-failures", "/nonexistent/known.txt"], "--expected-failures: No such file"),
])
def test_the_command_refuses_in_one_line(net, capsys, words, said):
    """A target of another role, an unknown node, a missing file: one line on stderr, exit 2, no traceback."""
    code = cli.main(["--state-dir", str(net.state_dir), *words])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and said in err and "Traceback" not in err, err


def test_a_stream_without_end_costs_the_suite_a_bounded_take():
    """Against a node that streams records without end (a hostile implementation): the suite takes one more than
    the bulk-output limit and cancels the rest, as it would a gRPC response stream."""
    from testbed.conform import kizon

    class Endless:
        sent, cancelled = 0, False

        def __iter__(self):
            return self

        def __next__(self):
            self.sent += 1
            return self.sent

        def cancel(self):
            self.cancelled = True
    stream = Endless()
    assert len(kizon._taken(stream)) == kizon.BULK_LIMIT + 1 and stream.cancelled and stream.sent == kizon.BULK_LIMIT + 1
