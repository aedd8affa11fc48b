"""scenarios.population: a deterministic population with the mix of DESIGN §6, names from Faker's
ja_JP pairs, addresses on each city's own 町字, and valid, unique 住民票コード."""
from __future__ import annotations

import datetime as dt
import json
import re
from collections import defaultdict

import pytest
from faker.providers.person.ja_JP import Provider as JapaneseNames
from google.protobuf import json_format

from nodes.numbers import resident_code_valid
from protos import records_pb2
from nodes.characters import characters
from scenarios.characters import VARIANTS, unidentified
from scenarios.population import AS_OF, generate
from scenarios.towns import towns
from testbed import cli

PLACES = {"142140": "神奈川県伊勢原市", "142115": "神奈川県秦野市"}
FOREIGN = "外国人住民"
CARD_NUMBER = re.compile(r"[A-Z]{2}[0-9]{8}[A-Z]{2}")


def pairs(table) -> set[tuple[str, str]]:
    """(kanji, kana) of a Faker ja_JP pair list."""
    return {(kanji, kana) for kanji, kana, *_ in table}


SURNAMES = pairs(JapaneseNames.last_name_pairs)
GIVEN = {"1": pairs(JapaneseNames.first_name_male_pairs), "2": pairs(JapaneseNames.first_name_female_pairs)}


def age(record: records_pb2.ResidentRecord) -> int:
    """Age in full years on the population's reference date."""
    born = dt.date.fromisoformat(record.birth_date)
    return AS_OF.year - born.year - ((AS_OF.month, AS_OF.day) < (born.month, born.day))


def households(records) -> dict[str, list[records_pb2.ResidentRecord]]:
    """The records by 世帯番号."""
    result = defaultdict(list)
    for record in records:
        result[record.household_number].append(record)
    return result


@pytest.fixture(scope="module")
def residents():
    """20,000 residents of 伊勢原市."""
    records, _ = generate("142140", PLACES["142140"], 20_000, seed=1)
    return records


def test_same_seed_same_population():
    """The same seed gives identical records; another seed gives other people."""
    first, _ = generate("142140", PLACES["142140"], 2_000, seed=5)
    again, _ = generate("142140", PLACES["142140"], 2_000, seed=5)
    other, _ = generate("142140", PLACES["142140"], 2_000, seed=6)
    assert first == again
    assert len(first) == len(other) == 2_000
    assert [r.resident_code for r in first] != [r.resident_code for r in other]
    assert [r.name_kanji for r in first] != [r.name_kanji for r in other]


def test_shares_within_the_bands(residents):
    """Household size, age mix, foreign residents and card holders fall within DESIGN §6's bands."""
    n = len(residents)
    assert n == 20_000
    shares = {
        "people_per_household": n / len(households(residents)),
        "under_15": sum(age(r) < 15 for r in residents) / n,
        "aged_65_and_over": sum(age(r) >= 65 for r in residents) / n,
        "foreign": sum(r.resident_type == FOREIGN for r in residents) / n,
        "card_holders": sum(r.card_issued for r in residents) / n,
    }
    assert 2.3 <= shares["people_per_household"] <= 2.5, shares
    assert 0.11 <= shares["under_15"] <= 0.15, shares
    assert 0.27 <= shares["aged_65_and_over"] <= 0.31, shares
    assert 0.02 <= shares["foreign"] <= 0.03, shares
    assert 0.77 <= shares["card_holders"] <= 0.83, shares


def test_summary_counts_match_the_records():
    """The generator's summary counts what it generated."""
    records, summary = generate("142115", PLACES["142115"], 5_000, seed=2)
    assert (summary.residents, summary.households) == (len(records), len(households(records)))
    assert summary.foreign == sum(r.resident_type == FOREIGN for r in records)
    assert summary.card_holders == sum(r.card_issued for r in records)


def test_resident_codes_valid_and_unique_across_both_cities():
    """50,000 residents of each city: every 住民票コード valid, none used twice."""
    codes = [r.resident_code for m in PLACES for r in generate(m, PLACES[m], 50_000, seed=1)[0]]
    assert len(codes) == 100_000
    assert all(resident_code_valid(c) for c in codes)
    assert len(set(codes)) == len(codes)


def test_japanese_names_are_matching_pairs(residents):
    """Kanji and kana of each Japanese resident's 氏 and 名 are one of Faker's ja_JP pairs."""
    japanese = [r for r in residents if r.resident_type != FOREIGN]
    assert len(japanese) > 19_000
    # (a variant the register writes, or a vendor 外字 at the start of a 名, stands for the pair's character)
    standard = {variant: plain for plain, (variant, _) in VARIANTS.items()}
    odd = set(unidentified("142140"))
    for r in japanese:
        (surname, given), (surname_kana, given_kana) = r.name_kanji.split(" "), r.name_kana.split(" ")
        surname = "".join(standard.get(c, c) for c in characters(surname))
        assert (surname, surname_kana) in SURNAMES, r.name_kanji
        if given[0] in odd:
            assert any(g[1:] == given[1:] and k == given_kana for g, k in GIVEN[r.sex]), (r.name_kanji, r.sex)
            continue
        assert (given, given_kana) in GIVEN[r.sex], (r.name_kanji, r.sex)


def test_addresses_on_the_citys_own_towns(residents):
    """Every address is on a 町字 of the city, with that 町字's postal code and full text."""
    other, _ = generate("142115", PLACES["142115"], 2_000, seed=1)
    for municipality, records in (("142140", residents), ("142115", other)):
        by_code = {t.code: t for t in towns(municipality)}
        for r in records:
            town = by_code[r.town_code]
            assert r.postal_code == town.postal_code
            expected = f"{PLACES[municipality]}{town.name}{r.address_line}" + (f" {r.katagaki}" if r.katagaki else "")
            assert r.address == expected


def test_foreign_residents_have_their_items(residents):
    """Foreign residents carry 国籍, 在留資格, a 在留カード番号 of the right form and the 法第30条45 区分."""
    foreign = [r for r in residents if r.resident_type == FOREIGN]
    assert foreign
    for r in foreign:
        assert r.nationality and r.residence_status and r.article_30_45_category and r.name_romaji
        assert CARD_NUMBER.fullmatch(r.residence_card_number), r.residence_card_number
        assert not r.honseki


def test_households_share_one_head_and_one_address(residents):
    """Each household has exactly one 世帯主, whose name every member carries, and one address."""
    for number, members in households(residents).items():
        heads = [m for m in members if m.relationship == "世帯主"]
        assert len(heads) == 1, number
        assert {m.householder_name for m in members} == {heads[0].name_kanji}, number
        assert len({(m.town_code, m.address_line, m.katagaki, m.postal_code, m.address) for m in members}) == 1, number
        assert len({m.resident_type for m in members}) == 1, number


def test_cli_writes_json_lines(tmp_path, capsys):
    """`testbed population generate … --out F.jsonl` writes the 1000 residents as JSON lines."""
    out = tmp_path / "F.jsonl"
    assert cli.main(["--state-dir", str(tmp_path), "population", "generate", "--municipality", "142140",
                     "--residents", "1000", "--seed", "3", "--out", str(out)]) == 0
    assert "1000 residents of 142140" in capsys.readouterr().out
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1000
    written = [json_format.Parse(line, records_pb2.ResidentRecord()) for line in lines]
    assert all(isinstance(json.loads(line), dict) for line in lines)
    assert written == generate("142140", PLACES["142140"], 1000, seed=3)[0]
