"""Certificates kizon issues: what each kind prints, the 交付履歴 it leaves, and the document itself
(text and HTML). 個人番号 is printed only when asked for with a justification."""
from __future__ import annotations

import html
import json

from nodes import clock
from nodes.reasons import platform as R
from nodes.store import next_counter
from protos import kizon_pb2, records_pb2

TITLES = {
    kizon_pb2.RESIDENT_COPY: "住民票の写し",
    kizon_pb2.HOUSEHOLD_COPY: "住民票の写し（世帯全員）",
    kizon_pb2.STATED_ITEMS: "住民票記載事項証明書",
    kizon_pb2.MOVE_OUT: "転出証明書",
    kizon_pb2.REMOVED_COPY: "除票の写し",
}
# What a 住民票の写し prints by default (本籍・筆頭者 and 個人番号 only when asked for).
STANDARD_ITEMS = ("name_kanji", "name_kana", "birth_date", "sex", "relationship", "householder_name", "address",
                  "resident_since", "address_since", "change_reason", "change_date", "resident_code")
LABELS = {"name_kanji": "氏名", "name_kana": "ふりがな", "birth_date": "生年月日", "sex": "性別", "relationship": "続柄",
          "householder_name": "世帯主", "address": "住所", "resident_since": "住民となった年月日",
          "address_since": "住所を定めた年月日", "change_reason": "異動事由", "change_date": "異動年月日",
          "resident_code": "住民票コード", "individual_number": "個人番号", "honseki": "本籍", "hittousha": "筆頭者",
          "removal_reason": "消除事由", "removal_date": "消除年月日", "move_out_destination_planned": "転出先",
          "planned_move_out_date": "転出予定年月日", "previous_address": "転入前住所", "nationality": "国籍",
          "residence_status": "在留資格", "name_romaji": "氏名（ローマ字）"}
SEX = {"1": "男", "2": "女", "9": "不詳"}
SCHEMA = """
CREATE TABLE IF NOT EXISTS issuances (        -- 交付履歴
    issue_number TEXT PRIMARY KEY,            -- 発行番号
    issued_at TEXT NOT NULL,
    place TEXT NOT NULL,
    terminal TEXT NOT NULL,
    operator TEXT NOT NULL,
    kind INTEGER NOT NULL,
    resident_code TEXT NOT NULL,
    items TEXT NOT NULL,                      -- JSON list of the items printed
    individual_number_printed INTEGER NOT NULL,
    justification TEXT NOT NULL,
    requester BLOB NOT NULL                   -- 請求者 as the counter checked them (records.Requester)
);
CREATE INDEX IF NOT EXISTS issuances_resident ON issuances(resident_code);
"""


def items_for(request, valid_fields) -> list[str]:
    """The items a certificate prints, by its kind and what was asked for (INVALID_ARGUMENT naming the rule)."""
    if request.include_individual_number and not request.justification.strip():
        raise R.CERTIFICATE_NUMBER_JUSTIFICATION("個人番号 rule: the 個人番号 is printed only when asked for with a justification")
    if request.kind == kizon_pb2.STATED_ITEMS:
        unknown = [i for i in request.items if i not in valid_fields or i == "individual_number"]
        if not request.items or unknown:
            raise R.CERTIFICATE_STATED_ITEMS(f"記載事項証明書 rule: name the items to certify (unknown: {', '.join(unknown) or 'none given'})")
        items = list(request.items)
    elif request.kind == kizon_pb2.MOVE_OUT:
        items = ["name_kanji", "birth_date", "sex", "address", "move_out_destination_planned", "planned_move_out_date",
                 "resident_code"]
    elif request.kind == kizon_pb2.REMOVED_COPY:
        items = list(STANDARD_ITEMS) + ["removal_reason", "removal_date"]
    else:
        items = list(STANDARD_ITEMS)
    if request.include_individual_number:
        items.append("individual_number")
    return items


def _value(record, item: str) -> str:
    value = getattr(record, item, "")
    return SEX.get(value, value) if item == "sex" else str(value)


def render(kind, issue_number: str, issued_at: str, place: str, people: list, items: list[str]) -> tuple[str, str]:
    """(text, html) of a certificate for people (one, or a household)."""
    title = TITLES[kind]
    lines = [title, f"発行番号 {issue_number}", f"交付 {issued_at} {place}", ""]
    rows = []
    for person in people:
        for item in items:
            lines.append(f"  {LABELS.get(item, item)}: {_value(person, item)}")
            rows.append(f"<tr><th>{html.escape(LABELS.get(item, item))}</th><td>{html.escape(_value(person, item))}</td></tr>")
        lines.append("")
        rows.append('<tr><td colspan="2"><hr></td></tr>')
    lines.append("この写しは、住民票の原本と相違ないことを証明する。")
    page = (f"<!doctype html><html lang=\"ja\"><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<h1>{html.escape(title)}</h1><p>発行番号 {html.escape(issue_number)}<br>交付 {html.escape(issued_at)} "
            f"{html.escape(place)}</p><table>{''.join(rows)}</table><p>この写しは、住民票の原本と相違ないことを証明する。</p></html>")
    return "\n".join(lines), page


def record_issuance(db, municipality: str, kind, resident_code: str, place: str, terminal: str, operator: str,
                    items: list[str], justification: str, requester) -> tuple[str, str]:
    """Write the 交付履歴 entry, naming who asked (requester: records.Requester); (発行番号, time)."""
    now = clock.office_now()
    number = f"{municipality}-{now.year}-{next_counter(db, f'issue_number_{now.year}'):07d}"
    issued_at = now.isoformat(timespec="seconds")
    db.execute("INSERT INTO issuances VALUES (?,?,?,?,?,?,?,?,?,?,?)",
               (number, issued_at, place, terminal, operator, kind, resident_code, json.dumps(items),
                int("individual_number" in items), justification, requester.SerializeToString()))
    return number, issued_at


def history(db, resident_code: str) -> kizon_pb2.IssuanceHistory:
    """Every certificate issued about a person."""
    result = kizon_pb2.IssuanceHistory()
    for row in db.execute("SELECT * FROM issuances WHERE resident_code=? ORDER BY issued_at", (resident_code,)):
        result.records.append(issuance_record(row))
    return result


def issuance_record(row) -> kizon_pb2.IssuanceRecord:
    """A 交付履歴 entry from its row of the issuances table."""
    return kizon_pb2.IssuanceRecord(issue_number=row[0], issued_at=row[1], place=row[2], terminal=row[3], operator=row[4],
                                    kind=row[5], resident_code=row[6], items_printed=json.loads(row[7]),
                                    individual_number_printed=bool(row[8]), justification=row[9],
                                    requester=records_pb2.Requester.FromString(row[10]))


def issuance_row(i) -> tuple:
    """The row of the issuances table that holds a 交付履歴 entry (IssuanceRecord)."""
    return (i.issue_number, i.issued_at, i.place, i.terminal, i.operator, i.kind, i.resident_code,
            json.dumps(list(i.items_printed)), int(i.individual_number_printed), i.justification,
            i.requester.SerializeToString())


RESIDENT_FIELDS = frozenset(f.name for f in records_pb2.ResidentRecord.DESCRIPTOR.fields)
