"""Secrets held apart on one machine: what each node may see of the state folder when it runs confined.

Every node runs as the same user here, and the interpreter lives where other users cannot read it, so
separate Unix users are not available. Instead each node starts in a mount namespace of its own (as
containers do; the mechanism is nodes/confined.py) whose view of the state folder holds only what the
node needs:

    pki/root, pki/ca             the trust anchors and CRLs (read-only)
    pki/nodes/<node>             its own keys, certificates and secrets (audit key, PIN key, verifiers)
    pki/sessions/public          the public session keys (kizon holds its signing key in its own folder)
    data/<node>                  its own store and audit log
    checkpoints/<node>.jsonl     where it publishes its audit checkpoints (and a CS's search process,
                                 which runs in the CS's view, at checkpoints/<node>.search.jsonl)

Everything else (the CA keys, other nodes' keys and data, terminal and kit keys, operator credentials,
other logs) is covered by an empty tmpfs. Linux only, and only for root.

The helpers that face vendors (a site's SFTP server, the SSH bastion's front) are confined the same way
(service_command), more tightly: of the state folder they see only their own keys (host key, the vendors'
public keys, the bastion's audit key) and the paths they serve; the PKI, the exports, the other sites, the
bastion's folder and the pid files are covered too (SERVICE_MASKED).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from nodes.confined import ENV, MASKED  # noqa: F401  (ENV: set in every confined node)
from nodes.runtime import SEARCH_CHAIN


def view_for(network, node) -> dict:
    """The view of a node: its own secrets and data, the trust anchors, CRLs and public session keys."""
    readable = ["pki/root", "pki/ca", "pki/sessions/public"]
    writable = [f"pki/nodes/{node.name}", f"data/{node.name}", f"checkpoints/{node.name}.jsonl"]
    if node.search_address:  # its search process runs in the same view, with a chain of its own
        writable.append(f"checkpoints/{node.name}.{SEARCH_CHAIN}.jsonl")
    return {"state_dir": str(network.state_dir.resolve()), "readable": readable, "writable": writable}


def available() -> str:
    """"" if nodes can be confined here, else why not."""
    if sys.platform != "linux":
        return "confinement needs Linux (mount namespaces)"
    if os.geteuid() != 0:
        return "confinement needs root (it makes a mount namespace per node)"
    return ""


def command(network, node, program: list[str]) -> list[str]:
    """The command that starts program confined to node's view (the view written beside the pid file)."""
    view = view_for(network, node)
    state = Path(view["state_dir"])
    for folder in MASKED:
        (state / folder).mkdir(mode=0o700, exist_ok=True)
    for rel in view["writable"]:  # every path of the view exists before the node starts
        path = state / rel
        if rel.startswith("checkpoints/"):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
        else:
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = network.state_dir / "run" / f"{node.name}.view.json"
    path.parent.mkdir(mode=0o700, exist_ok=True)
    path.write_text(json.dumps(view, indent=1))
    return [sys.executable, "-m", "nodes.confined", str(path), "--", *program]


SERVICE_MASKED = (*MASKED, "migrations", "archive", "bastion", "sites", "run")


def service_command(state_dir: Path, name: str, readable: list[str], writable: list[str],
                    program: list[str]) -> list[str]:
    """The command that starts a helper (an SFTP server, the bastion's front) confined: of the state folder it
    sees the paths named (each must exist, under a covered folder) and nothing else of SERVICE_MASKED."""
    state = Path(state_dir).resolve()
    for folder in SERVICE_MASKED:
        (state / folder).mkdir(mode=0o700, exist_ok=True)
    for rel in readable + writable:
        if rel.split("/", 1)[0] not in SERVICE_MASKED or not (state / rel).exists():
            raise ValueError(f"a confined helper's path must exist under one of {', '.join(SERVICE_MASKED)}: {rel}")
    view = {"state_dir": str(state), "readable": readable, "writable": writable, "masked": list(SERVICE_MASKED)}
    path = state / "run" / f"{name}.view.json"
    path.write_text(json.dumps(view, indent=1))
    return [sys.executable, "-m", "nodes.confined", str(path), "--", *program]
