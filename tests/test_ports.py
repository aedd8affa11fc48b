"""The port policy (nodes/ports.py): programs choosing ports at the same time never choose the same one, and one
program does not hand out a port again while a network it chose for may still be starting."""
from __future__ import annotations

import json
import subprocess
import sys

from nodes import ports

CHOOSE = ("import json, sys; from nodes import ports; "
          "print(json.dumps([ports.reserve('127.0.0.1', 48) for _ in range(6)])); sys.stdout.flush(); sys.stdin.read()")


def test_programs_choosing_at_once_never_share_a_port():
    """Four processes each choose six networks' ports while all hold their blocks: no port is chosen twice."""
    children = [subprocess.Popen([sys.executable, "-c", CHOOSE], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 text=True) for _ in range(4)]
    try:
        chosen = [json.loads(child.stdout.readline()) for child in children]
    finally:
        for child in children:
            child.communicate("", timeout=30)
    every = [port for networks in chosen for network in networks for port in network]
    assert len(every) == 4 * 6 * 48 and len(set(every)) == len(every)
    low = ports.ephemeral_range()[0]
    assert all(low - ports.SPAN <= port < low for port in every)  # below the kernel's range for outgoing calls


def test_a_port_comes_round_again_only_after_every_block():
    """Within one process (a fresh one: this one has chosen for other tests), the ports of one choice are not handed
    out again by the next ones, until the process holds its most blocks."""
    check = ("from nodes import ports\n"
             "first = set(ports.reserve('127.0.0.1', 48))\n"
             "later = [set(ports.reserve('127.0.0.1', 48)) for _ in range(ports.MAX_BLOCKS * ports.BLOCK // 48 - 2)]\n"
             "assert all(not (first & other) for other in later)\n"
             "assert len(set().union(*later)) == 48 * len(later)\n")
    run = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
