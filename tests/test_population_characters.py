"""外字 in the generated population: at the shares scenarios/characters.py documents, the same for the same seed, and
each one something the municipality's vendor can write (CP932, or a code of its 外字 table)."""
from __future__ import annotations

import pytest

from nodes.characters import characters, gaiji_count
from scenarios.characters import READING_CONFIRMED_SHARE, unidentified, vendor_table
from scenarios.population import generate

A, PLACE = "142140", "神奈川県伊勢原市"


@pytest.fixture(scope="module")
def people():
    return generate(A, PLACE, 20_000, seed=3)[0]


def test_names_and_addresses_carry_gaiji_at_their_shares(people):
    japanese = [r for r in people if r.resident_type == "日本人"]
    named = sum(gaiji_count(r.name_kanji) > 0 for r in people) / len(people)
    assert 0.01 <= named <= 0.04, named
    assert 0.001 <= sum(gaiji_count(r.address) > 0 for r in people) / len(people) <= 0.02
    assert any(ord(c) > 0xFFFF for r in people for c in r.name_kanji)  # outside the BMP (𠮷, 𣘺)
    assert any(len(c) > 1 for r in people for c in characters(r.name_kanji))  # a variation sequence
    assert any(c in unidentified(A) for r in people for c in r.name_kanji)  # an unidentified vendor 外字
    confirmed = sum(r.name_kana_confirmed for r in japanese) / len(japanese)
    assert abs(confirmed - READING_CONFIRMED_SHARE) < 0.03
    assert not any(r.name_kana_confirmed for r in people if r.resident_type != "日本人")


def test_the_same_seed_gives_the_same_characters(people):
    again = generate(A, PLACE, 2_000, seed=3)[0]
    assert [r.name_kanji for r in again] == [r.name_kanji for r in people[:2_000]]


def test_every_character_is_one_the_vendor_can_write(people):
    standards = {e.standard for e in vendor_table(A) if e.standard}
    codes = {e.code for e in vendor_table(A)}
    for record in people:
        for text in (record.name_kanji, record.address, record.katagaki):
            for char in characters(text):
                try:
                    char.encode("cp932")
                except UnicodeEncodeError:
                    assert char in standards or char in codes, f"{char!r} of {text!r}"
