"""Changes the office makes of its own motion (職権記載, 職権消除: PIA 77, 81; 住基法第8条, 第34条) and the 国外転出
(出国), each with its own 異動事由, flowing on to the CS and beyond like every 異動."""
from __future__ import annotations

import datetime as dt

from nodes import rules
from nodes.clock import office_today
from nodes.guard import current_call
from nodes.kizon.counter import counter_change
from nodes.kizon.items import (MOVE_OUT_DAYS_AFTER, MOVE_OUT_DAYS_AHEAD, PERSON_ITEMS, REMOVED, head_of, mark,
                               next_entry, require_person_items, set_address, take_household, today_iso)
from nodes.kizon.parts import Changes, Records
from nodes.reasons import kizon as K
from protos import records_pb2

OFFICIAL_ROLES = {"official"}  # the operators the office lets make entries and removals of its own motion
ENTRY, REMOVAL, EMIGRATION = "職権記載", "職権消除", "国外転出"


def _survey(reason: str, reference: str) -> str:
    """The 実態調査 a 職権 change rests on, as the entry's 異動事由詳細."""
    if not reason.strip() or not reference.strip():
        raise K.OFFICIAL_SURVEY_REQUIRED("職権 rule (住基法第34条): a 職権記載 or 職権消除 names its reason and the "
                                         "実態調査 it rests on (survey_reference)")
    rules.check_text(reason, "職権の理由")
    rules.check_text(reference, "実態調査")
    return f"{reason} (実態調査 {reference})"


class Official:
    """職権記載, 職権消除 and 国外転出: made by the change engine like a 届出, the first two by the role official."""

    def __init__(self, register: Records, changes: Changes):
        self.register = register
        self.changes = changes

    @counter_change()
    async def record(self, request):
        """職権記載: a person the office finds living here with no 住民票 is entered, with new numbers."""
        current_call().require_role(OFFICIAL_ROLES, "職権記載 rule", by=K.OFFICIAL_ROLE)
        detail = _survey(request.reason, request.survey_reference)
        person = request.person
        rules.refuse_set(person, {f.name for f in person.DESCRIPTOR.fields} - PERSON_ITEMS, "職権記載 rule")
        require_person_items(person)
        rules.require_past_date(person.birth_date, "生年月日")
        since = rules.require_past_date(request.resident_since, "住民となった年月日", not_before=dt.date(1967, 11, 10))
        address = self.register.address(request.address)
        async with self.changes.locked(request.household_number or "new"):
            code, number = await self.changes.new_numbers()
            record = records_pb2.ResidentRecord()
            record.CopyFrom(person)
            record.resident_code, record.individual_number = code, number
            if request.household_number:
                take_household(record, head_of(self.register.household(request.household_number)))
                if not person.relationship:
                    raise K.HOUSEHOLD_RELATIONSHIP_REQUIRED("職権記載 rule: 続柄 is required to join a household")
            else:
                record.household_number = self.register.new_household_number()
                record.relationship = "世帯主"
                record.householder_name = record.name_kanji
                set_address(record, address)
            record.resident_since = record.address_since = since.isoformat()
            today = today_iso()
            mark(record, ENTRY, since.isoformat(), today, detail=detail)
            return await self.changes.commit([record], new={code}, delivery={code})

    @counter_change()
    async def remove(self, request):
        """職権消除: the 住民票 of a person the office finds no longer living here becomes a 除票."""
        current_call().require_role(OFFICIAL_ROLES, "職権消除 rule", by=K.OFFICIAL_ROLE)
        detail = _survey(request.reason, request.survey_reference)
        found = rules.require_past_date(request.found_date, "実態調査の日")
        person = self.register.current(request.resident_code)
        async with self.changes.locked(person.household_number):
            record = next_entry(self.register.current(request.resident_code))
            record.status = REMOVED
            record.removal_reason, record.removal_date = REMOVAL, found.isoformat()
            mark(record, REMOVAL, found.isoformat(), today_iso(), detail=detail)
            return await self.changes.commit([record])

    @counter_change(EMIGRATION)
    async def emigrate(self, request):
        """国外転出: the 住民票 becomes a 除票 on the planned day; no 転出証明書 (no municipality will take it)."""
        country = request.destination_country.strip()
        if not country:
            raise K.EMIGRATION_DESTINATION("国外転出 rule: the 届出 names the country the person moves to")
        rules.check_text(country, "転出先の国")
        planned = rules.require_date(request.planned_date, "転出予定年月日")
        today = office_today()
        if not today - dt.timedelta(days=MOVE_OUT_DAYS_AFTER) <= planned <= today + dt.timedelta(days=MOVE_OUT_DAYS_AHEAD):
            raise K.EMIGRATION_DESTINATION(f"国外転出 rule (住基法第24条): the planned date {planned} must lie between "
                                           f"{MOVE_OUT_DAYS_AFTER} days ago and {MOVE_OUT_DAYS_AHEAD} days ahead of "
                                           f"today ({today})")
        notified = self.changes.notified(request)
        person = self.register.current(request.resident_code)
        async with self.changes.locked(person.household_number):
            record = next_entry(self.register.current(request.resident_code))
            record.status = REMOVED
            record.removal_reason, record.removal_date = EMIGRATION, planned.isoformat()
            record.move_out_destination_planned = country
            record.planned_move_out_date = planned.isoformat()
            mark(record, EMIGRATION, planned.isoformat(), notified)
            return await self.changes.commit([record])
