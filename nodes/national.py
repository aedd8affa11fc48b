"""全国サーバ (機構): the 機構保存本人確認情報ファイル, numbers, national queries and 符号.

National is the one place that knows every 住民票コード ever issued: it hands out pools of
unused codes to the CSs, offers candidates for a 住民票コード変更請求, and generates each
person's 個人番号 from the 住民票コード with a keyed one-way function (unique, not reversible).
"""
from __future__ import annotations

import hashlib
import hmac
import secrets

from nodes import audit, filedigests, identityfile, rules
from nodes.deferred import DeferredIndexes
from nodes.numbers import with_individual_number_check, with_resident_code_check
from nodes.guard import current_call
from nodes.reasons import common as C, national as N
from nodes.store import rows_in
from protos import common_pb2, cs_pb2, identity_pb2, national_pb2, national_pb2_grpc, records_pb2

SERVICE_NAME = national_pb2.DESCRIPTOR.services_by_name["NationalServer"].full_name
MAX_POOL = 100_000  # the most codes one pool request may take
SCHEMA = identityfile.SCHEMA + identityfile.SEARCH_SCHEMA + """
CREATE TABLE IF NOT EXISTS resident_codes (
    resident_code TEXT PRIMARY KEY,         -- every 住民票コード issued, to whom and in which state
    municipality_code TEXT NOT NULL,
    state TEXT NOT NULL                     -- 'pooled', 'offered', 'used'
);
CREATE TABLE IF NOT EXISTS individual_numbers (
    individual_number TEXT PRIMARY KEY,     -- 個人番号
    resident_code TEXT NOT NULL UNIQUE      -- the 住民票コード it was generated from
);
CREATE TABLE IF NOT EXISTS fugo (
    individual_number TEXT PRIMARY KEY,     -- 個人番号
    fugo TEXT NOT NULL UNIQUE               -- 符号: opaque, not derivable from the 個人番号
);
CREATE TABLE IF NOT EXISTS secrets (name TEXT PRIMARY KEY, value BLOB NOT NULL);
"""


def add_to_server(servicer, server) -> None:
    """Register the servicer on a gRPC server."""
    national_pb2_grpc.add_NationalServerServicer_to_server(servicer, server)


class Servicer(national_pb2_grpc.NationalServerServicer):
    """J-LIS's national server."""

    def __init__(self, runtime):
        self.rt = runtime
        filedigests.keep(runtime)  # (the 整合性確認's digests and ranges: an older file upgraded, the scrubber)
        self.indexes = DeferredIndexes(runtime, "identity")  # (made after a load into the empty file)
        with runtime.store.transaction() as db:
            found = db.execute("SELECT value FROM secrets WHERE name='number_key'").fetchone()
            if found is None:
                found = (secrets.token_bytes(32),)
                db.execute("INSERT INTO secrets VALUES ('number_key', ?)", found)
        self.number_key = found[0]

    async def ApplyIdentityUpdates(self, request, context):
        """本人確認情報の通知 from a prefecture, for one of its municipalities."""
        caller = current_call().peer.identity
        if request.municipality_code[:2] != caller.prefecture_prefix:
            raise N.PREFECTURE_SENDS_OWN(f"都道府県 rule: prefecture {caller.prefecture} may not send updates of "
                                         f"{request.municipality_code}")
        if request.updates:
            audit.set_batch_subject(u.info.resident_code for u in request.updates)
        with self.rt.store.transaction() as db:
            self._numbers_issued_here(db, request.updates)
            applied, last, _ = identityfile.apply_updates(db, request.municipality_code, request.updates, self.indexes)
            # Codes of the initial load and of other sources become known as used here.
            db.executemany("INSERT INTO resident_codes VALUES (?,?,'used') ON CONFLICT(resident_code) DO UPDATE SET state='used'",
                           [(u.info.resident_code, request.municipality_code) for u in applied])
        return common_pb2.UpdateAck(accepted=True, update_sequence=last, applied=len(applied))

    @staticmethod
    def _numbers_issued_here(db, updates) -> None:
        """A relayed update carries a 個人番号 national issued, for its person, or none: a CS (or a prefecture)
        cannot store a number of its own making here, nor another person's. A 住民票コード変更 of a person national
        holds in the sending municipality carries the number of the former code, which the new code keeps from then
        on. (Checked before the 更新順番号, so that a batch is refused under this rule whatever its numbering.)"""
        stated = [u.info for u in updates if u.info.individual_number]
        owners = dict(rows_in(db, "SELECT individual_number, resident_code FROM individual_numbers WHERE individual_number",
                              [i.individual_number for i in stated]))
        carried = set()  # (code, number) a 住民票コード変更 of this batch gave its new code
        for info in stated:
            owner, pair = owners.get(info.individual_number), (info.resident_code, info.individual_number)
            if owner is None:
                pass  # (a number national never issued)
            elif owner == info.resident_code or pair in carried or db.execute(
                    "SELECT 1 FROM identity WHERE resident_code=? AND individual_number=?", pair).fetchone():
                continue  # its own; or carried over to this code by a 住民票コード変更, in this batch or before
            elif info.change_reason == "住民票コード変更" and ((info.former_resident_code, info.individual_number) in carried
                                                          or db.execute(
                    "SELECT 1 FROM identity WHERE resident_code=? AND municipality_code=? AND individual_number=?",
                    (info.former_resident_code, info.municipality_code, info.individual_number)).fetchone()):
                carried.add(pair)  # the change of a person the sending municipality holds here with that number
                continue
            raise C.INDIVIDUAL_NUMBER_BY_NATIONAL(f"個人番号 rule (national alone issues 個人番号): the update of "
                                                  f"{info.resident_code} carries a 個人番号 national did not issue for "
                                                  "them")

    async def GetIdentity(self, request, context):
        """全国照会: anyone's 本人確認情報."""
        audit.set_subject(request.resident_code)
        return identityfile.read_identity(self.rt.store, request.resident_code)

    async def SearchIdentity(self, request, context):
        """全国検索 under the two-item rule."""
        audit.set_subject(request.resident_code or ("個人番号" if request.individual_number else "4情報"))
        return identityfile.search(self.rt.store, request)

    async def IssueResidentCodePool(self, request, context):
        """A pool of unused 住民票コード for the calling CS's municipality, drawn at random."""
        municipality = current_call().peer.identity.municipality
        if request.municipality_code and request.municipality_code != municipality:
            raise N.POOL_OWN_MUNICIPALITY(f"pool rule: the CS of {municipality} may not take codes for {request.municipality_code}")
        if not 0 < request.count <= MAX_POOL:
            raise N.POOL_ISSUE_SIZE(f"pool rule: count must be 1..{MAX_POOL}")
        audit.set_subject(f"pool:{request.count}")
        codes = self._fresh_codes(request.count)
        with self.rt.store.transaction() as db:
            db.executemany("INSERT INTO resident_codes VALUES (?,?,'pooled')", [(c, municipality) for c in codes])
        return cs_pb2.ResidentCodes(resident_codes=codes)

    async def OfferResidentCodes(self, request, context):
        """住民票コード変更請求: candidates the person may choose from."""
        rules.require_resident_code(request.resident_code)
        if not 1 <= request.count <= 10:
            raise N.CODE_OFFER_SIZE("変更請求 rule: offer 1..10 candidates")
        audit.set_subject(request.resident_code)
        municipality = current_call().peer.identity.municipality
        codes = self._fresh_codes(request.count)
        with self.rt.store.transaction() as db:
            db.executemany("INSERT INTO resident_codes VALUES (?,?,'offered')", [(c, municipality) for c in codes])
        return cs_pb2.CodeOfferReply(candidates=codes)

    def _fresh_codes(self, count: int) -> list[str]:
        """count random 住民票コード never issued before."""
        rng = secrets.SystemRandom()
        codes: set[str] = set()
        while len(codes) < count:
            batch = {with_resident_code_check(f"{rng.randrange(10**10):010d}") for _ in range(count - len(codes))}
            batch -= codes
            taken = {r[0] for r in rows_in(self.rt.store.db, "SELECT resident_code FROM resident_codes WHERE resident_code", batch)}
            codes |= batch - taken
        return sorted(codes)

    async def AssignIndividualNumbers(self, request, context):
        """個人番号 for each 住民票コード: generated here, the same answer if asked again."""
        municipality = current_call().peer.identity.municipality
        codes = list(request.resident_codes)
        for code in codes:
            rules.require_resident_code(code)
        if codes:
            audit.set_batch_subject(codes)
        db = self.rt.store.db
        numbers = dict(rows_in(db, "SELECT resident_code, individual_number FROM individual_numbers WHERE resident_code", codes))
        owners = {c: (m, s) for c, m, s in rows_in(
            db, "SELECT resident_code, municipality_code, state FROM resident_codes WHERE resident_code", codes)}
        for code in codes:
            owner = owners.get(code)
            if owner and owner[0] != municipality and owner[1] != "used":
                raise N.RESIDENT_CODE_ISSUED_TO(f"住民票コード rule: {code} was issued to {owner[0]}, not {municipality}")
        self._refuse_elsewhere(codes, municipality)
        with self.rt.store.transaction() as db:
            numbers.update(self._generate_numbers(db, [c for c in codes if c not in numbers]))
            db.executemany("INSERT INTO resident_codes VALUES (?,?,'used') ON CONFLICT(resident_code) DO UPDATE SET state='used'",
                           [(c, municipality) for c in codes if owners.get(c, ("", ""))[1] != "used"])
        return cs_pb2.NumberAssignments(assignments=[cs_pb2.NumberAssignment(resident_code=c, individual_number=numbers[c])
                                                     for c in codes])

    def _refuse_elsewhere(self, codes: list[str], municipality: str) -> None:
        """A 個人番号 goes to a municipality only for a person it may register: nobody current in another
        municipality (one residence; their number is not this municipality's to learn), nobody who died."""
        db = self.rt.store.db
        for code, where, status, blob in rows_in(db, "SELECT resident_code, municipality_code, status, info FROM identity "
                                                 "WHERE resident_code", codes):
            if status == 0 and where != municipality:
                raise C.ONE_CURRENT_RESIDENCE(f"住所 rule (one current residence): {code} is a current resident of {where}; "
                                              "a 転入 needs the 転出 there first")
            if status != 0 and records_pb2.IdentityInfo.FromString(blob).change_reason == "死亡":
                raise C.REMOVED_STAY_REMOVED(f"除票 rule (removed people stay removed): {code} was recorded as dead in "
                                             f"{where}")

    def _generate_numbers(self, db, codes: list[str]) -> dict[str, str]:
        """個人番号 = a keyed one-way function of the 住民票コード, re-drawn on the rare collision."""
        result: dict[str, str] = {}
        pending = list(dict.fromkeys(codes))
        for counter in range(100):
            if not pending:
                break
            candidates = {}
            for code in pending:
                mac = hmac.new(self.number_key, f"{code}:{counter}".encode(), hashlib.sha256).digest()
                candidates[code] = with_individual_number_check(f"{int.from_bytes(mac[:8], 'big') % 10**11:011d}")
            taken = {r[0] for r in rows_in(db, "SELECT individual_number FROM individual_numbers WHERE individual_number",
                                             list(candidates.values()))}
            seen: set[str] = set()
            fresh = []
            for code, number in candidates.items():
                if number not in taken and number not in seen:
                    seen.add(number)
                    fresh.append((number, code))
            db.executemany("INSERT INTO individual_numbers VALUES (?,?)", fresh)
            result.update({code: number for number, code in fresh})
            pending = [c for c in pending if c not in result]
        if pending:
            raise N.INDIVIDUAL_NUMBER_UNIQUE("個人番号 rule: no unique number could be generated")
        return result

    async def CheckResidence(self, request, context):
        """One person, one current residence: where national knows the person as current (other than the
        calling CS's municipality), where a 転出 is still open, where the person died, the person's 個人番号, and
        whether a 個人番号 asked about is that one."""
        rules.require_resident_code(request.resident_code)
        audit.set_subject(request.resident_code)
        reply = self._standing(request.resident_code, current_call().peer.identity.municipality)
        if request.individual_number:
            reply.number_matches = reply.known and reply.individual_number == request.individual_number
        return reply

    def _standing(self, resident_code: str, caller: str) -> identity_pb2.ResidenceReply:
        """What national knows of one person as seen from a municipality: their number and every record."""
        db = self.rt.store.db
        reply = identity_pb2.ResidenceReply()
        found = db.execute("SELECT individual_number FROM individual_numbers WHERE resident_code=?",
                           (resident_code,)).fetchone()
        if found:
            reply.known, reply.individual_number = True, found[0]
        for municipality, status, blob in db.execute("SELECT municipality_code, status, info FROM identity WHERE resident_code=?",
                                                     (resident_code,)):
            if status != 0:
                reason = records_pb2.IdentityInfo.FromString(blob).change_reason
                if reason == "死亡":  # (the caller's own 除票 too: the dead stay removed, here as elsewhere)
                    reply.deceased_in.append(municipality)
                elif reason == "転出" and municipality != caller:
                    reply.moving_out_of.append(municipality)
            elif municipality != caller:
                reply.current_in.append(municipality)
        return reply

    async def IdentityDigests(self, request, context):
        """整合性確認 material: the ranges or the (住民票コード, digest) of the calling CS's people (nodes/digests.py)."""
        caller = current_call().peer.identity.municipality
        audit.set_subject(request.municipality_code)
        if request.municipality_code != caller:
            raise C.CONSISTENCY_OWN_RECORDS(f"整合性確認 rule: the CS of {caller} may compare only its own records")
        for batch in filedigests.digests_asked(self.rt.store, request.municipality_code, request, identityfile.IDENTITY):
            yield batch

    async def GetIdentities(self, request, context):
        """The 本人確認情報 of several people, for a consistency report."""
        audit.set_subject(f"{len(request.resident_codes)} records")
        return identityfile.read_identities(self.rt.store, current_call().peer.identity.municipality, request.resident_codes)

    async def IssueFugo(self, request, context):
        """符号の取得: the same person always gets the same 符号."""
        fugo = self._fugos([request.individual_number])[request.individual_number]
        audit.set_subject(fugo)
        return national_pb2.FugoReply(fugo=fugo)

    async def IssueFugos(self, request, context):
        """符号の取得 for a batch of people."""
        numbers = list(dict.fromkeys(request.individual_numbers))
        audit.set_subject(f"{len(numbers)} 符号")
        return national_pb2.FugoAssignments(fugo=self._fugos(numbers))

    async def SampleFugo(self, request, context):
        """Up to count 符号 of a municipality's current residents: the 情報提供NWS's own registry (stand-in)."""
        rules.require_municipality_code(request.tenant, "tenant")
        count = min(request.count or 100, 10_000)
        audit.set_subject(f"{request.tenant}:{count}")
        rows = self.rt.store.db.execute(
            "SELECT fugo.fugo FROM identity JOIN fugo ON fugo.individual_number = identity.individual_number "
            "WHERE identity.municipality_code=? AND identity.status=0 ORDER BY random() LIMIT ?",
            (request.tenant, count)).fetchall()
        return national_pb2.FugoSample(fugo=[r[0] for r in rows])

    def _fugos(self, numbers: list[str]) -> dict[str, str]:
        """符号 of each 個人番号, made (random, opaque) the first time it is asked for."""
        for number in numbers:
            rules.require_individual_number(number)
        known = dict(rows_in(self.rt.store.db, "SELECT individual_number, fugo FROM fugo WHERE individual_number", numbers))
        fresh = {n: secrets.token_hex(12).upper() for n in numbers if n not in known}
        if fresh:
            with self.rt.store.transaction() as db:
                db.executemany("INSERT INTO fugo VALUES (?,?)", list(fresh.items()))
        return known | fresh
