"""The characters of the register, without a network: what a 外字 is (nodes/characters.py: each sample as its
description says), how many an item holds, the 代替文字 for a receiver that shows only JIS X 0213, 清音化かな氏名, and
the 外字 items of 本人確認情報 and the 67 items of 送付先情報 (nodes/records.py) computed by their definition.

The property tests draw texts from the samples, the kanji of JIS X 0208 and the private-use area, and hold the
definition to what each piece is known to be (not to the code's own reading of it).
"""
from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodes import characters as C
from nodes.numbers import with_individual_number_check, with_resident_code_check
from nodes.offices import office
from nodes.records import (
    DELIVERY_TEXTS,
    IDENTITY_GAIJI,
    delivery_info,
    fill_identity_characters,
    identity_character_errors,
    identity_info,
)
from protos import records_pb2

A = "142140"  # 伊勢原市
OFFICE = office(A, "神奈川県", "伊勢原市")
HOME = f"{OFFICE.name}伊勢原1番1号"  # an address of the common set, to which a 方書 is added
IVS = "葛\U000E0100"  # 葛 with the IVS U+E0100: one character of two code points
PUA = "\ue000"  # a vendor 外字 nobody identified


# -- what each sample is, read from its description -----------------------------------------------------------
def described(sample: str, text: str) -> dict:
    """What SAMPLES' description of a sample says it is: 外字 or not, shown by a JIS X 0213 receiver or not (None:
    not said), outside the BMP, in CP932, a variation sequence, its 代替文字, and the code points it names."""
    outside_0213 = "outside JIS X 0213" in text or "nor JIS X 0213" in text
    substitute = re.search(r"代替文字 (\S+)", text)
    return {
        "gaiji": "not a 外字" not in text,
        "jisx0213": False if outside_0213 else (True if re.search(r"JIS X 02(08|13)", text) else None),
        "outside_bmp": "outside the BMP" in text,
        "cp932": "CP932" in text,
        "sequence": "variation sequence" in text,
        "substitute": substitute[1] if substitute else None,
        "code_points": [chr(int(h, 16)) for h in re.findall(r"U\+([0-9A-F]{4,6})", text)],
    }


SAMPLE_FACTS = {sample: described(sample, text) for sample, text in C.SAMPLES.items()}


def test_the_samples_are_what_the_brief_names():
    """The samples a test of the hops sends are all there, with the readings the definition needs."""
    assert {"髙", "﨑", "德", "𠮷", "𩸽", IVS} <= set(C.SAMPLES)
    assert {s for s, f in SAMPLE_FACTS.items() if not f["gaiji"]} == {"邊", "邉"}
    assert all(f["jisx0213"] is not None or f["sequence"] for f in SAMPLE_FACTS.values()), SAMPLE_FACTS


@pytest.mark.parametrize("sample", list(C.SAMPLES))
def test_each_sample_is_what_its_description_says(sample):
    """外字 or not, JIS X 0213 or not, outside the BMP, CP932, a variation sequence (one character), its 代替文字."""
    facts = SAMPLE_FACTS[sample]
    chars = C.characters(sample)
    assert len(chars) == 1, f"{sample!r} is one character of the register ({chars})"
    assert C.is_gaiji(chars[0]) is facts["gaiji"]
    assert C.gaiji_count(sample) == (1 if facts["gaiji"] else 0)
    assert (ord(sample[0]) > 0xFFFF) is facts["outside_bmp"]
    for code_point in facts["code_points"]:
        assert code_point in sample, f"the description names U+{ord(code_point):04X}, not in {sample!r}"
    if facts["cp932"]:  # (in the vendor code page of Windows, and not in JIS X 0208)
        assert sample.encode("cp932") and not C.in_common_set(sample)
    if facts["sequence"]:
        assert len(sample) == 2 and C.is_selector(sample[1]) and C.in_common_set(sample[0])
        assert C.kind(chars[0]) == "variation sequence"
    else:
        assert C.in_jisx0213(sample) is facts["jisx0213"]
        if facts["gaiji"]:
            assert C.kind(sample) == ("JIS X 0213" if facts["jisx0213"] else "outside JIS X 0213")
    replaced = C.substitute(sample)
    if facts["substitute"]:
        assert (replaced.text, replaced.positions, replaced.result) == (facts["substitute"], (1,), "1")
        assert C.substitute_char(chars[0]) == facts["substitute"]
    else:
        assert (replaced.text, replaced.positions, replaced.result) == (sample, (), "0")


def test_a_private_use_code_is_a_vendor_gaiji():
    """U+E000 and U+F8FF: 外字 of the private-use kind, none with a 代替文字."""
    for code in ("\ue000", "\uf8ff"):
        assert C.is_gaiji(code) and C.kind(code) == "private-use" and C.substitute_char(code) is None


# -- 外字数 ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text,count", [
    ("", 0), ("Shiken Taro", 0), ("ｼｹﾝ ﾀﾛｳ", 0), ("試験 太郎", 0), ("渡邊 邉", 0), ("シケン　タロウ", 0),
    ("髙橋 𠮷子", 2),
    ("𠮷𠮷𠮷", 3),  # outside the BMP: one each (six UTF-16 code units, three characters)
    (f"{IVS}城", 1),  # a variation sequence: one 外字, not two
    (f"{IVS}葛", 1),  # … and the base without its selector is no 外字
    ("辻\ufe00", 1),  # a standardized variation selector belongs to its base too
    (f"{PUA}田 \uf8ff", 2),  # private-use codes count
    ("山﨑 德 濵 𩸽", 4),
    ("".join(C.SAMPLES), 7),  # every sample but 邊 and 邉
], ids=lambda v: v if isinstance(v, int) else repr(v)[:20])
def test_gaiji_count_of_mixed_texts(text, count):
    """外字数: how many of the characters of an item are 外字, a character as the register counts it."""
    assert C.gaiji_count(text) == count


def test_characters_keep_selectors_with_their_base():
    """The characters of a text: each code point with the selectors after it; nothing lost or added."""
    text = f"{IVS}西 𠮷{PUA}"
    assert C.characters(text) == [IVS, "西", " ", "𠮷", PUA]
    assert "".join(C.characters(text)) == text
    assert C.characters("".join(C.SAMPLES)) == list(C.SAMPLES)


# -- 代替文字 --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text,out,positions,result", [
    ("髙橋", "高橋", (1,), "1"),
    ("𠮷田", "吉田", (1,), "1"),
    (f"{IVS}西", "葛西", (1,), "1"),
    (f"{PUA}田", "〓田", (1,), "2"),
    ("山﨑", "山﨑", (), "0"),  # JIS X 0213: a JIS X 0213 receiver shows it as it is
    ("𩸽", "𩸽", (), "0"),
    ("試験 太郎", "試験 太郎", (), "0"),
    (f"髙{PUA} 𠮷", "高〓 吉", (1, 2, 4), "2"),
    (f"{IVS}𠮷", "葛吉", (1, 2), "1"),  # positions count a variation sequence as one character
], ids=lambda v: repr(v)[:20] if isinstance(v, str) else str(v))
def test_substitute(text, out, positions, result):
    """The text a receiver that shows only JIS X 0213 gets, the positions replaced, and 代替文字変換結果."""
    replaced = C.substitute(text)
    assert (replaced.text, replaced.positions, replaced.result) == (out, positions, result)
    assert replaced.positions_text == ",".join(map(str, positions))
    assert replaced.complete is (result != "2")
    replaced.text.encode("euc_jis_2004")


def test_pattern_has_a_digit_per_item():
    """外字パターン: 0 no 外字, 1 shown by a JIS X 0213 receiver, 2 代替文字 known, 3 some without."""
    assert C.pattern("試験 太郎", "山﨑", "髙橋", f"{PUA}子") == "0123"
    assert C.pattern(f"山﨑{IVS}", f"髙{PUA}") == "23"
    assert C.pattern() == ""


@pytest.mark.parametrize("kana,plain", [
    ("シケン タロウ", "シケン タロウ"), ("ガッコウ", "カツコウ"), ("ジョウ", "シヨウ"), ("パピプペポ", "ハヒフヘホ"),
    ("ヴァイオリン", "ウアイオリン"), ("ヵヶヮ", "カケワ"), ("がっこう", "かつこう"), ("ビョウイン・ヂヅ", "ヒヨウイン・チツ"),
])
def test_kana_seion(kana, plain):
    """清音化かな氏名: without 濁点 and 半濁点, small kana written large."""
    assert C.kana_seion(kana) == plain


# -- 本人確認情報 ------------------------------------------------------------------------------------------------
def resident(name: str = "髙橋 𠮷子", katagaki: str = "", **items) -> records_pb2.ResidentRecord:
    """A newly numbered Japanese resident of 伊勢原市 as kizon holds them (国外転入)."""
    values = dict(
        municipality_code=A, atena_number="000000000000123", history_number=1, is_latest=True,
        household_number="0000000123", resident_type="日本人", resident_code=with_resident_code_check("1234567890"),
        individual_number=with_individual_number_check("12345678901"), name_kanji=name, name_kana="タカハシ ヨシコ",
        birth_date="1980-02-03", sex="2", relationship="世帯主", householder_name=name, town_code="004000",
        address_line="1番1号", katagaki=katagaki, postal_code=OFFICE.postal_code,
        address=HOME + (f" {katagaki}" if katagaki else ""), resident_since="2025-04-01", address_since="2025-04-01",
        change_reason="国外転入", change_date="2025-04-01", notification_date="2025-04-01",
        status=records_pb2.ResidentRecord.STATUS_CURRENT, operator_id="OP0001", terminal_id="T0001")
    values.update(items)
    return records_pb2.ResidentRecord(**values)


def test_identity_info_computes_the_gaiji_items():
    """本人確認情報 of a 住民票: 外字数 of each text item, the 外字フラグ, 清音化かな氏名, the items as they are."""
    record = resident(katagaki=f"{IVS}荘{PUA}号", previous_address="福岡県福岡市中央区天神1番 山﨑ビル",
                      former_surname_kanji="德永")
    info = identity_info(record, operator="OP0001", terminal="T0001")
    assert (info.name_kanji, info.address) == (record.name_kanji, record.address)
    assert (info.name_gaiji_count, info.address_gaiji_count, info.previous_address_gaiji_count,
            info.former_surname_gaiji_count, info.gaiji_flag) == (2, 2, 1, 1, True)
    assert info.name_kana_seion == "タカハシ ヨシコ" and (info.operator_id, info.terminal_id) == ("OP0001", "T0001")
    assert identity_character_errors(info) == []
    plain = identity_info(resident(name="試験 花子"))
    assert (plain.name_gaiji_count, plain.address_gaiji_count, plain.gaiji_flag) == (0, 0, False)
    assert identity_character_errors(plain) == []


@pytest.mark.parametrize("text,count", IDENTITY_GAIJI, ids=[c for _, c in IDENTITY_GAIJI])
def test_a_wrong_gaiji_count_is_caught(text, count):
    """Each 外字数 one more, one less or zero where its item holds 外字: named, with what the item holds."""
    info = records_pb2.IdentityInfo(name_kanji="髙﨑 德子", address=f"{HOME} {IVS}{PUA}",
                                    previous_address="𠮷野町 𩸽", former_surname_kanji="髙橋")
    fill_identity_characters(info)
    right = getattr(info, count)
    assert right >= 1
    for wrong in (right + 1, right - 1, 0, 99):
        if wrong == right:
            continue
        stated = records_pb2.IdentityInfo()
        stated.CopyFrom(info)
        setattr(stated, count, wrong)
        assert identity_character_errors(stated) == [f"{count} {wrong} (its {text} holds {right})"]


def test_a_wrong_gaiji_flag_is_caught():
    """外字フラグ unset where an item holds a 外字, or set where none does."""
    info = records_pb2.IdentityInfo(name_kanji="試験 太郎", address=f"{HOME} 德")
    fill_identity_characters(info)
    assert info.gaiji_flag and info.address_gaiji_count == 1
    info.gaiji_flag = False
    assert identity_character_errors(info) == ["gaiji_flag False (the items hold some 外字)"]
    plain = records_pb2.IdentityInfo(name_kanji="試験 太郎", address=HOME, gaiji_flag=True)
    assert identity_character_errors(plain) == ["gaiji_flag True (the items hold no 外字)"]


# -- 送付先情報 ------------------------------------------------------------------------------------------------
def delivery(record: records_pb2.ResidentRecord) -> records_pb2.DeliveryInfo:
    """The 送付先情報 kizon's 住基GW makes of a newly numbered resident."""
    return delivery_info(record, OFFICE, operator="OP0001", terminal="T0001", processing_date="2025-04-01",
                         control_number=A + "0" * 14)


def test_delivery_info_fills_the_gaiji_items():
    """外字 in the name and the address: lengths in characters, 外字数, flag, pattern, 代替文字 and positions."""
    katagaki = f"{IVS}荘{PUA}号"
    record = resident(katagaki=katagaki)
    info = delivery(record)
    address_chars = C.characters(record.address)
    assert len(address_chars) == len(record.address) - 1  # (the variation sequence is one character)
    assert (info.delivery_name_kanji, info.name_kanji) == (record.name_kanji,) * 2
    assert (info.delivery_address_kanji, info.address) == (record.address,) * 2
    assert (info.delivery_name_kanji_length, info.name_kanji_length) == (5, 5)
    assert (info.delivery_address_kanji_length, info.address_length) == (len(address_chars),) * 2
    assert info.name_kana_length == len("タカハシ ヨシコ")
    assert (info.delivery_name_kanji_gaiji_count, info.name_kanji_gaiji_count) == (2, 2)
    assert (info.delivery_address_kanji_gaiji_count, info.address_gaiji_count) == (2, 2)
    assert info.gaiji_flag and info.gaiji_pattern == "23"  # 氏名: 代替文字 known; 住所: 〓 for the vendor 外字
    assert (info.substitute_name, info.substitute_name_length, info.substitute_name_positions) == ("高橋 吉子", 5, "1,4")
    at = address_chars.index(IVS) + 1
    assert info.substitute_address == f"{HOME} 葛荘〓号"
    assert info.substitute_address_length == len(address_chars)
    assert info.substitute_address_positions == f"{at},{at + 2}"
    assert info.substitute_conversion_result == "2"
    assert (info.municipality_name_length, info.municipality_address_length) == (len(OFFICE.name), len(OFFICE.address))
    assert info.issuing_place_name_length == len(OFFICE.issuing_place)
    assert info.card_delivery_place_name_length == len(OFFICE.card_delivery_place)


@pytest.mark.parametrize("name,katagaki,pattern,result", [
    ("山﨑 德子", "", "10", "0"),  # JIS X 0213 only: nothing to replace
    ("髙橋 花子", "𩸽荘", "21", "1"),
    ("試験 花子", f"{PUA}棟", "03", "2"),
    ("試験 花子", "", "00", "0"),
])
def test_delivery_info_substitutes_only_what_needs_it(name, katagaki, pattern, result):
    """The 代替文字 items are set where a character needed replacing, empty otherwise; the result says how."""
    info = delivery(resident(name=name, katagaki=katagaki))
    assert (info.gaiji_pattern, info.substitute_conversion_result) == (pattern, result)
    for text, sub in ((info.name_kanji, "substitute_name"), (info.address, "substitute_address")):
        replaced = C.substitute(text)
        if replaced.positions:
            assert getattr(info, sub) == replaced.text and getattr(info, f"{sub}_positions") == replaced.positions_text
            assert getattr(info, f"{sub}_length") == len(C.characters(replaced.text))
        else:
            empty = (getattr(info, sub), getattr(info, f"{sub}_length"), getattr(info, f"{sub}_positions"))
            assert empty == ("", 0, "")


DELIVERY_FIELDS = [f.name for f in records_pb2.DeliveryInfo.DESCRIPTOR.fields]
# The items of 送付先情報 a Japanese new resident without 旧氏 legitimately leaves empty (zero, false).
EMPTY_FOR_A_JAPANESE_RESIDENT = {
    "article_30_45_category": "(51) 法第30条の45 区分: foreign residents only",
    "residence_period_expiry_date": "(52) 在留期間の満了の日: foreign residents only",
    "name_romaji": "(66) ローマ字 氏名: foreign residents only",
    "former_surname_romaji": "(67) ローマ字 旧氏: foreign residents only (the 住民票 has no item for it)",
    "former_surname_kanji": "(62) 旧氏 漢字: none recorded",
    "former_surname_kana": "(64) 旧氏 ふりがな: none recorded",
    "former_surname_gaiji_count": "(63) 旧氏 外字数: no 旧氏, no 外字",
    "former_surname_gaiji_change_seq": "(65) 旧氏 外字変更連番: 0, no 外字 re-identified in the testbed",
    "municipality_address_gaiji_count": "(15) the office's address holds no 外字",
    "issuing_place_name_gaiji_count": "(19) the office's window holds no 外字",
    "issuing_place_address_gaiji_count": "(23) the office's address holds no 外字",
    "card_delivery_place_name_gaiji_count": "(27) the office holds no 外字",
    "card_delivery_place_address_gaiji_count": "(31) the office's address holds no 外字",
}
NAME_GAIJI = {"delivery_name_kanji_gaiji_count", "name_kanji_gaiji_count"}  # 0 where the name holds no 外字
ADDRESS_GAIJI = {"delivery_address_kanji_gaiji_count", "address_gaiji_count"}  # … the address
SUBSTITUTE = {"name": {"substitute_name", "substitute_name_length", "substitute_name_positions"},
              "address": {"substitute_address", "substitute_address_length", "substitute_address_positions"}}


def unset(message) -> set[str]:
    """The fields of a message at their default (empty, zero, false)."""
    return set(DELIVERY_FIELDS) - {f.name for f, _ in message.ListFields()}


def test_every_item_of_delivery_info_is_set_but_those_legitimately_empty():
    """The 67 items for a Japanese new resident with 外字 to replace in name and address: every one set but the
    foreign residents' items, the 旧氏 (none) and the office's 外字数 (its texts hold none)."""
    assert len(DELIVERY_FIELDS) == 67
    assert set(EMPTY_FOR_A_JAPANESE_RESIDENT) <= set(DELIVERY_FIELDS)
    assert {t for t, _, _ in DELIVERY_TEXTS} | {c for _, _, c in DELIVERY_TEXTS if c} <= set(DELIVERY_FIELDS)
    info = delivery(resident(katagaki=f"{IVS}荘"))
    assert unset(info) == set(EMPTY_FOR_A_JAPANESE_RESIDENT)
    plain = delivery(resident(name="試験 花子"))  # no 外字 at all: the 外字数 are 0 and no 代替文字 is needed
    assert unset(plain) == (set(EMPTY_FOR_A_JAPANESE_RESIDENT) | NAME_GAIJI | ADDRESS_GAIJI | {"gaiji_flag"}
                            | SUBSTITUTE["name"] | SUBSTITUTE["address"])
    assert (plain.gaiji_pattern, plain.substitute_conversion_result) == ("00", "0")


def test_delivery_info_of_a_foreign_resident_and_a_former_surname():
    """A foreign resident's 法第30条の45 items and ローマ字 氏名, and a 旧氏 with its 外字数, are carried over."""
    info = delivery(resident(resident_type="外国人住民", article_30_45_category="1",
                             residence_period_expiry_date="2030-01-01", name_romaji="TAKAHASHI YOSHIKO",
                             former_surname_kanji="髙橋", former_surname_kana="タカハシ"))
    assert (info.article_30_45_category, info.residence_period_expiry_date, info.name_romaji) == (
        "1", "2030-01-01", "TAKAHASHI YOSHIKO")
    assert (info.former_surname_kanji, info.former_surname_kana, info.former_surname_gaiji_count) == ("髙橋", "タカハシ", 1)


# -- properties over random texts --------------------------------------------------------------------------------
def _jisx0208_kanji() -> tuple[str, ...]:
    """The 6,355 kanji of JIS X 0208 (rows 16–84), from their EUC-JP codes."""
    found = []
    for row in range(16, 85):
        for cell in range(1, 95):
            try:
                found.append(bytes([0xA0 + row, 0xA0 + cell]).decode("euc_jp"))
            except UnicodeDecodeError:
                pass  # (cells the standard leaves empty at the ends of rows 47 and 84)
    return tuple(found)


KANJI = _jisx0208_kanji()
KANA = tuple("アイウエオカキクケコガギグゲゴサシスセソタチツテトナニヌネノハヒフヘホバパマミムメモヤユヨラリルレロワン")


def known(piece: str) -> tuple[int, str, bool]:
    """What a piece of a drawn text is known to be, from where it was drawn: (外字数, what a JIS X 0213 receiver
    gets, replaced)."""
    if piece in C.SAMPLES:
        facts = SAMPLE_FACTS[piece]
        return (1 if facts["gaiji"] else 0), facts["substitute"] or piece, bool(facts["substitute"])
    if 0xE000 <= ord(piece) <= 0xF8FF:
        return 1, C.GETA, True
    return 0, piece, False  # JIS X 0208 kanji and kana


PIECE = st.one_of(st.sampled_from(KANJI), st.sampled_from(sorted(C.SAMPLES)), st.sampled_from(KANA),
                  st.integers(0xE000, 0xF8FF).map(chr))
PIECES = st.lists(PIECE, min_size=1, max_size=20)


def test_the_kanji_are_those_of_jisx0208():
    """The drawn kanji: all of JIS X 0208's 6,355, each in the common set (none a 外字)."""
    assert len(KANJI) == 6355 and all(C.in_common_set(k) for k in KANJI)


@given(PIECES)
@settings(max_examples=300, deadline=None, database=None)
def test_gaiji_count_and_substitute_of_random_texts(pieces):
    """For any text of samples, JIS X 0208 kanji, kana and private-use codes: its characters are the pieces, 外字数 the
    pieces known to be 外字, and the 代替文字 text JIS X 0213 throughout, one character for one, replacing exactly the
    pieces known to need it."""
    text = "".join(pieces)
    facts = [known(p) for p in pieces]
    assert C.characters(text) == pieces
    assert C.gaiji_count(text) == sum(n for n, _, _ in facts)
    assert C.gaiji_count(text) == sum(1 for c in C.characters(text) if len(c) > 1 or not C.in_common_set(c))
    replaced = C.substitute(text)
    replaced.text.encode("euc_jis_2004")  # (raises if a character is outside JIS X 0213)
    assert replaced.text == "".join(out for _, out, _ in facts)
    assert C.characters(replaced.text) == [out for _, out, _ in facts]
    assert replaced.positions == tuple(i for i, (_, _, r) in enumerate(facts, start=1) if r)
    assert replaced.complete is (C.GETA not in (out for _, out, r in facts if r))


@given(PIECES, st.lists(PIECE, max_size=10))
@settings(max_examples=200, deadline=None, database=None)
def test_delivery_info_of_random_names_and_addresses(name, katagaki):
    """送付先情報 of any name and 方書: every item set but those legitimately empty, each of those for its reason (no
    外字 in the name or the address, nothing to replace), and the lengths and 外字数 as the pieces are known to be."""
    record = resident(name="".join(name), katagaki="".join(katagaki))
    info = delivery(record)
    name_gaiji = sum(known(p)[0] for p in name)
    address_gaiji = sum(known(p)[0] for p in katagaki)
    expected = set(EMPTY_FOR_A_JAPANESE_RESIDENT)
    expected |= NAME_GAIJI if not name_gaiji else set()
    expected |= ADDRESS_GAIJI if not address_gaiji else set()
    expected |= {"gaiji_flag"} if not name_gaiji + address_gaiji else set()
    expected |= SUBSTITUTE["name"] if not any(known(p)[2] for p in name) else set()
    expected |= SUBSTITUTE["address"] if not any(known(p)[2] for p in katagaki) else set()
    assert unset(info) == expected
    assert (info.name_kanji_length, info.name_kanji_gaiji_count) == (len(name), name_gaiji)
    assert (info.delivery_name_kanji_length, info.delivery_name_kanji_gaiji_count) == (len(name), name_gaiji)
    assert info.address_gaiji_count == info.delivery_address_kanji_gaiji_count == address_gaiji
    assert info.address_length == len(C.characters(HOME)) + (len(katagaki) + 1 if katagaki else 0)
    assert info.gaiji_flag is bool(name_gaiji or address_gaiji)
    for sub in (info.substitute_name, info.substitute_address):
        sub.encode("euc_jis_2004")


def test_the_cs_holds_a_delivery_info_to_its_texts():
    """A 送付先情報 whose 外字数, 項目長 or 代替文字 is not what its texts give is refused under GAIJI_ITEMS (the CS checks it
    before holding it for the card system); one as delivery_info makes it passes."""
    import grpc
    from nodes.cs.checks import check_delivery_items
    from nodes.refusal import Violation
    record = records_pb2.ResidentRecord(resident_code="24727059608", name_kanji="髙橋 𠮷子", name_kana="タカハシ ヨシコ",
                                        address="神奈川県伊勢原市葛\U000E01001番地", postal_code="259-1100")
    good = delivery_info(record)
    check_delivery_items(good)
    for field, value in (("name_kanji_gaiji_count", 0), ("substitute_name", "髙橋 吉子"), ("address_length", 99),
                         ("gaiji_flag", False), ("substitute_conversion_result", "0")):
        bad = records_pb2.DeliveryInfo()
        bad.CopyFrom(good)
        setattr(bad, field, value)
        with pytest.raises(Violation) as caught:
            check_delivery_items(bad)
        assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT and caught.value.reason == "GAIJI_ITEMS"
        assert field in str(caught.value)
