"""The office's clock: dates and hours in Japan, the one clock every rule is measured by, and the one source of
"now" for the stamps nodes record.

Nodes use it for their own rules; terminals, the replay and Locust import it so that what they send
("today") is what the node will accept, whatever the machine's time zone.
"""
from __future__ import annotations

import datetime as dt

from nodes import settings

JST = dt.timezone(dt.timedelta(hours=9))
KIOSK_HOURS = (dt.time(6, 30), dt.time(23, 0))  # コンビニ交付, Japan time
# The simulated clock (DESIGN §6: the same trace, the same outcome at any hour). A network started with
# TESTBED_SIMULATED_CLOCK=1 (`testbed run` does, unless --wall-clock) takes the time of day for its
# time-of-day rules from the call's metadata x-simulated-time, which the replay sets from the scenario's
# clock; the node audits every call it judged by that clock. Without the switch the metadata is ignored.
SIMULATED_ENV = settings.SIMULATED_CLOCK
SIMULATED_KEY = "x-simulated-time"


def now() -> dt.datetime:
    """The moment, in UTC (what nodes stamp their records with)."""
    return dt.datetime.now(dt.timezone.utc)


def stamp(timespec: str = "seconds") -> str:
    """The moment as an ISO 8601 UTC stamp."""
    return now().isoformat(timespec=timespec)


def office_now() -> dt.datetime:
    """The moment in Japan, where the office is."""
    return now().astimezone(JST)


def office_today() -> dt.date:
    """Today's date in Japan, where the office is."""
    return office_now().date()


def simulated(value: str | None) -> dt.datetime | None:
    """The simulated time a call carries, when this process honours it (else None)."""
    if not value or not settings.current().simulated_clock:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.astimezone(JST) if moment.tzinfo else moment.replace(tzinfo=JST)


def kiosk_clock(simulated_time: dt.datetime | None = None) -> dt.time:
    """The time of day in Japan: the simulated one when given, else the one pinned by TESTBED_KIOSK_CLOCK=HH:MM
    (for tests of the hours rule), else the wall clock."""
    if simulated_time is not None:
        return simulated_time.astimezone(JST).time()
    return settings.current().kiosk_clock or office_now().time()
