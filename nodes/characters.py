"""Characters of the register: what a 外字 is, how many an item holds, and the 代替文字 for a receiver that cannot
show one (DESIGN §4, docs/characters.md).

The register's characters are those of ISO/IEC 10646 as 文字情報基盤 (MJ) uses them: variants as their own code
points (髙, 﨑, 德), characters outside the BMP (𠮷 U+20BB7) and variation sequences (葛 + U+E0100). The testbed's
readings, which the seed names without defining:

- the common set (基本文字) is JIS X 0208 with ASCII and the half-width katakana of JIS X 0201: what every
  receiver of 住基ネット shows;
- a 外字 is a character outside it: a JIS X 0213 character not in JIS X 0208, a character of neither, a
  variation sequence (the base and its selector are one character), or a private-use code (an unidentified
  vendor 外字); 外字数 counts them per item, 外字フラグ is set when any item of the record holds one;
- a receiver that shows only JIS X 0213 gets a 代替文字 for each character outside it (the 縮退 map below; a
  variation sequence falls back to its base; none known: 〓), with the positions replaced.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache

GETA = "〓"  # put where a character has no 代替文字 (the customary 下駄記号)
PRIVATE_USE = range(0xE000, 0xF900)  # the BMP's private-use area: where vendor 外字 live
CP932_USER_AREA = range(0xE000, 0xE758)  # what CP932 maps its user-defined area F040–F9FC to
VARIATION_SELECTORS = (range(0xFE00, 0xFE10), range(0xE0100, 0xE01F0))

# 縮退 map: a 代替文字 for characters outside JIS X 0213 (one to one here; a map may give several or none).
DEGENERATE = {
    "髙": "高", "𠮷": "吉", "𣘺": "橋", "𡌛": "坪", "𠩤": "原", "𦚰": "脇", "𨺉": "隆", "鄧": "登",
}

# Characters a test or a generator takes as examples, with what each is (docs/characters.md lists them).
SAMPLES = {
    "髙": "はしごだか: CP932 (IBM 拡張) but neither JIS X 0208 nor JIS X 0213; 代替文字 高",
    "﨑": "たつさき: JIS X 0213, not JIS X 0208",
    "德": "JIS X 0213, not JIS X 0208",
    "濵": "JIS X 0213, not JIS X 0208",
    "邊": "異体字 in JIS X 0208: not a 外字",
    "邉": "異体字 in JIS X 0208: not a 外字",
    "𠮷": "つちよし U+20BB7: outside the BMP, outside JIS X 0213; 代替文字 吉",
    "𩸽": "U+29E3D: outside the BMP, in JIS X 0213",
    "葛\U000E0100": "葛 with IVS U+E0100: a variation sequence, one 外字; 代替文字 葛",
}


@lru_cache(maxsize=None)
def _in_codec(char: str, codec: str) -> bool:
    try:
        char.encode(codec)
        return True
    except UnicodeEncodeError:
        return False


def in_common_set(char: str) -> bool:
    """Is this one character (a code point, no selector) of the common set (JIS X 0208, ASCII, JIS X 0201 kana)?"""
    return _in_codec(char, "shift_jis")


def in_jisx0213(char: str) -> bool:
    """Can a receiver that shows JIS X 0213 (with the common set) show this character?"""
    return _in_codec(char, "euc_jis_2004")


def is_selector(char: str) -> bool:
    """A variation selector (standardized or IVS): it belongs to the character before it."""
    code = ord(char)
    return any(code in r for r in VARIATION_SELECTORS)


def characters(text: str) -> list[str]:
    """The characters of a text as the register counts them: each code point with the selectors that follow it."""
    out: list[str] = []
    for char in text:
        if out and is_selector(char):
            out[-1] += char
        else:
            out.append(char)
    return out


def is_gaiji(character: str) -> bool:
    """Is this character (as `characters` gives it) a 外字: outside the common set, with a selector, or private-use?"""
    return len(character) > 1 or not in_common_set(character)


_COMMON_ASCII = frozenset(chr(c) for c in range(0x20, 0x7F))


def gaiji_count(text: str) -> int:
    """外字数 of an item: how many of its characters are 外字."""
    if not text or (text.isascii() and set(text) <= _COMMON_ASCII):
        return 0
    if all(in_common_set(c) for c in text):  # the common case: no 外字, no selector (selectors are not in it)
        return 0
    return sum(1 for c in characters(text) if is_gaiji(c))


def kind(character: str) -> str:
    """What a 外字 is: variation sequence, private-use (vendor), JIS X 0213, or outside JIS X 0213."""
    if len(character) > 1:
        return "variation sequence"
    if ord(character) in PRIVATE_USE:
        return "private-use"
    return "JIS X 0213" if in_jisx0213(character) else "outside JIS X 0213"


@dataclass(frozen=True)
class Substitution:
    """A text as a receiver that shows only JIS X 0213 gets it: the text, the 1-based positions replaced (in the
    characters of the text), and whether every character had a 代替文字."""

    text: str
    positions: tuple[int, ...]
    complete: bool

    @property
    def result(self) -> str:
        """代替文字変換結果 (the testbed's codes): 0 none needed, 1 every character replaced, 2 some by 〓."""
        return "0" if not self.positions else ("1" if self.complete else "2")

    @property
    def positions_text(self) -> str:
        """代替文字位置情報: the positions, comma-separated."""
        return ",".join(str(p) for p in self.positions)


def substitute_char(character: str) -> str | None:
    """The 代替文字 of one character outside JIS X 0213 (its base for a variation sequence), or None."""
    base = character[0]
    if len(character) > 1 and in_jisx0213(base) and not is_selector(base):
        return base
    found = DEGENERATE.get(base)
    return found if found and all(in_jisx0213(c) for c in found) else None


def substitute(text: str) -> Substitution:
    """The text for a receiver that shows only JIS X 0213: each character outside it replaced by its 代替文字
    (〓 where none is known)."""
    out, positions, complete = [], [], True
    for position, character in enumerate(characters(text), start=1):
        if len(character) == 1 and in_jisx0213(character) and ord(character) not in PRIVATE_USE:
            out.append(character)
            continue
        found = substitute_char(character)
        if found is None:
            found, complete = GETA, False
        out.append(found)
        positions.append(position)
    return Substitution("".join(out), tuple(positions), complete)


def pattern(*texts: str) -> str:
    """外字パターン (the testbed's reading): one digit per item given: 0 no 外字, 1 外字 a JIS X 0213 receiver shows,
    2 代替文字 needed and known, 3 a character with none."""
    digits = []
    for text in texts:
        if not gaiji_count(text):
            digits.append("0")
            continue
        s = substitute(text)
        digits.append("1" if not s.positions else ("2" if s.complete else "3"))
    return "".join(digits)


def kana_seion(kana: str) -> str:
    """清音化かな氏名: the reading without 濁点 and 半濁点, small kana written large."""
    decomposed = unicodedata.normalize("NFD", kana)
    plain = "".join(c for c in decomposed if c not in "\u3099\u309a")
    return unicodedata.normalize("NFC", plain).translate(_SMALL)


_SMALL = str.maketrans("ァィゥェォッャュョヮヵヶぁぃぅぇぉっゃゅょゎ", "アイウエオツヤユヨワカケあいうえおつやゆよわ")
