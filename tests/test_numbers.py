"""Check digits (nodes/numbers.py, 地方公共団体コード) and identity parsing (certs/identity.py)."""
from __future__ import annotations

import pytest

from certs.identity import JUKINET, LAN, PLATFORM, IdentityError, local_government_code_valid, parse
from nodes.numbers import (
    individual_number_check_digit,
    individual_number_valid,
    resident_code_check_digit,
    resident_code_valid,
    with_individual_number_check,
    with_resident_code_check,
)

RESIDENT_CODE = "24727059608"
INDIVIDUAL_NUMBER = "123456789018"


def test_design_examples():
    """The worked examples of the design give the documented check digits."""
    assert with_resident_code_check("2472705960") == RESIDENT_CODE
    assert with_individual_number_check("12345678901") == INDIVIDUAL_NUMBER
    assert resident_code_valid(RESIDENT_CODE)
    assert individual_number_valid(INDIVIDUAL_NUMBER)


def test_remainder_zero_or_one_gives_check_zero():
    """A weighted sum with remainder 0 or 1 gives check digit 0, any other remainder r gives 11 - r."""
    assert resident_code_check_digit("0000000000") == 0  # r = 0
    assert resident_code_check_digit("0000000006") == 0  # 6*2 = 12, r = 1
    assert resident_code_check_digit("0000000005") == 1  # 5*2 = 10, r = 10
    assert resident_code_check_digit("1000000000") == 6  # 1*5 = 5 (leftmost weight 5)
    assert individual_number_check_digit("00000000001") == 9  # 1*2 = 2
    assert individual_number_check_digit("10000000000") == 5  # 1*6 = 6 (leftmost weight 6)


@pytest.mark.parametrize("code", ["140007", "142140", "142115", "131016"])
def test_local_government_codes_valid(code):
    """Codes of 神奈川県, 伊勢原市, 秦野市 and 千代田区 pass the check digit."""
    assert local_government_code_valid(code)


@pytest.mark.parametrize("code", ["140006", "142141", "142116", "142240", "131015"])
def test_local_government_code_changed_digit_invalid(code):
    """A code with one digit changed fails the check digit."""
    assert not local_government_code_valid(code)


@pytest.mark.parametrize("func,value", [
    (resident_code_valid, RESIDENT_CODE[:-1]), (resident_code_valid, RESIDENT_CODE + "0"),
    (resident_code_valid, "2472705960a"), (resident_code_valid, " 24727059608"), (resident_code_valid, ""),
    (resident_code_valid, RESIDENT_CODE + "\n"), (resident_code_valid, "-4727059608"),
    (individual_number_valid, INDIVIDUAL_NUMBER[:-1]), (individual_number_valid, INDIVIDUAL_NUMBER + "8"),
    (individual_number_valid, "12345678901x"), (individual_number_valid, RESIDENT_CODE),
    (local_government_code_valid, "14214"), (local_government_code_valid, "1421400"),
    (local_government_code_valid, "14214O"), (local_government_code_valid, "142140\n"),
])
def test_wrong_length_or_non_digits_refused(func, value):
    """Wrong lengths and non-digit characters are refused."""
    assert not func(value)


@pytest.mark.parametrize("func,value", [
    (resident_code_valid, RESIDENT_CODE), (individual_number_valid, INDIVIDUAL_NUMBER),
    (local_government_code_valid, "142140"),
])
def test_full_width_digits_refused(func, value):
    """A number written in full-width digits is not a valid number."""
    assert not func(value.translate(str.maketrans("0123456789", "０１２３４５６７８９")))


@pytest.mark.parametrize("valid,check,code", [
    (resident_code_valid, resident_code_check_digit, RESIDENT_CODE),
    (individual_number_valid, individual_number_check_digit, INDIVIDUAL_NUMBER),
])
def test_single_digit_changes_detected(valid, check, code):
    """Every single-digit substitution of the examples is invalid (check digit 8 comes from one remainder only)."""
    changed = 0
    for pos in range(len(code)):
        for digit in "0123456789":
            if digit == code[pos]:
                continue
            mutant = code[:pos] + digit + code[pos + 1:]
            if pos == len(code) - 1:
                assert not valid(mutant), mutant
            else:
                assert valid(mutant) == (check(mutant[:-1]) == int(mutant[-1])), mutant
                assert not valid(mutant), mutant
            changed += 1
    assert changed == 9 * len(code)


def test_check_digit_zero_substitution_limit():
    """With check digit 0, only base changes moving the remainder between 0 and 1 go unnoticed."""
    base = "0000000006"  # remainder 1 -> check 0
    code = with_resident_code_check(base)
    missed = [code[:p] + d + code[p + 1:] for p in range(10) for d in "0123456789"
              if d != code[p] and resident_code_valid(code[:p] + d + code[p + 1:])]
    assert missed
    weights = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)  # left to right
    for m in missed:
        assert sum(int(d) * w for d, w in zip(m[:10], weights)) % 11 in (0, 1), m


@pytest.mark.parametrize("path,kind,domain,municipality,prefecture,terminal", [
    ("lg/142140/kizon", "kizon", LAN, "142140", None, None),
    ("lg/142140/cs", "cs", JUKINET, "142140", None, None),
    ("lg/142115/atena", "atena", LAN, "142115", None, None),
    ("lg/142140/terminal/T0012", "terminal", LAN, "142140", None, "T0012"),
    ("pref/140007/server", "prefecture", JUKINET, None, "140007", None),
    ("jlis/national", "national", JUKINET, None, None, None),
    ("jlis/card", "card", JUKINET, None, None, None),
    ("platform/intermediate", "intermediate", PLATFORM, None, None, None),
    ("platform/infonws", "infonws", PLATFORM, None, None, None),
    ("ops/lan/monitor", "monitor", LAN, None, None, None),
    ("ops/jukinet/monitor", "monitor", JUKINET, None, None, None),
])
def test_parse_identities(path, kind, domain, municipality, prefecture, terminal):
    """Each identity form parses to its kind, trust domain and place."""
    uri = "spiffe://testbed.jp/" + path
    identity = parse(uri)
    assert (identity.uri, identity.path) == (uri, path)
    assert (identity.kind, identity.domain) == (kind, domain)
    assert (identity.municipality, identity.prefecture, identity.terminal) == (municipality, prefecture, terminal)


def test_prefecture_prefix_shared():
    """A municipality and its prefecture share the two-digit prefix; national systems have none."""
    assert parse("spiffe://testbed.jp/lg/142140/cs").prefecture_prefix == "14"
    assert parse("spiffe://testbed.jp/pref/140007/server").prefecture_prefix == "14"
    assert parse("spiffe://testbed.jp/lg/131016/cs").prefecture_prefix == "13"
    assert parse("spiffe://testbed.jp/jlis/national").prefecture_prefix is None


@pytest.mark.parametrize("uri", [
    "spiffe://evil.jp/lg/142140/kizon",
    "spiffe://testbed.jp.evil/lg/142140/kizon",
    "https://testbed.jp/lg/142140/kizon",
    "SPIFFE://testbed.jp/lg/142140/kizon",
    "lg/142140/kizon",
    "",
])
def test_parse_refuses_foreign_roots(uri):
    """An identity outside spiffe://testbed.jp/ raises IdentityError."""
    with pytest.raises(IdentityError):
        parse(uri)


@pytest.mark.parametrize("path", [
    "", "lg/142140/mayor", "lg/14214/kizon", "lg/1421400/kizon", "lg/142140/kizon/extra", "lg/142140/kizon\n",
    "lg/142140/terminal/", "lg/142140/terminal/T/1", "lg/142140/terminal/" + "T" * 33, "pref/140007",
    "pref/140007/server/x", "jlis/other", "platform/kizon", "ops/rogue/monitor", "ops/lan", "/lg/142140/kizon",
])
def test_parse_refuses_unknown_paths(path):
    """A path naming no known holder raises IdentityError (a ValueError)."""
    with pytest.raises(IdentityError):
        parse("spiffe://testbed.jp/" + path)
    assert issubclass(IdentityError, ValueError)


def test_parse_refuses_full_width_municipality():
    """A municipality code in full-width digits is not a testbed identity."""
    with pytest.raises(IdentityError):
        parse("spiffe://testbed.jp/lg/１４２１４０/kizon")
