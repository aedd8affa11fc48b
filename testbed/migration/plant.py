"""Records that would fail a migration, planted at rates the user sets: test data for the precheck and for a vendor
export (testbed/migration/precheck.py finds every one).

Each rule breaks what its precheck rule checks, a few ways each (a wrong check digit or a short code, a date out of
order or in the future, …), in each person's latest history entry; a record is broken by one rule at most, so that
what the precheck finds can be compared with what was planted one for one. Rates are shares of the people (of the
households with a 世帯主, for household-without-head). The same records, rates and seed plant the same.
"""
from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from nodes.characters import CP932_USER_AREA
from nodes.numbers import individual_number_check_digit, resident_code_check_digit
from nodes.towns import towns
from protos import records_pb2
from testbed.migration.precheck import HEAD, REMOVED, person_of

# What each rule does to a record (the rule ids are the precheck's; reading-unconfirmed is what a generated
# population already is, and is not planted).
PLANTABLE = {
    "household-without-head": "the 世帯主 of a household of current members made 同居人",
    "resident-code": "住民票コード with a wrong check digit, or a digit short",
    "individual-number": "個人番号 with a wrong check digit, or a digit short",
    "town-code": "町字コード not on the municipality's list",
    "sex-code": "性別 outside 1, 2, 9",
    "dates-out-of-order": "生年月日 after 住民となった日, 住民となった日 after 住所を定めた日, or 異動年月日 in the future",
    "reading-missing": "振り仮名 left out, or written in hiragana",
    "characters-outside-target": "a private-use 外字 (a vendor's, unidentified) in 氏名 or 住所",
    "kizon-cs-difference": "氏名 or 住所 changed in these records only (the CS keeps the old one)",
}
FUTURE = dt.date(2100, 1, 1)  # planted future dates lie beyond it: in the future whenever the precheck runs
HIRAGANA = str.maketrans({chr(k): chr(k - 0x60) for k in range(ord("ァ"), ord("ヶ") + 1)})


@dataclass(frozen=True)
class Planted:
    """One record broken on purpose: the rule, the record (as planted: 住民票コード, 宛名番号, 世帯番号) and what was done."""

    rule: str
    resident_code: str
    atena_number: str
    household_number: str
    detail: str


def _refuse(rates: dict[str, float]) -> None:
    """ValueError for an unknown rule id or a rate outside 0..1, naming the rules that can be planted."""
    known = ", ".join(PLANTABLE)
    for rule, rate in rates.items():
        if rule not in PLANTABLE:
            raise ValueError(f"unknown rule {rule!r}: the rules that can be planted are {known}")
        if not isinstance(rate, (int, float)) or not 0 <= rate <= 1:  # (NaN fails the comparison too)
            raise ValueError(f"rate {rate!r} for {rule} is not between 0 and 1 (rules: {known})")


def plant(records: list, rates: dict[str, float], seed: int) -> tuple[list, list[Planted]]:
    """The records with some broken at the given rate per rule id (the input is left as it was: a broken record is a
    copy), and what was planted."""
    _refuse(rates)
    rng = random.Random(f"plant:{seed}")
    out = list(records)
    latest: dict[str, int] = {}
    for index, record in enumerate(out):
        key = person_of(record)
        if key not in latest or out[latest[key]].history_number < record.history_number:
            latest[key] = index
    people = sorted(latest.values())
    planted: list[Planted] = []

    def copy(index: int) -> records_pb2.ResidentRecord:
        record = type(out[index])()
        record.CopyFrom(out[index])
        out[index] = record
        return record

    def note(rule: str, record, detail: str) -> None:
        planted.append(Planted(rule, record.resident_code, record.atena_number, record.household_number, detail))

    used: set[int] = set()
    rate = rates.get("household-without-head", 0)
    if rate:
        heads: dict[str, list[int]] = {}
        for index in people:
            if out[index].status != REMOVED and out[index].relationship == HEAD:
                heads.setdefault(out[index].household_number, []).append(index)
        for number in rng.sample(sorted(heads), round(rate * len(heads))):
            for index in heads[number]:
                record = copy(index)
                record.relationship = "同居人"
                used.add(index)
                note("household-without-head", record, f"世帯 {number}: its {HEAD} made 同居人")
    pool = [i for i in people if i not in used]
    rng.shuffle(pool)
    wanted = {rule: round(rates.get(rule, 0) * len(people)) for rule in PLANTABLE if rule != "household-without-head"}
    if sum(wanted.values()) > len(pool):
        raise ValueError(f"the rates ask for {sum(wanted.values())} broken records, more than the {len(pool)} people "
                         f"left to break (each record is broken by one rule at most)")
    breakers = _breakers(rng, out[people[0]].municipality_code if people else "")
    taken = 0
    for rule, count in wanted.items():
        for index in pool[taken:taken + count]:
            record = copy(index)
            detail = breakers[rule](record)
            note(rule, record, detail)
        taken += count
    return out, planted


def _breakers(rng: random.Random, municipality: str) -> dict:
    """rule id → a function that breaks one record (a copy) and says how."""
    codes = {t.code for t in towns(municipality)}
    unknown_town = next(f"{n:03d}999" for n in range(999, 0, -1) if f"{n:03d}999" not in codes)

    def wrong_check(base: str, check) -> str:
        if rng.random() < 0.3:
            return base  # a digit short
        return base + str((check(base) + rng.randint(1, 9)) % 10)  # any digit but the check digit

    def resident_code(r) -> str:
        old = r.resident_code
        r.resident_code = wrong_check(old[:10] if len(old) >= 10 else f"{rng.randrange(10 ** 10):010d}",
                                      resident_code_check_digit)
        return f"resident_code {old} → {r.resident_code}"

    def individual_number(r) -> str:
        old = r.individual_number
        r.individual_number = wrong_check(old[:11] if len(old) >= 11 else f"{rng.randrange(10 ** 11):011d}",
                                          individual_number_check_digit)
        return f"individual_number {old or '(none)'} → {r.individual_number}"

    def town_code(r) -> str:
        old = r.town_code
        r.town_code = rng.choice([c for c in (unknown_town, "", "0" + (old or "000000")) if c not in codes])
        return f"town_code {old} → {r.town_code!r}"

    def sex_code(r) -> str:
        old, r.sex = r.sex, rng.choice(("0", "3", "男", ""))
        return f"sex {old} → {r.sex!r}"

    def dates(r) -> str:
        way = rng.randrange(3)
        if way == 0:
            since = dt.date.fromisoformat(r.resident_since or r.birth_date)
            old, r.birth_date = r.birth_date, (since + dt.timedelta(days=rng.randint(1, 3650))).isoformat()
            return f"birth_date {old} → {r.birth_date} (住民となった日 {r.resident_since})"
        if way == 1:
            since = dt.date.fromisoformat(r.address_since or r.birth_date)
            old, r.resident_since = r.resident_since, (since + dt.timedelta(days=rng.randint(1, 3650))).isoformat()
            return f"resident_since {old} → {r.resident_since} (住所を定めた日 {r.address_since})"
        old, r.change_date = r.change_date, (FUTURE + dt.timedelta(days=rng.randint(0, 3650))).isoformat()
        return f"change_date {old} → {r.change_date}"

    def reading(r) -> str:
        old = r.name_kana
        r.name_kana = old.translate(HIRAGANA) if old and rng.random() < 0.5 else ""
        return f"name_kana {old} → {r.name_kana!r}"

    def outside(r) -> str:
        gaiji = chr(rng.choice(CP932_USER_AREA))  # where a vendor's 外字 sit in CP932's user-defined area
        item = "name_kanji" if rng.random() < 0.7 else "address"
        old = getattr(r, item)
        setattr(r, item, (old[:-1] if item == "name_kanji" and len(old) > 1 else old) + gaiji)
        return f"{item} {old} → U+{ord(gaiji):04X} at the end"

    def difference(r) -> str:
        if rng.random() < 0.7:
            old = r.name_kanji
            r.name_kanji = old[:-1] + ("子" if old[-1:] != "子" else "美")
            return f"name_kanji {old} → {r.name_kanji} (the CS keeps {old})"
        old = r.address
        r.address = old + "の2"
        return f"address {old} → {r.address} (the CS keeps the old)"

    return {"resident-code": resident_code, "individual-number": individual_number, "town-code": town_code,
            "sex-code": sex_code, "dates-out-of-order": dates, "reading-missing": reading,
            "characters-outside-target": outside, "kizon-cs-difference": difference}
