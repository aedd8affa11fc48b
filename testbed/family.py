"""The 戸籍 of a generated population, loaded into the municipality's 戸籍 system beside the register (the people whose
本籍 is there, a 戸籍 per household: the 世帯主 as 筆頭者, the spouse as 夫 or 妻), and the first 附票 entry of each."""
from __future__ import annotations

import asyncio

import grpc

from protos import koseki_pb2, koseki_pb2_grpc
from testbed.client import async_channel, console_cert

LOAD_BATCH = 5000  # 戸籍 per load call (well under gRPC's 4 MiB)


def _split(name: str) -> tuple[str, str]:
    surname, _, given = name.partition(" ")
    return surname, given


def registers_of(records, municipality: str) -> koseki_pb2.FamilyRegisterLoad:
    """The 戸籍 (and 附票 entries) of the Japanese residents of a population whose 本籍 is in the municipality."""
    load = koseki_pb2.FamilyRegisterLoad()
    by_household: dict[str, list] = {}
    for record in records:
        if record.honseki and record.resident_type != "外国人住民":
            by_household.setdefault(record.household_number, []).append(record)
    for household, members in by_household.items():
        register = load.registers.add(register_number=household, honseki=members[0].honseki,
                                      hittousha=members[0].hittousha, status="現在")
        spouses = [m for m in members if m.relationship in ("世帯主", "妻", "夫")][:2]
        for record in members:
            surname, given = _split(record.name_kanji)
            surname_kana, given_kana = _split(record.name_kana)
            member = register.members.add(
                resident_code=record.resident_code, surname=surname, given_name=given, surname_kana=surname_kana,
                given_name_kana=given_kana, birth_date=record.birth_date, sex=record.sex, status="在籍",
                relationship="筆頭者" if record.relationship == "世帯主" else record.relationship)
            if len(spouses) == 2 and record in spouses:
                member.spouse = next(s.resident_code for s in spouses if s is not record)
            load.annex.add(resident_code=record.resident_code, address=record.address,
                           address_since=record.address_since, municipality_code=municipality,
                           reason=record.change_reason)
    return load


async def load_family_registers(network, municipality: str, records) -> int:
    """Load the 戸籍 of a population into the municipality's 戸籍 system (none in the topology: nothing); how many."""
    try:
        node = network.topology.find("koseki", municipality)
    except KeyError:
        return 0
    load = registers_of(records, municipality)
    loaded = 0
    async with async_channel(node, console_cert(network.pki, "koseki")) as ch:
        stub = koseki_pb2_grpc.FamilyRegisterSystemStub(ch)
        registers, annex = list(load.registers), {e.resident_code: e for e in load.annex}
        for start in range(0, len(registers), LOAD_BATCH):
            part = registers[start:start + LOAD_BATCH]
            batch = koseki_pb2.FamilyRegisterLoad(registers=part, annex=[
                annex[m.resident_code] for r in part for m in r.members if m.resident_code in annex])
            for attempt in range(5):
                try:
                    loaded += (await stub.LoadFamilyRegisters(batch, timeout=120)).applied
                    break
                except grpc.aio.AioRpcError as exc:
                    if exc.code() != grpc.StatusCode.UNAVAILABLE or attempt == 4:
                        raise
                    await asyncio.sleep(1.0 + attempt)
    return loaded
