"""A municipality's population, generated deterministically from a seed.

Households of about 2.4 people; an age mix of about 13% under 15 and 29% aged 65 and over;
Japanese names whose kanji and kana match (Faker's ja_JP name pairs, drawn by their weights);
addresses on the municipality's own 町字 with 番地 and postal codes; 2–3% foreign residents with
their 法第30条45 items; about 80% card holders; eligibility flags.

住民票コード of the existing population are a keyed permutation of (municipality, index): unique
within the testbed and with valid check digits. 個人番号 are not generated here: national
generates them from the 住民票コード when the population is loaded.
"""
from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from itertools import accumulate

from faker.providers.person.ja_JP import Provider as JapaneseNames

from nodes.numbers import with_resident_code_check
from protos import records_pb2
from scenarios import characters
from scenarios.towns import towns

AS_OF = dt.date(2026, 4, 1)  # the population's reference date (ages are counted to it)
FOREIGN_SHARE = 0.025  # households of foreign residents
CARD_SHARE = 0.80  # 個人番号カード holders
HOUSEHOLD_SIZES = (1, 2, 3, 4, 5, 6)
HOUSEHOLD_WEIGHTS = (0.33, 0.27, 0.17, 0.15, 0.06, 0.02)  # mean ≈ 2.4
ELDERLY_SINGLE = 0.62  # single-person households aged 65+
ELDERLY_COUPLE = 0.74  # two-person households of 65+
GRANDPARENT = 0.60  # households of four or more with a grandparent
CHILD_MAX_AGE = 38  # children still in the household
APARTMENT_SHARE = 0.40  # addresses with a 方書 (apartment name and room)

_SURNAMES = [pair for pair in JapaneseNames.last_name_pairs]
_SURNAME_WEIGHTS = list(accumulate(JapaneseNames.last_name_pairs.values()))
_MALE = JapaneseNames.first_name_male_pairs
_FEMALE = JapaneseNames.first_name_female_pairs
_BUILDINGS = ("コーポ", "ハイツ", "メゾン", "グリーンヒル", "サンライズ", "レジデンス")
# (国籍 code, 国名, romanized surnames, given names, katakana readings)
_FOREIGN = (
    ("VNM", "ベトナム", [("NGUYEN", "グエン"), ("TRAN", "チャン"), ("LE", "レ")], [("VAN AN", "ヴァン アン"), ("THI HOA", "ティ ホア")]),
    ("CHN", "中国", [("WANG", "ワン"), ("LI", "リー"), ("ZHANG", "チャン")], [("WEI", "ウェイ"), ("FANG", "ファン")]),
    ("PHL", "フィリピン", [("SANTOS", "サントス"), ("REYES", "レイエス")], [("MARIA", "マリア"), ("JOSE", "ホセ")]),
    ("BRA", "ブラジル", [("SILVA", "シルバ"), ("SOUZA", "ソウザ")], [("ANA", "アナ"), ("LUCAS", "ルーカス")]),
    ("KOR", "韓国", [("KIM", "キム"), ("PARK", "パク")], [("MINJUN", "ミンジュン"), ("SEOYEON", "ソヨン")]),
)
_STATUSES = ("永住者", "技能実習", "留学", "家族滞在", "特定技能", "定住者", "技術・人文知識・国際業務")


def resident_code(municipality: str, index: int, seed: int) -> str:
    """The 住民票コード of the index-th existing resident: a bijection, so codes never repeat."""
    slot = int(municipality[1:5]) * 1_000_000 + index  # disjoint ranges per municipality
    if index >= 1_000_000:
        raise ValueError("at most 1,000,000 residents per municipality")
    return with_resident_code_check(f"{_permute(slot, seed):010d}")


def _permute(value: int, seed: int) -> int:
    """A keyed permutation of 0..10^10-1 (a four-round Feistel network on two halves of 10^5)."""
    left, right = divmod(value, 100_000)
    for round_ in range(4):
        left, right = right, (left + _round(right, seed, round_)) % 100_000
    return left * 100_000 + right


def _round(half: int, seed: int, round_: int) -> int:
    x = (half * 0x9E3779B1 + seed * 0x85EBCA6B + round_ * 0xC2B2AE35) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 0x2C1B3C6D) & 0xFFFFFFFF
    x ^= x >> 12
    return x % 100_000


@dataclass
class Summary:
    """Counts of a generated population, to compare with DESIGN §6."""

    residents: int = 0
    households: int = 0
    under_15: int = 0
    aged_65: int = 0
    foreign: int = 0
    card_holders: int = 0

    def shares(self) -> dict[str, float]:
        """The counts as shares of the residents."""
        n = max(self.residents, 1)
        return {"people_per_household": self.residents / max(self.households, 1), "under_15": self.under_15 / n,
                "aged_65_and_over": self.aged_65 / n, "foreign": self.foreign / n, "card_holders": self.card_holders / n}


class Generator:
    """Builds the households of one municipality, deterministically for (municipality, seed)."""

    def __init__(self, municipality: str, place_name: str, seed: int = 1):
        self.municipality = municipality
        self.place_name = place_name
        self.seed = seed
        self.rng = random.Random(f"{municipality}:{seed}")
        # (the characters draw from a generator of their own: every other item is as it was without them)
        self.characters = random.Random(f"{municipality}:{seed}:characters")
        self.towns = towns(municipality)
        if not self.towns:
            raise ValueError(f"no 町字 are known for {municipality}")
        self.index = 0
        self.household_index = 0
        self.summary = Summary()

    def residents(self, count: int):
        """Yield count ResidentRecords, household by household (the last household may be cut short)."""
        while self.index < count:
            for record in self._household(min(self._size(), count - self.index)):
                yield record

    def _size(self) -> int:
        return self.rng.choices(HOUSEHOLD_SIZES, HOUSEHOLD_WEIGHTS)[0]

    def _household(self, size: int) -> list[records_pb2.ResidentRecord]:
        rng = self.rng
        self.household_index += 1
        self.summary.households += 1
        household = f"{self.household_index:010d}"
        foreign = rng.random() < FOREIGN_SHARE
        ages = self._ages(size)
        place = rng.choice(self.towns)
        line = f"{rng.randint(1, 3000)}番地" if rng.random() < 0.5 else f"{rng.randint(1, 30)}番{rng.randint(1, 40)}号"
        katagaki = f"{rng.choice(_BUILDINGS)}{place.name}{rng.randint(1, 5)}0{rng.randint(1, 9)}" if rng.random() < APARTMENT_SHARE else ""
        katagaki = characters.dress_katagaki(katagaki, self.characters)
        address = f"{self.place_name}{place.name}{line}" + (f" {katagaki}" if katagaki else "")
        surname = self._surname(foreign)
        members = []
        for position, age in enumerate(ages):
            sex = "1" if (position == 0 and rng.random() < 0.7) or (position > 0 and rng.random() < 0.5) else "2"
            if position == 1 and size >= 2 and ages[0] >= 20 and age >= 20:
                sex = "2" if members[0].sex == "1" else "1"
            record = self._person(surname, sex, age, foreign)
            record.household_number = household
            record.town_code, record.address_line, record.katagaki = place.code, line, katagaki
            record.postal_code, record.address = place.postal_code, address
            record.relationship = "世帯主" if position == 0 else ("妻" if position == 1 and sex == "2" and age >= 20 else
                                                              "夫" if position == 1 and age >= 20 else
                                                              "父" if age >= 65 and ages[0] < 60 and sex == "1" else
                                                              "母" if age >= 65 and ages[0] < 60 else "子")
            members.append(record)
        head = members[0]
        for record in members:
            record.householder_name = head.name_kanji
            if not foreign:
                record.honseki = f"{self.place_name}{place.name}{rng.randint(1, 3000)}番地"
                record.hittousha = head.name_kanji
        return members

    def _ages(self, size: int) -> list[int]:
        """Ages of a household's members, head first, tuned to the age mix of DESIGN §6."""
        rng = self.rng
        if size == 1:
            return [rng.randint(66, 95) if rng.random() < ELDERLY_SINGLE else rng.randint(19, 64)]
        if size == 2:
            if rng.random() < ELDERLY_COUPLE:
                head = rng.randint(65, 92)
                return [head, max(60, head + rng.randint(-5, 3))]
            head = rng.randint(24, 64)
            return [head, head + rng.randint(-4, 3)] if rng.random() < 0.7 else [head, rng.randint(0, 35)]
        head = rng.randint(28, 58)
        ages = [head, max(20, head + rng.randint(-4, 3))]
        children = size - 2
        if size >= 4 and rng.random() < GRANDPARENT:
            ages.append(rng.randint(head + 22, min(head + 40, 98)))
            children -= 1
        ages += [max(0, min(head - 20, rng.randint(0, CHILD_MAX_AGE))) for _ in range(children)]
        return ages

    def _surname(self, foreign: bool):
        if foreign:
            self._nation = self.rng.choice(_FOREIGN)
            return self.rng.choice(self._nation[2])
        return self.rng.choices(_SURNAMES, cum_weights=_SURNAME_WEIGHTS)[0]

    def _person(self, surname, sex: str, age: int, foreign: bool) -> records_pb2.ResidentRecord:
        rng = self.rng
        born = AS_OF - dt.timedelta(days=age * 365 + rng.randint(0, 364))
        record = records_pb2.ResidentRecord(
            municipality_code=self.municipality, resident_code=resident_code(self.municipality, self.index, self.seed),
            birth_date=born.isoformat(), sex=sex, card_issued=rng.random() < CARD_SHARE,
            status=records_pb2.ResidentRecord.STATUS_CURRENT)
        self.index += 1
        if foreign:
            code, _, _, given_names = self._nation
            given, given_kana = rng.choice(given_names)
            record.resident_type = "外国人住民"
            record.name_romaji = f"{surname[0]} {given}"
            record.name_kanji = f"{surname[0]} {given}"
            record.name_kana = f"{surname[1]} {given_kana}"
            record.nationality = code
            record.article_30_45_category = "中長期在留者"
            record.residence_status = rng.choice(_STATUSES)
            record.residence_card_number = "".join(rng.choices("ABCDEFGHJKLMNPRSTUVWXYZ", k=2)) + \
                f"{rng.randrange(10**8):08d}" + "".join(rng.choices("ABCDEFGHJKLMNPRSTUVWXYZ", k=2))
            record.residence_period_expiry_date = (AS_OF + dt.timedelta(days=rng.randint(30, 1800))).isoformat()
            self.summary.foreign += 1
        else:
            given = rng.choice(_MALE if sex == "1" else _FEMALE)
            record.resident_type = "日本人"
            record.name_kanji = f"{surname[0]} {given[0]}"
            record.name_kana = f"{surname[1]} {given[1]}"
            characters.dress_name(record, self.characters, self.municipality)
        arrived = born if rng.random() < 0.45 else max(born, AS_OF - dt.timedelta(days=rng.randint(30, 40 * 365)))
        record.resident_since = record.address_since = arrived.isoformat()
        record.change_reason = "出生" if arrived == born else "転入"
        record.change_date = record.notification_date = arrived.isoformat()
        record.elector = age >= 18 and not foreign
        record.late_stage_elderly = age >= 75
        record.long_term_care = age >= 65
        record.national_health_insurance = 65 <= age < 75 or rng.random() < 0.2
        record.national_pension = 20 <= age < 60 and rng.random() < 0.3
        record.child_allowance = age < 15
        self.summary.residents += 1
        self.summary.under_15 += age < 15
        self.summary.aged_65 += age >= 65
        self.summary.card_holders += record.card_issued
        return record


def generate(municipality: str, place_name: str, count: int, seed: int = 1) -> tuple[list, Summary]:
    """count residents of a municipality and their summary."""
    generator = Generator(municipality, place_name, seed)
    return list(generator.residents(count)), generator.summary
