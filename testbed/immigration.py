"""法務省's side of a generated population: the 在留カード of its foreign residents, loaded into the 在留カード等発行システム
beside the register (the operations console's call), and the changes of 在留 an 入管 office records (its client
certificate). docs/immigration.md describes the notices that follow."""
from __future__ import annotations

import asyncio

import grpc

from nodes.guard import REQUEST_KEY
from nodes.residence import CARD_NUMBER, VALID
from protos import moj_pb2, moj_pb2_grpc
from testbed.client import async_channel, channel, console_cert, named_cert

LOAD_BATCH = 5000  # cards per load call (well under gRPC's 4 MiB)
FOREIGN = "外国人住民"


def residence_cards_of(records) -> list[moj_pb2.ResidenceCardRecord]:
    """The 在留カード of a population's foreign residents (those with a card number of the layout), as 法務省 holds them:
    each 有効, at the 住所 and municipality of their 住民票."""
    return [moj_pb2.ResidenceCardRecord(
        residence_card_number=r.residence_card_number, name_romaji=r.name_romaji or r.name_kanji,
        nationality=r.nationality, birth_date=r.birth_date, sex=r.sex, residence_status=r.residence_status,
        period_expiry_date=r.residence_period_expiry_date, municipality_code=r.municipality_code,
        resident_code=r.resident_code, address=r.address, status=VALID)
        for r in records if r.resident_type == FOREIGN and CARD_NUMBER.fullmatch(r.residence_card_number)]


async def load_residence_cards(network, municipality: str, records) -> int:
    """Load a municipality's foreign residents into 法務省's system (no 法務省 in the topology: nothing); how many."""
    try:
        node = network.topology.find("moj")
    except KeyError:
        return 0
    cards = residence_cards_of(records)
    for card in cards:
        card.municipality_code = municipality  # (the 住居地: where these records are loaded)
    loaded = 0
    async with async_channel(node, console_cert(network.pki, "moj")) as ch:
        stub = moj_pb2_grpc.ResidenceCardSystemStub(ch)
        for start in range(0, len(cards), LOAD_BATCH):
            batch = moj_pb2.ResidenceCardLoad(records=cards[start:start + LOAD_BATCH])
            for attempt in range(5):
                try:
                    loaded += (await stub.LoadResidenceCards(batch, timeout=120)).applied
                    break
                except grpc.aio.AioRpcError as exc:
                    if exc.code() != grpc.StatusCode.UNAVAILABLE or attempt == 4:
                        raise
                    await asyncio.sleep(1.0 + attempt)
    return loaded


def immigration_office(network) -> tuple[moj_pb2_grpc.ResidenceCardSystemStub, grpc.Channel]:
    """A stub of 法務省's system as the 入管 office calls it, and its channel (to close)."""
    ch = channel(network.topology.find("moj"), named_cert(network.pki, "immigration"))
    return moj_pb2_grpc.ResidenceCardSystemStub(ch), ch


def record_change(network, change: moj_pb2.ResidenceChange, request_id: str | None = None,
                  timeout: float = 30) -> moj_pb2.ImmigrationNotice:
    """An 入管 office records a change of 在留 (with request_id as its x-request-id); the 法務省通知 it queued."""
    stub, ch = immigration_office(network)
    try:
        metadata = ((REQUEST_KEY, request_id),) if request_id else ()
        return stub.RecordResidenceChange(change, metadata=metadata, timeout=timeout)
    finally:
        ch.close()
