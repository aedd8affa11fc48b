"""The 届出 at the 戸籍 counter: 婚姻, 離婚, 転籍, 氏名の振り仮名, 死亡. Each changes the 戸籍 here and queues, in the same
transaction, the numbered notices kizon's 住基GW applies to the 住民票; a retried 届出 (the same x-request-id) is
answered with its first reply, never made twice."""
from __future__ import annotations

import datetime as dt
import re

from nodes import audit, rules
from nodes.clock import office_today
from nodes.once import SCHEMA as ONCE_SCHEMA, once
from nodes.reasons import common as C, koseki as F
from nodes.store import next_counter
from protos import koseki_pb2, records_pb2

SCHEMA = ONCE_SCHEMA + """
CREATE TABLE IF NOT EXISTS registers (          -- 戸籍, by the number the 戸籍 system gave it
    register_number TEXT PRIMARY KEY,
    record BLOB NOT NULL                        -- koseki_pb2.FamilyRegister
);
CREATE TABLE IF NOT EXISTS members (            -- the 戸籍 each person with a 住民票コード is 在籍 in now
    resident_code TEXT PRIMARY KEY,
    register_number TEXT NOT NULL
);
"""
IN_REGISTER, REMOVED = "在籍", "除籍"
KANA = re.compile(r"[ァ-ヶー・]+")  # a 振り仮名: katakana (戸籍法第13条第2項)
MARRIAGE_AGE = 18  # 民法第731条 (from 2022-04-01)


def full_name(member) -> str:
    """氏名 written 「氏 名」, as the 住民票 holds it."""
    return f"{member.surname} {member.given_name}"


def _age(birth: str, today: dt.date) -> int:
    born = dt.date.fromisoformat(birth)
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


class Registers:
    """The 戸籍 of this municipality and the 届出 that change them."""

    def __init__(self, runtime, outbox):
        self.rt = runtime
        self.outbox = outbox  # target "kizon": the 住基GW's ApplyFamilyRegisterNotices, in order (sequenced)
        place = runtime.topology.municipality(runtime.node.municipality)
        self.place_name = runtime.topology.prefectures.get(place.prefecture, "") + place.name

    # -- reading ---------------------------------------------------------------------------------------
    def register(self, db, number: str) -> koseki_pb2.FamilyRegister:
        """A 戸籍 by number (NOT_FOUND without one)."""
        row = db.execute("SELECT record FROM registers WHERE register_number=?", (number,)).fetchone()
        if row is None:
            raise C.RECORD_NOT_FOUND(f"戸籍 rule: no 戸籍 {number[:16]} here")
        return koseki_pb2.FamilyRegister.FromString(row[0])

    def of(self, db, resident_code: str) -> tuple[koseki_pb2.FamilyRegister, koseki_pb2.FamilyMember]:
        """The 戸籍 a person is 在籍 in here, and the person in it (KOSEKI_NOT_IN_REGISTER otherwise)."""
        rules.require_resident_code(resident_code)
        row = db.execute("SELECT register_number FROM members WHERE resident_code=?", (resident_code,)).fetchone()
        if row is not None:
            register = self.register(db, row[0])
            for member in register.members:
                if member.resident_code == resident_code and member.status == IN_REGISTER:
                    return register, member
        raise F.KOSEKI_NOT_IN_REGISTER(f"戸籍 rule: {resident_code} is 在籍 in no 戸籍 of {self.place_name}")

    def find(self, request: koseki_pb2.FamilyRegisterKey) -> koseki_pb2.FamilyRegister:
        """A 戸籍 by its number or by a person 在籍 in it."""
        db = self.rt.store.db
        if request.resident_code:
            audit.set_subject(request.resident_code)
            return self.of(db, request.resident_code)[0]
        rules.check_text(request.register_number, "戸籍番号")
        audit.set_subject(f"戸籍 {request.register_number}")
        return self.register(db, request.register_number)

    # -- the 届出 ------------------------------------------------------------------------------------------
    async def marry(self, request: koseki_pb2.MarriageRequest) -> koseki_pb2.FamilyRegisterReply:
        """婚姻届: the spouse who takes the other's 氏 enters the 筆頭者's 戸籍 (or both a new one at new_honseki)."""
        if request.husband == request.wife or request.surname_of not in ("husband", "wife"):
            raise F.MARRIAGE_PARTIES("婚姻 rule: a 婚姻届 names two different people and whose 氏 they take "
                                     "(surname_of: husband or wife)")

        def made(db, reply):
            husband_register, husband = self.of(db, request.husband)
            wife_register, wife = self.of(db, request.wife)
            if husband.sex != "1" or wife.sex != "2":
                raise F.MARRIAGE_PARTIES("婚姻 rule: the 婚姻届 names the 夫 (性別 1) and the 妻 (性別 2)")
            today = office_today()
            for member in (husband, wife):
                if _age(member.birth_date, today) < MARRIAGE_AGE:
                    raise F.MARRIAGE_AGE(f"婚姻 rule (民法第731条): {member.resident_code} is under {MARRIAGE_AGE}")
            for member in (husband, wife):
                if member.spouse:
                    raise F.MARRIAGE_ALREADY_MARRIED(f"婚姻 rule (民法第732条): {member.resident_code} is married")
            keeper_register, keeper, other_register, other = (
                (husband_register, husband, wife_register, wife) if request.surname_of == "husband" else
                (wife_register, wife, husband_register, husband))
            honseki = self._new_honseki(request.new_honseki, None) if request.new_honseki else ""
            if keeper.relationship == "筆頭者" and not honseki:
                target = keeper_register  # the spouse enters the 筆頭者's 戸籍
            else:
                target = self._new_register(db, honseki or keeper_register.honseki, full_name(keeper))
                keeper = self._move(db, keeper_register, keeper, target, "婚姻", "筆頭者")
                keeper_register = target
            other = self._move(db, other_register, other, target, "婚姻", "夫" if other.sex == "1" else "妻")
            other.surname_before_marriage, other.surname_kana_before_marriage = other.surname, other.surname_kana
            other.surname, other.surname_kana = keeper.surname, keeper.surname_kana
            keeper_in = next(m for m in target.members if m.resident_code == keeper.resident_code
                             and m.status == IN_REGISTER)
            keeper_in.spouse, other.spouse = other.resident_code, keeper.resident_code
            self._save(db, target)
            reply.registers.append(target)
            self._notify(db, reply, kind="婚姻", member=other, register=target, surname=other.surname,
                         surname_kana=other.surname_kana, relationship=other.relationship,
                         join_household_of=keeper.resident_code if request.same_household else "",
                         notifier=request.notifier)
            self._notify(db, reply, kind="婚姻", member=keeper_in, register=target, notifier=request.notifier)
        return self._once(request, made, (request.husband, request.wife))

    async def divorce(self, request: koseki_pb2.DivorceRequest) -> koseki_pb2.FamilyRegisterReply:
        """離婚届: the one who took the other's 氏 returns to the former 氏 (復氏) in a new 戸籍 of their own."""
        def made(db, reply):
            register, member = self.of(db, request.resident_code)
            if not member.spouse:
                raise F.DIVORCE_NOT_MARRIED(f"離婚 rule: {request.resident_code} is not married")
            if member.relationship == "筆頭者":
                raise F.DIVORCE_SURNAME_KEEPER("離婚 rule (民法第767条): the 筆頭者 kept the 氏; the 離婚届 names the "
                                               "spouse who returns to the former one")
            honseki = self._new_honseki(request.new_honseki, None) if request.new_honseki else register.honseki
            for other in register.members:
                if other.resident_code == member.spouse:
                    other.spouse = ""
            before = member.surname
            surname = member.surname_before_marriage or member.surname
            kana = member.surname_kana_before_marriage or member.surname_kana
            target = self._new_register(db, honseki, f"{surname} {member.given_name}")
            moved = self._move(db, register, member, target, "離婚", "筆頭者")
            moved.surname, moved.surname_kana, moved.spouse = surname, kana, ""
            moved.surname_before_marriage = moved.surname_kana_before_marriage = ""
            self._save(db, register)
            self._save(db, target)
            reply.registers.extend([register, target])
            self._notify(db, reply, kind="離婚", member=moved, register=target,
                         surname=surname if surname != before else "", surname_kana=kana if surname != before else "",
                         separate_household=request.separate_household, notifier=request.notifier)
        return self._once(request, made, (request.resident_code,))

    async def transfer(self, request: koseki_pb2.TransferRequest) -> koseki_pb2.FamilyRegisterReply:
        """転籍届 within the municipality: the 戸籍 gets a new 本籍; each member's 住民票 follows by notice."""
        def made(db, reply):
            rules.check_text(request.register_number, "戸籍番号")
            register = self.register(db, request.register_number)
            if not any(member.status == IN_REGISTER for member in register.members):
                raise F.KOSEKI_REGISTER_CLOSED(f"戸籍 rule: 戸籍 {request.register_number} is a 除籍簿 (no member is "
                                               "在籍): it takes no 転籍")
            register.honseki = self._new_honseki(request.new_honseki, register.honseki)
            self._save(db, register)
            reply.registers.append(register)
            for member in register.members:
                if member.status == IN_REGISTER and member.resident_code:
                    self._notify(db, reply, kind="転籍", member=member, register=register,
                                 notifier=request.notifier)
        return self._once(request, made, (f"戸籍 {request.register_number[:16]}",))

    async def reading(self, request: koseki_pb2.ReadingRequest) -> koseki_pb2.FamilyRegisterReply:
        """氏名の振り仮名の届出: katakana for the 氏 and the 名, recorded once."""
        for kana in (request.surname_kana, request.given_name_kana):
            if not KANA.fullmatch(kana or ""):
                raise F.READING_KATAKANA(f"振り仮名 rule: {kana[:32]!r} is not a katakana reading")

        def made(db, reply):
            register, member = self.of(db, request.resident_code)
            if member.reading_confirmed:
                raise F.READING_ONCE(f"振り仮名 rule: the reading of {request.resident_code} is already recorded")
            member.surname_kana, member.given_name_kana = request.surname_kana, request.given_name_kana
            member.reading_confirmed = True
            self._save(db, register)
            reply.registers.append(register)
            self._notify(db, reply, kind="振り仮名", member=member, register=register, surname_kana=member.surname_kana,
                         given_name_kana=member.given_name_kana, notifier=request.notifier)
        return self._once(request, made, (request.resident_code,))

    async def death(self, request: koseki_pb2.DeathNotification) -> koseki_pb2.FamilyRegisterReply:
        """死亡届: the person is 除籍; their spouse is no longer married; the 住民票 is removed by notice."""
        def made(db, reply):
            register, member = self.of(db, request.resident_code)
            died = rules.require_past_date(request.death_date, "死亡年月日")
            if died < dt.date.fromisoformat(member.birth_date):
                raise F.DEATH_DATE(f"死亡 rule: {died} is before the 生年月日 {member.birth_date}")
            member.status, member.removal_reason = REMOVED, "死亡"
            for other in register.members:
                if other.resident_code == member.spouse:
                    other.spouse = ""
            member.spouse = ""
            self._save(db, register)
            db.execute("DELETE FROM members WHERE resident_code=?", (member.resident_code,))
            reply.registers.append(register)
            self._notify(db, reply, kind="死亡", member=member, register=register, event_date=died.isoformat(),
                         notifier=request.notifier)
        return self._once(request, made, (request.resident_code,))

    # -- how a 届出 is made ------------------------------------------------------------------------------------
    def _once(self, request, made, subjects) -> koseki_pb2.FamilyRegisterReply:
        """Make a 届出 once per scoped x-request-id, all in one transaction (the 戸籍, the notices, the answer)."""
        audit.set_batch_subject(subjects)
        notifier = request.notifier
        if not notifier.kind or not notifier.name.strip() or not notifier.identity_document.strip():
            raise F.KOSEKI_NOTIFIER_REQUIRED("届出人 rule: the 届出 names its 届出人 (kind, name) and the document the "
                                             "counter checked them with")
        for text, item in ((notifier.name, "届出人"), (notifier.identity_document, "本人確認書類"),
                           (getattr(request, "notification_date", ""), "届出年月日")):
            rules.check_text(text, item)

        def build(db):
            reply = koseki_pb2.FamilyRegisterReply()
            made(db, reply)
            return reply
        reply = once(self.rt.store, request, build, koseki_pb2.FamilyRegisterReply, "届出")
        self.outbox.wake("kizon")
        return reply

    def _new_honseki(self, honseki: str, present: str | None) -> str:
        rules.check_text(honseki, "本籍")
        if not honseki.startswith(self.place_name) or len(honseki) <= len(self.place_name) or honseki == present:
            raise F.HONSEKI_HERE(f"本籍 rule: a new 本籍 here begins with {self.place_name} and differs from the "
                                 "present one")
        return honseki

    def _new_register(self, db, honseki: str, hittousha: str) -> koseki_pb2.FamilyRegister:
        number = f"{next_counter(db, 'register_number'):010d}"
        return koseki_pb2.FamilyRegister(register_number=number, honseki=honseki, hittousha=hittousha, status="現在")

    def _move(self, db, source, member, target, reason: str, relationship: str) -> koseki_pb2.FamilyMember:
        """A person leaves one 戸籍 (除籍, with the reason) and enters another; the entry in the new one."""
        if source.register_number != target.register_number:
            member.status, member.removal_reason = REMOVED, reason
            entered = target.members.add()
            entered.CopyFrom(member)
            entered.status, entered.removal_reason = IN_REGISTER, ""
            if not any(m.status == IN_REGISTER for m in source.members):
                source.status = "除籍"
            self._save(db, source)
        else:
            entered = member
        entered.relationship = relationship
        db.execute("INSERT INTO members VALUES (?, ?) ON CONFLICT(resident_code) DO UPDATE SET "
                   "register_number=excluded.register_number", (entered.resident_code, target.register_number))
        return entered

    def _save(self, db, register) -> None:
        db.execute("INSERT INTO registers VALUES (?, ?) ON CONFLICT(register_number) DO UPDATE SET record=excluded.record",
                   (register.register_number, register.SerializeToString()))

    def _notify(self, db, reply, *, kind: str, member, register, surname: str = "", surname_kana: str = "",
                given_name_kana: str = "", relationship: str = "", join_household_of: str = "",
                separate_household: bool = False, event_date: str = "",
                notifier: records_pb2.Requester | None = None) -> None:
        """Queue the next notice for the 住基GW, in this transaction (numbered without gaps)."""
        if not member.resident_code:
            return  # (a person with no 住民票: nothing to tell the register)
        notice = koseki_pb2.FamilyRegisterNotice(
            sequence=next_counter(db, "notice"), kind=kind, resident_code=member.resident_code, surname=surname,
            surname_kana=surname_kana, given_name_kana=given_name_kana, honseki=register.honseki,
            hittousha=register.hittousha, join_household_of=join_household_of, relationship=relationship,
            separate_household=separate_household, event_date=event_date or office_today().isoformat(),
            notification_date=office_today().isoformat(), register_number=register.register_number)
        if notifier is not None:
            notice.notifier.CopyFrom(notifier)
        self.outbox.put(db, "kizon", notice)
        reply.notice_sequence = notice.sequence
