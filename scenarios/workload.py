"""The workload of a municipality as a SimPy model: a trace of timed events for the replay driver.

What it covers (DESIGN §6): births, deaths, moves in, out and within the city with the March/April
peak, certificates at the counter, コンビニ交付, identity checks and searches on the 統合端末, and
情報提供 inquiries; weekday and hour profiles (Mondays, days after holidays and month ends are
busier; the counter peaks 11:00–14:00); counter staff as a SimPy resource with a queue; Juki-net
hours (特例転入 only weekdays 9:00–17:00); the nightly batch window.

Scenarios: ``annual`` (a year), ``march-peak`` (the peak week of March), ``cutover-weekend`` (Friday
to Monday with the systems frozen over the weekend: what would have come then waits for Monday).
The same (scenario, seed, municipalities) always gives the same trace.
"""
from __future__ import annotations

import calendar
import datetime as dt
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

import simpy

TRACE_FORMAT = "testbed-trace/1"

# Events per year for a city of 100,000 (DESIGN §6; scaled linearly with the population).
PER_100K = {
    "出生": 600,
    "死亡": 1_300,
    "転入": 4_000,
    "転出": 4_000,
    "転居": 3_000,
    "証明書": 30_000,       # certificates at the counter
    "コンビニ交付": 26_000,
    "本人確認": 12_000,     # identity checks on the 統合端末
    "検索": 8_000,          # 本人確認情報検索
    "情報提供": 20_000,     # inquiries from the 情報提供NWS
    # 国外転出 (出国): about 190 per 100,000 a year (Japanese leaving to live abroad, some 80,000 a year, and foreign
    # residents leaving for good, some 150,000, over 125 million: 出入国在留管理庁 statistics, rounded).
    "国外転出": 190,
    # 職権消除 after a 実態調査 finds someone gone, and the rarer 職権記載 of someone found living here unregistered:
    # back-office work, a few dozen a year in a city of 100,000 (an assumption: municipalities publish no common count).
    "職権消除": 50,
    "職権記載": 10,
    # At the 戸籍 counter: 婚姻 about 3.9 and 離婚 about 1.5 per 1,000 residents a year (厚生労働省「人口動態統計」,
    # rounded; the figures).
    "婚姻": 390,
    "離婚": 150,
    # 法務省通知 (在留期間更新, 在留資格変更, 再交付, 出国, 失効) for the foreign residents: about one every two years per
    # foreign resident (a 在留期間 of 1 to 5 years, renewed; an assumption), with 2.5% of residents foreign
    # (scenarios/population.py FOREIGN_SHARE): 0.5 × 2,500.
    "法務省通知": 1_250,
}
MOVES = ("転入", "転出", "転居")
COUNTER_OPS = ("出生", "死亡", "転入", "転出", "転居", "証明書", "国外転出")
OFFICE_OPS = ("職権消除", "職権記載")  # made by the office of its own motion, in office hours, with nobody at the counter
FAMILY_OPS = ("婚姻", "離婚")  # 届出 at the 戸籍 counter (its own staff: no queue of the 住民 counter)
IMMIGRATION_OPS = ("法務省通知",)  # recorded at an 入管 office, weekdays in its hours; reaches the 住民票 by notice
JURY_LIST = "裁判員候補者名簿"  # once a year, drawn for the 名簿調製プログラム …
JURY_LIST_DAY = (10, 1, 10 * 60)  # … in the autumn (month, day, minutes after midnight): the court wants it by 15 October
# The spring peak, calibrated on public accounts (figures quoted in issue 11 of this project, from municipal
# notices and press reports; the model is tested on their shape, not their exact numbers):
# - 総務省統計局「住民基本台帳人口移動報告」: March and April are the largest months of 移動 by far (in the
#   order of a sixth and an eighth of the year's moves);
# - municipal counter notices (窓口混雑予想) and press: the last days of March and the first days of April are
#   the peak days, at 4–5× an ordinary day's 異動 (a 50,000 city going from under 50 to 200–250 転入/転出 a
#   day on 1–2 April), with waits of hours in large cities and extra weekend openings (休日開庁) on the last
#   weekend of March and the first of April;
# - the same accounts: a 転入 or 転出 takes 15–45 min at the counter, up to an hour for a family with its
#   related procedures (国保, 児童手当, 転校, マイナンバーカード).
MARCH_SHARE = 0.17  # of the year's moves
APRIL_SHARE = 0.12
PEAK_DAYS = {3: (range(23, 32), 3.0), 4: (range(1, 4), 4.2)}  # month → (days, weight against its other days)
WEEKEND_OPENINGS = {dt.date(2026, 3, 28): 1.6, dt.date(2026, 3, 29): 1.6, dt.date(2026, 4, 4): 1.3,
                    dt.date(2027, 3, 27): 1.6, dt.date(2027, 3, 28): 1.6, dt.date(2027, 4, 3): 1.3}  # 休日開庁
SERVICE_MINUTES = {"出生": 20, "死亡": 20, "転入": 25, "転出": 15, "転居": 18, "証明書": 5, "国外転出": 15}  # mean, per clerk
RELATED_SHARE = {"転入": 0.4, "転出": 0.25, "出生": 0.5}  # of these, a family's related procedures as well …
RELATED_MINUTES = 25  # … which take this much longer (up to an hour in all)
WINDOW_STAFF_PER_100K = 15  # clerks at the 住民異動 counter of a city of 100,000
COUNTER_OPEN = (8 * 60 + 30, 17 * 60 + 15)  # minutes after midnight, weekdays
JUKINET_OPEN = (9 * 60, 17 * 60)  # 特例転入 only then, weekdays
KIOSK_OPEN = (6 * 60 + 30, 23 * 60)  # コンビニ交付, every day
INQUIRY_OPEN = (8 * 60, 20 * 60)  # 情報提供, weekdays
BATCH_AT = 2 * 60  # the nightly batch window starts at 02:00
WEEKDAY_FACTOR = (1.35, 1.0, 0.95, 0.95, 1.1, 0.0, 0.0)  # Monday … Sunday, at the counter
AFTER_HOLIDAY_FACTOR = 1.25
MONTH_END_FACTOR = 1.2
IN_NETWORK_SHARE = 0.10  # of 転出: to the other municipality of the network, by 特例 (card holders)
FROM_ABROAD_SHARE = 0.06  # of 転入 from outside the network
HOLIDAYS = {  # 国民の祝日 from 2026 to the end of the 2026 fiscal year (and 振替休日)
    dt.date(2026, 1, 1), dt.date(2026, 1, 12), dt.date(2026, 2, 11), dt.date(2026, 2, 23), dt.date(2026, 3, 20),
    dt.date(2026, 4, 29), dt.date(2026, 5, 4), dt.date(2026, 5, 5), dt.date(2026, 5, 6), dt.date(2026, 7, 20),
    dt.date(2026, 8, 11), dt.date(2026, 9, 21), dt.date(2026, 9, 22), dt.date(2026, 9, 23), dt.date(2026, 10, 12),
    dt.date(2026, 11, 3), dt.date(2026, 11, 23), dt.date(2026, 12, 31),
    dt.date(2027, 1, 1), dt.date(2027, 1, 11), dt.date(2027, 2, 11), dt.date(2027, 2, 23), dt.date(2027, 3, 21),
    dt.date(2027, 3, 22),
}
SCENARIOS = {
    # name: (first day, days, frozen interval as (start, end) datetimes or None)
    "annual": (dt.date(2026, 4, 1), 365, None),
    "march-peak": (dt.date(2026, 3, 23), 7, None),
    "cutover-weekend": (dt.date(2026, 3, 6), 4, (dt.datetime(2026, 3, 6, 18, 0), dt.datetime(2026, 3, 9, 8, 30))),
}


@dataclass(order=True)
class Event:
    """One timed event of the trace: seconds from the scenario start, what, where, with what."""

    t: float
    op: str = field(compare=False)
    municipality: str = field(compare=False)
    args: dict = field(default_factory=dict, compare=False)

    def to_json(self) -> str:
        """One line of the trace."""
        return json.dumps({"t": round(self.t, 3), "op": self.op, "m": self.municipality, **({"args": self.args} if self.args else {})},
                          ensure_ascii=False, separators=(",", ":"))


@dataclass
class CounterStats:
    """What the SimPy counter saw: waits and queue lengths."""

    served: int = 0
    waits: list = field(default_factory=list)  # minutes each customer waited
    waits_at: list = field(default_factory=list)  # (arrival, minutes waited): the worst hours
    queue_samples: list = field(default_factory=list)  # (seconds from start, queue length)

    def summary(self) -> dict:
        """Mean, p95 and max wait; max queue length."""
        waits = sorted(self.waits)
        hourly: dict[int, int] = {}
        for t, q in self.queue_samples:
            hourly[int(t // 3600)] = max(hourly.get(int(t // 3600), 0), q)
        by_hour: dict[int, list] = {}
        for arrival, wait in self.waits_at:
            by_hour.setdefault(int(arrival // 3600), []).append(wait)
        worst = max((sum(w) / len(w) for w in by_hour.values()), default=0.0)
        return {"served": self.served, "mean_wait_min": sum(waits) / len(waits) if waits else 0.0,
                "worst_hour_mean_wait_min": worst,
                "p95_wait_min": waits[int(0.95 * (len(waits) - 1))] if waits else 0.0,
                "max_wait_min": waits[-1] if waits else 0.0,
                "max_queue": max((q for _, q in self.queue_samples), default=0),
                "queue_by_hour": sorted(hourly.items())}


def month_share(op: str, month: int) -> float:
    """The share of the year's events of op that fall in a month."""
    if op in MOVES:
        if month == 3:
            return MARCH_SHARE
        if month == 4:
            return APRIL_SHARE
        return (1 - MARCH_SHARE - APRIL_SHARE) / 10
    if op in ("証明書", "コンビニ交付"):  # moves bring certificates with them
        return {3: 0.115, 4: 0.10}.get(month, (1 - 0.215) / 10)
    return 1 / 12


def day_factor(day: dt.date) -> float:
    """How busy the counter is on a day, relative to an ordinary weekday (0 when closed); the peak days of late
    March and early April and the weekend openings of the peak weigh more."""
    if day in WEEKEND_OPENINGS:
        return WEEKEND_OPENINGS[day]
    if day in HOLIDAYS or day.weekday() >= 5 or (day.month == 12 and day.day >= 29) or (day.month == 1 and day.day <= 3):
        return 0.0
    factor = WEEKDAY_FACTOR[day.weekday()]
    peak = PEAK_DAYS.get(day.month)
    if peak and day.day in peak[0]:
        factor *= peak[1]
    before = day - dt.timedelta(days=1)
    if before in HOLIDAYS or (day.weekday() == 0 and (before - dt.timedelta(days=2)) in HOLIDAYS):
        factor *= AFTER_HOLIDAY_FACTOR
    if day.day > calendar.monthrange(day.year, day.month)[1] - 2:
        factor *= MONTH_END_FACTOR
    return factor


def _open_days(year: int, month: int) -> float:
    days = calendar.monthrange(year, month)[1]
    return sum(day_factor(dt.date(year, month, d)) for d in range(1, days + 1)) or 1.0


def hour_weights(open_minutes: tuple[int, int], peak: tuple[int, int] | None) -> list[tuple[int, float]]:
    """(minute of day, weight) of each 15-minute slot in the opening hours, heavier in the peak."""
    slots = []
    for start in range(open_minutes[0], open_minutes[1], 15):
        weight = 1.0
        if peak and peak[0] <= start < peak[1]:
            weight = 1.8
        slots.append((start, weight))
    return slots


COUNTER_SLOTS = hour_weights(COUNTER_OPEN, (11 * 60, 14 * 60))
KIOSK_SLOTS = hour_weights(KIOSK_OPEN, (17 * 60, 20 * 60))
INQUIRY_SLOTS = hour_weights(INQUIRY_OPEN, (10 * 60, 16 * 60))


class Workload:
    """The SimPy model of one scenario over one or more municipalities."""

    def __init__(self, scenario: str, municipalities: dict[str, int], seed: int = 1):
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r}: choose one of {', '.join(SCENARIOS)}")
        self.scenario = scenario
        self.municipalities = municipalities  # code → residents
        self.seed = seed
        self.first_day, self.days, self.freeze = SCENARIOS[scenario]
        self.start = dt.datetime.combine(self.first_day, dt.time())
        self.rng = random.Random(f"{scenario}:{seed}:{sorted(municipalities.items())}")
        self.env = simpy.Environment()
        self.events: list[Event] = []
        self.stats = {m: CounterStats() for m in municipalities}
        self._pairs = 0

    # -- arrivals --------------------------------------------------------------------------------
    def _count(self, op: str, municipality: str, day: dt.date, weight: float) -> int:
        """Poisson-ish count of op on a day: the year's events scaled to the population and calendar."""
        yearly = PER_100K[op] * self.municipalities[municipality] / 100_000
        mean = yearly * month_share(op, day.month) * weight
        whole = int(mean)
        return whole + (1 if self.rng.random() < mean - whole else 0)

    def _moment(self, day: dt.date, slots) -> float:
        """Seconds from the scenario start of a random moment in a day's weighted slots."""
        minute = self.rng.choices([s for s, _ in slots], [w for _, w in slots])[0] + self.rng.random() * 15
        return (dt.datetime.combine(day, dt.time()) - self.start).total_seconds() + minute * 60

    def _arrivals(self) -> list[tuple[float, str, str, dict]]:
        """Every arrival of the scenario, before the counter's queue: (time, op, municipality, args)."""
        arrivals = []
        for offset in range(self.days):
            day = self.first_day + dt.timedelta(days=offset)
            factor = day_factor(day)
            for municipality in sorted(self.municipalities):  # the same trace whatever order they were named in
                share = factor / _open_days(day.year, day.month)
                for op in COUNTER_OPS:
                    for _ in range(self._count(op, municipality, day, share)):
                        arrivals.append((self._moment(day, COUNTER_SLOTS), op, municipality, self._args(op, municipality)))
                for op in ("本人確認", "検索") + OFFICE_OPS + FAMILY_OPS + IMMIGRATION_OPS:
                    for _ in range(self._count(op, municipality, day, share)):
                        arrivals.append((self._moment(day, COUNTER_SLOTS), op, municipality, {}))
                if (day.month, day.day) == JURY_LIST_DAY[:2]:
                    arrivals.append(((dt.datetime.combine(day, dt.time()) - self.start).total_seconds()
                                     + JURY_LIST_DAY[2] * 60, JURY_LIST, municipality,
                                     {"year": day.year + 1, "count": self._jury_count(municipality)}))
                if factor:
                    for _ in range(self._count("情報提供", municipality, day, share)):
                        arrivals.append((self._moment(day, INQUIRY_SLOTS), "情報提供", municipality, {}))
                    arrivals.append(((dt.datetime.combine(day, dt.time()) - self.start).total_seconds() + BATCH_AT * 60,
                                     "夜間バッチ", municipality, {}))
                calendar_days = calendar.monthrange(day.year, day.month)[1]
                for _ in range(self._count("コンビニ交付", municipality, day, 1 / calendar_days)):
                    arrivals.append((self._moment(day, KIOSK_SLOTS), "コンビニ交付", municipality, {}))
        return arrivals

    def _jury_count(self, municipality: str) -> int:
        """How many the 地方裁判所 allots a municipality: about 1 in 1,000 residents (an assumption, in the order of the
        published totals: some 300,000 candidates a year over 100 million electors), at least one."""
        return max(1, self.municipalities[municipality] // 1000)

    def _args(self, op: str, municipality: str) -> dict:
        rng = self.rng
        if op == "転出":
            others = [m for m in self.municipalities if m != municipality]
            if others and rng.random() < IN_NETWORK_SHARE:
                self._pairs += 1
                return {"to": rng.choice(others), "special": True, "pair": self._pairs}
            return {"to": "outside"}
        if op == "転入":
            return {"from": "abroad" if rng.random() < FROM_ABROAD_SHARE else "outside"}
        if op == "転居":
            return {"whole_household": rng.random() < 0.6}
        if op == "証明書":
            return {"kind": rng.choices(["住民票の写し", "住民票記載事項証明書", "除票の写し"], [0.85, 0.12, 0.03])[0]}
        return {}

    # -- the counter -------------------------------------------------------------------------------
    def _customer(self, counter: simpy.Resource, arrival: float, op: str, municipality: str, args: dict):
        stats = self.stats[municipality]
        with counter.request() as turn:
            yield turn
            stats.waits.append((self.env.now - arrival) / 60)
            stats.waits_at.append((arrival, (self.env.now - arrival) / 60))
            mean = SERVICE_MINUTES[op] * 60
            # most errands near their mean, a few long ones (gamma, shape 2), none over three times the mean
            service = min(self.rng.gammavariate(2.0, mean / 2.0), 3 * mean)
            if self.rng.random() < RELATED_SHARE.get(op, 0.0):
                service += self.rng.uniform(0.5, 1.5) * RELATED_MINUTES * 60  # the family's related procedures
            yield self.env.timeout(service)
            stats.served += 1
            self.events.append(Event(self.env.now, op, municipality, args))
            if args.get("pair"):  # 特例転入 at the destination: within days, while Juki-net runs
                self.events.append(Event(self._juki_time(self.env.now), "転入", args["to"],
                                         {"from": municipality, "special": True, "pair": args["pair"]}))

    def _juki_time(self, after: float) -> float:
        """A moment during Juki-net hours two to six days after `after`."""
        day = (self.start + dt.timedelta(seconds=after)).date() + dt.timedelta(days=self.rng.randint(2, 6))
        while not day_factor(day) or day.weekday() >= 5:  # weekends (openings too: Juki-net's 特例 runs weekdays), holidays
            day += dt.timedelta(days=1)
        return self._moment(day, hour_weights(JUKINET_OPEN, None))

    def _arrive(self, counter, arrival: float, op: str, municipality: str, args: dict):
        yield self.env.timeout(arrival - self.env.now)
        self.env.process(self._customer(counter, arrival, op, municipality, args))

    def _sample_queues(self, counters: dict):
        while True:
            for municipality, counter in counters.items():
                self.stats[municipality].queue_samples.append((self.env.now, len(counter.queue)))
            yield self.env.timeout(900)

    # -- the run -------------------------------------------------------------------------------------
    def run(self) -> list[Event]:
        """Simulate the scenario; the events in time order."""
        counters = {m: simpy.Resource(self.env, capacity=max(1, round(WINDOW_STAFF_PER_100K * n / 100_000)))
                    for m, n in self.municipalities.items()}
        arrivals = sorted(self._defer_frozen(self._arrivals()), key=lambda a: a[0])
        for arrival, op, municipality, args in arrivals:
            if op in COUNTER_OPS:
                self.env.process(self._arrive(counters[municipality], arrival, op, municipality, args))
            else:
                self.events.append(Event(arrival, op, municipality, args))
        self.env.process(self._sample_queues(counters))
        self.env.run(until=self.days * 86_400 + 7 * 86_400)  # room for 特例転入 after the last day
        horizon = self.days * 86_400
        return sorted(e for e in self.events if e.t < horizon)

    def _defer_frozen(self, arrivals):
        """cutover-weekend: what would come during the freeze waits for the first hours after it."""
        if not self.freeze:
            return arrivals
        start = (self.freeze[0] - self.start).total_seconds()
        end = (self.freeze[1] - self.start).total_seconds()
        result = []
        for arrival, op, municipality, args in arrivals:
            if start <= arrival < end:
                if op == "夜間バッチ":
                    continue
                arrival = end + self.rng.random() * 3 * 3600  # the Monday-morning backlog
                args = {**args, "deferred": True}
            result.append((arrival, op, municipality, args))
        return result


def generate(scenario: str, municipalities: dict[str, int], seed: int = 1) -> tuple[dict, list[Event], dict]:
    """(header, events, counter statistics) of a scenario."""
    workload = Workload(scenario, municipalities, seed)
    events = workload.run()
    header = {"format": TRACE_FORMAT, "scenario": scenario, "seed": seed, "start": workload.start.isoformat(),
              "days": workload.days, "municipalities": municipalities, "events": len(events),
              "freeze": [t.isoformat() for t in workload.freeze] if workload.freeze else None}
    return header, events, {m: s.summary() for m, s in workload.stats.items()}


def write_trace(path: str | Path, header: dict, events: list[Event], counter: dict) -> Path:
    """Write a trace: a header line, then one JSON line per event."""
    path = Path(path)
    with path.open("w", encoding="utf-8") as f:
        f.write(json.dumps({**header, "counter": counter}, ensure_ascii=False) + "\n")
        for event in events:
            f.write(event.to_json() + "\n")
    return path


def read_trace(path: str | Path) -> tuple[dict, list[Event]]:
    """Read a trace written by write_trace."""
    with Path(path).open(encoding="utf-8") as f:
        header = json.loads(f.readline())
        if header.get("format") != TRACE_FORMAT:
            raise ValueError(f"{path} is not a {TRACE_FORMAT} trace")
        events = [Event(e["t"], e["op"], e["m"], e.get("args", {})) for e in map(json.loads, f)]
    return header, events
