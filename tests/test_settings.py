"""One clock and one settings object: every rule's "now" comes from nodes/clock.py, and a node's configuration is
read once into nodes/settings.Settings, never from the environment when a module is imported."""
from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path

import pytest

from nodes import clock, settings, weaken

NODES = Path(__file__).resolve().parent.parent / "nodes"


def _module_level(tree: ast.Module):
    """The statements that run at import (not inside a function or class body's methods)."""
    for node in tree.body:
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            yield node


def test_no_node_module_reads_the_environment_at_import():
    """os.environ / os.getenv only inside functions (nodes/settings.py reads them when a process starts)."""
    found = []
    for path in NODES.rglob("*.py"):
        for statement in _module_level(ast.parse(path.read_text())):
            text = ast.unparse(statement)
            if "os.environ" in text or "os.getenv" in text:
                found.append(f"{path.relative_to(NODES)}: {text[:80]}")
    assert not found, found


def test_every_now_comes_from_the_clock():
    """No datetime.now(), date.today() or time zone of Japan made anew outside nodes/clock.py."""
    found = []
    for path in NODES.rglob("*.py"):
        if path.name == "clock.py":
            continue
        text = path.read_text()
        for needle in ("datetime.now(", "date.today(", "timedelta(hours=9)"):
            if needle in text:
                found.append(f"{path.relative_to(NODES)}: {needle}")
    assert not found, found


def test_settings_are_read_from_the_environment_and_refused_when_wrong():
    """The variables of a node process, typed; a bad one is a ValueError naming it."""
    read = settings.Settings.from_environment({"TESTBED_KIOSK_CLOCK": "06:30", "TESTBED_SIMULATED_CLOCK": "1",
                                               "TESTBED_POOL_LOW": "10", "TESTBED_DELIVERY_RETENTION_DAYS": "0",
                                               "TESTBED_WEAKEN": "crl,search-rule"})
    assert read == settings.Settings(simulated_clock=True, kiosk_clock=dt.time(6, 30), pool_low=10,
                                     delivery_retention_days=0, weaknesses=frozenset({"crl", "search-rule"}))
    assert settings.Settings.from_environment({}) == settings.Settings()
    for name, value in (("TESTBED_KIOSK_CLOCK", "noon"), ("TESTBED_POOL_REFILL", "0"), ("TESTBED_POOL_LOW", "-1")):
        with pytest.raises(ValueError, match=name):
            settings.Settings.from_environment({name: value})
    with pytest.raises(ValueError, match="unknown weakness everything"):  # (checked by the node at start)
        weaken.parse(",".join(settings.Settings.from_environment({"TESTBED_WEAKEN": "everything"}).weaknesses))


def test_the_clock_follows_the_settings(monkeypatch):
    """The kiosk's time of day pinned by the settings, the simulated time honoured only when switched on."""
    monkeypatch.setattr(settings, "_current", settings.Settings(kiosk_clock=dt.time(5, 0)))
    assert clock.kiosk_clock() == dt.time(5, 0)
    assert clock.simulated("2026-03-30T10:00:00") is None
    monkeypatch.setattr(settings, "_current", settings.Settings(simulated_clock=True))
    assert clock.simulated("2026-03-30T10:00:00") == dt.datetime(2026, 3, 30, 10, tzinfo=clock.JST)
    assert clock.office_now().utcoffset() == dt.timedelta(hours=9) and clock.now().tzinfo is dt.timezone.utc
