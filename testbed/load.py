"""The initial load (移行): a generated population streamed into kizon and carried through
cs → prefecture → national, with a progress bar; done when national holds every record."""
from __future__ import annotations

import asyncio
import sys
import time
import uuid

import grpc

from tqdm import tqdm

from nodes.guard import REQUEST_KEY
from protos import kizon_pb2
from scenarios.population import Generator
from testbed.client import async_login, eventually, node_status
from testbed.family import load_family_registers
from testbed.immigration import load_residence_cards

BATCH = 5000  # residents per streamed batch: one transaction at each node (fewer, larger commits); about 2 MB
RETRIES = 5  # attempts of a stream that finds its node unreachable
STREAMS = 2  # parallel streams, so that batches overlap across the hops


def place_name(topology, municipality: str) -> str:
    """都道府県名 + 市町村名 of a municipality, as addresses begin."""
    m = topology.municipality(municipality)
    return topology.prefectures.get(m.prefecture, "") + m.name


async def _stream(kizon, metadata, records, bar, atena: bool):
    """One stream of the load; resumed with the same 依頼管理番号 when the node is briefly unreachable (the
    batches already in are skipped by kizon, not loaded twice)."""
    load_id = f"load-{uuid.uuid4().hex}"
    sent = 0

    async def batches():
        nonlocal sent
        for start in range(0, len(records), BATCH):
            chunk = records[start:start + BATCH]
            yield kizon_pb2.ResidentBatch(records=chunk, skip_atena=not atena)
            if start + len(chunk) > sent:
                bar.update(start + len(chunk) - sent)
                sent = start + len(chunk)
    for attempt in range(RETRIES):
        try:
            return await kizon.BulkLoad(batches(), metadata=metadata + ((REQUEST_KEY, load_id),), timeout=3600)
        except grpc.aio.AioRpcError as exc:
            if exc.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED) \
                    or attempt == RETRIES - 1:
                raise
            await asyncio.sleep(1.0 + attempt)


async def load_records(network, municipality: str, records: list, *, operator: str = "OP0003",
                       terminal: str = "T0003", show_progress: bool = True, atena: bool = True,
                       family_registers: bool = True) -> dict:
    """Stream records into a municipality's kizon; wait until national has them all; return timings.

    With atena, kizon also feeds the 宛名 system (and through it the 中間サーバ) from its outbox; with
    family_registers, the 戸籍 system gets the 戸籍 of the residents whose 本籍 is here (testbed/family.py); 法務省's
    在留カード等発行システム gets the cards of the foreign residents (testbed/immigration.py).
    """
    kizon, _, metadata, channels = await async_login(network, municipality, terminal, operator)
    started = time.perf_counter()
    bar = tqdm(total=len(records), unit="residents", desc=f"移行 {municipality}", disable=not show_progress,
               file=sys.stderr, smoothing=0.1)
    try:
        share = -(-len(records) // STREAMS)
        parts = [records[i:i + share] for i in range(0, len(records), share)] or [[]]
        # Every stream runs to its end even when one is refused (closing the channel under them would cancel
        # batches that kizon is finishing); then the first refusal is the answer.
        summaries = await asyncio.gather(*(_stream(kizon, metadata, part, bar, atena) for part in parts),
                                         return_exceptions=True)
        for failed in (s for s in summaries if isinstance(s, BaseException)):
            raise failed
    finally:
        bar.close()
        for ch in channels:
            await ch.close()
    at_kizon = time.perf_counter() - started
    last = max(s.last_update_sequence for s in summaries)
    registers = await load_family_registers(network, municipality, records) if family_registers else 0
    cards = await load_residence_cards(network, municipality, records)  # (no 法務省 in the topology: none)
    await wait_until_applied(network, municipality, last)
    return {"records": sum(s.records for s in summaries), "seconds_at_kizon": at_kizon,
            "seconds": time.perf_counter() - started, "last_update_sequence": last, "family_registers": registers,
            "residence_cards": cards}


async def wait_until_applied(network, municipality: str, sequence: int, timeout: float = 600) -> None:
    """Wait until national has applied a municipality's updates up to sequence."""
    national = network.topology.find("national")
    deadline = time.monotonic() + timeout
    while _status(network, national, deadline).applied.get(municipality, 0) < sequence:
        if time.monotonic() > deadline:
            raise TimeoutError(f"national did not reach 更新順番号 {sequence} of {municipality} in {timeout:.0f} s")
        await asyncio.sleep(0.1)


async def wait_until_drained(network, timeout: float = 600) -> None:
    """Wait until no node has anything left in its outboxes (every consequence of what was done has arrived)."""
    await _until_none_left(network, lambda status: status.outbox_pending, "outboxes not drained", timeout)


async def wait_until_indexed(network, timeout: float = 600) -> None:
    """Wait until no node holds indexes left out for a load (nodes/deferred.py): the load is over at every hop."""
    await _until_none_left(network, lambda status: status.deferred_indexes, "indexes not made again after the load",
                           timeout)


async def _until_none_left(network, left_of, what: str, timeout: float) -> None:
    """Wait until left_of(GetStatus) is 0 at every node; TimeoutError naming those with some left."""
    deadline = time.monotonic() + timeout
    while True:
        left = {n.name: left_of(_status(network, n, deadline)) for n in network.topology.nodes}
        if not any(left.values()):
            return
        if time.monotonic() > deadline:
            raise TimeoutError("{} in {:.0f} s: {}".format(
                what, timeout, ", ".join(f"{name} {count}" for name, count in left.items() if count)))
        await asyncio.sleep(0.1)


def _status(network, node, deadline: float):
    """A node's status; a node too busy to answer at once (a machine saturated by the load) is asked again."""
    return eventually(lambda: node_status(network, node), timeout=max(0.0, deadline - time.monotonic()),
                      codes=(grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED), pause=0.5)


def generate_population(network, municipality: str, residents: int, seed: int):
    """The generated residents of a municipality and their summary."""
    generator = Generator(municipality, place_name(network.topology, municipality), seed)
    return list(generator.residents(residents)), generator.summary
