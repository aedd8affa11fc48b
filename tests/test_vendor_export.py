"""A foreign vendor's export (testbed/migration/intermediate/, 中間標準レイアウト): a generated register with 外字 goes
out in CP932 and in UTF-8 and comes back field for field; the CP932 files are CP932, with the vendor's 外字 in the
user-defined area; each kind of bad file is refused naming its file, line, item and rule; the command prints one
line; the document is the layout's. Fast: no network."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from nodes.rules import DEFAULT_LENGTH, ITEM_LENGTHS
from protos import records_pb2
from scenarios.characters import make_plain
from scenarios.population import Generator
from testbed import cli
from testbed.load import place_name
from testbed.migration import intermediate as vendor
from testbed.migration.layout import CODE_LENGTHS, file_digest
from testbed.topology import Topology

ROOT = Path(__file__).resolve().parent.parent
A = "142140"
IVS = "葛\U000E0100"
UNIDENTIFIED = "\ue010"  # a vendor 外字 no one has identified
TABLE = (
    vendor.TableEntry("\ue000", "F040", "はしごだか", "髙"),
    vendor.TableEntry("\ue001", "F041", "たつさき", "﨑"),
    vendor.TableEntry("\ue002", "F042", "德 (心の上に一)", "德"),
    vendor.TableEntry("\ue003", "F043", "つちよし", "𠮷"),
    vendor.TableEntry("\ue004", "F044", "葛 (IVS U+E0100)", IVS),
    vendor.TableEntry(UNIDENTIFIED, "F050", "未同定の外字 (髙の異体?)", ""),  # (its 説明 holds a 外字 of the table)
)
REMOVED = records_pb2.ResidentRecord.STATUS_REMOVED


def full_record(atena: str, history: int) -> records_pb2.ResidentRecord:
    """A history entry with every field the layout carries set (a foreign resident's 除票)."""
    return records_pb2.ResidentRecord(
        municipality_code=A, atena_number=atena, history_number=history, is_latest=True, household_number="0000099999",
        resident_type="外国人住民", resident_code="12345678901", individual_number="123456789012",
        name_kanji="NGUYEN VAN AN", name_kana="グエン ヴァン アン", name_romaji="NGUYEN VAN AN",
        former_surname_kanji="髙田", former_surname_kana="タカダ", alias_kanji="𠮷野 一郎", alias_kana="ヨシノ イチロウ",
        birth_date="1990-02-28", sex="1", relationship="妻の連れ子", householder_name="﨑山 花子", town_code="001000",
        address_line="1番2号", katagaki="コーポ德 101", postal_code="259-1113", address=f"神奈川県伊勢原市{IVS}1番2号",
        honseki="", hittousha="", article_30_45_category="中長期在留者", residence_status="技能実習",
        residence_card_number="AB12345678CD", nationality="VNM", residence_period_expiry_date="2027-03-31",
        resident_since="2020-04-01", address_since="2021-05-06", change_reason="出国", change_date="2026-03-01",
        notification_date="2026-03-02", previous_municipality_code="131016", previous_address="東京都千代田区〒一番町",
        move_out_destination_planned="ベトナム", move_out_destination_confirmed="ベトナム ハノイ",
        planned_move_out_date="2026-03-01", removal_reason="出国", removal_date="2026-03-01", elector=True,
        national_health_insurance=True, late_stage_elderly=True, long_term_care=True, national_pension=True,
        child_allowance=True, status=REMOVED, card_issued=True, request_control_number="0123abcd" * 4 + ":0",
        operator_id="OP0001", terminal_id="T0001", recorded_at="2026-03-02T01:02:03+00:00",
        change_reason_detail=f"法務省通知 {UNIDENTIFIED}", name_kana_confirmed=True)


@pytest.fixture(scope="module")
def register() -> list:
    """300 generated residents as a vendor holds them, with the 外字 samples, an unidentified 外字, a second history
    entry and a record with every item set."""
    records = vendor.as_vendor_register(Generator(A, place_name(Topology.load(), A), seed=5).residents(300))
    for record in records:  # (the population's own 外字 are other tests' business: only the samples here)
        make_plain(record)
    records[0].name_kanji = "髙橋 一郎"
    records[1].name_kanji = "山﨑 花子"
    records[2].householder_name = "德川 家康"
    records[3].name_kanji = "𠮷田 太郎"
    records[4].address += IVS
    records[5].katagaki = f"コーポ{UNIDENTIFIED}"
    records[6].relationship = "孫の妻"  # (no code of its own: 99, written out)
    earlier = records_pb2.ResidentRecord()
    earlier.CopyFrom(records[7])
    earlier.is_latest, records[7].history_number = False, 2
    records[7].change_reason = "転居"
    return records + [earlier, full_record("000000000099999", 1)]


def written(tmp_path: Path, register, encoding: str = "cp932", table=TABLE) -> Path:
    folder = tmp_path / f"export-{encoding}"
    vendor.write_export(folder, A, register, table, encoding)
    return folder


@pytest.mark.parametrize("encoding", ["cp932", "utf-8"])
def test_round_trip(tmp_path, register, encoding):
    """Every record comes back as it went out, byte for byte in every item (protobuf equality), with the 外字 of the
    samples identified and the unidentified one kept; written again, the files are the same bytes."""
    folder = written(tmp_path, register, encoding)
    imported = vendor.read_export(folder)
    assert len(imported.records) == len(register)
    for got, want in zip(imported.records, register):
        assert got == want, (got.atena_number, got.history_number)
    assert imported.table == TABLE
    assert imported.manifest["文字コード"] == {"cp932": "CP932", "utf-8": "UTF-8"}[encoding]
    work = imported.characters
    by_code = {u.code: u for u in work.examples}
    assert work.unmapped_codes == [UNIDENTIFIED]
    assert by_code["\ue003"].standard == "𠮷" and by_code["\ue003"].items == {"氏名", "通称"}
    assert by_code["\ue004"].items == {"住所"} and by_code["\ue004"].count == 2
    assert ("000000000000006", register[5].resident_code) in by_code[UNIDENTIFIED].records
    assert work.unmapped == by_code[UNIDENTIFIED].count == 2  # (方書 and the full record's 異動事由詳細)
    assert work.mapped == sum(u.count for u in work.examples if u.standard)
    json.dumps(work.as_dict(), ensure_ascii=False)  # (what a report takes)
    again = vendor.write_export(tmp_path / "again", A, imported.records, imported.table, encoding)
    for entry in again["files"]:
        assert (tmp_path / "again" / entry["name"]).read_bytes() == (folder / entry["name"]).read_bytes(), entry["name"]


def test_cp932_files_are_cp932(tmp_path, register):
    """The CP932 files decode as CP932 (not UTF-8); the vendor's 外字 are its user-defined codes (F040 …), also for
    a character CP932 has (髙 EEE0), and 𠮷 and 葛 with its IVS, which CP932 cannot hold, arrive as theirs."""
    folder = written(tmp_path, register)
    data = (folder / "個人.csv").read_bytes()
    text = data.decode("cp932")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    assert b"\xf0\x40\x8b\xb4" in data  # 髙橋: F040 then 橋
    assert "髙".encode("cp932") not in data and "𠮷".encode("utf-8") not in data
    assert "\ue003田 太郎" in text and "\ue004" in text and "\ue010" in text
    assert b"\xf0\x50" in data  # the unidentified 外字, as itself
    assert data.startswith("市区町村コード,宛名番号".encode("cp932")) and data.count(b"\r\n") == len(register) + 1
    gaiji = (folder / "外字.csv").read_bytes().decode("cp932").splitlines()
    assert gaiji[4] == "F043,U+E003,つちよし,U+20BB7" and gaiji[5] == "F044,U+E004,葛 (IVS U+E0100),U+845B U+E0100"
    utf8 = (written(tmp_path, register, "utf-8") / "個人.csv").read_bytes()
    assert "\ue000橋".encode("utf-8") in utf8 and "𠮷".encode("utf-8") not in utf8  # (the vendor's codes in UTF-8 too)


def test_what_cannot_be_written(tmp_path, register):
    """A character CP932 cannot hold and the table does not list, one CP932 would change, and a private-use character
    the table does not list are refused naming the record and item; UTF-8 holds what CP932 cannot."""
    person = register[4]
    plain = tuple(e for e in TABLE if e.standard != IVS)
    with pytest.raises(vendor.VendorExportError, match=f"住民票コード {person.resident_code} .*: 住所 holds 葛.* "
                                                       "U\\+845B U\\+E0100, which CP932 cannot encode"):
        vendor.write_export(tmp_path / "a", A, [person], plain, "cp932")
    vendor.write_export(tmp_path / "b", A, [person], plain, "utf-8")
    assert vendor.read_export(tmp_path / "b").records == [person]
    wave = records_pb2.ResidentRecord()
    wave.CopyFrom(register[10])
    wave.address_line = "1〜3番"
    with pytest.raises(vendor.VendorExportError, match="住所_番地号表記 holds 〜 U\\+301C, which CP932 writes as 8160 "
                                                       "and reads back as ～"):
        vendor.write_export(tmp_path / "c", A, [wave], TABLE, "cp932")
    stray = records_pb2.ResidentRecord()
    stray.CopyFrom(register[10])
    stray.name_kanji += "\ue123"
    for encoding in ("cp932", "utf-8"):
        with pytest.raises(vendor.VendorExportError, match="氏名 holds the private-use character U\\+E123, which the "
                                                           "vendor's 外字 table does not list"):
            vendor.write_export(tmp_path / "d", A, [stray], TABLE, encoding)
    assert vendor.with_register_gaiji(TABLE, [stray])[-1] == vendor.TableEntry("\ue123", "F1A8", "未同定の外字", "")
    unknown = records_pb2.ResidentRecord()
    unknown.CopyFrom(register[10])
    unknown.change_reason = "失踪宣告"
    with pytest.raises(vendor.VendorExportError, match="異動事由コード '失踪宣告' has no code in コード表 異動事由"):
        vendor.write_export(tmp_path / "e", A, [unknown], TABLE)
    with pytest.raises(vendor.VendorExportError, match="外字コード 'F041' is not U\\+E000"):
        vendor.write_export(tmp_path / "f", A, [], (vendor.TableEntry("\ue000", "F041", "", "髙"),))


# -- refusals ----------------------------------------------------------------------------------------------------
def edited(folder: Path, name: str, line: int, edit, *, manifest: bool = True, records: int = 0) -> None:
    """Change one line (1-based, bytes without its CRLF) of an export's file; the manifest follows (its size and
    digest, and records by the given difference) unless told not to."""
    path = folder / name
    lines = path.read_bytes().split(b"\r\n")
    lines[line - 1] = edit(lines[line - 1])
    path.write_bytes(b"\r\n".join(lines))
    if manifest:
        listed = json.loads((folder / vendor.MANIFEST).read_text("utf-8"))
        entry = next(f for f in listed["files"] if f["name"] == name)
        entry.update(bytes=path.stat().st_size, sha256=file_digest(path), records=entry["records"] + records)
        (folder / vendor.MANIFEST).write_text(json.dumps(listed, ensure_ascii=False), "utf-8")


def cell(n: int, value: str):
    """An edit that sets the n-th item (1-based) of a CP932 line."""
    def edit(line: bytes) -> bytes:
        cells = line.decode("cp932").split(",")
        cells[n - 1] = value
        return ",".join(cells).encode("cp932")
    return edit


PERSON = {i.name: n for n, i in enumerate(vendor.PERSON.items, 1)}
BAD = {
    "not a date": ("個人.csv", 14, cell(PERSON["生年月日"], "20261301"),
                   "個人.csv line 14: 生年月日 '20261301' is not a date (rule: D YYYYMMDD)"),
    "unknown code": ("個人.csv", 20, cell(PERSON["続柄コード"], "77"),
                     "個人.csv line 20: 続柄コード '77' is not a code of コード表 続柄 (rule: C コード表_続柄.csv)"),
    "not a number": ("個人.csv", 3, cell(PERSON["住民票コード"], "1234567890X"),
                     "個人.csv line 3: 住民票コード '1234567890X' is not a number (rule: 9 digits 0-9, at most 11)"),
    "too long": ("個人.csv", 3, cell(PERSON["住所_方書"], "あ" * 61),
                 "個人.csv line 3: 住所_方書 '" + "あ" * 61 + "' has 61 characters (rule: X at most 60)"),
    "required": ("個人.csv", 5, cell(PERSON["氏名"], ""), "個人.csv line 5: 氏名 '' is empty (rule: required)"),
    "not a flag": ("個人.csv", 6, cell(PERSON["最新フラグ"], "Y"),
                   "個人.csv line 6: 最新フラグ 'Y' is not a flag (rule: F 1 or 0)"),
    "wrong header": ("個人.csv", 1, lambda line: line.replace("氏名_振り仮名".encode("cp932"), "カナ氏名".encode("cp932")),
                     "個人.csv line 1: the header is not the items of intermediate-juki 1.0: item 11 is 'カナ氏名', "
                     "not 氏名_振り仮名 (rule: header of item names)"),
    "not CSV": ("個人.csv", 5, lambda line: line.replace(b",", b',"abc', 1),
                "個人.csv line 5: not CSV (unexpected end of data) (rule: RFC 4180, one record a line)"),
    "item count": ("個人.csv", 9, lambda line: line + b",extra",
                   "個人.csv line 9: 65 items, not 64 (rule: every record has the items of the header)"),
    "外字 not in the table": ("個人.csv", 4, cell(PERSON["氏名"], "山\ue700"),
                             "個人.csv line 4: 氏名 holds U+E700, a 外字 code 外字.csv does not list (rule: every 外字 "
                             "of the files is in the 外字 table)"),
    "bytes not CP932": ("個人.csv", 7, lambda line: line.replace(b",", b",\x85\x40", 1),
                        "個人.csv line 7: 宛名番号 bytes 85 are not CP932 (rule: 文字コード CP932 of the manifest)"),
    "another municipality": ("個人.csv", 8, cell(PERSON["市区町村コード"], "142115"),
                             "個人.csv line 8: 市区町村コード '142115' is not the manifest's municipality 142140 "
                             "(rule: one municipality an export)"),
    "99 without 続柄表記": ("個人.csv", 9, lambda line: cell(PERSON["続柄表記"], "")(cell(PERSON["続柄コード"], "99")(line)),
                         "個人.csv line 9: 続柄表記 '' is empty with 続柄コード 99 (rule: 続柄表記 written out with 99)"),
    "code table": ("コード表_続柄.csv", 3, lambda line: "02,夫".encode("cp932"),
                   "コード表_続柄.csv line 3: コード '02' is 妻 in intermediate-juki 1.0, not 夫 (rule: コード表 続柄 of "
                   "the layout)"),
    "外字 table": ("外字.csv", 3, lambda line: line.replace(b"U+E001", b"U+E002"),
                   "外字.csv line 3: Unicode 'U+E002' is not the character of 外字コード F041 (U+E001) (rule: 外字コード "
                   "and Unicode name one character)"),
    "同定文字": ("外字.csv", 2, lambda line: line.replace(b"U+9AD9", b"U+E005"),
                "外字.csv line 2: 同定文字 'U+E005' is not one standard character (rule: 同定文字 as UCS code points"),
    "世帯": ("世帯.csv", 2, cell(5, "7"), "世帯.csv line 2: 世帯員数 '7' is not"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_files_are_refused(tmp_path, register, case):
    """Each kind of bad row is refused with its file, line, item and rule."""
    name, line, edit, message = BAD[case]
    folder = written(tmp_path, register)
    edited(folder, name, line, edit)
    with pytest.raises(vendor.VendorExportError) as refused:
        vendor.read_export(folder)
    assert str(refused.value).startswith(message), str(refused.value)


def test_manifest_refusals(tmp_path, register):
    """A file changed after the export (digest), a count that is not the manifest's, a file missing, another layout."""
    folder = written(tmp_path, register)
    edited(folder, "個人.csv", 5, cell(PERSON["氏名"], "改竄 太郎"), manifest=False)
    with pytest.raises(vendor.VendorExportError, match="^個人.csv: its size or SHA-256 is not the manifest's"):
        vendor.read_export(folder)
    folder = written(tmp_path, register)
    edited(folder, "個人.csv", 5, lambda line: line, records=+1)
    with pytest.raises(vendor.VendorExportError, match=f"^個人.csv: {len(register)} records, the manifest says "
                                                       f"{len(register) + 1} \\(rule: records of the manifest\\)"):
        vendor.read_export(folder)
    (folder / "世帯.csv").unlink()
    with pytest.raises(vendor.VendorExportError, match="^世帯.csv: missing"):
        vendor.read_export(folder)
    listed = json.loads((folder / vendor.MANIFEST).read_text("utf-8"))
    (folder / vendor.MANIFEST).write_text(json.dumps({**listed, "version": "2.0"}), "utf-8")
    with pytest.raises(vendor.VendorExportError, match="^manifest.json: layout intermediate-juki 2.0 is not "
                                                       "intermediate-juki 1.0"):
        vendor.read_export(folder)


def test_utf8_bytes_refused_by_line(tmp_path, register):
    """In a UTF-8 export, bytes that are not UTF-8 are refused with their line."""
    folder = written(tmp_path, register, "utf-8")
    edited(folder, "個人.csv", 12, lambda line: b",".join(line.split(b",", 2)[:2] + [b"\xff" + line.split(b",", 2)[2]]))
    with pytest.raises(vendor.VendorExportError, match="^個人.csv line 12: 個人履歴番号 bytes FF are not UTF-8"):
        vendor.read_export(folder)


# -- the layout --------------------------------------------------------------------------------------------------
def test_layout_carries_the_register():
    """Every ResidentRecord field but those named as not carried is an item of 個人.csv, each text item at least as
    long as the register lets it be."""
    fields = {f.name for f in records_pb2.ResidentRecord.DESCRIPTOR.fields}
    carried = {i.field.split(".")[0] for i in vendor.PERSON.items}
    assert fields - carried == set(vendor.NOT_CARRIED) and carried <= fields
    for item in vendor.PERSON.items:
        if item.type == "X" and "." not in item.field:
            limit = CODE_LENGTHS.get(item.field) or ITEM_LENGTHS.get(item.field, DEFAULT_LENGTH)
            assert item.length >= limit, item.name


def test_docs_are_the_layout():
    """docs/intermediate-layout.md is what markdown() writes (regenerate it after changing the layout)."""
    assert (ROOT / "docs" / "intermediate-layout.md").read_text(encoding="utf-8") == vendor.markdown() + "\n"


# -- the command -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("words, said", [
    (["--plant", "sex-code"], "--plant 'sex-code': give RULE=RATE"),
    (["--residents", "0"], "--residents 0: give at least 1"),
    (["--municipality", "999999"], "no municipality '999999'"),
])
def test_command_refuses_in_one_line(tmp_path, capsys, words, said):
    """A bad argument: one line on stderr naming the command, exit status 2, no traceback."""
    code = cli.main(["--state-dir", str(tmp_path), "population", "export", "--out", str(tmp_path / "x"), *words])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("testbed population export: ") and said in err, err


def test_command_writes_an_export(tmp_path, capsys):
    """`testbed population export` writes an export the reader takes, and says so in one line."""
    out = tmp_path / "export"
    code = cli.main(["--state-dir", str(tmp_path), "population", "export", "--layout", "intermediate", "--encoding",
                     "utf-8", "--residents", "120", "--seed", "3", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0 and printed.count("\n") == 1 and str(out) in printed and "UTF-8" in printed, printed
    assert len(vendor.read_export(out).records) == 120


def test_command_plants(tmp_path, capsys):
    """--plant breaks records by a precheck rule (testbed/migration/plant.py); a planted 外字 is in the table,
    unidentified, so that the export is still read."""
    out = tmp_path / "planted"
    code = cli.main(["--state-dir", str(tmp_path), "population", "export", "--residents", "200", "--out", str(out),
                     "--plant", "characters-outside-target=0.05", "--plant", "reading-missing=0.05"])
    printed = capsys.readouterr().out
    assert code == 0 and "20 records planted" in printed, printed
    assert vendor.read_export(out).characters.unmapped >= 10
