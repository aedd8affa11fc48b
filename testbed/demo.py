"""The demo: bring the network up, register residents at two counters, follow them through every
node, show what the security layer refuses, verify the audit chains, and take the network down."""
from __future__ import annotations

import random
import time

import grpc

from nodes import audit
from nodes.tls import channel_options
from nodes.numbers import with_individual_number_check, with_resident_code_check
from protos import (atena_pb2, atena_pb2_grpc, card_pb2_grpc, common_pb2, cs_pb2_grpc, intermediate_pb2,
                    intermediate_pb2_grpc, kizon_pb2, kizon_pb2_grpc, national_pb2_grpc, prefecture_pb2_grpc,
                    records_pb2)
from testbed.client import bad_cert, eventually, channel, named_cert, node_cert, operator_metadata, terminal_cert
from testbed.network import Network, status_table

PEOPLE = [  # (municipality, name, kana, birth date, sex, address, postal code)
    ("142140", "伊勢原 太郎", "イセハラ タロウ", "1980-04-01", "1", "神奈川県伊勢原市田中348番地", "259-1188"),
    ("142140", "伊勢原 花子", "イセハラ ハナコ", "1982-09-15", "2", "神奈川県伊勢原市田中348番地", "259-1188"),
    ("142115", "秦野 一郎", "ハダノ イチロウ", "1975-12-03", "1", "神奈川県秦野市桜町一丁目3番2号", "257-8501"),
]


def run_demo(network: Network) -> int:
    """Run the demo against network; return the exit code."""
    rng = random.Random()  # new numbers each run: the register keeps what earlier demos wrote
    print("== bringing the network up")
    started = time.monotonic()
    rows = network.up()
    print(status_table(rows))
    print(f"{len(rows)} nodes healthy in {time.monotonic() - started:.1f} s\n")
    topo, pki = network.topology, network.pki
    try:
        for municipality, name, kana, birth, sex, address, postal in PEOPLE:
            code = with_resident_code_check(f"{rng.randrange(10**10):010d}")
            number = with_individual_number_check(f"{rng.randrange(10**11):011d}")
            record = records_pb2.ResidentRecord(
                resident_code=code, individual_number=number, name_kanji=name, name_kana=kana, birth_date=birth,
                sex=sex, address=address, postal_code=postal, change_reason="転入", change_date="2026-04-01",
                resident_type="日本人", household_number="H" + code[:6])
            kizon = topo.find("kizon", municipality)
            with channel(kizon, terminal_cert(pki, municipality, "T0001")) as ch:
                reply = kizon_pb2_grpc.KizonStub(ch).RecordResident(
                    kizon_pb2.RecordResidentRequest(record=record), metadata=operator_metadata("OP1001"), timeout=10)
            print(f"== {name} ({municipality}) recorded at kizon: 宛名番号 {reply.atena_number}, 住民票コード {code}, "
                  f"更新順番号 {reply.update_sequence}, 団体内統合宛名番号 {reply.unified_atena_number}")
            key = common_pb2.ResidentKey(resident_code=code)
            cs = topo.find("cs", municipality)
            pref = topo.find("prefecture", prefecture=topo.municipality(municipality).prefecture)
            with channel(pref, node_cert(pki, cs.name)) as ch:
                info = eventually(lambda: prefecture_pb2_grpc.PrefectureServerStub(ch).GetIdentity(key, timeout=5))
                print(f"   prefecture {pref.name}: 本人確認情報 {info.name_kanji}, 更新順番号 {info.update_sequence}")
            with channel(topo.find("national"), node_cert(pki, cs.name)) as ch:
                info = eventually(lambda: national_pb2_grpc.NationalServerStub(ch).GetIdentity(key, timeout=5))
                print(f"   national: 本人確認情報 {info.name_kanji}, 住所 {info.address}")
            with channel(topo.find("card"), node_cert(pki, cs.name)) as ch:
                entry = eventually(lambda: card_pb2_grpc.CardManagementStub(ch).GetDeliveryInfo(key, timeout=5))
                print(f"   card: 送付先情報 queued at {entry.received_at} for {entry.delivery.delivery_name_kanji}")
            atena = topo.find("atena", municipality)
            with channel(atena, node_cert(pki, kizon.name)) as ch:
                entry = atena_pb2_grpc.AtenaStub(ch).GetEntry(
                    atena_pb2.AtenaKey(unified_atena_number=reply.unified_atena_number), timeout=5)
            print(f"   atena: 符号 {entry.fugo[:8]}… registered")
            with channel(topo.find("intermediate"), named_cert(pki, "infonws")) as ch:
                provided = eventually(lambda: intermediate_pb2_grpc.IntermediateServerStub(ch).ProvideInfo(
                    intermediate_pb2.ProvisionRequest(tenant=municipality, fugo=entry.fugo, inquiry_id="INQ-1"), timeout=5))
            print(f"   intermediate: 情報提供 by 符号 answered {provided.record.name_kanji} (記録 {provided.provision_id[:8]}…)")

        print("\n== what the security layer refuses")
        kizon = topo.find("kizon", "142140")
        probes = [
            ("no client certificate", None),
            ("rogue CA", bad_cert(pki, "rogue_ca")),
            ("expired", bad_cert(pki, "expired")),
            ("revoked", bad_cert(pki, "revoked")),
            ("wrong trust domain", bad_cert(pki, "wrong_domain")),
            ("wrong municipality", bad_cert(pki, "wrong_municipality")),
            ("wrong role (atena)", bad_cert(pki, "wrong_role")),
        ]
        for label, cert in probes:
            code, detail = _probe(kizon, cert, pki)
            print(f"   kizon-142140 ← {label:22s} {code:18s} {detail[:90]}")

        print("\n== audit chains")
        ok = True
        for node in topo.nodes:
            result = audit.verify(network.audit_file(node.name))
            ok &= result.ok
            print(f"   {'OK  ' if result.ok else 'FAIL'} {node.name:18s} {result.entries:4d} entries, head {result.head[:16]}")
        return 0 if ok else 1
    finally:
        print("\n== taking the network down")
        print(f"   stopped {len(network.down())} nodes")


def _probe(node, cert, pki) -> tuple[str, str]:
    """Call kizon GetResident with a certificate (or none); return the status name and detail."""
    if cert is None:
        creds = grpc.ssl_channel_credentials(root_certificates=pki.trust_bundle.read_bytes())
        ch = grpc.secure_channel(node.address, creds, options=channel_options(node.host_name))
    else:
        ch = channel(node, cert)
    with ch:
        try:
            kizon_pb2_grpc.KizonStub(ch).GetResident(common_pb2.ResidentKey(resident_code="24727059608"),
                                                     metadata=operator_metadata("OP1001"), timeout=3)
            return "OK", ""
        except grpc.RpcError as exc:
            return exc.code().name, (exc.details() or "").replace("\n", " ")
