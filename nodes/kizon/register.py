"""Reading the register: 住民票, history, households, bulk output, and the lookups counter operations share."""
from __future__ import annotations

import time

from nodes import audit, rules
from nodes.kizon.items import BULK_OUTPUT_LIMIT, BULK_WINDOW_HOURS, CURRENT
from nodes.guard import APPROVAL_KEY, current_call
from nodes.sessions import TokenError, verify
from nodes.store import next_counter
from nodes.weaken import weakened
from protos import kizon_pb2, records_pb2
from nodes.towns import town

class RegisterMixin:
    """照会 and export of the register."""

    # -- reading the register ---------------------------------------------------------------------
    def _person(self, resident_code: str) -> records_pb2.ResidentRecord:
        rules.require_resident_code(resident_code)
        found = self.rt.store.one("SELECT record FROM residents WHERE resident_code=?", (resident_code,))
        if found is None:
            raise rules.not_found(f"照会: no 住民票 with 住民票コード {resident_code} in {self.municipality}")
        return records_pb2.ResidentRecord.FromString(found[0])

    def _current(self, resident_code: str) -> records_pb2.ResidentRecord:
        record = self._person(resident_code)
        if record.status != CURRENT:
            raise rules.precondition(f"除票 rule: {resident_code} is no longer a resident of {self.municipality} "
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
            raise rules.not_found(f"世帯 rule: no household {household} with current members in {self.municipality}")
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
        return self._shown(self._person(request.resident_code))

    async def GetHistory(self, request, context):
        """Every history entry (個人履歴番号) of a person, oldest first."""
        audit.set_subject(request.resident_code)
        person = self._person(request.resident_code)
        rows = self.rt.store.db.execute("SELECT record FROM history WHERE atena_number=? ORDER BY history_number",
                                        (person.atena_number,)).fetchall()
        return kizon_pb2.HistoryReply(entries=[self._shown(records_pb2.ResidentRecord.FromString(r[0])) for r in rows])

    async def GetHousehold(self, request, context):
        """The current members of a household."""
        audit.set_subject(request.household_number)
        return kizon_pb2.HistoryReply(entries=[self._shown(r) for r in self._household(request.household_number)])

    async def ExportResidents(self, request, context):
        """Bulk output: an operator's records over BULK_WINDOW_HOURS add up (split exports count together);
        beyond BULK_OUTPUT_LIMIT only with a manager's approval for this operator, terminal, purpose and count."""
        call = current_call()
        where, params = ["1=1"], []
        if request.town_code:
            where.append("town_code=?"), params.append(request.town_code)
        if not request.include_removed:
            where.append("status=?"), params.append(CURRENT)
        count = self.rt.store.scalar(f"SELECT COUNT(*) FROM residents WHERE {' AND '.join(where)}", tuple(params), 0)
        since = time.time() - BULK_WINDOW_HOURS * 3600
        earlier = self.rt.store.scalar("SELECT SUM(records) FROM outputs WHERE operator=? AND at>? AND approval_id IS NULL",
                                       (call.operator, since), 0)
        audit.set_subject(f"export:{count}")
        approval = None
        if earlier + count > BULK_OUTPUT_LIMIT and not weakened("bulk-output"):
            approval = self._spend_approval(call, request, count, earlier)
            audit.set_subject(f"export:{count} approval {approval[0]} by {approval[1]} for {call.operator}")
        with self.rt.store.transaction() as db:
            db.execute("INSERT INTO outputs VALUES (?,?,?,?)", (call.operator, time.time(), count,
                                                                approval[0] if approval else None))
        cursor = self.rt.store.db.execute(f"SELECT record FROM residents WHERE {' AND '.join(where)} ORDER BY atena_number",
                                          tuple(params))
        for (blob,) in cursor:
            yield self._shown(records_pb2.ResidentRecord.FromString(blob))

    def _spend_approval(self, call, request, count: int, earlier: int) -> tuple[str, str]:
        """Check the approval for this output and use it up: (approval id, approver)."""
        token = call.metadata.get(APPROVAL_KEY)
        rule = (f"bulk output rule (PIA Ⅲ(2)3): {count} records ({earlier + count} by {call.operator} in "
                f"{BULK_WINDOW_HOURS} h) exceed {BULK_OUTPUT_LIMIT}")
        if not token:
            raise rules.denied(f"{rule}; a manager's approval ({APPROVAL_KEY}) is required")
        try:
            claim = verify(self.rt.session_keys[self.municipality], token, "approval")
        except TokenError as exc:
            raise rules.denied(f"{rule}; the approval is not valid: {exc}") from None
        found = self.rt.store.one("SELECT approver, requester, terminal, purpose, max_records, used_at FROM approvals "
                                  "WHERE id=?", (claim.get("id"),))
        if claim.get("muni") != self.municipality or found is None:
            raise rules.denied(f"{rule}; the approval is not one of {self.municipality}")
        approver, requester, terminal, purpose, max_records, used_at = found
        if used_at is not None:
            raise rules.denied(f"{rule}; approval {claim['id']} was used already (one output each)")
        if approver == call.operator:
            raise rules.denied(f"{rule}; an operator may not approve their own output")
        if (requester, terminal) != (call.operator, call.terminal):
            raise rules.denied(f"{rule}; approval {claim['id']} is for {requester} at {terminal}")
        if purpose != request.purpose:
            raise rules.denied(f"{rule}; approval {claim['id']} is for the purpose {purpose!r}")
        if count > max_records:
            raise rules.denied(f"{rule}; approval {claim['id']} covers {max_records} records")
        with self.rt.store.transaction() as db:
            spent = db.execute("UPDATE approvals SET used_at=? WHERE id=? AND used_at IS NULL",
                               (time.time(), claim["id"])).rowcount
        if not spent:
            raise rules.denied(f"{rule}; approval {claim['id']} was used already (one output each)")
        return claim["id"], approver

    def _existing(self, resident_code: str) -> records_pb2.ResidentRecord | None:
        """A person's record if they were ever registered here; a current resident may not move in."""
        found = self.rt.store.one("SELECT record FROM residents WHERE resident_code=?", (resident_code,))
        if found is None:
            return None
        record = records_pb2.ResidentRecord.FromString(found[0])
        if record.status == CURRENT:
            raise rules.precondition(f"転入 rule (PIA Ⅲ(2)5): {resident_code} is already a resident of {self.municipality}")
        return record

    def _new_household_number(self) -> str:
        return f"{next_counter(self.rt.store.db, 'household_number'):010d}"

    def _address(self, address) -> records_pb2.Address:
        """An address on this municipality's 町字 list, with its full text and postal code."""
        place = town(self.municipality, address.town_code)
        if place is None:
            raise rules.invalid(f"町字 rule: {address.town_code!r} is not a 町字 of {self.municipality}")
        rules.require_text(address.address_line, "番地")
        full = records_pb2.Address()
        full.CopyFrom(address)
        full.postal_code = address.postal_code or place.postal_code
        full.address = f"{self.place_name}{place.name}{address.address_line}" + (f" {address.katagaki}" if address.katagaki else "")
        return full
