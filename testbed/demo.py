"""The demo: bring the network up, load a small population, follow residents through the counter
operations across both municipalities and every node, show what the security layer refuses,
check consistency and the audit chains, and take the network down."""
from __future__ import annotations

import asyncio
import random
import time

import grpc

from nodes import audit
from nodes.clock import office_today
from nodes.tls import channel_options
from protos import (card_pb2, card_pb2_grpc, common_pb2, identity_pb2, intermediate_pb2,
                    intermediate_pb2_grpc, kizon_pb2, kizon_pb2_grpc, national_pb2, national_pb2_grpc, prefecture_pb2_grpc,
                    records_pb2)
from scenarios.towns import towns
from testbed.client import Counter, NotYet, bad_cert, channel, eventually, named_cert, node_cert
from testbed.load import generate_population, load_records
from testbed.network import Network, status_table

DEMO_RESIDENTS = 2_000  # per municipality, loaded before the counter operations
ISEHARA, HADANO = "142140", "142115"


def run_demo(network: Network) -> int:
    """Run the demo against network; return the exit code."""
    print("== bringing the network up")
    started = time.monotonic()
    rows = network.up()
    print(status_table(rows))
    print(f"{len(rows)} nodes healthy in {time.monotonic() - started:.1f} s\n")
    try:
        _load(network)
        _counter_story(network)
        _search_and_masking(network)
        _security(network)
        return _verify(network)
    finally:
        print("\n== taking the network down")
        print(f"   stopped {len(network.down())} nodes")


def _load(network: Network) -> None:
    print(f"== 移行: {DEMO_RESIDENTS:,} generated residents per municipality through kizon → cs → prefecture → national")
    for code in (ISEHARA, HADANO):
        records, summary = generate_population(network, code, DEMO_RESIDENTS, seed=random.randrange(1 << 30))
        try:
            result = asyncio.run(load_records(network, code, records, show_progress=False))
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.ALREADY_EXISTS:
                raise
            print(f"   {code}: already loaded by an earlier demo")
            continue
        shares = summary.shares()
        print(f"   {code}: {result['records']:,} residents in {result['seconds']:.1f} s; "
              f"{shares['people_per_household']:.2f} per household, {shares['under_15']:.0%} under 15, "
              f"{shares['aged_65_and_over']:.0%} 65+, {shares['foreign']:.1%} foreign, {shares['card_holders']:.0%} card holders")


def _address(code: str, line: str) -> records_pb2.Address:
    return records_pb2.Address(town_code=towns(code)[3].code, address_line=line)


def _issue_card(counter: Counter, code: str, pin: str = "1234", timeout: float = 30.0) -> None:
    """APPLY, wait for the manufacturing batch, ISSUE with a PIN: the card a 特例転出 needs."""
    counter(counter.kizon.ChangeCard, card_pb2.CardRequest(action=card_pb2.APPLY, resident_code=code))
    deadline = time.monotonic() + timeout
    while True:
        try:
            counter(counter.kizon.ChangeCard, card_pb2.CardRequest(action=card_pb2.ISSUE, resident_code=code, pin=pin))
            return
        except grpc.RpcError as exc:  # FAILED_PRECONDITION until the card has been made
            if exc.code() != grpc.StatusCode.FAILED_PRECONDITION or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _counter_story(network: Network) -> None:
    today = office_today().isoformat()
    topo, pki = network.topology, network.pki
    a, b = Counter(network, ISEHARA, "T0001", "OP0001"), Counter(network, HADANO, "T0001", "OP0001")
    try:
        print("\n== at the counter of 伊勢原市 (terminal T0001, operator OP0001)")
        head = a(a.kizon.MoveIn, kizon_pb2.MoveInRequest(
            person=records_pb2.ResidentRecord(name_kanji="山田 太郎", name_kana="ヤマダ タロウ", birth_date="1988-05-05",
                                              sex="1"),
            address=_address(ISEHARA, "348番地"), move_in_date=today, notification_date=today, from_abroad=True)).records[0]
        print(f"   国外転入 {head.name_kanji}: 住民票コード {head.resident_code} (from the pool), 個人番号 {head.individual_number} "
              f"(from national), 世帯 {head.household_number}, {head.address}")
        _issue_card(a, head.resident_code)
        print("   個人番号カード applied for, made by the card system's batch, issued at the counter with a PIN")
        child = a(a.kizon.Birth, kizon_pb2.BirthRequest(household_number=head.household_number, notification_date=today,
                  child=records_pb2.ResidentRecord(name_kanji="山田 花子", name_kana="ヤマダ ハナコ", birth_date=today,
                                                   sex="2"))).records[0]
        print(f"   出生 {child.name_kanji}: 住民票コード {child.resident_code}, 続柄 {child.relationship}")
        moved = a(a.kizon.MoveWithin, kizon_pb2.MoveWithinRequest(resident_code=head.resident_code, move_date=today,
                                                                  address=_address(ISEHARA, "1000番地"), whole_household=True))
        print(f"   転居 (whole household) → {moved.records[0].address}, 更新順番号 {moved.update_sequence}")
        out = a(a.kizon.MoveOut, kizon_pb2.MoveOutRequest(
            resident_code=head.resident_code, destination_address="神奈川県秦野市桜町一丁目3番2号",
            destination_municipality_code=HADANO, planned_date=today, special=True))
        print(f"   特例転出 to 秦野市: 除票 kept, 転出証明書情報 {out.certificate.certificate_number} sent CS → CS")

        print("\n== at the counter of 秦野市")
        moved_in = eventually(lambda: b(b.kizon.MoveIn, kizon_pb2.MoveInRequest(
            person=records_pb2.ResidentRecord(resident_code=head.resident_code), address=_address(HADANO, "3番2号"),
            move_in_date=today, notification_date=today, special=True))).records[0]
        print(f"   特例転入 with the card: {moved_in.name_kanji}, same 個人番号 {moved_in.individual_number}, "
              f"転入前住所 {moved_in.previous_address}")
        history = _poll_history(a, head.resident_code, "転出確定")
        print(f"   転入通知 back to 伊勢原市: its 除票 now reads 転出先（確定） {history[-1].move_out_destination_confirmed}")
        print("   history at 伊勢原市: " + " → ".join(f"{e.history_number}:{e.change_reason}" for e in history))

        key = common_pb2.ResidentKey(resident_code=child.resident_code)
        print(f"\n== following the newborn {child.resident_code} through every node")
        pref = topo.find("prefecture", prefecture=topo.municipality(ISEHARA).prefecture)
        with channel(pref, node_cert(pki, "cs-142140")) as ch:
            info = eventually(lambda: prefecture_pb2_grpc.PrefectureServerStub(ch).GetIdentity(key, timeout=5))
            print(f"   prefecture: 本人確認情報 {info.name_kanji}, 更新順番号 {info.update_sequence}")
        with channel(topo.find("national"), node_cert(pki, "cs-142140")) as ch:
            info = eventually(lambda: national_pb2_grpc.NationalServerStub(ch).GetIdentity(key, timeout=5))
            print(f"   national: 本人確認情報 {info.name_kanji}, 更新順番号 {info.update_sequence}, 住所 {info.address}")
        with channel(topo.find("card"), node_cert(pki, "cs-142140")) as ch:
            # (after the CS's 突合 with national: the household moved since, so it goes to the new address)
            entry = eventually(lambda: card_pb2_grpc.CardManagementStub(ch).GetDeliveryInfo(key, timeout=5), timeout=30)
            print(f"   card: 送付先情報 queued for the 個人番号通知書 at {entry.received_at}")
        with channel(topo.find("intermediate"), named_cert(pki, "infonws")) as ch, \
                channel(topo.find("national"), named_cert(pki, "infonws")) as registry:
            provided = eventually(lambda: _provide(intermediate_pb2_grpc.IntermediateServerStub(ch),
                                                   national_pb2_grpc.NationalServerStub(registry), child))
            print(f"   intermediate: 情報提供 by 符号 for the 児童手当 事務 answered {provided.record.name_kanji}, "
                  f"{len(provided.items_provided)} items (記録 {provided.provision_id[:8]}…)")
        copy = a(a.kizon.IssueCertificate, kizon_pb2.CertificateRequest(kind=kizon_pb2.HOUSEHOLD_COPY,
                                                                         resident_code=child.resident_code))
        print(f"   住民票の写し (世帯) 発行番号 {copy.issue_number}:")
        print("\n".join(f"      {line}" for line in copy.text.splitlines()[:8]))
        died = a(a.kizon.Death, kizon_pb2.DeathRequest(resident_code=child.resident_code, death_date=today))
        print(f"   死亡: {died.records[0].name_kanji} → 除票 ({died.records[0].removal_reason}), history kept")
        trail = audit.follow([network.audit_file(c) for c in network.audit_chains(topo.nodes)], child.resident_code)
        print(f"   the audit logs follow {child.resident_code} through {len({e['node'] for e in trail})} nodes:")
        for entry in trail:
            print(f"      {entry['node']:18s} {entry['method'].rsplit('/', 1)[-1]:26s} {entry['status']}")
    finally:
        a.close()
        b.close()


def _provide(stub, registry, child):
    """情報提供 of one person for the 児童手当 事務 (主務省令第2条の表 項81): the NWS knows 符号, not 住民票コード (nor is
    it provided), so look through the 符号 it knows for the child's name and birth date."""
    for fugo in registry.SampleFugo(national_pb2.FugoSampleRequest(tenant=ISEHARA, count=10_000), timeout=10).fugo:
        provided = stub.ProvideInfo(intermediate_pb2.ProvisionRequest(tenant=ISEHARA, fugo=fugo, inquiry_id="TOUR-1",
                                                                      jimu="19-8-2-81"), timeout=5)
        if (provided.record.name_kanji, provided.record.birth_date) == (child.name_kanji, child.birth_date):
            return provided
    raise NotYet()


def _poll_history(counter, code, reason, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        history = list(counter(counter.kizon.GetHistory, common_pb2.ResidentKey(resident_code=code)).entries)
        if history[-1].change_reason == reason or time.monotonic() > deadline:
            return history
        time.sleep(0.2)


def _search_and_masking(network: Network) -> None:
    print("\n== 本人確認情報検索 on the 統合端末 and who sees the 個人番号")
    with Counter(network, ISEHARA, "T0001", "OP0001") as allowed, Counter(network, ISEHARA, "T0002", "OP0002") as clerk:
        found = allowed(allowed.cs.SearchIdentity, identity_pb2.IdentitySearch(name_kana="ヤマダ タロウ", birth_date="1988-05-05",
                                                                                nationwide=True))
        print(f"   氏名 + 生年月日, nationwide: {len(found.matches)} records "
              f"({', '.join(sorted({m.municipality_code for m in found.matches}))}), 個人番号 {found.matches[0].individual_number}")
        try:
            allowed(allowed.cs.SearchIdentity, identity_pb2.IdentitySearch(name_kana="ヤマダ タロウ", sex="1"))
        except grpc.RpcError as exc:
            print(f"   氏名 + 性別 only: {exc.code().name}: {exc.details()}")
        masked = clerk(clerk.cs.SearchIdentity, identity_pb2.IdentitySearch(name_kana="ヤマダ タロウ", birth_date="1988-05-05"))
        print(f"   the same search by OP0002 on T0002 (no 個人番号 permission): 個人番号 {masked.matches[0].individual_number}")
        try:
            list(clerk(clerk.kizon.ExportResidents, kizon_pb2.ExportRequest()))
        except grpc.RpcError as exc:
            print(f"   bulk output without approval: {exc.code().name}: {exc.details()[:80]}…")


def _security(network: Network) -> None:
    print("\n== what the security layer refuses (kizon-142140)")
    kizon = network.topology.find("kizon", ISEHARA)
    pki = network.pki
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
        print(f"   ← {label:22s} {code:18s} {detail[:80]}")


def _verify(network: Network) -> int:
    ok = True
    print("\n== 整合性確認 (kizon ↔ cs ↔ prefecture ↔ national)")
    for code in (ISEHARA, HADANO):
        with Counter(network, code, "T0003", "OP0003") as counter:  # the full 整合性確認 is a manager's
            report = counter(counter.kizon.CheckConsistency, common_pb2.ConsistencyRequest(municipality_code=code), timeout=120)
        ok &= not report.differences
        print(f"   {code}: kizon {report.records_kizon:,}, cs {report.records_cs:,}, prefecture {report.records_prefecture:,}, national "
              f"{report.records_national:,}; {len(report.differences)} differences ({report.seconds:.2f} s)")
    print("\n== audit chains")
    for chain in network.audit_chains(network.topology.nodes):
        result = network.verify_audit(chain)
        ok &= result.ok
        print(f"   {'OK  ' if result.ok else 'FAIL'} {chain:18s} {result.entries:5d} entries, checkpointed "
              f"{result.checkpointed:5d}, head {result.head[:16]}")
    return 0 if ok else 1


def _probe(node, cert, pki) -> tuple[str, str]:
    """Call kizon GetResident with a certificate (or none); return the status name and detail."""
    if cert is None:
        creds = grpc.ssl_channel_credentials(root_certificates=pki.trust_bundle.read_bytes())
        ch = grpc.secure_channel(node.address, creds, options=channel_options(node.host_name))
    else:
        ch = channel(node, cert)
    with ch:
        try:
            kizon_pb2_grpc.KizonStub(ch).GetResident(common_pb2.ResidentKey(resident_code="24727059608"), timeout=3)
            return "OK", ""
        except grpc.RpcError as exc:
            return exc.code().name, (exc.details() or "").replace("\n", " ")
