"""A node process's configuration: read from the environment once, when the process starts (never at import), into
one typed object every part asks (`current()`). A bad value stops the start with a line naming the variable."""
from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field

SIMULATED_CLOCK = "TESTBED_SIMULATED_CLOCK"  # "1": time-of-day rules take the call's x-simulated-time (testbed run)
KIOSK_CLOCK = "TESTBED_KIOSK_CLOCK"  # HH:MM: the time of day of the kiosk's hours rule, pinned (tests of the rule)
POOL_LOW = "TESTBED_POOL_LOW"  # 住民票コード left in a CS's pool that raise the low-pool alert
POOL_REFILL = "TESTBED_POOL_REFILL"  # codes a CS asks of national at a time
DELIVERY_RETENTION = "TESTBED_DELIVERY_RETENTION_DAYS"  # days the card system keeps 送付先情報 (PIA Ⅲ(3)7)
CHALLENGE_SECONDS = "TESTBED_CHALLENGE_SECONDS"  # the lifetime of a 証明書交付センター challenge (tests of its expiry)
SCRUB_ROWS = "TESTBED_SCRUB_ROWS"  # records the scrubber re-hashes a second (0: no scrubber)
WEAKEN = "TESTBED_WEAKEN"  # training mode: the weaknesses switched on (nodes/weaken.py)


@dataclass(frozen=True)
class Settings:
    """What a node process was started with."""

    simulated_clock: bool = False
    kiosk_clock: dt.time | None = None
    pool_low: int = 1000
    pool_refill: int = 5000
    delivery_retention_days: int = 90
    challenge_seconds: int = 60
    scrub_rows: int = 500
    weaknesses: frozenset[str] = field(default_factory=frozenset)  # their names (nodes/weaken.py checks them)

    @classmethod
    def from_environment(cls, env=None) -> "Settings":
        """The settings of the environment (os.environ by default); ValueError naming a variable that is wrong."""
        env = os.environ if env is None else env
        pinned = env.get(KIOSK_CLOCK, "")
        try:
            kiosk = dt.time.fromisoformat(pinned) if pinned else None
        except ValueError:
            raise ValueError(f"{KIOSK_CLOCK}={pinned!r} is not a time of day HH:MM") from None
        return cls(simulated_clock=env.get(SIMULATED_CLOCK) == "1", kiosk_clock=kiosk,
                   pool_low=_count(env, POOL_LOW, cls.pool_low), pool_refill=_count(env, POOL_REFILL, cls.pool_refill, 1),
                   delivery_retention_days=_count(env, DELIVERY_RETENTION, cls.delivery_retention_days),
                   challenge_seconds=_count(env, CHALLENGE_SECONDS, cls.challenge_seconds, 1),
                   scrub_rows=_count(env, SCRUB_ROWS, cls.scrub_rows),
                   weaknesses=frozenset(n.strip() for n in env.get(WEAKEN, "").split(",") if n.strip()))


def _count(env, name: str, default: int, least: int = 0) -> int:
    text = env.get(name, "")
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        value = least - 1
    if value < least:
        raise ValueError(f"{name}={text!r} is not a whole number of at least {least}")
    return value


_current: Settings | None = None


def current() -> Settings:
    """The settings of this process: those it was configured with at start, else the environment's (read once)."""
    global _current
    if _current is None:
        _current = Settings.from_environment()
    return _current


def configure(settings: Settings | None) -> None:
    """Set this process's settings (a node at start; a test); None reads the environment again at next use."""
    global _current
    _current = settings
