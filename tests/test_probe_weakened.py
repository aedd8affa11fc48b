"""Training mode, the second half of the weaknesses (the first is tried in tests/test_probe.py): the probe and the
conformance suite each fail on exactly the weakened rule, on a network of this file's own."""
from __future__ import annotations

import pytest

from conftest import network_with_residents
from weakened import ELSEWHERE, probe_and_suite_fail_exactly


@pytest.fixture(scope="module")
def probed(tmp_path_factory):
    """A network of its own with 120 residents of 伊勢原市 (enough to try the bulk-output rule)."""
    yield from network_with_residents(tmp_path_factory, "probe-weakened", 120, seed=5)


@pytest.mark.parametrize("weakness", ELSEWHERE)
def test_the_probe_and_the_suite_name_exactly_the_weakened_rule(probed, weakness, monkeypatch, tmp_path, capsys):
    """With one weakness switched on, the probe fails on that rule and on nothing else, and the conformance suite
    exactly on the cases of the rules it switches off (tests/weakened.py)."""
    probe_and_suite_fail_exactly(probed, weakness, monkeypatch, tmp_path, capsys)
