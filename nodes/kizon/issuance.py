"""Certificates (交付, 広域交付, コンビニ交付) and the 個人番号カード steps at the counter."""
from __future__ import annotations

import re

from nodes import audit, certificates, rules
from nodes.reasons import kizon as K
from nodes.clock import KIOSK_HOURS, SIMULATED_KEY, kiosk_clock, simulated
from nodes.kizon import requesters
from nodes.kizon.changes import cs_call
from nodes.kizon.items import CURRENT, REMOVED
from nodes.kizon.parts import Disclosure, Gate, Records
from nodes.guard import current_call
from protos import card_pb2, conbini_pb2, cs_pb2, kizon_pb2, records_pb2

CONBINI = "conbini"  # the outbox target of the JPKI information for this municipality's コンビニ交付システム


class Issuance:
    """証明書の交付 (窓口, 広域交付, コンビニ交付) and the card steps, each recorded in the 交付履歴."""

    def __init__(self, runtime, municipality: str, place_name: str, cs, register: Records, disclosures: Disclosure,
                 gate: Gate):
        self.rt = runtime
        self.municipality = municipality
        self.place_name = place_name
        self.cs = cs  # this municipality's 市町村CS (a CommunicationServerStub)
        self.register = register
        self.disclosures = disclosures
        self.gate = gate

    # -- certificates -------------------------------------------------------------------------------
    async def certificate(self, request):
        """住民票の写し, 記載事項証明書, 転出証明書, 除票の写し at the counter; 広域交付 with the card."""
        self.gate.refuse_if_frozen()  # it writes the 交付履歴
        call = current_call()
        audit.set_subject(request.resident_code or request.card_number)
        if request.kind not in certificates.TITLES:
            raise K.CERTIFICATE_KIND_UNKNOWN("証明書 rule: unknown kind of certificate")
        items = certificates.items_for(request, certificates.RESIDENT_FIELDS)
        if request.include_individual_number and not self.rt.may_see_number(call):
            raise K.INDIVIDUAL_NUMBER_PRINT_PERMISSION("個人番号 rule: this operator or terminal may not print the 個人番号")
        if request.home_municipality_code and request.home_municipality_code != self.municipality:
            return await self._wide_area(request, call, items)
        requesters.require(request.requester, "証明書")
        person = self.register.person(request.resident_code)
        removed = person.status == REMOVED
        if request.kind in (kizon_pb2.REMOVED_COPY, kizon_pb2.MOVE_OUT) and not removed:
            raise K.CERTIFICATE_REMOVED_ONLY(f"証明書 rule: {request.resident_code} is a current resident: no 除票 to certify")
        if request.kind == kizon_pb2.MOVE_OUT and person.removal_reason != "転出":
            raise K.MOVE_OUT_CERTIFICATE_FOR_MOVE_OUT("転出証明書 rule: only for a 転出")
        if request.kind not in (kizon_pb2.REMOVED_COPY, kizon_pb2.MOVE_OUT) and removed:
            raise K.CERTIFICATE_CURRENT_ONLY(f"除票 rule: {request.resident_code} is no longer a resident; ask for a "
                                             "除票の写し")
        household = request.kind == kizon_pb2.HOUSEHOLD_COPY
        requesters.check_relation(request.requester, person, self.register.members, "証明書")
        items = requesters.certificate_scope(request.requester, items, stated=request.kind == kizon_pb2.STATED_ITEMS,
                                             household=household, number=request.include_individual_number)
        people = self.register.members(person.household_number) if household else [person]
        return self._issue(request.kind, request.resident_code, people, items, f"{self.place_name} 窓口", call.terminal,
                           call.operator, request.justification, request.requester)

    async def _wide_area(self, request, call, items):
        """広域交付: the 住民票の写し of a resident of another municipality, who proves themself with the card."""
        if request.kind != kizon_pb2.RESIDENT_COPY or request.include_individual_number:
            raise K.WIDE_AREA_RESIDENT_COPY_ONLY("広域交付 rule: a 住民票の写し (個人) only, without the 個人番号")
        if request.HasField("requester") and request.requester.kind != records_pb2.REQUESTER_SELF:
            raise K.REQUESTER_NOT_SELF("広域交付 rule: the card holder asks for their own 写し (本人)")
        info = await cs_call(self.rt, self.cs.WideAreaLookup, cs_pb2.WideAreaRequest(
            home_municipality_code=request.home_municipality_code, card_number=request.card_number, pin=request.pin))
        audit.set_subject(info.resident_code)
        items = [i for i in items if i in set(f.name for f in info.DESCRIPTOR.fields)]
        document = request.requester.identity_document or "個人番号カード"
        if document not in requesters.DOCUMENTS:
            raise K.REQUESTER_DOCUMENT(f"本人確認 rule: {document[:40]!r} is not a document the counter accepts")
        asked_by = records_pb2.Requester(kind=records_pb2.REQUESTER_SELF, resident_code=info.resident_code,
                                         name=info.name_kanji, identity_document=document)
        return self._issue(request.kind, info.resident_code, [info], items, f"{self.place_name} 窓口（広域交付）", call.terminal,
                           call.operator, request.justification, asked_by)

    def _issue(self, kind, resident_code, people, items, place, terminal, operator, justification, requester):
        """Record the issuance in the 交付履歴, naming who asked, and render the certificate."""
        audit.set_subject(f"{audit.subject_var.get() or resident_code}, asked by {requesters.label(requester)}")
        if operator:  # a certificate at the counter prints people's data for the operator (a kiosk's: the resident's own)
            self.disclosures.read(current_call(), [p.resident_code for p in people])
        with self.rt.store.transaction() as db:
            number, issued_at = certificates.record_issuance(db, self.municipality, kind, resident_code, place, terminal,
                                                             operator, items, justification, requester)
        text, page = certificates.render(kind, number, issued_at, place, people, items)
        return kizon_pb2.Certificate(issue_number=number, kind=kind, issued_at=issued_at, place=place, items_printed=items,
                                     text=text, html=page)

    def issuance_history(self, request):
        """交付履歴: every certificate issued here about a person."""
        audit.set_subject(request.resident_code)
        rules.require_resident_code(request.resident_code)
        found = certificates.history(self.rt.store.db, request.resident_code)
        self.disclosures.read(current_call(), [request.resident_code] if found.records else [])
        return found

    async def kiosk_certificate(self, request):
        """コンビニ交付: during its hours, to the holder of a card and PIN who lives here."""
        self.gate.refuse_if_frozen()
        call = current_call()
        audit.set_subject(request.card_number)
        if call.peer.identity.kind != "kiosk":
            raise K.KIOSK_CALLER("コンビニ交付 rule: only a kiosk front end issues at the kiosk")
        moment = simulated(call.metadata.get(SIMULATED_KEY))
        if moment is not None:  # judged by the scenario's clock: said in the audit trail
            audit.set_subject(f"{request.card_number} (simulated clock {moment.isoformat(timespec='minutes')})")
        self._kiosk_rules(kiosk_clock(moment), request.kind)
        info = await cs_call(self.rt, self.cs.VerifyByCard, cs_pb2.CardIdentityCheck(card_number=request.card_number, pin=request.pin))
        audit.set_subject(info.resident_code + (f" (simulated clock {moment.isoformat(timespec='minutes')})"
                                                 if moment is not None else ""))
        return self._kiosk_issue(info.resident_code, request.kind, call.peer.identity.terminal)

    async def convenience_certificate(self, request):
        """コンビニ交付 through the 証明書交付センター: the コンビニ交付システム asks for the certificate of the resident
        the centre authenticated with the card's 利用者証明用電子証明書; the kiosk's rules as at a kiosk of card and PIN."""
        self.gate.refuse_if_frozen()
        audit.set_subject(request.resident_code)
        if current_call().peer.identity.kind != "conbini":
            raise K.KIOSK_CALLER("コンビニ交付 rule: only the コンビニ交付システム asks for the centre's issuance")
        rules.require_resident_code(request.resident_code)
        self._kiosk_rules(kiosk_clock(None), request.kind)  # (the office's clock: the centre's call carries no other)
        kiosk = request.kiosk if re.fullmatch(r"[A-Za-z0-9_-]{1,32}", request.kiosk) else "?"
        return self._kiosk_issue(request.resident_code, request.kind, kiosk)

    @staticmethod
    def _kiosk_rules(now, kind) -> None:
        if not KIOSK_HOURS[0] <= now < KIOSK_HOURS[1]:
            raise K.KIOSK_HOURS(f"コンビニ交付 rule: the service runs 06:30–23:00 (it is {now.strftime('%H:%M')})")
        if kind not in (kizon_pb2.RESIDENT_COPY, kizon_pb2.HOUSEHOLD_COPY):
            raise K.KIOSK_RESIDENT_COPY_ONLY("コンビニ交付 rule: 住民票の写し (個人 or 世帯) only")

    def _kiosk_issue(self, resident_code: str, kind, kiosk: str):
        """The 住民票の写し of a current resident, asked for by themself (本人) at a kiosk, in the 交付履歴."""
        person = self.register.person(resident_code)
        if person.status != CURRENT:
            raise K.KIOSK_RESIDENT_ONLY(f"コンビニ交付 rule: the card holder is not a resident of {self.municipality}")
        people = self.register.members(person.household_number) if kind == kizon_pb2.HOUSEHOLD_COPY else [person]
        holder = records_pb2.Requester(kind=records_pb2.REQUESTER_SELF, resident_code=person.resident_code,
                                       name=person.name_kanji, identity_document="個人番号カード")
        return self._issue(kind, person.resident_code, people, list(certificates.STANDARD_ITEMS),
                           f"コンビニ交付 ({kiosk})", kiosk, "", "", holder)

    # -- the 個人番号カード -------------------------------------------------------------------------------
    async def change_card(self, request):
        """A step of the card's lifecycle at the counter, through the CS to the card system."""
        self.gate.refuse_if_frozen()
        audit.set_subject(request.resident_code)
        rules.refuse_set(request, {"municipality_code", "former_resident_code"}, "card rule")
        person = self.register.person(request.resident_code)
        if request.action in (card_pb2.APPLY, card_pb2.ISSUE) and person.status != CURRENT:
            raise K.CARD_CURRENT_RESIDENT(f"card rule: {request.resident_code} is not a resident of {self.municipality}")
        asked = card_pb2.CardRequest()
        asked.CopyFrom(request)
        asked.municipality_code = self.municipality
        status = await cs_call(self.rt, self.cs.ChangeCard, asked)
        holds = status.state in ("issued", "suspended")
        if holds != person.card_issued:
            person.card_issued = holds  # 交付状況 follows the card; not a change of the 住民票's items
            self.register.replace(person)
        outbox = self.rt.outbox
        if status.user_certificate_serial and outbox is not None and CONBINI in outbox.targets:
            # JPKI情報: the new シリアル番号 for the コンビニ交付システム, durable from this commit on (its own 住民票コード,
            # not the card system's word for whose card it is)
            with self.rt.store.transaction() as db:
                outbox.put(db, CONBINI, conbini_pb2.UserSerial(serial=status.user_certificate_serial,
                                                               resident_code=person.resident_code))
            outbox.wake(CONBINI)
        return status
