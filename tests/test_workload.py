"""scenarios.workload: the SimPy workload model of DESIGN §6 (calibration, seasonality, calendar,
the counter's queue, the cutover freeze) and its trace files."""
from __future__ import annotations

import calendar
import datetime as dt
import json
from collections import Counter

import pytest

from scenarios.workload import (COUNTER_OPEN, COUNTER_OPS, HOLIDAYS, JUKINET_OPEN, KIOSK_OPEN, MOVES, PER_100K,
                                SCENARIOS, TRACE_FORMAT, Workload, day_factor, generate, read_trace, write_trace)
from testbed import cli

CITY = "142140"  # 伊勢原市
BIG, SMALL = "142115", "142140"  # the two municipalities of the two-city runs
# DESIGN §6: events per year for a city of 100,000
DESIGN_PER_100K = {"出生": 600, "死亡": 1_300, "転入": 4_000, "転出": 4_000, "転居": 3_000, "証明書": 30_000,
                   "コンビニ交付": 26_000}
HOLIDAYS_2027 = {  # 国民の祝日 inside the annual scenario's year that HOLIDAYS does not list
    dt.date(2027, 1, 11),  # 成人の日
    dt.date(2027, 2, 11),  # 建国記念の日
    dt.date(2027, 2, 23),  # 天皇誕生日
    dt.date(2027, 3, 22),  # 振替休日 (春分の日 falls on Sunday 21 March)
}


def run(scenario: str, municipalities: dict[str, int], seed: int):
    """generate(), plus every arrival the model drew before its counter queue."""
    arrivals = []
    drawn = Workload._arrivals

    def spy(self):
        result = drawn(self)
        arrivals.extend(result)
        return result

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Workload, "_arrivals", spy)
        header, events, stats = generate(scenario, municipalities, seed)
    return header, events, stats, arrivals


def when(header: dict, t: float) -> dt.datetime:
    """The wall-clock moment of t seconds into a trace."""
    return dt.datetime.fromisoformat(header["start"]) + dt.timedelta(seconds=t)


def minute_of_day(moment: dt.datetime) -> float:
    """Minutes after midnight, with the seconds as a fraction."""
    return moment.hour * 60 + moment.minute + (moment.second + moment.microsecond / 1e6) / 60


def special(event) -> bool:
    """特例転入: a 転入 announced by the former municipality over Juki-net."""
    return event.op == "転入" and bool(event.args.get("special"))


def at_counter(event) -> bool:
    """A customer who queued at the counter (特例転入 is not drawn through the queue)."""
    return event.op in COUNTER_OPS and not special(event)


def lines(events) -> list[str]:
    """The trace lines of events."""
    return [e.to_json() for e in events]


@pytest.fixture(scope="module")
def annual():
    """A year of a city of 100,000 (seed 1), with its arrivals."""
    return run("annual", {CITY: 100_000}, 1)


@pytest.fixture(scope="module")
def annual_pair():
    """A year of a city of 200,000 and a town of 20,000 (seed 1): 特例転入 between them."""
    return run("annual", {BIG: 200_000, SMALL: 20_000}, 1)


@pytest.fixture(scope="module")
def cutover():
    """The cutover weekend of a city of 100,000 (seed 1)."""
    return generate("cutover-weekend", {CITY: 100_000}, 1)


# -- determinism --------------------------------------------------------------------------------------

def test_same_seed_same_trace():
    """The same scenario, municipalities and seed give identical events and counter stats; another seed differs."""
    sizes = {BIG: 20_000, SMALL: 10_000}
    header, events, stats = generate("march-peak", sizes, 3)
    again_header, again, again_stats = generate("march-peak", dict(sizes), 3)
    _, other, other_stats = generate("march-peak", sizes, 4)
    assert len(events) > 500
    assert lines(again) == lines(events)
    assert again_stats == stats
    assert again_header == header
    assert lines(other) != lines(events)
    assert other_stats != stats


def test_municipality_order_does_not_change_trace():
    """The same municipalities listed in another order give the same trace."""
    _, events, stats = generate("march-peak", {BIG: 20_000, SMALL: 10_000}, 3)
    _, swapped, swapped_stats = generate("march-peak", {SMALL: 10_000, BIG: 20_000}, 3)
    assert lines(swapped) == lines(events)
    assert swapped_stats == stats


# -- calibration ----------------------------------------------------------------------------------------

def test_annual_counts_match_design(annual):
    """A city of 100,000 sees DESIGN §6's yearly counts within ±10%."""
    _, events, _, _ = annual
    counts = Counter(e.op for e in events)
    assert not any(special(e) for e in events)  # one municipality: no 特例転入
    for op, expected in DESIGN_PER_100K.items():
        assert expected * 0.9 <= counts[op] <= expected * 1.1, (op, counts[op])
    for op, expected in PER_100K.items():
        slack = max(0.1 * expected, 3 * expected ** 0.5)  # ±10%, or three Poisson deviations for the rare ones
        assert expected - slack <= counts[op] <= expected + slack, (op, counts[op])


def test_annual_counts_scale_linearly(annual, annual_pair):
    """A city of 200,000 has about twice the events of a city of 100,000 (±10%)."""
    one = Counter(e.op for e in annual[1] if not special(e))
    two = Counter(e.op for e in annual_pair[1] if e.municipality == BIG and not special(e))
    for op, expected in PER_100K.items():
        if expected >= 1_000:
            assert 2 * one[op] * 0.9 <= two[op] <= 2 * one[op] * 1.1, (op, one[op], two[op])
        else:  # a rare event: each city against its own expectation, within three Poisson deviations
            assert abs(two[op] - 2 * expected) <= 3 * (2 * expected) ** 0.5, (op, one[op], two[op])


def test_march_and_april_carry_the_moves(annual):
    """March carries 17% ± 2 points and April 12% ± 2 points of the year's moves."""
    header, events, _, _ = annual
    months = Counter(when(header, e.t).month for e in events if e.op in MOVES)
    total = sum(months.values())
    assert total > 10_000
    assert 0.15 <= months[3] / total <= 0.19
    assert 0.10 <= months[4] / total <= 0.14


# -- calendar -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fixture", ["annual", "annual_pair"])
def test_counter_keeps_its_hours(fixture, request):
    """Customers arrive only on open days 8:30–17:15 (weekdays, and the weekend openings of the spring peak);
    whoever queued is served, the same evening (before 21:00 even at the peak)."""
    header, events, stats, arrivals = request.getfixturevalue(fixture)
    start = dt.datetime.fromisoformat(header["start"])
    counter_arrivals = [start + dt.timedelta(seconds=t) for t, op, _, _ in arrivals if op in COUNTER_OPS]
    assert counter_arrivals
    for moment in counter_arrivals:
        assert day_factor(moment.date()) > 0, moment
        assert COUNTER_OPEN[0] <= minute_of_day(moment) < COUNTER_OPEN[1], moment
    served = [e for e in events if at_counter(e)]
    assert len(served) == len(counter_arrivals) == sum(s["served"] for s in stats.values())
    finished = [when(header, e.t) for e in served]
    for moment in finished:
        assert day_factor(moment.date()) > 0 and moment.date() not in HOLIDAYS, moment
        assert COUNTER_OPEN[0] < minute_of_day(moment) < 21 * 60, moment
    assert any(minute_of_day(m) > COUNTER_OPEN[1] for m in finished)  # the queue is served after closing


def test_kiosk_hours(annual):
    """コンビニ交付 only between 6:30 and 23:00, weekends included."""
    header, events, _, _ = annual
    kiosk = [when(header, e.t) for e in events if e.op == "コンビニ交付"]
    assert all(KIOSK_OPEN[0] <= minute_of_day(m) < KIOSK_OPEN[1] for m in kiosk)
    assert {m.weekday() for m in kiosk} == set(range(7))


def test_special_move_in_follows_a_move_out(annual_pair):
    """特例転入 only on weekdays 9:00–17:00, each after a 転出 with the same pair from the other municipality."""
    header, events, _, _ = annual_pair
    move_outs = {e.args["pair"]: e for e in events if e.op == "転出" and e.args.get("pair")}
    move_ins = [e for e in events if special(e)]
    assert len(move_ins) > 100
    assert {e.municipality for e in move_ins} == {BIG, SMALL}
    for move_in in move_ins:
        moment = when(header, move_in.t)
        assert moment.weekday() < 5 and moment.date() not in HOLIDAYS, moment
        assert JUKINET_OPEN[0] <= minute_of_day(moment) < JUKINET_OPEN[1], moment
        move_out = move_outs[move_in.args["pair"]]
        assert move_out.t < move_in.t
        assert move_out.municipality == move_in.args["from"] != move_in.municipality
        assert move_out.args["to"] == move_in.municipality and move_out.args["special"] is True


def test_special_move_in_only_when_counter_open(annual_pair):
    """特例転入 only on days the counter is open."""
    header, events, _, _ = annual_pair
    closed = [when(header, e.t) for e in events if special(e) and day_factor(when(header, e.t).date()) == 0]
    assert closed == []


def test_counter_closed_on_holidays_of_2027(annual):
    """No counter event on the national holidays of January–March 2027 in the annual scenario."""
    header, events, _, _ = annual
    assert Counter(when(header, e.t).date() for e in events if e.op in COUNTER_OPS
                   and when(header, e.t).date() in HOLIDAYS_2027) == Counter()


# -- profiles ---------------------------------------------------------------------------------------------

def test_mondays_and_month_ends_are_busier(annual):
    """Mondays, month ends and days after holidays see more counter events than ordinary mid-week days."""
    header, events, _, _ = annual
    per_day = Counter(when(header, e.t).date() for e in events if at_counter(e))
    first = dt.date.fromisoformat(header["start"][:10])
    open_days = [d for d in (first + dt.timedelta(days=i) for i in range(header["days"])) if day_factor(d) > 0]

    def month_end(d):
        return d.day > calendar.monthrange(d.year, d.month)[1] - 2

    def after_holiday(d):
        return d - dt.timedelta(days=1) in HOLIDAYS

    def average(days):
        days = list(days)
        assert days
        return sum(per_day[d] for d in days) / len(days)

    by_weekday = {w: average(d for d in open_days if d.weekday() == w) for w in range(5)}
    assert by_weekday[0] > max(by_weekday[1], by_weekday[2], by_weekday[3]), by_weekday
    ordinary = average(d for d in open_days if d.weekday() in (1, 2, 3) and not month_end(d) and not after_holiday(d))
    assert average(d for d in open_days if month_end(d)) > ordinary
    assert average(d for d in open_days if after_holiday(d) and d.weekday() in (1, 2, 3)) > ordinary


def test_counter_peaks_late_morning(annual):
    """Each hour 11:00–14:00 sees more counter events than 9:00–10:00."""
    header, events, _, _ = annual
    by_hour = Counter(when(header, e.t).hour for e in events if at_counter(e))
    assert min(by_hour[11], by_hour[12], by_hour[13]) > by_hour[9], by_hour


# -- the counter queue ---------------------------------------------------------------------------------

def test_march_peak_counter_queue():
    """In the March peak the counter serves, queues and makes customers wait (minutes; p95 ≥ mean)."""
    _, events, stats = generate("march-peak", {CITY: 100_000}, 1)
    counter = stats[CITY]
    assert counter["served"] == sum(at_counter(e) for e in events) > 0
    assert counter["mean_wait_min"] > 0
    assert counter["max_queue"] > 0
    assert counter["max_wait_min"] >= counter["p95_wait_min"] >= counter["mean_wait_min"]
    assert counter["max_wait_min"] < 8 * 60  # minutes, not seconds: the longest wait is within a working day


class FixedArrivals(Workload):
    """The model with the arrivals given, to follow the counter customer by customer."""

    def __init__(self, arrivals, *args, **kw):
        super().__init__(*args, **kw)
        self.fixed = arrivals

    def _arrivals(self):
        return list(self.fixed)


def test_counter_queue_log():
    """One clerk, three customers at 9:00: served in arrival order, each waiting (in minutes) for those before."""
    nine = 9 * 3600.0
    model = FixedArrivals([(nine, "証明書", CITY, {}), (nine, "転居", CITY, {}), (nine, "出生", CITY, {})],
                          "march-peak", {CITY: 5_000}, seed=1)  # 5,000 residents: one clerk
    events = model.run()
    assert [e.op for e in events] == ["証明書", "転居", "出生"]
    first, second, third = (e.t for e in events)
    assert nine < first < second < third
    stats = model.stats[CITY]
    assert stats.served == 3
    assert stats.waits == [0.0, (first - nine) / 60, (second - nine) / 60]
    assert max(q for _, q in stats.queue_samples) <= 2


# -- cutover weekend ------------------------------------------------------------------------------------

def test_cutover_freeze_is_quiet(cutover):
    """Nothing happens during the freeze; what it held back comes within three hours after it."""
    header, events, _ = cutover
    freeze_start, freeze_end = (dt.datetime.fromisoformat(t) for t in header["freeze"])
    assert (freeze_start, freeze_end) == SCENARIOS["cutover-weekend"][2]
    assert [e for e in events if freeze_start <= when(header, e.t) < freeze_end] == []
    deferred = [e for e in events if e.args.get("deferred")]
    assert len(deferred) > 50
    assert {e.op for e in deferred} >= {"コンビニ交付"}
    for event in deferred:
        assert freeze_end <= when(header, event.t) < freeze_end + dt.timedelta(hours=3), event


def test_cutover_monday_busier_than_friday(cutover):
    """The Monday after the freeze has more counter events than the Friday before it."""
    header, events, _ = cutover
    freeze_start, freeze_end = (dt.datetime.fromisoformat(t) for t in header["freeze"])
    per_day = Counter(when(header, e.t).date() for e in events if e.op in COUNTER_OPS)
    friday, monday = freeze_start.date(), freeze_end.date()
    assert (friday.weekday(), monday.weekday()) == (4, 0)
    assert per_day[monday] > per_day[friday] > 0


# -- trace files ------------------------------------------------------------------------------------------

def test_trace_round_trip(tmp_path, cutover):
    """write_trace then read_trace gives the same header fields and events."""
    header, events, stats = cutover
    path = write_trace(tmp_path / "trace.jsonl", header, events, stats)
    read_header, read_events = read_trace(path)
    assert {k: read_header[k] for k in header} == header
    assert read_header["counter"] == json.loads(json.dumps(stats))
    assert lines(read_events) == lines(events)
    assert [(e.t, e.op, e.municipality, e.args) for e in read_events] == \
           [(round(e.t, 3), e.op, e.municipality, e.args) for e in events]


def test_read_trace_refuses_other_format(tmp_path, cutover):
    """read_trace refuses a file whose header names another format."""
    header, events, stats = cutover
    path = write_trace(tmp_path / "trace.jsonl", {**header, "format": "testbed-trace/2"}, events, stats)
    with pytest.raises(ValueError, match=TRACE_FORMAT):
        read_trace(path)


def test_cli_trace(tmp_path, capsys):
    """`testbed trace march-peak --residents 20000 --seed 2 --out F` writes the seeded trace."""
    out = tmp_path / "peak.jsonl"
    assert cli.main(["trace", "march-peak", "--residents", "20000", "--seed", "2", "--out", str(out)]) == 0
    header, events = read_trace(out)
    assert header["format"] == "testbed-trace/1"
    assert (header["scenario"], header["seed"], header["municipalities"]) == ("march-peak", 2, {CITY: 20_000})
    assert header["events"] == len(events) > 0
    _, expected, _ = generate("march-peak", {CITY: 20_000}, 2)
    assert lines(events) == lines(expected)
    assert str(out) in capsys.readouterr().out


def test_unknown_scenario():
    """An unknown scenario is refused with ValueError."""
    with pytest.raises(ValueError, match="unknown scenario"):
        generate("golden-week", {CITY: 1_000}, 1)
    with pytest.raises(ValueError, match="golden-week"):
        Workload("golden-week", {CITY: 1_000})


def test_the_spring_peak_has_the_shape_public_accounts_describe():
    """A city of 100,000: peak days at 4–5× an ordinary day's 異動 (the last days of March, the first of April),
    the counter busiest around noon and on Mondays, no queue to speak of on an ordinary day, and waits of tens of
    minutes at the worst hours of the March peak (the shape is tested, not exact numbers)."""
    import collections
    import datetime as dt
    import statistics
    from scenarios.workload import generate
    header, events, counter = generate("annual", {"142140": 100_000}, 1)
    start = dt.datetime.fromisoformat(header["start"])
    per_day, per_hour, per_weekday = collections.Counter(), collections.Counter(), collections.Counter()
    for event in events:
        if event.op in ("転入", "転出", "転居"):
            moment = start + dt.timedelta(seconds=event.t)
            per_day[moment.date()] += 1
            per_hour[moment.hour] += 1
            per_weekday[moment.weekday()] += 1
    ordinary = statistics.median(v for d, v in per_day.items() if d.month in (6, 7, 9, 10, 11))
    peak_day = max(per_day, key=per_day.get)
    assert 3.5 <= per_day[peak_day] / ordinary <= 6.0, (per_day[peak_day], ordinary)
    assert (peak_day.month, peak_day.day) in [(3, d) for d in range(23, 32)] + [(4, d) for d in range(1, 4)]
    assert per_hour.most_common(1)[0][0] in (11, 12, 13)
    assert per_weekday.most_common(1)[0][0] == 0  # Monday
    assert any(d.weekday() >= 5 for d in per_day if d.month in (3, 4))  # the weekend openings of the peak
    _, _, peak = generate("march-peak", {"142140": 100_000}, 1)
    assert 20 <= peak["142140"]["worst_hour_mean_wait_min"] <= 300
    assert counter["142140"]["p95_wait_min"] < 10
