"""What the command groups share: the one-line refusal every command stops with, the network a command works on
(--state-dir, --topology) and the municipality it names."""
from __future__ import annotations

from testbed.network import Network

STATUS_TRIES = 3  # health checks asked of a node before it counts as down (`testbed status`, the probe), …
STATUS_TIMEOUT = 1.5  # … each waited for this long, half a second apart


class Refusal(Exception):
    """A command that cannot go on: one line saying what is wrong and what to do. `main` prints it on stderr as
    `testbed COMMAND: LINE` (COMMAND: the subcommand given, or the words of `command`, e.g. "bastion start") and
    exits with `code`: 2 (the default) for a request that cannot be done, 1 for a finding (files stale, flows failed)."""

    def __init__(self, line: str, code: int = 2, *, command: str | None = None):
        super().__init__(line)
        self.code, self.command = code, command


def open_network(args) -> Network:
    """The network of the command line: its state folder (--state-dir) and topology (--topology, else the one in use)."""
    return Network.open(args.state_dir, args.topology)


def known_municipality(network: Network, code: str) -> str:
    """A municipality the topology names, or a Refusal listing those it does."""
    known = {m.code: m.name for m in network.topology.municipalities}
    if code not in known:
        raise Refusal(f"no municipality {code!r} in the {network.topology.name} topology "
                      f"({', '.join(f'{c} {n}' for c, n in known.items())}): give one of those, or --topology FILE "
                      "of a topology that names it")
    return code
