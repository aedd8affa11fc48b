"""The office's clock: dates and hours in Japan, the one clock every rule is measured by.

Nodes use it for their own rules; terminals, the replay and Locust import it so that what they send
("today") is what the node will accept, whatever the machine's time zone.
"""
from __future__ import annotations

import datetime as dt
import os

JST = dt.timezone(dt.timedelta(hours=9))
KIOSK_HOURS = (dt.time(6, 30), dt.time(23, 0))  # コンビニ交付, Japan time


def office_today() -> dt.date:
    """Today's date in Japan, where the office is."""
    return dt.datetime.now(JST).date()


def kiosk_clock() -> dt.time:
    """The time of day in Japan (TESTBED_KIOSK_CLOCK=HH:MM pins it, for tests of the hours rule)."""
    pinned = os.environ.get("TESTBED_KIOSK_CLOCK")
    return dt.time.fromisoformat(pinned) if pinned else dt.datetime.now(JST).time()
