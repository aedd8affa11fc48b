"""The counter operations (異動): 出生, 転入, 転居, 転出, 死亡, 職権修正, 住民票コード変更, 世帯 changes."""
from __future__ import annotations

import datetime as dt
import functools

from nodes import audit, clock, rules
from nodes.reasons import common as C
from nodes.reasons import kizon as K
from nodes.clock import office_today
from nodes.kizon import requesters
from nodes.kizon.changes import cs_call
from nodes.kizon.items import (BIRTH_ITEMS, CORRECTABLE, MOVE_IN_DAYS, MOVE_IN_ITEMS, MOVE_OUT_DAYS_AFTER,
                               MOVE_OUT_DAYS_AHEAD, MOVE_WITHIN_DAYS, NOT_CARRIED_OVER, PERSON_ITEMS, REMOVED, head_of,
                               mark, next_entry, require_person_items, set_address, take_household, today_iso)
from nodes.kizon.parts import Changes, Records
from nodes.store import next_counter
from protos import cs_pb2, identity_pb2, kizon_pb2, records_pb2


def counter_change(notice: str = ""):
    """A counter change (異動), served by the change engine: answered once per scoped 依頼管理番号, refused when
    the id is reused for another request, held while earlier changes are being settled with the CS. A 届出 (notice:
    its 異動事由) names its 届出人 with the counter's 本人確認, checked here and recorded on every entry it writes;
    a change the office makes of its own motion (職権) has none."""
    def decorate(handler):
        @functools.wraps(handler)
        async def change(self, request):
            """The change, made once (handler within the change engine)."""
            if notice:
                requesters.require(request.notifier, f"{notice}届", notified=notice)
            return await self.changes.serve(request, functools.partial(handler, self, request),
                                            notifier=request.notifier if notice else None)
        return change
    return decorate


class Counter:
    """異動 at the counter: each 届出 reads the register and is made by the change engine."""

    def __init__(self, runtime, municipality: str, cs, register: Records, changes: Changes):
        self.rt = runtime
        self.municipality = municipality
        self.cs = cs  # this municipality's 市町村CS (a CommunicationServerStub)
        self.register = register
        self.changes = changes

    # -- the counter operations ---------------------------------------------------------------
    @counter_change("出生")
    async def birth(self, request):
        """出生: a new 住民票 in an existing household, with a 住民票コード from the pool and a new 個人番号."""
        child = request.child
        rules.refuse_set(child, {f.name for f in child.DESCRIPTOR.fields} - BIRTH_ITEMS, "出生 rule")
        require_person_items(child)
        notified = self.changes.notified(request)
        rules.require_past_date(child.birth_date, "生年月日", not_before=office_today() - dt.timedelta(days=366))
        async with self.changes.locked(request.household_number):
            members = self.register.household(request.household_number)
            head = head_of(members)
            code, number = await self.changes.new_numbers()
            record = records_pb2.ResidentRecord()
            record.CopyFrom(child)
            take_household(record, head)
            record.relationship = child.relationship or "子"
            record.resident_code, record.individual_number = code, number
            record.resident_type = head.resident_type
            if head.resident_type != "外国人住民":
                record.honseki, record.hittousha = head.honseki, head.hittousha
            record.resident_since = record.address_since = child.birth_date
            mark(record, "出生", child.birth_date, notified)
            return await self.changes.commit([record], new={code}, delivery={code})

    @counter_change("転入")
    async def move_in(self, request):
        """転入: with a 転出証明書, by 特例 with the card, or from abroad."""
        person = request.person
        notified = self.changes.notified(request)
        moved_in = rules.require_past_date(request.move_in_date, "転入年月日", window_days=MOVE_IN_DAYS,
                                           rule_name="転入 rule (住基法第22条)")
        address = self.register.address(request.address)
        if request.from_abroad:
            if person.resident_code or person.individual_number:
                await self._refuse_known_person(person)
            rules.refuse_set(person, {f.name for f in person.DESCRIPTOR.fields} - PERSON_ITEMS, "国外転入 rule")
            require_person_items(person)
            rules.require_past_date(person.birth_date, "生年月日")
        else:
            rules.require_resident_code(person.resident_code)
            rules.refuse_set(person, {f.name for f in person.DESCRIPTOR.fields} - MOVE_IN_ITEMS, "転入 rule",
                             "taken from the 転出証明書 (or set by the office)", by=K.MOVE_IN_ITEMS_FROM_CERTIFICATE)
        async with self.changes.locked(request.household_number or person.resident_code or "new"):
            previous = None
            if request.from_abroad:
                code, number = await self.changes.new_numbers()
                source = person
            else:
                previous = self.register.existing(person.resident_code)
                if request.special:
                    asked = kizon_pb2.MoveInRequest()
                    asked.CopyFrom(request)
                    asked.notification_date = notified
                    certificate = await cs_call(self.rt, self.cs.TakeMoveOutCertificate, asked)
                elif request.HasField("certificate"):
                    certificate = request.certificate
                    self._check_paper_certificate(certificate, person)
                else:
                    raise K.MOVE_IN_CERTIFICATE_REQUIRED("転入 rule: a 転出証明書 is required (or 特例転入 with the card)")
                source = records_pb2.ResidentRecord()
                source.CopyFrom(certificate.person)
                require_person_items(source)
                code = source.resident_code
                number = await self._national_number(code, source.individual_number)
            record = records_pb2.ResidentRecord()
            record.CopyFrom(source)
            for name in NOT_CARRIED_OVER:
                record.ClearField(name)
            record.resident_code, record.individual_number = code, number
            if request.household_number:
                head = head_of(self.register.household(request.household_number))
                take_household(record, head)
                if not person.relationship:
                    raise K.HOUSEHOLD_RELATIONSHIP_REQUIRED("転入 rule: 続柄 is required to join a household")
                record.relationship = person.relationship
            else:
                record.household_number = self.register.new_household_number()
                record.relationship = "世帯主"
                record.householder_name = record.name_kanji
                set_address(record, address)
            if not request.from_abroad:
                record.previous_municipality_code = certificate.issuing_municipality_code
                record.previous_address = certificate.person.address
            record.resident_since = record.address_since = moved_in.isoformat()
            if previous is not None:  # a former resident coming back: the same person, the next history entry
                record.atena_number = previous.atena_number
                record.history_number = previous.history_number
            mark(record, "国外転入" if request.from_abroad else "転入", moved_in.isoformat(), notified)
            extras = identity_pb2.IdentityUpdate(special_move_in=request.special)
            if not request.from_abroad:
                extras.move_in_notice.CopyFrom(identity_pb2.MoveInNotice(
                    resident_code=code, from_municipality_code=self.municipality,
                    to_municipality_code=certificate.issuing_municipality_code, new_address=record.address,
                    move_in_date=moved_in.isoformat(), notified_at=notified))
            return await self.changes.commit([record], new={code}, delivery={code} if request.from_abroad else set(),
                                      extras={code: extras})

    def _check_paper_certificate(self, certificate, person) -> None:
        """A paper 転出証明書 as typed at the counter: the person's items, codes and dates must hold up."""
        if certificate.person.resident_code != person.resident_code:
            raise K.MOVE_IN_CERTIFICATE_OTHER_PERSON("転入 rule: the 転出証明書 is for another person")
        rules.require_municipality_code(certificate.issuing_municipality_code, "転出証明書 rule: 発行市町村コード")
        if certificate.issuing_municipality_code == self.municipality:
            raise K.MOVE_WITHIN_IS_TENKYO("転入 rule: a 転出証明書 of this municipality is a 転居, not a 転入")
        if certificate.person.individual_number:
            rules.require_individual_number(certificate.person.individual_number)
        rules.require_past_date(certificate.person.birth_date, "生年月日")
        if certificate.planned_move_out_date:
            rules.require_date(certificate.planned_move_out_date, "転出予定年月日")

    async def _national_number(self, code: str, typed: str) -> str:
        """The 個人番号 of a person moving in: the one on the 転出証明書, which must be the one national holds (national
        says whether it is, never what it is), or a new one when national has issued none. The dead stay removed;
        a person still current elsewhere is left to the CS, which waits for the 転出 and refuses whatever number
        was typed (so the answer says nothing of the number)."""
        residence = await cs_call(self.rt, self.cs.CheckResidence, identity_pb2.ResidenceQuery(
            resident_code=code, individual_number=typed, municipality_code=self.municipality))
        if residence.deceased_in:
            raise C.REMOVED_STAY_REMOVED(f"除票 rule (removed people stay removed): {code} was recorded as dead in "
                                         f"{', '.join(residence.deceased_in)}")
        if not residence.known:
            number = (await self.changes.assign_numbers([code]))[code]
            if typed and typed != number:
                raise C.INDIVIDUAL_NUMBER_BY_NATIONAL(f"個人番号 rule: the 個人番号 on the 転出証明書 of {code} is not "
                                                      "the one national holds")
            return number
        if not typed:
            raise K.MOVE_IN_INDIVIDUAL_NUMBER_REQUIRED(f"転入 rule: the 個人番号 on the 転出証明書 of {code} is required")
        if not residence.current_in and not residence.number_matches:
            raise C.INDIVIDUAL_NUMBER_BY_NATIONAL(f"個人番号 rule: the 個人番号 on the 転出証明書 of {code} is not "
                                                  "the one national holds")
        return typed

    async def _refuse_known_person(self, person) -> None:
        """A 国外転入 is a new person: numbers that national knows make it a 転入; numbers it does not are invented."""
        if person.resident_code:
            rules.require_resident_code(person.resident_code)
            residence = await cs_call(self.rt, self.cs.CheckResidence, identity_pb2.ResidenceQuery(
                resident_code=person.resident_code, municipality_code=self.municipality))
            if residence.known:
                raise K.ABROAD_MOVE_IN_NEW_PERSON(f"国外転入 rule: {person.resident_code} already has a 住民票コード and "
                                                  "個人番号; record a 転入 with the 転出証明書, not a new person")
        raise C.SET_BY_SERVER("国外転入 rule: resident_code, individual_number are set by the office, not by the request")

    @counter_change("転居")
    async def move_within(self, request):
        """転居: a new address within the city (the whole household if asked)."""
        address = self.register.address(request.address)
        notified = self.changes.notified(request)
        moved = rules.require_past_date(request.move_date, "転居年月日", window_days=MOVE_WITHIN_DAYS,
                                        rule_name="転居 rule (住基法第23条)")
        person = self.register.current(request.resident_code)
        async with self.changes.locked(person.household_number):
            person = self.register.current(request.resident_code)
            people = self.register.members(person.household_number) if request.whole_household else [person]
            changed = []
            for member in people:
                record = next_entry(member)
                set_address(record, address)
                record.address_since = moved.isoformat()
                mark(record, "転居", moved.isoformat(), notified)
                changed.append(record)
            return await self.changes.commit(changed)

    @counter_change("転出")
    async def move_out(self, request):
        """転出 (or 特例転出 for a card holder): the 住民票 becomes a 除票; a 転出証明書 is issued."""
        planned = rules.require_date(request.planned_date, "転出予定年月日")
        today = office_today()
        if not today - dt.timedelta(days=MOVE_OUT_DAYS_AFTER) <= planned <= today + dt.timedelta(days=MOVE_OUT_DAYS_AHEAD):
            raise K.MOVE_OUT_DATE_WINDOW(f"転出 rule (住基法第24条): the planned date {planned} must lie between "
                                         f"{MOVE_OUT_DAYS_AFTER} days ago and {MOVE_OUT_DAYS_AHEAD} days ahead of today ({today})")
        notified = self.changes.notified(request)
        rules.require_text(request.destination_address, "転出先")
        if request.destination_municipality_code or request.special:
            rules.require_municipality_code(request.destination_municipality_code, "転出先市町村コード")
        if request.destination_municipality_code == self.municipality:
            raise K.MOVE_WITHIN_IS_TENKYO("転出 rule: a move within the municipality is a 転居")
        person = self.register.current(request.resident_code)
        if request.special and not person.card_issued:
            raise K.SPECIAL_MOVE_OUT_CARD_HOLDER("特例転出 rule: only a 個人番号カード holder may move out without a "
                                                 "転出証明書")
        async with self.changes.locked(person.household_number):
            person = self.register.current(request.resident_code)
            record = next_entry(person)
            record.status = REMOVED
            record.removal_reason, record.removal_date = "転出", planned.isoformat()
            record.move_out_destination_planned = request.destination_address
            record.planned_move_out_date = planned.isoformat()
            mark(record, "転出", planned.isoformat(), notified)
            certificate = identity_pb2.MoveOutCertificate(
                certificate_number=f"{self.municipality}-{next_counter(self.rt.store.db, 'certificate_number'):08d}",
                issuing_municipality_code=self.municipality, person=record, planned_move_out_date=planned.isoformat(),
                destination_address=request.destination_address,
                destination_municipality_code=request.destination_municipality_code, card_holder=person.card_issued,
                issued_at=clock.stamp())
            extras = identity_pb2.IdentityUpdate()
            if request.special:
                extras.move_out_certificate.CopyFrom(certificate)

            def with_certificate(change):
                """The reply: the change with its 転出証明書."""
                # The 転出証明書 carries the 住民票 as committed (its trail and 個人履歴番号 included).
                certificate.person.CopyFrom(change.records[0])
                return kizon_pb2.MoveOutReply(change=change, certificate=certificate)
            return await self.changes.commit([record], extras={record.resident_code: extras}, wrap=with_certificate)

    @counter_change("死亡")
    async def death(self, request):
        """死亡: the 住民票 becomes a 除票 (kept)."""
        notified = self.changes.notified(request)
        died = rules.require_past_date(request.death_date, "死亡年月日")
        person = self.register.current(request.resident_code)
        if died < rules.require_date(person.birth_date, "生年月日"):
            raise K.DEATH_AFTER_BIRTH(f"死亡年月日 rule: {died} is before the birth date {person.birth_date}")
        async with self.changes.locked(person.household_number):
            record = next_entry(self.register.current(request.resident_code))
            record.status = REMOVED
            record.removal_reason, record.removal_date = "死亡", died.isoformat()
            mark(record, "死亡", died.isoformat(), notified)
            return await self.changes.commit([record])

    @counter_change()
    async def correct(self, request):
        """職権修正: correct items of a 住民票, never its numbers or keys."""
        rules.require_text(request.reason, "修正理由")
        wanted = request.corrected
        person = self.register.person(wanted.resident_code)
        touched = [f.name for f, _ in wanted.ListFields() if f.name not in ("resident_code",)]
        forbidden = sorted(set(touched) - CORRECTABLE)
        if forbidden:
            raise K.CORRECTION_ITEMS(f"職権修正 rule: {', '.join(forbidden)} cannot be corrected this way")
        if not touched:
            raise K.CORRECTION_EMPTY("職権修正 rule: nothing to correct")
        if "birth_date" in touched:
            rules.require_past_date(wanted.birth_date, "生年月日")
        async with self.changes.locked(person.household_number):
            record = next_entry(self.register.person(wanted.resident_code))
            for name in touched:
                setattr(record, name, getattr(wanted, name))
            require_person_items(record)
            mark(record, "職権修正", today_iso(), today_iso(), detail=request.reason)
            return await self.changes.commit([record])

    async def offer_resident_codes(self, request):
        """住民票コード変更請求, first step: candidates offered by national through the CS."""
        audit.set_subject(request.resident_code)
        self.register.current(request.resident_code)
        reply = await cs_call(self.rt, self.cs.OfferResidentCodes,
                              cs_pb2.CodeOfferRequest(resident_code=request.resident_code, count=3))
        return kizon_pb2.ResidentCodeOffer(offer_id=request.resident_code, candidates=reply.candidates)

    @counter_change("住民票コード変更")
    async def change_resident_code(self, request):
        """住民票コード変更請求, second step: the person's choice among the offered codes."""
        rules.require_resident_code(request.chosen)
        person = self.register.current(request.resident_code)
        async with self.changes.locked(person.household_number):
            record = next_entry(self.register.current(request.resident_code))
            record.resident_code = request.chosen
            mark(record, "住民票コード変更", today_iso(), today_iso())
            return await self.changes.commit([record], former={request.chosen: request.resident_code})

    @counter_change("世帯分離")
    async def split_household(self, request):
        """世帯分離: a member leaves to head a household of their own at the same address."""
        notified = self.changes.notified(request)
        person = self.register.current(request.resident_code)
        async with self.changes.locked(person.household_number):
            person = self.register.current(request.resident_code)
            if len(self.register.members(person.household_number)) < 2 or person.relationship == "世帯主":
                raise K.HOUSEHOLD_SPLIT_MEMBER("世帯分離 rule: a member other than the 世帯主 of a household of two or more")
            record = next_entry(person)
            record.household_number = self.register.new_household_number()
            record.relationship, record.householder_name = "世帯主", record.name_kanji
            mark(record, "世帯分離", today_iso(), notified)
            return await self.changes.commit([record])

    @counter_change("世帯合併")
    async def merge_household(self, request):
        """世帯合併: the members of one household join another at the same address."""
        notified = self.changes.notified(request)
        if request.from_household == request.into_household:
            raise K.HOUSEHOLD_MERGE_TWO("世帯合併 rule: two different households are needed")
        async with self.changes.locked(request.from_household, request.into_household):
            leaving = self.register.household(request.from_household)
            staying = self.register.household(request.into_household)
            head = head_of(staying)
            if leaving[0].address != head.address:
                raise K.HOUSEHOLD_MERGE_SAME_ADDRESS("世帯合併 rule: households merge only at the same address")
            changed = []
            for member in leaving:
                record = next_entry(member)
                take_household(record, head)
                record.relationship = "同居人"
                mark(record, "世帯合併", today_iso(), notified)
                changed.append(record)
            return await self.changes.commit(changed)

    @counter_change("世帯主変更")
    async def change_householder(self, request):
        """世帯主変更: another member becomes the 世帯主."""
        notified = self.changes.notified(request)
        async with self.changes.locked(request.household_number):
            members = self.register.household(request.household_number)
            chosen = [m for m in members if m.resident_code == request.new_head_resident_code]
            if not chosen:
                raise K.HOUSEHOLDER_CHANGE_OTHER_MEMBER(f"世帯主変更 rule: {request.new_head_resident_code} is not a member "
                                                        "of the household")
            if chosen[0].relationship == "世帯主":
                raise K.HOUSEHOLDER_CHANGE_OTHER_MEMBER("世帯主変更 rule: that member is already the 世帯主")
            changed = []
            for member in members:
                record = next_entry(member)
                if member.resident_code == request.new_head_resident_code:
                    record.relationship = "世帯主"
                elif member.relationship == "世帯主":
                    record.relationship = "同居人"
                record.householder_name = chosen[0].name_kanji
                mark(record, "世帯主変更", today_iso(), notified)
                changed.append(record)
            return await self.changes.commit(changed)
