"""裁判員候補者名簿 (seed system 3 function 3: 「名簿調製プログラムへの裁判員候補者名簿の通知を行う」; 裁判員法第20条–第23条):
the list the municipality draws by lot, once a year, from its electors, for the 名簿調製プログラム that passes it to the
地方裁判所.

The caller only asks (which year, how many the court allotted, under which notice); everything else is the office's:
its clock says which years may be drawn, its register who is eligible, its random source who is drawn. A list is
written down (who was drawn and what was asked) in one transaction before it is answered, so the year's list is drawn
once: the same request again, e.g. after the answer was lost with a crash, answers the same list; any other request
for that year is refused. What the list gives of each person is what the court writes to them (氏名, かな, 生年月日,
性別, 住所), never the 住民票コード, the 個人番号 or the 本籍. docs/jury.md says it for the people who run it.
"""
from __future__ import annotations

import calendar
import datetime as dt
import math
import secrets

from nodes import audit, clock, rules, site
from nodes.guard import current_call
from nodes.intents import request_digest
from nodes.kizon.items import CURRENT
from nodes.kizon.parts import Records
from nodes.reasons import gateway as G
from protos import gateway_pb2

ELECTORS_PER_CANDIDATE = 200  # the list names at most one in this many eligible electors (JURY_LIST_ALLOTMENT_LIMIT)
VOTING_AGE = 18  # 公職選挙法第9条: 年齢満十八年以上の日本国民
RESIDENCE_MONTHS = 3  # 公職選挙法第21条: recorded in the register here for three months without a break
LATE_UNTIL_MONTH = 3  # the current year's list may still be drawn until the end of this month (see years_open)
FOREIGN_RESIDENT = "外国人住民"  # 住民種別 of a foreign resident, who has no vote
JURY_KIND = "jury"  # the identity kind of the 名簿調製プログラム (certs/identity.py: lg/<m>/office/jury)
METHOD = "DrawJuryCandidates"  # what the request's digest is taken under

SCHEMA = """
CREATE TABLE IF NOT EXISTS jury_lists (         -- 裁判員候補者名簿: the one list of each year, kept before it is answered
    year INTEGER PRIMARY KEY,                   -- the year the list is for (one list each)
    list_id TEXT NOT NULL UNIQUE,               -- named in the audit of every answer of it
    digest BLOB NOT NULL,                       -- the request it was drawn for: only that request answers it again
    caller TEXT NOT NULL,                       -- the 名簿調製プログラム's identity
    allotment_reference TEXT NOT NULL,          -- the 地方裁判所's notice of the allotment
    count INTEGER NOT NULL,
    eligible INTEGER NOT NULL,                  -- the electors it was drawn from
    drawn_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS jury_candidates (    -- who a year's list names, in the order drawn
    year INTEGER NOT NULL,
    position INTEGER NOT NULL,
    atena_number TEXT NOT NULL,                 -- 宛名番号: the person for good (a 住民票コード変更 keeps it)
    resident_code TEXT NOT NULL,                -- 住民票コード at the draw
    PRIMARY KEY (year, position)
);
"""


def _attains(born: dt.date, years: int) -> dt.date:
    """The day a person born on born reaches this age: the day before the anniversary (年齢計算ニ関スル法律; for
    選挙権 a person whose birthday is tomorrow is of age today); a 29 February's anniversary in a common year is
    1 March."""
    try:
        anniversary = born.replace(year=born.year + years)
    except ValueError:
        anniversary = dt.date(born.year + years, 3, 1)
    return anniversary - dt.timedelta(days=1)


def _months_before(day: dt.date, months: int) -> dt.date:
    """The same day of the month this many months earlier (the month's last day when it is shorter)."""
    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    return dt.date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def _date(value: str) -> dt.date | None:
    """An ISO date item, or None for one missing or malformed (such a person is not drawn: nothing proves them
    eligible)."""
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return None


def eligible(record, today: dt.date) -> bool:
    """Whether a 住民票 may be drawn on today: a current resident with 選挙 eligibility (the 選挙人名簿 flag), 18 or
    over, not a foreign resident, recorded here for three months. The flag is the 選挙管理委員会's, set when the
    person was registered; age and residence are measured again by the office's clock, since the flag of a person
    registered ahead (or loaded from a register that kept it loosely) may run ahead of both."""
    if record.status != CURRENT or not record.elector or record.resident_type == FOREIGN_RESIDENT:
        return False
    born = _date(record.birth_date)
    # 公職選挙法第21条 counts from when the 住民票 was made here: resident_since. A 転居 within the municipality
    # (address_since) does not break it; address_since stands in only for a record that lacks resident_since.
    since = _date(record.resident_since or record.address_since)
    return (born is not None and since is not None and _attains(born, VOTING_AGE) <= today
            and since <= _months_before(today, RESIDENCE_MONTHS))


def allotment_limit(electors: int) -> int:
    """The most people a list may name when this many electors are eligible: one in ELECTORS_PER_CANDIDATE,
    rounded up (a municipality with any elector may be allotted one)."""
    return math.ceil(electors / ELECTORS_PER_CANDIDATE)


def years_open(today: dt.date) -> tuple[int, ...]:
    """The years a list may be drawn for on today. The list of year Y is drawn in the autumn of Y−1 (裁判員法第22条:
    sent to the court by 15 October), so the office's next year; until the end of March the current year too, for a
    list drawn late (an autumn draw that failed), while the court still has most of the year to use it."""
    return (today.year, today.year + 1) if today.month <= LATE_UNTIL_MONTH else (today.year + 1,)


class Jury:
    """The yearly 裁判員候補者名簿 of the municipality: drawn by lot from its electors, once a year."""

    def __init__(self, runtime, municipality: str, register: Records):
        self.rt, self.municipality, self.register = runtime, municipality, register
        # The freeze of the site (移行): a list is not drawn while the register moves, since these tables stay behind
        # (a new site would not know the year was drawn). The same rows as the servicer's own SiteState.
        self.gate = site.SiteState(runtime)
        self._lot = secrets.SystemRandom()  # the lot: the OS's random source, nothing a caller can steer or replay
        runtime.store.db.executescript(SCHEMA)

    async def draw(self, request) -> gateway_pb2.JuryList:
        """The year's list: the one drawn for this same request, or a new one drawn now by lot."""
        year, count = request.year, request.count
        audit.set_subject(f"裁判員候補者名簿 {year} {count}")
        # The policy lets the municipality's own 名簿調製プログラム alone call this; asked again here, before anything is
        # read, so that a policy widened by mistake still hands the electorate to no one else.
        caller = current_call().peer.identity
        if caller.kind != JURY_KIND or caller.municipality != self.municipality:
            raise G.JURY_LIST_CALLER(f"裁判員候補者名簿 rule (JURY_LIST_CALLER): {caller.uri} is not the 名簿調製プログラム "
                                     f"of {self.municipality}")
        if count < 1:
            raise G.JURY_LIST_COUNT(f"裁判員候補者名簿 rule (JURY_LIST_COUNT): a list names at least one person; "
                                    f"{count} were asked")
        reference = request.allotment_reference
        if not reference.strip():
            raise G.JURY_LIST_ALLOTMENT("裁判員候補者名簿 rule (JURY_LIST_ALLOTMENT, 裁判員法第20条): the request names "
                                        "the 地方裁判所's notice of the allotment (allotment_reference)")
        rules.check_text(reference, "allotment_reference")
        digest = request_digest(METHOD, request)
        drawn = self._drawn(year, digest)  # before the year's window: a repeat is answered even once it has closed
        if drawn is not None:
            return drawn
        self.gate.refuse_if_frozen()
        today = clock.office_today()
        if year not in years_open(today):
            raise G.JURY_LIST_YEAR(f"裁判員候補者名簿 rule (JURY_LIST_YEAR, 裁判員法第22条): on {today} a list is drawn "
                                   f"for {' or '.join(map(str, years_open(today)))}, not {year}")
        # One synchronous pass over the register, with no await in it: the lot is drawn from one consistent view of
        # who is eligible, with no change committed half-way through (it blocks the node for the pass: once a year).
        electors = [(r.atena_number, r.resident_code) for r in self.register.select("", False) if eligible(r, today)]
        limit = allotment_limit(len(electors))
        if count > limit:
            raise G.JURY_LIST_ALLOTMENT_LIMIT(
                f"裁判員候補者名簿 rule (JURY_LIST_ALLOTMENT_LIMIT): {len(electors)} electors of {self.municipality} "
                f"are eligible on {today}; a list names at most one in {ELECTORS_PER_CANDIDATE} of them ({limit}), "
                f"not {count}")
        chosen = self._lot.sample(electors, count)
        list_id = f"jury-{self.municipality}-{year}-{secrets.token_hex(6)}"
        with self.rt.store.transaction() as db:
            # Looked at again inside the transaction: a second draw for the year that passed the first look while
            # this one read the register (there is no await between this and the insert, so none can pass now).
            if db.execute("SELECT 1 FROM jury_lists WHERE year=?", (year,)).fetchone() is None:
                db.execute("INSERT INTO jury_lists VALUES (?,?,?,?,?,?,?,?)",
                           (year, list_id, digest, caller.uri, reference, count, len(electors), clock.stamp()))
                db.executemany("INSERT INTO jury_candidates VALUES (?,?,?,?)",
                               [(year, position, atena, code) for position, (atena, code) in enumerate(chosen)])
                # The bulk-output account (disclosure.py) of the people this output gives, under the caller's name:
                # a list counts there once, when drawn; a repeat gives the same people again and is audited only.
                db.execute("INSERT INTO outputs VALUES (?,?,?,?)", (caller.uri, clock.now().timestamp(), count, None))
        # (a concurrent request that won answers now as a repeat, or is refused as a different request)
        return self._drawn(year, digest)

    def _drawn(self, year: int, digest: bytes) -> gateway_pb2.JuryList | None:
        """The list drawn for the year if this request drew it (None when none is drawn); another request's list
        is refused."""
        found = self.rt.store.one("SELECT list_id, digest, count, eligible, drawn_at FROM jury_lists WHERE year=?",
                                  (year,))
        if found is None:
            return None
        list_id, drawn_for, count, electors, drawn_at = found
        if drawn_for != digest:
            raise G.JURY_LIST_ONCE_A_YEAR(f"裁判員候補者名簿 rule (JURY_LIST_ONCE_A_YEAR, 裁判員法第21条): the list of {year} "
                                          f"was drawn on {drawn_at} ({list_id}, {count} people) for another request; "
                                          f"only that request answers it again")
        audit.set_subject(f"裁判員候補者名簿 {year} {count} {list_id}")
        positions = self.rt.store.db.execute("SELECT atena_number FROM jury_candidates WHERE year=? ORDER BY position",
                                             (year,)).fetchall()
        return gateway_pb2.JuryList(year=year, eligible=electors, drawn_at=drawn_at, list_id=list_id,
                                    candidates=[self._candidate(atena) for (atena,) in positions])

    def _candidate(self, atena_number: str) -> gateway_pb2.JuryCandidate:
        """What the list gives of a person, from their latest entry (found by 宛名番号, which a 住民票コード変更
        keeps): what the court writes to them with, and nothing else."""
        record = self.register.history(atena_number)[-1]
        return gateway_pb2.JuryCandidate(name_kanji=record.name_kanji, name_kana=record.name_kana,
                                         birth_date=record.birth_date, sex=record.sex, address=record.address)
