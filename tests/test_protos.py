"""The committed generated code matches the .proto files, and the records carry the PIA items."""
from __future__ import annotations

import subprocess
from pathlib import Path

from protos import build, records_pb2

ROOT = Path(__file__).resolve().parent.parent


def test_generated_code_matches_protos(tmp_path):
    """Regenerating from the .proto files gives exactly the committed *_pb2*.py files (run `make protos`)."""
    fresh = {p.name: p.read_bytes() for p in build.generate(tmp_path)}
    committed = {p.name: p.read_bytes() for p in sorted((ROOT / "protos").glob("*_pb2*.py*"))}
    assert sorted(fresh) == sorted(committed), "generated files missing or extra: run `make protos`"
    drifted = [name for name in fresh if fresh[name] != committed[name]]
    assert not drifted, f"generated code drifted from the .proto files: {drifted}; run `make protos`"


def test_every_node_type_has_a_versioned_service():
    """One service per node type, in the versioned package testbed.v1."""
    from nodes import NODE_MODULES
    import importlib
    names = {importlib.import_module(m).SERVICE_NAME for m in NODE_MODULES.values()}
    assert len(names) == len(NODE_MODULES) == 11
    assert all(name.startswith("testbed.v1.") for name in names)


def test_record_items_match_the_pia():
    """本人確認情報 has the 40 items of 別添1 (2), 送付先情報 the 67 of 別添1 (3), numbered in order."""
    identity = records_pb2.IdentityInfo.DESCRIPTOR.fields
    delivery = records_pb2.DeliveryInfo.DESCRIPTOR.fields
    assert [f.number for f in identity] == list(range(1, 41))
    assert [f.number for f in delivery] == list(range(1, 68))
    names = {f.name for f in identity}
    assert {"resident_code", "name_kanji", "update_sequence", "recovery_update_sequence", "change_reason"} <= names
    resident = {f.name for f in records_pb2.ResidentRecord.DESCRIPTOR.fields}
    assert {"atena_number", "household_number", "resident_code", "individual_number", "history_number",
            "residence_card_number", "honseki", "removal_reason", "elector"} <= resident


def test_no_private_key_or_certificate_is_tracked():
    """`git ls-files` lists no private key, certificate or CRL."""
    result = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        return  # not a git checkout (an sdist): nothing can be tracked
    bad = [f for f in result.stdout.splitlines() if f.endswith((".key", ".pem", ".crl", ".p12", ".pfx", ".der", ".crt"))]
    assert not bad
