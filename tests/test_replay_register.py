"""The replay's own register of residents: a pick is one draw among the current residents (never someone removed,
never a code twice), however people come and go."""
from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from testbed.replay import Person, Register

CODES = [f"{i:011d}" for i in range(30)]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["add", "remove", "gone"]), st.sampled_from(CODES)), max_size=120))
def test_picks_are_drawn_from_the_current_residents_only(steps):
    """After any sequence of arrivals, removals and acknowledged removals, the list a pick draws from holds exactly
    the current residents, each once, at the place it records; a 除票 is kept only for an acknowledged removal."""
    register = Register()
    for action, code in steps:
        if action == "add":
            register.add(Person(code, "H" + code[-2:], card=False))
        elif action == "remove":
            register.remove(code)
        else:
            register.gone(code)
        assert sorted(register.codes) == sorted(register.people)
        assert all(register.codes[place] == c for c, place in register.places.items())
    rng = random.Random(7)
    picked = {register.pick(rng).code for _ in range(200)} if register.people else set()
    assert picked <= set(register.people)
    assert set(register.removed) == {code for action, code in steps if action == "gone"}


def test_a_pick_skips_the_busy_and_finds_nobody_in_an_empty_register():
    """A resident with a call in flight is not picked; an empty register gives None."""
    register = Register()
    assert register.pick(random.Random(1)) is None
    register.add(Person("00000000001", "H1", card=False, busy=True))
    register.add(Person("00000000002", "H1", card=False))
    assert {register.pick(random.Random(seed)).code for seed in range(20)} == {"00000000002"}
