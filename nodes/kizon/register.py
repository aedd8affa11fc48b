"""Reading the register: 住民票, history, households, bulk output, and the lookups counter operations share."""
from __future__ import annotations

from nodes import audit, rules
from nodes.reasons import common as C
from nodes.reasons import kizon as K
from nodes.kizon.items import CURRENT
from nodes.guard import current_call
from protos import kizon_pb2, records_pb2
from nodes.towns import town

class RegisterMixin:
    """照会 and export of the register."""

    # -- reading the register ---------------------------------------------------------------------
    def _person(self, resident_code: str) -> records_pb2.ResidentRecord:
        rules.require_resident_code(resident_code)
        found = self.rt.store.one("SELECT record FROM residents WHERE resident_code=?", (resident_code,))
        if found is None:
            raise C.RECORD_NOT_FOUND(f"照会: no 住民票 with 住民票コード {resident_code} in {self.municipality}")
        return records_pb2.ResidentRecord.FromString(found[0])

    def _current(self, resident_code: str) -> records_pb2.ResidentRecord:
        record = self._person(resident_code)
        if record.status != CURRENT:
            raise K.CURRENT_RESIDENT_REQUIRED(f"除票 rule: {resident_code} is no longer a resident of {self.municipality} "
                                              f"({record.removal_reason} {record.removal_date})")
        return record

    def _members(self, household: str) -> list[records_pb2.ResidentRecord]:
        rows = self.rt.store.db.execute("SELECT record FROM residents WHERE household_number=? AND status=? ORDER BY atena_number",
                                        (household, CURRENT)).fetchall()
        return [records_pb2.ResidentRecord.FromString(r[0]) for r in rows]

    def _household(self, household: str) -> list[records_pb2.ResidentRecord]:
        rules.require_text(household, "世帯番号")
        members = self._members(household)
        if not members:
            raise K.HOUSEHOLD_NOT_FOUND(f"世帯 rule: no household {household} with current members in {self.municipality}")
        return members

    def _shown(self, record: records_pb2.ResidentRecord) -> records_pb2.ResidentRecord:
        """The record as this caller may see it: 個人番号 masked without the permission."""
        if record.individual_number and not self.rt.may_see_number(current_call()):
            shown = records_pb2.ResidentRecord()
            shown.CopyFrom(record)
            shown.individual_number = "*" * 12
            return shown
        return record

    async def GetResident(self, request, context):
        """住民票の照会: the current entry of a person's 住民票 (除票 included)."""
        audit.set_subject(request.resident_code)
        person = self._person(request.resident_code)
        self.disclosures.read(current_call(), [person.resident_code])
        return self._shown(person)

    async def GetHistory(self, request, context):
        """Every history entry (個人履歴番号) of a person, oldest first."""
        audit.set_subject(request.resident_code)
        person = self._person(request.resident_code)
        rows = self.rt.store.db.execute("SELECT record FROM history WHERE atena_number=? ORDER BY history_number",
                                        (person.atena_number,)).fetchall()
        self.disclosures.read(current_call(), [person.resident_code])
        return kizon_pb2.HistoryReply(entries=[self._shown(records_pb2.ResidentRecord.FromString(r[0])) for r in rows])

    async def GetHousehold(self, request, context):
        """The current members of a household."""
        audit.set_subject(request.household_number)
        members = self._household(request.household_number)
        self.disclosures.read(current_call(), [m.resident_code for m in members])
        return kizon_pb2.HistoryReply(entries=[self._shown(r) for r in members])

    async def ExportResidents(self, request, context):
        """Bulk output: an operator's records over BULK_WINDOW_HOURS add up (split exports and reads count
        together); beyond BULK_OUTPUT_LIMIT only with a manager's approval for this operator, terminal, purpose
        and count."""
        call = current_call()
        where, params = ["1=1"], []
        if request.town_code:
            where.append("town_code=?"), params.append(request.town_code)
        if not request.include_removed:
            where.append("status=?"), params.append(CURRENT)
        count = self.rt.store.scalar(f"SELECT COUNT(*) FROM residents WHERE {' AND '.join(where)}", tuple(params), 0)
        audit.set_subject(f"export:{count}")
        self.disclosures.export(call, request, count)
        cursor = self.rt.store.db.execute(f"SELECT record FROM residents WHERE {' AND '.join(where)} ORDER BY atena_number",
                                          tuple(params))
        for (blob,) in cursor:
            yield self._shown(records_pb2.ResidentRecord.FromString(blob))

    def _existing(self, resident_code: str) -> records_pb2.ResidentRecord | None:
        """A person's record if they were ever registered here; a current resident may not move in."""
        found = self.rt.store.one("SELECT record FROM residents WHERE resident_code=?", (resident_code,))
        if found is None:
            return None
        record = records_pb2.ResidentRecord.FromString(found[0])
        if record.status == CURRENT:
            raise C.ONE_CURRENT_RESIDENCE(f"転入 rule (PIA Ⅲ(2)5): {resident_code} is already a resident of {self.municipality}")
        if record.removal_reason == "死亡":
            raise C.REMOVED_STAY_REMOVED(f"除票 rule (removed people stay removed): {resident_code} was recorded as dead in "
                                         f"{self.municipality} ({record.removal_date})")
        return record

    def _new_household_number(self) -> str:
        """A 世帯番号 drawn at random among those never used here: a number one household has cannot lead to the
        next (sequential numbers let a reader walk every household)."""
        while True:
            number = f"{self._rng.randrange(1, 10**10):010d}"
            if self.rt.store.one("SELECT 1 FROM residents WHERE household_number=? LIMIT 1", (number,)) is None:
                return number

    def _address(self, address) -> records_pb2.Address:
        """An address on this municipality's 町字 list, with its full text and postal code."""
        place = town(self.municipality, address.town_code)
        if place is None:
            raise K.TOWN_CODE_UNKNOWN(f"町字 rule: {address.town_code!r} is not a 町字 of {self.municipality}")
        rules.require_text(address.address_line, "番地")
        full = records_pb2.Address()
        full.CopyFrom(address)
        full.postal_code = address.postal_code or place.postal_code
        full.address = f"{self.place_name}{place.name}{address.address_line}" + (f" {address.katagaki}" if address.katagaki else "")
        return full
