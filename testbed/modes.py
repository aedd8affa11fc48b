"""How a network's nodes run: the modes `testbed up` starts them in, as one record.

Three modes are the network's own choice and kept in one file of the state folder, modes.json (0600, replaced
whole): the weaknesses switched on on purpose (training mode), confinement, and the simulated clock. The other
two are read from the files the nodes themselves read, which stay their source of truth: relayed links from the
links plan (testbed/links.py), isolation from the topology of an isolated network (its nodes at their segment
addresses). A state folder of an earlier version keeps the three as marker files (weaken, confine,
simulated-clock): they are read while there is no modes.json, and removed when it is written.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

FILE = "modes.json"
MARKERS = ("weaken", "confine", "simulated-clock")  # what an earlier version kept instead


@dataclass(frozen=True)
class Modes:
    """The modes of a network's nodes. As asked of `up`, a field may be None: as the running nodes are (when none
    run, the default)."""

    weaken: tuple[str, ...] | None = ()
    confine: bool | None = False
    links: bool | None = False
    isolated: bool | None = False
    simulated_clock: bool | None = False

    def differences(self, running: "Modes") -> list[str]:
        """How running nodes differ from what is asked, each in the words of "nodes are running ..."."""
        said = []
        if self.weaken is not None and tuple(self.weaken) != running.weaken:
            said.append("with other weaknesses")
        if self.confine is not None and self.confine != running.confine:
            said.append("unconfined" if self.confine else "confined")
        if self.isolated is not None and self.isolated != running.isolated:
            said.append("not isolated" if self.isolated else "isolated")
        if self.links is not None and bool(self.links) != running.links:
            said.append("without relayed links" if self.links else "with relayed links")
        if self.simulated_clock is not None and self.simulated_clock != running.simulated_clock:
            said.append("without the simulated clock" if self.simulated_clock else "with the simulated clock")
        return said


def refusal(differences: list[str]) -> str:
    """The one message for every mode the running nodes differ in."""
    listed = differences[0] if len(differences) == 1 else f"{', '.join(differences[:-1])} and {differences[-1]}"
    return f"nodes are running {listed}; `testbed down` first"


def load(state_dir: Path, links: bool, isolated: bool) -> Modes:
    """The modes of a state folder's nodes: its record (else an earlier version's marker files), with links and
    isolated as their own files say."""
    state_dir = Path(state_dir)
    try:
        kept = json.loads((state_dir / FILE).read_text())
    except FileNotFoundError:
        kept = _markers(state_dir)
    except (OSError, ValueError):
        kept = {}
    kept = kept if isinstance(kept, dict) else {}
    return Modes(tuple(str(w) for w in kept.get("weaken") or ()), bool(kept.get("confine")), links, isolated,
                 bool(kept.get("simulated_clock")))


def _markers(state_dir: Path) -> dict:
    """The modes an earlier version kept as marker files."""
    weaken = state_dir / "weaken"
    text = weaken.read_text() if weaken.exists() else ""
    return {"weaken": text.split(",") if text.strip() else [], "confine": (state_dir / "confine").exists(),
            "simulated_clock": (state_dir / "simulated-clock").exists()}


def save(state_dir: Path, modes: Modes) -> None:
    """Keep the record of weaken, confine and simulated_clock (0600, replaced whole); remove the marker files."""
    state_dir = Path(state_dir)
    partial = state_dir / f".{FILE}.new"
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"weaken": list(modes.weaken or ()), "confine": bool(modes.confine),
                   "simulated_clock": bool(modes.simulated_clock)}, f)
    os.replace(partial, state_dir / FILE)
    for marker in MARKERS:
        (state_dir / marker).unlink(missing_ok=True)
