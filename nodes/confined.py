"""The node's own part of confinement (`testbed up --confine`, see testbed/confine.py): once started in its
own view of the state folder, a node makes itself non-dumpable, so that no other process of the same user
reads its memory or its view through /proc without the capability that was dropped for it."""
from __future__ import annotations

import ctypes
import ctypes.util
import os

ENV = "TESTBED_CONFINED"
PR_SET_DUMPABLE = 4


def harden_self() -> bool:
    """When started confined: become non-dumpable; whether this node is confined."""
    if os.environ.get(ENV) != "1":
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE, 0) refused")
    return True
