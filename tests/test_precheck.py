"""The migration precheck (移行前のデータクレンジング): every rule finds every record planted for it and nothing on a clean
population; the rules on an item's form read every history entry, the others the latest; and on the live network the
precheck reads the register without freezing it and finds a 住民票 that differs from the CS."""
from __future__ import annotations

import json
import sqlite3

import pytest

from helpers import move_in_from_abroad, person, poll
from nodes.numbers import with_individual_number_check
from nodes.records import identity_info, register_digest
from protos import migration_pb2, records_pb2
from scenarios.characters import make_plain
from scenarios.population import AS_OF, generate
from testbed.client import Counter
from testbed.migration import layout
from testbed.migration.plant import PLANTABLE, plant
from testbed.migration.precheck import (BY_ID, RULES, TARGETS, PrecheckError, check_records, from_export, from_network,
                                       latest_entries)

A = "142140"
PLACE = "神奈川県伊勢原市"
TODAY = AS_OF.isoformat()  # the population's reference date: its dates are all on or before it
WARNINGS = {r.id for r in RULES if r.warning}


def register(count: int = 3000, seed: int = 3) -> list[records_pb2.ResidentRecord]:
    """A generated population as kizon holds it: each person with a 宛名番号, a 個人番号 and a first history entry."""
    records, _ = generate(A, PLACE, count, seed=seed)
    for n, record in enumerate(records, start=1):
        record.atena_number = f"{n:015d}"
        record.history_number = 1
        record.individual_number = with_individual_number_check(f"{n:011d}")
        # (the generator gives a few residents a vendor 外字 no one has identified: a register made clean of them)
        make_plain(record)
    return records


def cs_of(records) -> dict[str, bytes]:
    """The CS's register_digest of each person, as the CS computes it from its 本人確認情報."""
    return {r.resident_code: register_digest(identity_info(r)) for r in latest_entries(records)}


@pytest.fixture(scope="module")
def clean():
    """A clean register of 3,000 and its CS."""
    records = register()
    return records, cs_of(records)


def failing(result) -> dict[str, list]:
    """The findings of the rules that fail a migration, by rule (those with any)."""
    return {rule: found for rule, found in result.findings.items() if found and rule not in WARNINGS}


def test_a_clean_population_fails_no_rule(clean):
    """Nothing fails; every current resident whose 振り仮名 is not yet confirmed is warned, and is not once confirmed."""
    records, cs = clean
    result = check_records(A, records, cs, today=TODAY)
    assert result.ok and not failing(result), {k: v[:3] for k, v in failing(result).items()}
    unconfirmed = [r for r in records if not r.name_kana_confirmed]
    assert 0 < result.count("reading-unconfirmed") == len(unconfirmed) < len(records) == result.people == result.entries
    for record in unconfirmed:
        record.name_kana_confirmed = True
    try:
        assert check_records(A, records, cs, today=TODAY).warnings == 0
    finally:
        for record in unconfirmed:
            record.name_kana_confirmed = False


@pytest.mark.parametrize("rate", [0.004, 0.05])
@pytest.mark.parametrize("rule", list(PLANTABLE))
def test_every_planted_record_is_found(clean, rule, rate):
    """Each rule, planted alone, finds exactly the planted records; no other rule finds any, but kizon-cs-difference
    finds the planted records whose REGISTER_ITEMS the breaking changed."""
    records, cs = clean
    broken, planted = plant(records, {rule: rate}, seed=11)
    assert planted, "the rate planted nothing"
    result = check_records(A, broken, cs, today=TODAY)
    atena_of = {r.resident_code: r.atena_number for r in records}  # (a CS-only finding names the old 住民票コード)
    household_of = {r.atena_number: r.household_number for r in broken}

    def who(finding) -> str:
        return finding.atena_number or atena_of[finding.resident_code]

    if rule == "household-without-head":  # found by household: the finding names a member, not the former head
        assert {household_of[who(f)] for f in result.findings[rule]} == {p.household_number for p in planted}
        assert result.count(rule) == len(planted)
    else:
        assert sorted(who(f) for f in result.findings[rule]) == sorted(p.atena_number for p in planted)
    touched = {p.atena_number for p in planted}
    for other, found in failing(result).items():
        if other != rule:
            assert other == "kizon-cs-difference" and {who(f) for f in found} <= touched, (other, found[:3])


def test_all_rules_planted_together_are_all_found(clean):
    """Every rule planted at once, at its own rate: each planted record is among its rule's findings."""
    records, cs = clean
    rates = dict(zip(PLANTABLE, (0.02, 0.01, 0.03, 0.005, 0.01, 0.04, 0.02, 0.015, 0.025)))
    broken, planted = plant(records, rates, seed=5)
    result = check_records(A, broken, cs, today=TODAY)
    household_of = {r.atena_number: r.household_number for r in broken}
    for p in planted:
        found = result.findings[p.rule]
        if p.rule == "household-without-head":
            assert p.household_number in {household_of[f.atena_number] for f in found}, p
        else:
            assert p.atena_number in {f.atena_number for f in found}, p
    counts = {rule: sum(1 for p in planted if p.rule == rule) for rule in PLANTABLE}
    assert counts["resident-code"] == round(0.01 * len(records)) and counts["kizon-cs-difference"] == 75


def test_planting_is_deterministic_and_leaves_the_input_alone(clean):
    """The same seed plants the same records the same way; another seed others; the input is not changed."""
    records, _ = clean
    before = [r.SerializeToString() for r in records]
    rates = {"reading-missing": 0.05, "dates-out-of-order": 0.05, "household-without-head": 0.05}
    first, planted = plant(records, rates, seed=1)
    again, planted_again = plant(records, rates, seed=1)
    _, other = plant(records, rates, seed=2)
    assert planted == planted_again and [r.SerializeToString() for r in first] == [r.SerializeToString() for r in again]
    assert {p.atena_number for p in other} != {p.atena_number for p in planted}
    assert [r.SerializeToString() for r in records] == before


@pytest.mark.parametrize("rates", [{"no-such-rule": 0.1}, {"sex-code": 1.5}, {"sex-code": -0.1},
                                   {"sex-code": float("nan")}, {"reading-unconfirmed": 0.1}])
def test_plant_refuses_an_unknown_rule_or_a_rate_outside_0_to_1(clean, rates):
    """A ValueError that lists the rules that can be planted."""
    with pytest.raises(ValueError) as refused:
        plant(clean[0], rates, seed=1)
    assert all(rule in str(refused.value) for rule in PLANTABLE), str(refused.value)


def test_rules_on_an_items_form_read_every_entry_the_others_the_latest(clean):
    """An older entry with a vendor 外字 and a bad 性別 is found; its 町字 (since renamed) and missing reading are not."""
    records, cs = clean
    first = records[0]
    older = records_pb2.ResidentRecord()
    older.CopyFrom(first)
    older.history_number, first.history_number = 1, 2
    older.name_kanji, older.sex, older.town_code, older.name_kana = first.name_kanji + "\ue000", "0", "999999", ""
    try:
        result = check_records(A, [older] + records, cs, today=TODAY)
        assert [(f.atena_number, f.history_number) for f in result.findings["characters-outside-target"]] == \
            [(first.atena_number, 1)]
        assert [(f.atena_number, f.history_number) for f in result.findings["sex-code"]] == [(first.atena_number, 1)]
        assert not result.findings["town-code"] and not result.findings["reading-missing"]
        assert result.entries == len(records) + 1 and result.people == len(records)
        assert all(BY_ID[rule].every_entry for rule in ("characters-outside-target", "sex-code", "resident-code"))
    finally:
        first.history_number = 1


def test_the_target_decides_which_characters_fail(clean):
    """A private-use 外字 fails either target; 𠀀 (outside JIS X 0213, no 代替文字) fails jisx0213 only; 𠮷 (代替文字 吉)
    and 葛 with an IVS (its base) fail neither."""
    records, _ = clean
    people = [records_pb2.ResidentRecord() for _ in range(4)]
    for p, name in zip(people, ("\ue123 太郎", "𠀀 花子", "𠮷田 一", "葛\U000E0100城 二")):
        p.CopyFrom(records[0])
        p.atena_number, p.resident_code, p.name_kanji = name, name, name
    found = {target: {f.atena_number for f in check_records(A, people, None, target, today=TODAY)
                      .findings["characters-outside-target"]} for target in TARGETS}
    assert found == {"jisx0213": {"\ue123 太郎", "𠀀 花子"}, "mj": {"\ue123 太郎"}}
    with pytest.raises(ValueError, match="jisx0213, mj"):
        check_records(A, people, None, "cp932")


def test_the_table_shows_examples_and_the_json_every_finding(clean):
    """The table: one line per rule with its count and at most three examples; the JSON: every finding."""
    records, cs = clean
    broken, planted = plant(records, {"sex-code": 0.01, "town-code": 0.01}, seed=3)
    result = check_records(A, broken, None, today=TODAY)
    lines = result.table()
    assert f"{len(planted)} findings would fail" in lines[0]
    sex = next(line for line in lines if line.strip().startswith("sex-code"))
    assert f" {result.count('sex-code')} " in sex and sex.count(" sex: ") == 3 and "more" in sex
    assert any("kizon-cs-difference" in line and "not checked" in line for line in lines)
    data = json.loads(json.dumps(result.as_dict(), ensure_ascii=False))
    by_rule = {r["id"]: r for r in data["rules"]}
    assert len(by_rule["sex-code"]["findings"]) == by_rule["sex-code"]["count"] == 30
    assert by_rule["kizon-cs-difference"]["checked"] is False and data["ok"] is False


def test_an_export_in_the_migration_layout_is_checked_as_its_records(clean, tmp_path):
    """Planted records written in the testbed's migration layout and read back: the same findings as in memory."""
    records, _ = clean
    broken, planted = plant(records, {rule: 0.01 for rule in PLANTABLE if rule != "kizon-cs-difference"}, seed=9)
    items = [("kizon", migration_pb2.MigrationItem(history=r)) for r in broken]
    entries = [layout.write_file(tmp_path, spec, layout.rows_of(items, spec)) for spec in layout.FILES]
    layout.write_manifest(tmp_path, entries, {"municipality": A})
    result = from_export(tmp_path, A, today=TODAY)
    expected = check_records(A, broken, None, today=TODAY)
    assert {k: len(v) for k, v in result.findings.items()} == {k: len(v) for k, v in expected.findings.items()}
    assert result.source["kind"] == "export" and not result.compared_with_cs
    with pytest.raises(PrecheckError, match="not 142115"):
        from_export(tmp_path, "142115")


# -- the live network ----------------------------------------------------------------------------------------
def test_from_network_reads_without_freezing_and_finds_a_difference(network):
    """A few new residents pass every rule; the site is not frozen by the precheck; a 本人確認情報 changed in the CS's
    store (put back after) is found as a kizon-cs-difference naming the item."""
    B = "142115"
    with Counter(network, B) as counter:
        people = [move_in_from_abroad(counter, person(f"移行 {n}", "イコウ テスト")) for n in range(3)]
    ours = {p.resident_code for p in people}

    def settled():
        result = from_network(network, B)
        return result if not any(f.resident_code in ours for f in result.findings["kizon-cs-difference"]) else None

    result = poll(settled, timeout=30, what="the CS to hold the new residents")
    assert result.source["site"]["frozen"] is False and result.source["kind"] == "network"
    for rule, found in failing(result).items():
        assert not [f for f in found if f.resident_code in ours], (rule, found[:3])
    assert result.people >= 3 and result.compared_with_cs
    store = network.state_dir / "data" / f"cs-{B}" / "store.sqlite"
    target = people[0].resident_code
    with sqlite3.connect(store, timeout=10) as db:
        blob, = db.execute("SELECT info FROM identity WHERE resident_code=?", (target,)).fetchone()
    info = records_pb2.IdentityInfo.FromString(blob)
    info.name_kanji = "移行 改"
    try:
        with sqlite3.connect(store, timeout=10) as db:
            db.execute("UPDATE identity SET info=? WHERE resident_code=?", (info.SerializeToString(), target))
        found = [f for f in from_network(network, B).findings["kizon-cs-difference"] if f.resident_code == target]
        assert [f.item for f in found] == ["name_kanji"], found
    finally:
        with sqlite3.connect(store, timeout=10) as db:
            db.execute("UPDATE identity SET info=? WHERE resident_code=?", (blob, target))
    assert not from_network(network, B).source["site"]["frozen"]
