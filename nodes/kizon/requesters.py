"""Who makes a 届出 and who asks for a 写し: the 届出人/請求者, the counter's 本人確認 of them, and the rules of who may
ask for what (住基法第12条, 第12条の3; PIA 635, 1946–1948). A requester's word is never taken for a relation: 本人 and
同一世帯の者 are checked against the register, and what a 第三者 or a 代理人 may receive is narrower."""
from __future__ import annotations

from nodes import rules
from nodes.kizon.items import CURRENT
from nodes.reasons import kizon as K
from protos import records_pb2

R = records_pb2
# 本人確認書類 a counter accepts (one of these shown; the testbed records which).
DOCUMENTS = frozenset({"個人番号カード", "運転免許証", "旅券", "在留カード", "特別永住者証明書", "身体障害者手帳",
                       "運転経歴証明書", "健康保険証等2点"})
KINDS = {R.REQUESTER_SELF: "本人", R.REQUESTER_HOUSEHOLD: "同一世帯の者", R.REQUESTER_AGENT: "代理人",
         R.REQUESTER_THIRD_PARTY: "第三者"}
# 届出 whose 届出人 cannot be the person (the person is dead) and that a 第三者 (同居者, 家主 ...) may make.
BY_OTHERS = frozenset({"死亡"})
# What a 第三者 receives (住基法第12条の3: the 基礎証明事項 of the persons asked for; no 本籍, 続柄, numbers).
THIRD_PARTY_ITEMS = frozenset({"name_kanji", "name_kana", "birth_date", "sex", "address", "resident_since",
                               "address_since", "change_reason", "change_date"})


def label(requester) -> str:
    """The requester in one line, for the audit and the 交付履歴."""
    who = requester.resident_code or requester.name
    return f"{KINDS.get(requester.kind, '?')} {who} ({requester.identity_document})"


def require(requester, what: str, *, notified: str = "") -> None:
    """The requester's shape: a kind, a name, a document the counter accepts, a 委任状 for an agent, a reason for a
    third party, a valid 住民票コード where one is given; for a 届出 (notified: its 異動事由) who may make it."""
    if requester.kind not in KINDS:
        raise K.REQUESTER_REQUIRED(f"{what} rule: the request names its {'届出人' if notified else '請求者'} "
                                   "(本人, 同一世帯の者, 代理人 or 第三者) and the 本人確認書類 the counter saw")
    rules.require_text(requester.name, "届出人/請求者の氏名")
    if requester.identity_document not in DOCUMENTS:
        raise K.REQUESTER_DOCUMENT(f"本人確認 rule: {requester.identity_document[:40]!r} is not a document the counter "
                                   f"accepts ({', '.join(sorted(DOCUMENTS))})")
    if requester.resident_code:
        rules.require_resident_code(requester.resident_code)
    if requester.kind == R.REQUESTER_AGENT:
        rules.require_text(requester.power_of_attorney, "委任状")
    if requester.kind == R.REQUESTER_THIRD_PARTY:
        rules.require_text(requester.reason, "請求事由")
    if requester.kind in (R.REQUESTER_SELF, R.REQUESTER_HOUSEHOLD) and not notified and not requester.resident_code:
        raise K.REQUESTER_REQUIRED(f"{what} rule: a request by {KINDS[requester.kind]} names their 住民票コード, "
                                   "so that the relation is checked against the register")
    if notified in BY_OTHERS and requester.kind == R.REQUESTER_SELF:
        raise K.NOTIFIER_KIND(f"{notified}届 rule: the 届出人 of a {notified} is not the person")
    if notified and notified not in BY_OTHERS and requester.kind == R.REQUESTER_THIRD_PARTY:
        raise K.NOTIFIER_KIND(f"{notified}届 rule: a 第三者 does not make this 届出 (本人, 世帯の者 or a 代理人 do)")


def check_relation(requester, person, members_of, what: str) -> None:
    """本人 is the person; 同一世帯の者 a current member of the person's household (the one the person is, or was, in)."""
    if requester.kind == R.REQUESTER_SELF and requester.resident_code and requester.resident_code != person.resident_code:
        raise K.REQUESTER_NOT_SELF(f"{what} rule: the 請求者 {requester.resident_code} is not the person "
                                   f"{person.resident_code} (ask as 同一世帯の者, 代理人 or 第三者)")
    if requester.kind == R.REQUESTER_HOUSEHOLD:
        members = {m.resident_code for m in members_of(person.household_number) if m.status == CURRENT}
        if requester.resident_code not in members or requester.resident_code == person.resident_code:
            raise K.REQUESTER_NOT_HOUSEHOLD(f"{what} rule: {requester.resident_code} is not a member of the household "
                                            f"{person.household_number} of {person.resident_code}")


def certificate_scope(requester, items: list[str], *, stated: bool, household: bool, number: bool) -> list[str]:
    """What this requester may be given: the 個人番号 to 本人 or 同一世帯 alone (住基法第12条第5項 as applied here), a
    世帯全員の写し not to a 第三者, and to a 第三者 the 基礎証明事項 only (住基法第12条の3): a 記載事項証明書 (stated)
    asking for more is refused, a 写し prints those items alone."""
    if number and requester.kind not in (R.REQUESTER_SELF, R.REQUESTER_HOUSEHOLD):
        raise K.REQUESTER_INDIVIDUAL_NUMBER(f"個人番号 rule: a {KINDS[requester.kind]} is not given the 個人番号 "
                                            "(本人 or 同一世帯の者 only)")
    if requester.kind == R.REQUESTER_THIRD_PARTY:
        if household:
            raise K.REQUESTER_THIRD_PARTY_SCOPE("第三者請求 rule (住基法第12条の3): a 第三者 is given the 写し of the persons "
                                                "asked for, not of the whole household")
        beyond = [i for i in items if i not in THIRD_PARTY_ITEMS]
        if beyond and stated:
            raise K.REQUESTER_THIRD_PARTY_SCOPE(f"第三者請求 rule (住基法第12条の3): {', '.join(beyond[:5])} are not "
                                                "given to a 第三者")
        return [i for i in items if i in THIRD_PARTY_ITEMS]
    return items
