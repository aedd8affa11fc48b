"""testbed check: the network-wide invariants (DESIGN §13), checked in one pass over every node's store.

Each invariant is a rule no single node can see broken on its own: one current residence per 住民票コード
across every municipality; one 個人番号 per person and one person per 個人番号 at national, every number
issued by national; removed people (死亡) stay removed everywhere; the 戸籍の附票 of every person 在籍 in a 戸籍
system follows the register they live in (its latest address is their 住民票's), and so does 法務省's record of every
在留カード a current foreign resident holds; every outbox item delivered within a
bound or dead-lettered (and every dead letter reported); every audit chain and its checkpoints intact.
The stores are read read-only (WAL: the nodes go on writing), so the check works on a running network and
on one that is down.
"""
from __future__ import annotations

import sqlite3
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from protos import koseki_pb2, moj_pb2, records_pb2

INVARIANTS = ("one-residence", "one-number", "numbers-from-national", "removed-stay-removed", "annex-follows-register",
              "residence-cards-follow-register", "outbox-delivered", "audit")  # (dead letters are warnings: an outcome the alarm reports, not a broken invariant)
OUTBOX_AGE_LIMIT = 120.0  # seconds an outbox item may wait before the check calls it stuck
DEATH = "死亡"
CURRENT = 0  # レコード状況フラグ (and ResidentRecord.STATUS_CURRENT is 1: see _kizon_current)


@dataclass
class Finding:
    """One broken invariant (or, with failure False, a warning: a dead letter is an outcome, not a loss)."""

    invariant: str
    detail: str
    node: str = ""
    failure: bool = True

    def line(self) -> str:
        """The finding as one line of the report."""
        where = f" [{self.node}]" if self.node else ""
        return f"{'FAIL' if self.failure else 'WARN'} {self.invariant}{where}: {self.detail}"


@dataclass
class CheckReport:
    """What `testbed check` found: failures, warnings and the counts it looked at."""

    findings: list[Finding] = field(default_factory=list)
    looked_at: dict[str, int] = field(default_factory=dict)

    @property
    def failures(self) -> list[Finding]:
        """The broken invariants."""
        return [f for f in self.findings if f.failure]

    @property
    def ok(self) -> bool:
        """Whether every invariant holds."""
        return not self.failures

    def add(self, invariant: str, detail: str, node: str = "", failure: bool = True) -> None:
        """Record one finding."""
        self.findings.append(Finding(invariant, detail, node, failure))

    def as_dict(self) -> dict:
        """The report as JSON-ready data."""
        return {"ok": self.ok, "looked_at": self.looked_at,
                "findings": [{"invariant": f.invariant, "node": f.node, "detail": f.detail,
                              "severity": "failure" if f.failure else "warning"} for f in self.findings]}


def _open(path: Path) -> sqlite3.Connection | None:
    if not path.exists():
        return None
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    db.execute("PRAGMA query_only=1")
    db.execute("PRAGMA busy_timeout=2000")
    return db


def _stores(network) -> dict:
    """node name → (node, read-only connection) for every node of the network that has a store
    (targets not cut over are left out: the network relies on nothing they hold yet)."""
    stores = {}
    for node in network.topology.nodes:
        db = _open(network.state_dir / "data" / node.name / "store.sqlite")
        if db is not None:
            stores[node.name] = (node, db)
    return stores


def _has(db: sqlite3.Connection, table: str) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (table,)).fetchone() is not None


def _sample(codes, limit: int = 5) -> str:
    codes = sorted(codes)
    more = f" and {len(codes) - limit} more" if len(codes) > limit else ""
    return ", ".join(codes[:limit]) + more


def check_network(network, outbox_age_limit: float = OUTBOX_AGE_LIMIT, audit: bool = True) -> CheckReport:
    """Every network-wide invariant of a network's state folder; nothing is changed."""
    report = CheckReport()
    stores = _stores(network)
    try:
        _residences(report, stores)
        _numbers(report, stores)
        _removed(report, stores)
        _annex(report, stores)
        _residence_cards(report, stores)
        _outboxes(report, stores, outbox_age_limit)
    finally:
        for _, db in stores.values():
            db.close()
    if audit:
        _audit(report, network)
    return report


def _current_by_code(stores, kind: str) -> dict[str, set[str]]:
    """住民票コード → municipalities where the nodes of a kind hold the person as current."""
    where: dict[str, set[str]] = defaultdict(set)
    for node, db in stores.values():
        if node.kind != kind:
            continue
        if kind == "kizon" and _has(db, "residents"):
            rows = db.execute("SELECT resident_code FROM residents WHERE status=?",
                              (records_pb2.ResidentRecord.STATUS_CURRENT,))
            for (code,) in rows:
                where[code].add(node.municipality)
        elif kind != "kizon" and _has(db, "identity"):
            for code, municipality in db.execute("SELECT resident_code, municipality_code FROM identity WHERE status=?",
                                                 (CURRENT,)):
                where[code].add(municipality)
    return where


def _residences(report: CheckReport, stores) -> None:
    """One current residence per 住民票コード, in the registers, at the CSs and at national."""
    for kind in ("kizon", "cs", "national"):
        where = _current_by_code(stores, kind)
        report.looked_at[f"current_{kind}"] = len(where)
        twice = {c: m for c, m in where.items() if len(m) > 1}
        if twice:
            code = min(twice)
            report.add("one-residence", f"{len(twice)} 住民票コード current in more than one municipality at {kind} "
                       f"(e.g. {code} in {', '.join(sorted(twice[code]))}): {_sample(twice)}")


def _numbers(report: CheckReport, stores) -> None:
    """At national: one 個人番号 per person, one person per 個人番号, every number issued by national; and
    every number a CS holds is one national issued."""
    national = [(n, db) for n, db in stores.values() if n.kind == "national"]
    if not national:
        return
    node, db = national[0]
    if not (_has(db, "identity") and _has(db, "individual_numbers")):
        return
    issued = {n for (n,) in db.execute("SELECT individual_number FROM individual_numbers")}
    report.looked_at["individual_numbers"] = len(issued)
    by_code: dict[str, set[str]] = defaultdict(set)
    by_number: dict[str, set[str]] = defaultdict(set)
    for code, number, status in db.execute("SELECT resident_code, individual_number, status FROM identity "
                                           "WHERE individual_number IS NOT NULL AND individual_number != ''"):
        by_code[code].add(number)
        if status == CURRENT:
            by_number[number].add(code)
    two_numbers = {c for c, n in by_code.items() if len(n) > 1}
    if two_numbers:
        report.add("one-number", f"{len(two_numbers)} people hold more than one 個人番号 at national: "
                   f"{_sample(two_numbers)}", node.name)
    shared = {n for n, c in by_number.items() if len(c) > 1}
    if shared:
        report.add("one-number", f"{len(shared)} 個人番号 belong to more than one current person at national",
                   node.name)
    for other, other_db in stores.values():
        if other.kind not in ("national", "cs", "prefecture") or not _has(other_db, "identity"):
            continue
        invented = {c for c, n in other_db.execute("SELECT resident_code, individual_number FROM identity WHERE "
                                                   "individual_number IS NOT NULL AND individual_number != ''")
                    if n not in issued}
        if invented:
            report.add("numbers-from-national", f"{len(invented)} records carry a 個人番号 national never issued: "
                       f"{_sample(invented)}", other.name)


def _removed(report: CheckReport, stores) -> None:
    """Removed people stay removed: nobody recorded as dead anywhere is current anywhere."""
    dead: dict[str, str] = {}
    for node, db in stores.values():
        if node.kind in ("cs", "national", "prefecture") and _has(db, "identity"):
            for code, municipality, blob in db.execute("SELECT resident_code, municipality_code, info FROM identity "
                                                       "WHERE status != ?", (CURRENT,)):
                if records_pb2.IdentityInfo.FromString(blob).change_reason == DEATH:
                    dead[code] = municipality
        elif node.kind == "kizon" and _has(db, "residents"):
            for code, blob in db.execute("SELECT resident_code, record FROM residents WHERE status=?",
                                         (records_pb2.ResidentRecord.STATUS_REMOVED,)):
                if records_pb2.ResidentRecord.FromString(blob).removal_reason == DEATH:
                    dead[code] = node.municipality
    report.looked_at["deceased"] = len(dead)
    for kind in ("kizon", "cs", "national"):
        alive = {c for c in _current_by_code(stores, kind) if c in dead}
        if alive:
            code = min(alive)
            report.add("removed-stay-removed", f"{len(alive)} people recorded as dead are current at {kind} "
                       f"(e.g. {code}, 死亡 in {dead[code]}): {_sample(alive)}")


def _annex(report: CheckReport, stores) -> None:
    """The 附票 follows the registers: the latest 附票 address of each person 在籍 in a 戸籍 system is the address of
    their 住民票 where they are current (people current nowhere in the network, moved out or dead, are not compared).
    While 戸籍附票通知 are still on their way (at a CS, in its outbox) a difference is a warning, not a failure."""
    current: dict[str, str] = {}
    for node, db in stores.values():
        if node.kind == "kizon" and _has(db, "residents"):
            for code, blob in db.execute("SELECT resident_code, record FROM residents WHERE status=?",
                                         (records_pb2.ResidentRecord.STATUS_CURRENT,)):
                current[code] = records_pb2.ResidentRecord.FromString(blob).address
    cursors = {node.municipality: db.execute("SELECT value FROM counters WHERE name='annex_cursor'").fetchone()
               for node, db in stores.values() if node.kind == "kizon" and _has(db, "counters")}
    on_the_way = 0
    for node, db in stores.values():
        if node.kind == "cs":
            taken = (cursors.get(node.municipality) or (0,))[0]  # (kizon's 住基GW has handed on those up to its cursor)
            on_the_way += db.execute("SELECT COUNT(*) FROM annex_notices WHERE id > ?", (taken,)).fetchone()[0] \
                if _has(db, "annex_notices") else 0
            on_the_way += db.execute("SELECT COUNT(*) FROM outbox WHERE target LIKE 'annex:%'").fetchone()[0] \
                if _has(db, "outbox") else 0
    compared = 0
    for node, db in stores.values():
        if node.kind != "koseki" or not (_has(db, "annex") and _has(db, "members")):
            continue
        differ = []
        for code, blob in db.execute("SELECT m.resident_code, (SELECT entry FROM annex a WHERE a.resident_code = "
                                     "m.resident_code ORDER BY number DESC LIMIT 1) FROM members m"):
            if blob is None or code not in current:
                continue
            compared += 1
            if koseki_pb2.AnnexEntry.FromString(blob).address != current[code]:
                differ.append(code)
        if differ:
            report.add("annex-follows-register", f"{len(differ)} people's 附票 is not at the address of their 住民票 "
                       f"({on_the_way} 附票通知 on the way): {_sample(differ)}", node.name, failure=not on_the_way)
    report.looked_at["annex"] = compared


def _residence_cards(report: CheckReport, stores) -> None:
    """法務省's record of each card a current foreign resident holds (a card 法務省 issued: one the counter typed for a
    person 法務省 never registered is not compared) names that person, their municipality, and is 有効. While 法務省通知
    or 市町村通知 are on their way (moj's outbox, at a CS, in a CS's outbox to moj) a difference is a warning."""
    moj = [(node, db) for node, db in stores.values() if node.kind == "moj" and _has(db, "residence_cards")]
    if not moj:
        return
    node, db = moj[0]
    on_the_way = db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] if _has(db, "outbox") else 0
    cursors = {n.municipality: d.execute("SELECT value FROM counters WHERE name='immigration_cursor'").fetchone()
               for n, d in stores.values() if n.kind == "kizon" and _has(d, "counters")}
    for other, other_db in stores.values():
        if other.kind == "cs":
            taken = (cursors.get(other.municipality) or (0,))[0]
            if _has(other_db, "immigration_notices"):
                on_the_way += other_db.execute("SELECT COUNT(*) FROM immigration_notices WHERE id > ?",
                                               (taken,)).fetchone()[0]
            if _has(other_db, "outbox"):
                on_the_way += other_db.execute("SELECT COUNT(*) FROM outbox WHERE target='moj'").fetchone()[0]
    replaced = dict(db.execute("SELECT residence_card_number, replaced_by FROM replaced_cards")) \
        if _has(db, "replaced_cards") else {}
    cards = {number: moj_pb2.ResidenceCardRecord.FromString(blob)
             for number, blob in db.execute("SELECT residence_card_number, record FROM residence_cards")}
    compared, differ = 0, []
    for kizon, kizon_db in stores.values():
        if kizon.kind != "kizon" or not _has(kizon_db, "residents"):
            continue
        for code, blob in kizon_db.execute("SELECT resident_code, record FROM residents WHERE status=?",
                                           (records_pb2.ResidentRecord.STATUS_CURRENT,)):
            record = records_pb2.ResidentRecord.FromString(blob)
            number = record.residence_card_number
            for _ in range(100):  # (a replaced card leads to the holder's current one)
                if number in cards or number not in replaced:
                    break
                number = replaced[number]
            card = cards.get(number)
            if card is None:
                continue
            compared += 1
            if card.resident_code != code or card.municipality_code != kizon.municipality or card.status != "有効":
                differ.append(code)
    if differ:
        report.add("residence-cards-follow-register", f"{len(differ)} current foreign residents' 在留カード are not "
                   f"recorded so at 法務省 ({on_the_way} notices on the way): {_sample(differ)}", node.name,
                   failure=not on_the_way)
    report.looked_at["residence_cards"] = compared


def _outboxes(report: CheckReport, stores, limit: float) -> None:
    """Every outbox item delivered within the bound or dead-lettered; dead letters reported."""
    now = time.time()
    waiting = 0
    for node, db in stores.values():
        if _has(db, "outbox"):
            for target, count, oldest in db.execute("SELECT target, COUNT(*), MIN(queued_at) FROM outbox GROUP BY target"):
                waiting += count
                age = now - oldest if oldest else 0.0
                if age > limit:
                    report.add("outbox-delivered", f"{count} items for {target} wait, the oldest for {age:.0f} s "
                               f"(bound {limit:.0f} s): the receiver is down or refuses them", node.name)
        if _has(db, "dead_letters"):
            for target, count, reason in db.execute("SELECT target, COUNT(*), MAX(reason) FROM dead_letters "
                                                    "GROUP BY target"):
                report.add("dead-letters", f"{count} items for {target} refused by the receiver and set aside "
                           f"(e.g. {reason}); `testbed status` lists them", node.name, failure=False)
    report.looked_at["outbox_items"] = waiting


def _audit(report: CheckReport, network) -> None:
    """Every audit chain verifies under its key and its published checkpoints."""
    chains = 0
    for chain in network.audit_chains():  # (a missing log is checked too: the witness knows it was there)
        chains += 1
        try:
            result = network.verify_audit(chain)
        except (OSError, ValueError) as exc:
            report.add("audit", f"cannot be verified: {exc}", chain)
            continue
        for problem in result.problems[:3]:
            report.add("audit", problem, chain)
    report.looked_at["audit_chains"] = chains


def alarms(network, outbox_age_limit: float = OUTBOX_AGE_LIMIT) -> list[str]:
    """What `testbed status` raises beside the table: dead letters and outbox items waiting too long."""
    stores = _stores(network)
    report = CheckReport()
    try:
        _outboxes(report, stores, outbox_age_limit)
    finally:
        for _, db in stores.values():
            db.close()
    return [f"{f.node}: {f.detail}" for f in report.findings]


def report_lines(report: CheckReport) -> list[str]:
    """The report as the command prints it."""
    looked = ", ".join(f"{k} {v}" for k, v in report.looked_at.items())
    verdict = "every invariant holds" if report.ok else f"{len(report.failures)} invariants broken"
    return [f"testbed check: {verdict} ({looked})"] + [f"  {f.line()}" for f in report.findings]
