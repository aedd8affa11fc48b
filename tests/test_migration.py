"""移行 rehearsal: a full migration of a small register to the government cloud, each injected fault caught by
the step that should catch it, the rollback, the freeze, the target's read-only admission, the SFTP server's
refusals and the layout document."""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import asyncssh
import grpc
import pytest

from conftest import make_network
from helpers import TODAY, address, card_holder, key, move_in_from_abroad, person, refused
from protos import common_pb2, cs_pb2, identity_pb2, kizon_pb2, migration_pb2, migration_pb2_grpc, records_pb2
from testbed.client import Counter, channel, console_cert, node_cert
from testbed.load import generate_population, load_records
from testbed.topology import Topology
from testbed.migration import layout, sftp
from testbed.migration.rehearsal import FREEZE_REASON

A, SITE = "142140", "gcloud"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def moving(tmp_path_factory):
    """A network with 120 loaded residents of 伊勢原市, a 転居, a 死亡 (除票), a card holder and a certificate issued."""
    network = make_network(tmp_path_factory.mktemp("migration"))
    network.up()
    records, _ = generate_population(network, A, 120, seed=11)
    asyncio.run(load_records(network, A, records, show_progress=False))
    with Counter(network, A, "T0001", "OP0001") as clerk:
        mover = move_in_from_abroad(clerk, person("転居 一郎", "テンキョ イチロウ"))
        clerk(clerk.kizon.MoveWithin, kizon_pb2.MoveWithinRequest(
            resident_code=mover.resident_code, address=address(A, "5番5号"), move_date=TODAY, notification_date=TODAY))
        dead = move_in_from_abroad(clerk, person("死亡 二郎", "シボウ ジロウ"))
        clerk(clerk.kizon.Death, kizon_pb2.DeathRequest(resident_code=dead.resident_code, death_date=TODAY,
                                                        notification_date=TODAY))
        holder = card_holder(clerk, person("カード 三子", "カード ミツコ", sex="2"))
        clerk(clerk.kizon.IssueCertificate, kizon_pb2.CertificateRequest(kind=kizon_pb2.RESIDENT_COPY,
                                                                         resident_code=holder.resident_code))
    yield network
    network.down()


def site(network, node_name: str):
    with channel(network.topology.node(node_name), console_cert(network.pki, "kizon")) as ch:
        return migration_pb2_grpc.MigrationStub(ch).GetSiteState(migration_pb2.FreezeRequest(), timeout=10)


def migrate(network, *inject: str, tmp: Path) -> tuple[int, dict, str]:
    """`testbed migrate A --to gcloud` as a user runs it; (exit status, JSON report, output)."""
    out = tmp / f"m-{'-'.join(inject) or 'plain'}.json"
    run = subprocess.run([sys.executable, "-m", "testbed.cli", "--state-dir", str(network.state_dir), "migrate", A,
                          "--to", SITE, "--json", str(out), "--report-dir", str(tmp),
                          *[arg for i in inject for arg in ("--inject", i)]],
                         capture_output=True, text=True, timeout=600)
    assert "Traceback" not in run.stderr, run.stderr[-2000:]
    return run.returncode, json.loads(out.read_text()), run.stdout + run.stderr


def test_a_frozen_site_refuses_changes_but_answers_reads(moving):
    """Freeze: a counter change is UNAVAILABLE naming 移行中; reads and CS searches go on; re-opened, changes work."""
    kizon = moving.topology.find("kizon", A)
    with channel(kizon, console_cert(moving.pki, "kizon")) as ch:
        stub = migration_pb2_grpc.MigrationStub(ch)
        state = stub.Freeze(migration_pb2.FreezeRequest(reason=FREEZE_REASON), timeout=60)
        assert state.frozen and state.since and not state.pending_intents and not state.outbox_pending
        try:
            with Counter(moving, A) as clerk:
                with refused(grpc.StatusCode.UNAVAILABLE, "移行 rule", FREEZE_REASON, reason="SITE_CHANGES_CLOSED"):
                    move_in_from_abroad(clerk)
                someone = clerk(clerk.kizon.GetResident, key(clerk(clerk.cs.SearchIdentity, identity_pb2.IdentitySearch(
                    name_kana="カード ミツコ", address="神奈川県伊勢原市")).matches[0].resident_code))
                assert someone.name_kanji == "カード 三子"
                with refused(grpc.StatusCode.UNAVAILABLE, "移行 rule", reason="SITE_CHANGES_CLOSED"):
                    clerk(clerk.kizon.IssueCertificate, kizon_pb2.CertificateRequest(
                        kind=kizon_pb2.RESIDENT_COPY, resident_code=someone.resident_code))
        finally:
            stub.Reopen(migration_pb2.FreezeRequest(reason="試験: 再開"), timeout=10)
    with Counter(moving, A) as clerk:
        assert move_in_from_abroad(clerk).resident_code


def test_a_freeze_survives_kill_9(moving):
    """kill -9 of a frozen kizon: it comes back frozen (the freeze is in its store), and re-opens when asked."""
    from helpers import kill
    kizon = moving.topology.find("kizon", A)
    with channel(kizon, console_cert(moving.pki, "kizon")) as ch:
        migration_pb2_grpc.MigrationStub(ch).Freeze(migration_pb2.FreezeRequest(reason=FREEZE_REASON), timeout=60)
    kill(moving, kizon.name)
    moving.up()
    assert site(moving, kizon.name).frozen and site(moving, kizon.name).reason == FREEZE_REASON
    with Counter(moving, A) as clerk:
        with refused(grpc.StatusCode.UNAVAILABLE, "移行 rule"):
            move_in_from_abroad(clerk)
    with channel(kizon, console_cert(moving.pki, "kizon")) as ch:
        migration_pb2_grpc.MigrationStub(ch).Reopen(migration_pb2.FreezeRequest(reason="試験: 再開"), timeout=10)
    with Counter(moving, A) as clerk:
        assert move_in_from_abroad(clerk).resident_code


def test_a_target_is_admitted_read_only_before_the_cut_over(moving):
    """The target kizon's identity may read the CS (verification) but not change anything (移行 rule)."""
    target = node_cert(moving.pki, f"kizon-{A}-{SITE}")
    from protos import cs_pb2_grpc
    with channel(moving.topology.find("cs", A), target) as ch:
        cs = cs_pb2_grpc.CommunicationServerStub(ch)
        list(cs.RegisterDigests(common_pb2.ConsistencyRequest(municipality_code=A), timeout=30))
        with refused(grpc.StatusCode.PERMISSION_DENIED, "移行 rule", reason="TARGET_READS_ONLY"):
            cs.DrawResidentCodes(cs_pb2.CodeDraw(count=1), timeout=10)


def test_export_and_import_keep_their_rules(moving):
    """Export only from a frozen site; import only into an empty target; nothing but a target is wiped."""
    console = console_cert(moving.pki, "kizon")
    with channel(moving.topology.find("kizon", A), console) as ch:
        old = migration_pb2_grpc.MigrationStub(ch)
        with refused(grpc.StatusCode.FAILED_PRECONDITION, "移行 rule", "frozen"):
            list(old.Export(migration_pb2.MigrationExportRequest(), timeout=10))
        with refused(grpc.StatusCode.FAILED_PRECONDITION, "移行 rule", "not a migration target"):
            old.Wipe(migration_pb2.FreezeRequest(reason="試験"), timeout=10)
        with refused(grpc.StatusCode.FAILED_PRECONDITION, "移行 rule", "not a migration target"):
            old.Import(iter(()), timeout=10)
    with channel(moving.topology.node(f"kizon-{A}-{SITE}"), console) as ch:
        target = migration_pb2_grpc.MigrationStub(ch)
        with refused(grpc.StatusCode.FAILED_PRECONDITION, "移行 rule", "opens after the cut over"):
            target.Reopen(migration_pb2.FreezeRequest(reason="試験"), timeout=10)
        with refused(grpc.StatusCode.INVALID_ARGUMENT, "移行 rule"):
            target.Import(iter([migration_pb2.MigrationBatch(items=[migration_pb2.MigrationItem()])]), timeout=10)
    assert site(moving, f"kizon-{A}-{SITE}").records == 0


def test_a_hostile_console_or_caller_gets_refusals_and_leaves_nothing(moving, tmp_path):
    """A record given twice, a reason of 10,000 characters, a certificate the topology does not name, a terminal and
    the target's own identity: each refused naming its rule, the target still empty and the old site open."""
    from certs.identity import LAN, terminal_uri
    from certs.pki import cert_pem, issue_leaf, key_pem, write_private, write_public
    from nodes.tls import ClientCert
    from testbed.client import terminal_cert
    twice = records_pb2.ResidentRecord(municipality_code=A, atena_number="000000000099999", history_number=1,
                                       resident_code="00000000019")
    console = console_cert(moving.pki, "kizon")
    with channel(moving.topology.node(f"kizon-{A}-{SITE}"), console) as ch:
        target = migration_pb2_grpc.MigrationStub(ch)
        with refused(grpc.StatusCode.INVALID_ARGUMENT, "移行 rule", "twice", reason="SITE_IMPORT_DUPLICATE"):
            target.Import(iter([migration_pb2.MigrationBatch(items=[migration_pb2.MigrationItem(history=twice)] * 2)]),
                          timeout=10)
        with refused(grpc.StatusCode.INVALID_ARGUMENT, "項目長 rule", reason="ITEM_LENGTH"):
            target.Wipe(migration_pb2.FreezeRequest(reason="x" * 10_000), timeout=10)
    with channel(moving.topology.find("kizon", A), console) as ch:
        with refused(grpc.StatusCode.INVALID_ARGUMENT, "項目長 rule"):
            migration_pb2_grpc.MigrationStub(ch).Freeze(migration_pb2.FreezeRequest(reason="x" * 10_000), timeout=10)
    ca = moving.pki.authority(LAN)
    cert, key = issue_leaf(ca, terminal_uri(A, "T9999"))  # well formed, but no terminal the topology names
    write_public(tmp_path / "c.pem", cert_pem(cert) + cert_pem(ca.cert))
    write_private(tmp_path / "c.key", key_pem(key))
    strangers = [(ClientCert(tmp_path / "c.pem", tmp_path / "c.key", moving.pki.trust_bundle),
                  grpc.StatusCode.UNAUTHENTICATED, "identity rule"),
                 (terminal_cert(moving.pki, A, "T0001"), grpc.StatusCode.PERMISSION_DENIED, "Migration/Freeze"),
                 (node_cert(moving.pki, f"kizon-{A}-{SITE}"), grpc.StatusCode.PERMISSION_DENIED, "Migration/Freeze")]
    for cert, code, rule in strangers:
        with channel(moving.topology.find("kizon", A), cert) as ch:
            with refused(code, rule):
                migration_pb2_grpc.MigrationStub(ch).Freeze(migration_pb2.FreezeRequest(reason=FREEZE_REASON), timeout=10)
    assert site(moving, f"kizon-{A}-{SITE}").records == 0 and not site(moving, f"kizon-{A}").frozen


def test_a_dropped_record_is_caught_by_verify_and_rolled_back(moving, tmp_path):
    """--inject drop-record: verify names the missing entry; exit 1; the target is wiped; the old site serves."""
    status, report, output = migrate(moving, "drop-record", tmp=tmp_path)
    assert status == 1 and report["result"] == "failed" and report["failed_step"] == "verify" and report["rolled_back"]
    verify = next(s for s in report["steps"] if s["name"] == "verify")
    failed = {c[0]: c[2] for c in verify["checks"] if c[1] == "failed"}
    assert "missing at the new site" in failed["records history.csv"]
    assert "file" in failed["count history.csv"]
    assert report["steps"][-1]["name"] == "rollback" and report["steps"][-1]["result"] == "ok"
    assert [s["name"] for s in report["steps"] if s["result"] == "not run"] == []
    assert site(moving, f"kizon-{A}-{SITE}").records == 0 and site(moving, f"atena-{A}-{SITE}").records == 0
    assert not site(moving, f"kizon-{A}").frozen
    with Counter(moving, A) as clerk:
        assert clerk.network.topology.find("kizon", A).name == f"kizon-{A}"
        assert move_in_from_abroad(clerk).resident_code
    assert "rolled back" in output and (tmp_path / f"migration-{report['run']}.html").exists()


def test_the_whole_migration_with_a_dropped_connection_a_corrupt_file_and_a_slow_link(moving, tmp_path):
    """The rehearsal passes: the transfer resumes and sends the damaged file again; verify finds every record equal;
    the counters re-open on the new site, which goes on numbering where the old one stood; the old identity is
    refused, its serials are on the CRL, its data and keys are gone and its audit trail is kept."""
    with Counter(moving, A) as clerk:
        before = clerk(clerk.kizon.GetResident, key(move_in_from_abroad(clerk).resident_code))
    old_kizon = moving.topology.find("kizon", A)
    status, report, output = migrate(moving, "interrupt-transfer", "corrupt-file", "slow-link", tmp=tmp_path)
    assert status == 0, output[-3000:]
    steps = {s["name"]: s for s in report["steps"]}
    assert list(steps) == ["freeze", "export", "transfer", "load", "verify", "conformance", "cut over", "decommission"]
    transfer = steps["transfer"]
    assert transfer["result"] == "recovered" and transfer["figures"]["resent"] == ["history.csv"]
    assert "resumed" in transfer["message"] and "slow link" in transfer["message"]
    assert all(c[1] == "ok" for c in steps["verify"]["checks"]) and len(steps["verify"]["checks"]) == 9
    assert report["downtime"]["seconds"] > 0 and report["downtime"]["start"] < report["downtime"]["end"]
    # the suite's rules profile at the targets: what a frozen target can show it shows (nothing failed), the cases
    # that need a change accepted wait for the open site
    tried = {c[0]: c[1] for c in steps["conformance"]["checks"]}
    assert set(tried.values()) <= {"ok", "skipped"}, steps["conformance"]["checks"]
    assert tried[f"kizon/一括出力/approval-required at kizon-{A}-{SITE}"] == "ok"
    assert tried[f"kizon/session/required at kizon-{A}-{SITE}"] == "ok"
    assert tried[f"kizon/振り仮名/katakana at kizon-{A}-{SITE}"] == "skipped"
    assert all(c[1] == "ok" for c in steps["decommission"]["checks"])
    # the new site serves, and goes on where the old one stood
    reloaded = type(moving).open(moving.state_dir)
    assert reloaded.topology.find("kizon", A).name == f"kizon-{A}-{SITE}"
    with Counter(reloaded, A) as clerk:  # the same operator as before: the same items shown
        assert clerk(clerk.kizon.GetResident, key(before.resident_code)) == before
        after = move_in_from_abroad(clerk)
        assert int(after.atena_number) == int(before.atena_number) + 1
    with Counter(reloaded, A, "T0003", "OP0003") as clerk:
        report_now = clerk(clerk.kizon.CheckConsistency, common_pb2.ConsistencyRequest(municipality_code=A), timeout=60)
        assert not report_now.differences
    # the old site is gone
    assert not (moving.state_dir / "data" / old_kizon.name).exists()
    assert not (moving.state_dir / "pki" / "nodes" / old_kizon.name).exists()
    assert (moving.state_dir / "archive" / old_kizon.name / "audit.jsonl").exists()
    assert reloaded.pid(old_kizon.name) is None


def test_the_sftp_server_admits_only_vendor_keys_and_only_sftp(tmp_path):
    """An unknown key, a password, a shell command and a port forwarding request are all refused."""
    host_key = sftp.ensure_key(tmp_path / "keys" / "host")
    vendor_key = sftp.ensure_key(tmp_path / "keys" / "vendor-a" / "id")
    stranger = sftp.ensure_key(tmp_path / "keys" / "stranger" / "id")
    vendors = tmp_path / "vendors"
    vendors.mkdir()
    (vendors / "vendor-a.pub").write_bytes(vendor_key.export_public_key())
    ready = tmp_path / "port"
    server = subprocess.Popen([sys.executable, "-m", "testbed.migration.sftp", "serve", "--listen", "127.0.0.1:0",
                               "--root", str(tmp_path / "inbox"), "--host-key", str(tmp_path / "keys" / "host"),
                               "--vendors", str(vendors), "--ready", str(ready), "--log", str(tmp_path / "sftp.log")])
    try:
        for _ in range(200):
            if ready.exists():
                break
            time.sleep(0.05)
        port = int(ready.read_text())
        known = asyncssh.import_known_hosts(f"[127.0.0.1]:{port} {host_key.export_public_key().decode().strip()}\n")

        async def attempts():
            common = dict(known_hosts=known, agent_path=None, connect_timeout=5)
            with pytest.raises(asyncssh.PermissionDenied):
                await asyncssh.connect("127.0.0.1", port, username="vendor-a", client_keys=[stranger], **common)
            with pytest.raises(asyncssh.PermissionDenied):
                await asyncssh.connect("127.0.0.1", port, username="vendor-a", client_keys=[], password="secret",
                                       **common)
            with pytest.raises(asyncssh.PermissionDenied):
                await asyncssh.connect("127.0.0.1", port, username="vendor-b", client_keys=[vendor_key], **common)
            async with asyncssh.connect("127.0.0.1", port, username="vendor-a", client_keys=[vendor_key], **common) as conn:
                with pytest.raises(asyncssh.ChannelOpenError):
                    await conn.create_connection(asyncssh.SSHTCPSession, "127.0.0.1", 22)
                with pytest.raises(asyncssh.ChannelListenError):
                    await conn.forward_remote_port("127.0.0.1", 0, "127.0.0.1", 22)
                with pytest.raises(asyncssh.ChannelOpenError):  # no shell, no exec: SFTP alone
                    await conn.run("id")
                async with conn.start_sftp_client() as client:
                    await client.mkdir("run")
                    async with client.open("run/x.csv", "wb") as f:
                        await f.write(b"a,b\n")
                    assert "run" in await client.listdir("/")  # its root is the inbox
        asyncio.run(attempts())
        assert (tmp_path / "inbox" / "run" / "x.csv").read_bytes() == b"a,b\n"  # chrooted to the inbox
        log = (tmp_path / "sftp.log").read_text()
        assert "refused: a port forwarding request" in log and "no vendor 'vendor-b'" in log
    finally:
        server.terminate()
        server.wait(10)


def test_the_layout_document_is_current():
    """docs/migration-layout.md is what `testbed migrate --layout` prints (regenerate it after changing the layout)."""
    assert (ROOT / "docs" / "migration-layout.md").read_text(encoding="utf-8") == layout.markdown() + "\n"


def test_a_row_that_breaks_the_layout_is_refused(tmp_path):
    """Too long, not a number, not a flag, not a date: each names the file, line and item."""
    spec = layout.BY_NAME["counters.csv"]
    layout.write_file(tmp_path, spec, [["kizon", "atena_number", "x12"]])
    with pytest.raises(layout.LayoutError, match="counters.csv line 2: value is not a number"):
        list(layout.read_rows(tmp_path, spec))
    spec = layout.BY_NAME["history.csv"]
    cells = ["" for _ in spec.items]
    cells[[i.name for i in spec.items].index("birth_date")] = "1990/01/02"
    cells[[i.name for i in spec.items].index("elector")] = "0"
    for item in spec.items:
        if item.type == "B" and item.name != "elector":
            cells[[i.name for i in spec.items].index(item.name)] = "0"
    layout.write_file(tmp_path, spec, [cells])
    with pytest.raises(layout.LayoutError, match="birth_date is not a date"):
        list(layout.read_rows(tmp_path, spec))


def test_unknown_fault_and_missing_site_are_one_line_errors(moving, tmp_path):
    """Asked for a fault it does not know, or a site the topology does not name, migrate says so in one line."""
    for args, words in ((["--to", SITE, "--inject", "meteor"], "unknown fault meteor"),
                        (["--to", "mars"], "no kizon and atena of 142140 at site mars")):
        run = subprocess.run([sys.executable, "-m", "testbed.cli", "--state-dir", str(moving.state_dir), "migrate", A,
                              *args], capture_output=True, text=True, timeout=60)
        assert run.returncode == 2 and words in run.stderr and run.stderr.count("\n") == 1, run.stderr


def test_the_cutover_weekend_scenario_migrates_inside_its_freeze(tmp_path):
    """`testbed run cutover-weekend --migrate`: Friday's load on the old site, the migration in the freeze window,
    Monday's deferred and new work on the new site; the report shows the downtime, the steps and both loads."""
    state, reports = tmp_path / "state", tmp_path / "reports"
    state.mkdir()
    Topology.load().with_free_ports().save(state / "topology.yaml")  # not the default ports: a user's network may be up
    run = subprocess.run([sys.executable, "-m", "testbed.cli", "--state-dir", str(state), "run", "cutover-weekend",
                          "--residents", "300", "--minutes", "0.2", "--migrate", "--report-dir", str(reports)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    folder = next(reports.glob("cutover-weekend-*"))
    result = json.loads((folder / "result.json").read_text())
    assert result["migration"]["result"] == "passed" and result["migration"]["downtime"]["seconds"] > 0
    assert result["replay_before"]["completed"] > 0 and result["replay"]["completed"] > 0
    page = (folder / "report.html").read_text()
    assert "Migration of 142140 to gcloud" in page and "Downtime window" in page and "before: done" in page
    assert "against kizon-142140-gcloud" in run.stdout
