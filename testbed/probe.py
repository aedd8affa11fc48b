"""`testbed probe`: the security tester's run against a network, as an attacker with the testbed's own kit.

Every case says what it tries, against which node, what a well-run network answers and what this one did:
the bad-certificate kit against every node; identities the topology does not name and weak keys (made
for the run with the PKI's own CA, as a careless or compromised issuer would); the policy matrix of
every client identity against every method of every node; the TLS protocol versions, ciphers and the
client-certificate requirement of every port; CRL freshness; the audit chains and their checkpoints;
the two-item search rule; bulk output; and that no 個人番号 leaves for the 中間サーバ. The run exits 1 if
anything was accepted that should have been refused.
"""
from __future__ import annotations

import datetime as dt
import html
import json
import ssl
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from certs.identity import DOMAINS, JUKINET, LAN, KIND_DOMAIN, node_uri, terminal_uri
from certs.pki import BAD_CASES, PassphraseError, crl_number
from nodes import audit
from nodes.clock import office_today
from nodes.guard import APPROVAL_KEY
from nodes.jimu import table as jimu_table
from nodes.reasons import access as A
from nodes.tls import ClientCert, pinned
from protos import identity_pb2, intermediate_pb2, kizon_pb2, national_pb2, national_pb2_grpc, records_pb2
from scenarios.towns import towns
from testbed import tlsscan
from testbed.client import Counter, channel, named_cert, node_cert, node_status, server_verdict
from testbed.kit import (CALL_TIMEOUT, CRL_RELOAD, HANDSHAKE, REFUSED, Minter, handshake, kit_rule, methods_of,
                         policy_clients, policy_differences, refused_by_guard, status_of)

MATRIX_THREADS = 3  # cells of the policy matrix tried at once (each one channel, its unary calls all at once)
STEP_GROUP = {"kit": "kit", "identities": "identity", "policy_matrix": "policy", "tls": "tls", "crls": "crl",
              "audit_chains": "audit", "search_rule": "search", "bulk_output": "bulk-output", "number_in_copies": "符号",
              "invariants": "invariants"}  # the group of the cases each step makes (what --skip names)
GROUPS = tuple(STEP_GROUP.values())


@dataclass
class Case:
    """One thing the probe tried."""

    group: str  # kit, identity, policy, tls, crl, audit, search, bulk-output, 符号
    case: str
    node: str
    expected: str
    actual: str
    verdict: str  # PASS, FAIL (accepted what should be refused, or the other way), SKIP (nothing to try it on)
    rule: str = ""  # the rule this case exercises
    detail: str = ""


class Probe:
    """The run against one network (its PKI is the probe's kit and its issuer of attacker certificates)."""

    def __init__(self, network, weakened: tuple[str, ...] = (), skip: frozenset[str] = frozenset()):
        self.network = network
        self.skip = skip  # groups left out of the run (`testbed probe --skip`)
        self.pki = network.pki
        self.topology = network.topology
        self.cases: list[Case] = []
        self.minter = Minter(self.pki, "probe")  # certificates issued for the run: all revoked when it ends
        self.weakened = weakened

    def add(self, group, case, node, expected, actual, ok, rule="", detail=""):
        verdict = "SKIP" if ok is None else "PASS" if ok else "FAIL"
        self.cases.append(Case(group, case, node, expected, actual, verdict, rule, detail[:300]))

    # -- the run ---------------------------------------------------------------------------------------------
    def run(self) -> list[Case]:
        """Every group of cases, in order."""
        for step in self.steps():
            if STEP_GROUP[step.__name__] in self.skip:
                continue
            try:
                step()
            except PassphraseError as exc:  # the cases that mint certificates need the CA keys
                self.add(step.__name__, "the step ran", "-", "completes", str(exc), None)
            except Exception as exc:  # a probe step that breaks is itself a finding, not a crash of the run
                self.add(step.__name__, "the step ran", "-", "completes", f"{type(exc).__name__}: {exc}", False)
        self.minter.close()  # nothing the probe made stays usable after the run
        return self.cases

    def steps(self) -> tuple:
        """The steps of a run, in order (each makes the cases of one group: STEP_GROUP)."""
        return (self.kit, self.identities, self.policy_matrix, self.tls, self.crls, self.audit_chains,
                self.search_rule, self.bulk_output, self.number_in_copies, self.invariants)

    def kit(self) -> None:
        """Every case of the bad-certificate kit against every node: refused, the way the README says."""
        for case in BAD_CASES:
            cert = ClientCert(*self.pki.bad_files(case), self.pki.trust_bundle)
            for label, node in self.ports():
                with channel(node, cert) as ch:
                    code, details, reason = status_of(lambda: ch.unary_unary("/grpc.health.v1.Health/Check")(b"", timeout=CALL_TIMEOUT))
                expected = "UNAVAILABLE (handshake)" if case in HANDSHAKE else REFUSED
                ok = code == grpc.StatusCode.UNAVAILABLE if case in HANDSHAKE else refused_by_guard(code, reason)
                self.add("kit", f"bad/{case}", label, expected, code.name, ok, kit_rule(case), details)

    def ports(self) -> list[tuple[str, object]]:
        """(label, node) of every gRPC port: each node's, and each CS's search process (NODE.search)."""
        return [end for n in self.topology.nodes for end in n.ends()]

    def identities(self) -> None:
        """Certificates the testbed's own CA would issue to a careless request: names not in the topology,
        a municipality outside it, a short RSA key. Each must be refused at authentication."""
        home = self.topology.municipalities[0].code
        tries = [("terminal not in the topology", LAN, terminal_uri(home, "T9999"), None, "kizon", home),
                 ("CS of a municipality not in the topology", JUKINET, node_uri("cs", "131016"), None, "national", None),
                 ("RSA-1024 key", LAN, terminal_uri(home, self.topology.municipalities[0].terminals[0]),
                  rsa.generate_private_key(public_exponent=65537, key_size=1024), "kizon", home)]
        for label, domain, identity, key, kind, municipality in tries:
            cert = self.minter.mint(label, domain, identity, key)
            node = self.topology.find(kind, municipality)
            with channel(node, cert) as ch:
                code, details, reason = status_of(lambda: ch.unary_unary("/grpc.health.v1.Health/Check")(b"", timeout=CALL_TIMEOUT))
            rule = "key size rule" if key is not None else "identity rule"
            ok = code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.UNAVAILABLE)
            self.add("identity", label, node.name, "UNAUTHENTICATED", code.name, ok, rule, details)
        # A certificate of a listed terminal, revoked by serial for the run: refused from the next call.
        terminal = self.topology.municipalities[0].terminals[0]
        cert = self.minter.mint("revoked terminal", LAN, terminal_uri(home, terminal))
        self.pki.revoke(serial=self.minter.serial(cert))
        node = self.topology.find("kizon", home)
        deadline = time.monotonic() + CRL_RELOAD  # a node re-reads the CRL once it sees its file change
        while True:
            with channel(node, cert) as ch:
                code, details, reason = status_of(lambda: ch.unary_unary("/grpc.health.v1.Health/Check")(b"",
                                                                                                 timeout=CALL_TIMEOUT))
            if reason == A.CERTIFICATE_REVOKED.reason or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.add("identity", "revoked certificate of a listed terminal", node.name, "UNAUTHENTICATED", code.name,
                 code == grpc.StatusCode.UNAUTHENTICATED and reason == A.CERTIFICATE_REVOKED.reason, "crl", details)

    def policy_matrix(self) -> None:
        """Every client identity against every method of every node: let in exactly where the policy allows. (The
        cells are tried MATRIX_THREADS at a time: a cell mostly waits on its node, and the nodes are many.)"""
        clients = policy_clients(self.pki)
        cells = [(node, identity, cert) for node in self.topology.nodes for identity, cert in clients]
        # Each node's server certificate is judged once (the peer rule: it is the same whoever calls), not once a cell
        # with a handshake of its own; a node that fails it is called as channel() would, every call refused here.
        trusted = {node.name: not server_verdict(node, clients[0][1]) for node in self.topology.nodes} if clients else {}

        def tried(cell) -> list[str]:
            node, identity, cert = cell
            with channel(node, cert, verify_server=not trusted[node.name]) as ch:
                return policy_differences(ch, node, identity, methods_of(node.kind))
        with ThreadPoolExecutor(MATRIX_THREADS, thread_name_prefix="probe-matrix") as pool:
            results = list(pool.map(tried, cells))
        for (node, identity, _), wrong in zip(cells, results):
            self.add("policy", identity.removeprefix("spiffe://testbed.jp/"), node.name,
                     f"{len(methods_of(node.kind))} methods as the policy says", "as the policy says" if not wrong
                     else f"{len(wrong)} differ", not wrong, "default deny (nodes/policy.py)", "; ".join(wrong))

    def tls(self) -> None:
        """Every port: TLS 1.2 and 1.3 only, a client certificate required, no cipher without forward secrecy."""
        monitor = {d: ClientCert(*self.pki.client_files(f"monitor-{d}"), self.pki.trust_bundle) for d in DOMAINS}
        for label, node in self.ports():
            cert = pinned(monitor[KIND_DOMAIN[node.kind]], KIND_DOMAIN[node.kind])
            for version, should in ((ssl.TLSVersion.TLSv1, False), (ssl.TLSVersion.TLSv1_1, False),
                                    (ssl.TLSVersion.TLSv1_2, True), (ssl.TLSVersion.TLSv1_3, True)):
                ok, detail = handshake(node, cert, version)
                self.add("tls", f"{version.name}", label, "accepted" if should else "refused",
                         "accepted" if ok else "refused", ok == should, "TLS 1.2/1.3 only", detail)
            ok, detail = handshake(node, None, ssl.TLSVersion.TLSv1_3, trust=cert.trust)
            self.add("tls", "no client certificate", label, "refused", "accepted" if ok else "refused", not ok,
                     "mutual TLS", detail)
            ok, detail = handshake(node, cert, ssl.TLSVersion.TLSv1_2, ciphers="AES128-SHA:AES256-SHA:AES128-GCM-SHA256")
            self.add("tls", "RSA key exchange (no forward secrecy)", label, "refused", "accepted" if ok else "refused",
                     not ok, "ECDHE only", detail)
        self.sslyze_scan(monitor)

    def sslyze_scan(self, monitor: dict) -> None:
        """Every port scanned by sslyze with its domain's monitor certificate (SKIP where sslyze is missing)."""
        sslyze = tlsscan.find_sslyze()
        if sslyze is None:
            for label, _ in self.ports():
                self.add("tls", "sslyze scan", label, "scanned", "sslyze not installed", None, tlsscan.RULE,
                         f"`make setup` installs it into .venv/scanner, or set {tlsscan.ENV}")
            return
        groups = [(pinned(monitor[d], d), [n for _, n in self.ports() if KIND_DOMAIN[n.kind] == d]) for d in DOMAINS]
        results = tlsscan.scan(sslyze, [(cert, nodes) for cert, nodes in groups if nodes])
        for label, node in self.ports():
            result = results.get(node.address, "not scanned")
            if isinstance(result, str):
                self.add("tls", "sslyze scan", label, "scanned", result, False, tlsscan.RULE)
                continue
            for case, expected, actual, ok in tlsscan.judge(result):
                self.add("tls", case, label, expected, actual, ok, tlsscan.RULE)

    def crls(self) -> None:
        """Every domain's CRL: signed, with a number and a nextUpdate still ahead."""
        now = dt.datetime.now(dt.timezone.utc)
        for domain in DOMAINS:
            crl = x509.load_pem_x509_crl(self.pki.crl_path(domain).read_bytes())
            fresh = crl.next_update_utc is not None and crl.next_update_utc > now
            self.add("crl", f"{domain} CRL", "-", "numbered, fresh", f"number {crl_number(crl)}, next update "
                     f"{crl.next_update_utc:%Y-%m-%d}" if crl.next_update_utc else "no next update",
                     fresh and crl_number(crl) > 0, "CRL freshness")

    def audit_chains(self) -> None:
        """Every node's audit log: whole under its key and checkpoints, and not re-computable without the key."""
        for chain in self.network.audit_chains(self.topology.nodes):
            result = self.network.verify_audit(chain)
            self.add("audit", "keyed chain and checkpoints", chain, "whole", "whole" if result.ok else "broken",
                     result.ok, "audit chain", "; ".join(result.problems[:3]))
            unkeyed = audit.verify(self.network.audit_file(chain), b"")
            self.add("audit", "chain needs the node's key", chain, "keyed", "unkeyed" if unkeyed.ok and unkeyed.entries
                     else "keyed", not (unkeyed.ok and unkeyed.entries), "audit-key")

    def invariants(self) -> None:
        """After everything the probe tried: the network-wide invariants of `testbed check` still hold."""
        from testbed.check import INVARIANTS, check_network
        report = check_network(self.network, audit=False)  # (the chains are cases of their own above)
        for invariant in INVARIANTS:
            broken = [f for f in report.failures if f.invariant == invariant]
            self.add("invariants", invariant, "network", "holds", "broken" if broken else "holds", not broken,
                     "testbed check", "; ".join(f.detail for f in broken[:2]))

    def search_rule(self) -> None:
        """A 4情報 search with fewer than two items besides sex is refused."""
        home = self.topology.municipalities[0].code
        with Counter(self.network, home) as clerk:
            for label, query in (("氏名 alone", identity_pb2.IdentitySearch(name_kana="シケン タロウ")),
                                 ("氏名 and one character of 住所", identity_pb2.IdentitySearch(name_kana="シケン タロウ",
                                                                                         address="神"))):
                code, details, reason = status_of(lambda: clerk(clerk.cs.SearchIdentity, query))
                self.add("search", label, f"cs-{home}", "INVALID_ARGUMENT", code.name,
                         code == grpc.StatusCode.INVALID_ARGUMENT, "検索 rule (PIA Ⅲ(2)2)", details)

    def bulk_output(self) -> None:
        """A clerk without approval: one export over the limit, then split exports, are refused."""
        home = self.topology.municipalities[0]
        terminal = home.terminals[1] if len(home.terminals) > 1 else home.terminals[0]
        clerk_id = next((o.id for o in home.operators if "manager" not in o.roles), home.operators[0].id)
        with Counter(self.network, home.code, terminal, clerk_id) as clerk:
            count = _count(clerk)
            if count <= 100:
                self.add("bulk-output", "export over the limit", f"kizon-{home.code}", "PERMISSION_DENIED",
                         f"only {count} residents", None, "bulk output rule (PIA Ⅲ(2)3)",
                         "load more than 100 residents (testbed load) to try the bulk-output rule")
                return
            code, details, reason = status_of(lambda: list(clerk(clerk.kizon.ExportResidents, kizon_pb2.ExportRequest())))
            self.add("bulk-output", f"one export of {count} records without approval", f"kizon-{home.code}",
                     "PERMISSION_DENIED", code.name, code == grpc.StatusCode.PERMISSION_DENIED,
                     "bulk output rule (PIA Ⅲ(2)3)", details)
            code, details, reason = status_of(lambda: list(clerk(clerk.kizon.ExportResidents, kizon_pb2.ExportRequest(purpose="x"),
                                                       metadata=((APPROVAL_KEY, "forged.token"),))))
            self.add("bulk-output", "a forged approval", f"kizon-{home.code}", "PERMISSION_DENIED",
                     code.name, code == grpc.StatusCode.PERMISSION_DENIED, "bulk output rule (PIA Ⅲ(2)3)", details)

    def _probe_person_fugo(self, home: str) -> str:
        """Register a person now (国外転入 at the first terminal) and learn their 符号 as atena does ("" when the
        first operator may not see the 個人番号)."""
        place = self.topology.municipality(home)
        with Counter(self.network, home, place.terminals[0], place.operators[0].id) as clerk:
            record = clerk(clerk.kizon.MoveIn, kizon_pb2.MoveInRequest(
                person=records_pb2.ResidentRecord(name_kanji="プローブ 確認", name_kana="プローブ カクニン",
                                                  birth_date="1990-01-01", sex="9"),
                address=records_pb2.Address(town_code=towns(home)[0].code, address_line="1番地"),
                move_in_date=office_today().isoformat(), from_abroad=True), timeout=30).records[0]
        if not record.individual_number.isdigit():
            return ""
        with channel(self.topology.find("national"), node_cert(self.pki, f"atena-{home}")) as ch:
            return national_pb2_grpc.NationalServerStub(ch).IssueFugo(
                national_pb2.FugoRequest(individual_number=record.individual_number), timeout=10).fugo

    def number_in_copies(self) -> None:
        """情報提供 to the NWS never carries a 個人番号: of people registered before, and of a person the probe
        registers now (国外転入 of プローブ 確認) and follows to the 中間サーバ."""
        home = self.topology.municipalities[0].code
        infonws = named_cert(self.pki, "infonws")
        with channel(self.topology.find("national"), infonws) as registry:
            sample = list(national_pb2_grpc.NationalServerStub(registry).SampleFugo(
                national_pb2.FugoSampleRequest(tenant=home, count=20), timeout=10).fugo)
        sample.append(self._probe_person_fugo(home))
        carrying = 0
        sample = [f for f in sample if f]
        with channel(self.topology.find("intermediate"), infonws) as ch:
            stub = ch.unary_unary("/testbed.v1.IntermediateServer/ProvideInfo",
                                  request_serializer=intermediate_pb2.ProvisionRequest.SerializeToString,
                                  response_deserializer=intermediate_pb2.ProvisionReply.FromString)
            jimu = list(jimu_table())
            for n, fugo in enumerate(sample):  # each 事務 of the table in turn
                reply = _wait(lambda: stub(intermediate_pb2.ProvisionRequest(tenant=home, fugo=fugo, inquiry_id="PROBE",
                                                                             jimu=jimu[n % len(jimu)]), timeout=10))
                carrying += bool(reply.record.individual_number)
        self.add("符号", f"情報提供 of {len(sample)} people", "intermediate", "no 個人番号", f"{carrying} with 個人番号",
                 (carrying == 0) if sample else None, "number-in-copy (符号 only)",
                 "" if sample else "no resident with a 符号 yet: load residents (testbed load) to try it")


def _wait(call, timeout: float = 15.0):
    """call() until it stops answering NOT_FOUND (a copy on its way through the outboxes), bounded."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND or time.monotonic() > deadline:
                raise
        time.sleep(0.1)


def _count(counter) -> int:
    return node_status(counter.network, counter.network.topology.find("kizon", counter.municipality),
                       counts=True).counts.get("residents", 0)



def report_table(cases: list[Case]) -> str:
    """The cases as a text table, failures first."""
    rows = sorted(cases, key=lambda c: (c.verdict == "PASS", c.group))
    width = max((len(c.case) for c in rows), default=10)
    lines = [f"{'verdict':7s}  {'group':11s}  {'case':{width}s}  {'node':18s}  {'expected':24s}  actual"]
    for c in rows:
        lines.append(f"{c.verdict:7s}  {c.group:11s}  {c.case:{width}s}  {c.node:18s}  {c.expected[:24]:24s}  {c.actual}"
                     + (f"  [{c.detail[:100]}]" if c.verdict != "PASS" and c.detail else ""))
    failed = [c for c in cases if c.verdict == "FAIL"]
    skipped = sum(c.verdict == "SKIP" for c in cases)
    lines.append(f"{len(cases)} cases, {len(failed)} failed" + (f", {skipped} skipped" if skipped else "")
                 + (": rules " + ", ".join(sorted({c.rule for c in failed})) if failed else ""))
    return "\n".join(lines)


def write_json(cases: list[Case], path: Path, meta: dict) -> None:
    """The cases and the run's facts as JSON."""
    Path(path).write_text(json.dumps({**meta, "cases": [asdict(c) for c in cases],
                                      "failed": sum(c.verdict == "FAIL" for c in cases)}, ensure_ascii=False, indent=1))


def write_html(cases: list[Case], path: Path, meta: dict) -> None:
    """A self-contained HTML report of the run."""
    rows = "".join(
        f"<tr class='{c.verdict.lower()}'><td>{c.verdict}</td><td>{html.escape(c.group)}</td><td>{html.escape(c.case)}</td>"
        f"<td>{html.escape(c.node)}</td><td>{html.escape(c.expected)}</td><td>{html.escape(c.actual)}</td>"
        f"<td>{html.escape(c.rule)}</td><td>{html.escape(c.detail)}</td></tr>"
        for c in sorted(cases, key=lambda c: (c.verdict == "PASS", c.group)))
    failed = sum(c.verdict == "FAIL" for c in cases)
    Path(path).write_text(f"""<!doctype html><meta charset="utf-8"><title>testbed probe</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #ccc;padding:3px 6px;text-align:left}}tr.fail{{background:#fdd}}tr.pass td:first-child{{color:#070}}</style>
<h1>testbed probe</h1><p>{html.escape(meta.get('network', ''))} — {meta.get('time', '')} — {len(cases)} cases,
<b>{failed} failed</b>{' — weakened: ' + html.escape(', '.join(meta.get('weakened', []))) if meta.get('weakened') else ''}{
' — groups left out: ' + html.escape(', '.join(meta['skipped_groups'])) if meta.get('skipped_groups') else ''}</p>
<table><tr><th>verdict</th><th>group</th><th>case</th><th>node</th><th>expected</th><th>actual</th><th>rule</th><th>detail</th></tr>
{rows}</table>""", encoding="utf-8")


def run_probe(network, json_path: Path | None = None, html_path: Path | None = None,
              skip: frozenset[str] = frozenset()) -> tuple[list[Case], float]:
    """Run every case against a running network, but those of the groups in skip; write the reports asked for;
    (cases, seconds)."""
    unknown = set(skip) - set(STEP_GROUP.values())
    if unknown:
        raise ValueError(f"no group {', '.join(sorted(unknown))} in the probe (its groups: {', '.join(GROUPS)})")
    started = time.monotonic()
    weakened = tuple(network.weakened()) if hasattr(network, "weakened") else ()
    cases = Probe(network, weakened, frozenset(skip)).run()
    meta = {"network": network.topology.name, "state_dir": str(network.state_dir), "weakened": list(weakened),
            "skipped_groups": sorted(skip), "time": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    if json_path:
        write_json(cases, json_path, meta)
    if html_path:
        write_html(cases, html_path, meta)
    return cases, time.monotonic() - started
