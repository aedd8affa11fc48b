"""移行 from a foreign vendor's export: the precheck of the live register, the rehearsal carrying the 住民票 in the
vendor's CP932 export with its 外字 table, the 文字同定 step stopping on an unidentified 外字 (rolled back) and, with
that 外字 accepted, the whole move with every character at the new site as it was."""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import make_network
from helpers import key, move_in_from_abroad, person
from protos import migration_pb2, migration_pb2_grpc
from scenarios.characters import unidentified
from testbed.client import Counter, channel, console_cert
from testbed.load import generate_population, load_records

A, SITE = "142140", "gcloud"
IVS = "\U000E0100"


@pytest.fixture(scope="module")
def vendor_site(tmp_path_factory):
    """A network with 60 loaded residents of 伊勢原市 and three who hold 外字: 𠮷 and 葛 with its IVS (the vendor keeps
    them as 外字 codes), 髙 (CP932 holds it) and one 外字 of the vendor's that no one has identified."""
    network = make_network(tmp_path_factory.mktemp("vendor-migration"))
    network.up()
    records, _ = generate_population(network, A, 60, seed=21)
    asyncio.run(load_records(network, A, records, show_progress=False))
    odd = unidentified(A)[0]
    with Counter(network, A, "T0001", "OP0001") as clerk:
        people = [move_in_from_abroad(clerk, person(name, "ガイジ タロウ"))
                  for name in ("𠮷田 太郎", f"葛{IVS}西 髙子", f"{odd}川 一郎")]
    yield network, people, odd
    network.down()


def run(network, tmp: Path, *args: str) -> subprocess.CompletedProcess:
    """A testbed command as a user types it."""
    done = subprocess.run([sys.executable, "-m", "testbed.cli", "--state-dir", str(network.state_dir), *args],
                          capture_output=True, text=True, timeout=600)
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    return done


def test_the_precheck_finds_the_unidentified_character_and_changes_nothing(vendor_site, tmp_path):
    network, people, odd = vendor_site
    out = tmp_path / "precheck.json"
    done = run(network, tmp_path, "migrate", "precheck", A, "--json", str(out))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "characters-outside-target" in done.stdout
    found = json.loads(out.read_text())
    text = json.dumps(found, ensure_ascii=False)
    assert people[2].resident_code in text and people[0].resident_code not in text.split("reading-unconfirmed")[0]
    with channel(network.topology.find("kizon", A), console_cert(network.pki, "kizon")) as ch:
        assert not migration_pb2_grpc.MigrationStub(ch).GetSiteState(migration_pb2.FreezeRequest(), timeout=10).frozen


def test_an_unidentified_character_stops_the_move_before_the_load(vendor_site, tmp_path):
    network, people, odd = vendor_site
    out = tmp_path / "refused.json"
    done = run(network, tmp_path, "migrate", A, "--to", SITE, "--vendor-layout", "intermediate", "--json", str(out),
               "--report-dir", str(tmp_path))
    report = json.loads(out.read_text())
    assert done.returncode == 1 and report["failed_step"] == "文字同定" and report["rolled_back"], done.stdout[-3000:]
    assert f"U+{ord(odd):04X}" in report["failure"] and "--accept-unmapped" in report["failure"]
    assert report["characters"]["unmapped"]["characters"] >= 1
    assert [s["name"] for s in report["steps"]][:4] == ["freeze", "export", "transfer", "文字同定"]


def test_the_move_from_a_cp932_export_keeps_every_character(vendor_site, tmp_path):
    network, people, odd = vendor_site
    out = tmp_path / "moved.json"
    code = odd.encode("cp932").hex().upper()  # (named by its CP932 code, as the vendor's table lists it)
    done = run(network, tmp_path, "migrate", A, "--to", SITE, "--vendor-layout", "intermediate", "--encoding", "cp932",
               "--accept-unmapped", code, "--json", str(out), "--report-dir", str(tmp_path))
    report = json.loads(out.read_text())
    assert done.returncode == 0, done.stdout[-3000:]
    steps = {s["name"]: s for s in report["steps"]}
    assert steps["文字同定"]["figures"]["外字 identified"] >= 2 and steps["文字同定"]["figures"]["文字コード"] == "CP932"
    assert all(c[1] == "ok" for c in steps["verify"]["checks"])
    work = report["characters"]
    assert {e["standard"] for e in work["mapped"]["examples"]} >= {"𠮷", f"葛{IVS}"}
    assert work["substituted"]["characters"] >= 2  # 𠮷 and 髙 for a JIS X 0213 receiver
    page = (tmp_path / f"migration-{report['run']}.html").read_text(encoding="utf-8")
    assert "文字同定" in page and "𠮷" in page
    moved = type(network).open(network.state_dir)
    with Counter(moved, A) as clerk:
        for before in people:
            after = clerk(clerk.kizon.GetResident, key(before.resident_code))
            assert (after.name_kanji, after.address) == (before.name_kanji, before.address)
