"""Secrets held apart on one machine: each node process sees only its own secrets (`testbed up --confine`).

Every node runs as root's user in these sandboxes, and the interpreter lives where other users cannot
read it, so separate Unix users are not available. Instead each node starts in a mount namespace of its
own (as containers do) whose view of the state folder holds only what DESIGN §5 gives that node:

    pki/root, pki/ca             the trust anchors and CRLs (read-only)
    pki/nodes/<node>             its own keys, certificates and secrets (audit key, PIN key, verifiers)
    pki/sessions/*.pub           the public session keys; kizon-<m> also its own <m>.key
    data/<node>                  its own store and audit log
    checkpoints/<node>.jsonl     where it publishes its audit checkpoints

Everything else (the CA keys, other nodes' keys and data, terminal and kit keys, operator credentials,
other logs) is covered by an empty tmpfs. Before the node's program starts, the capabilities that would
undo this are dropped from its bounding set (mounting, tracing other processes, reading past file modes,
raw devices, modules), and the node makes itself non-dumpable, so that one node cannot read another's
files through /proc either. Linux only, and only for root; `testbed up` without --confine runs nodes
unconfined.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
from dataclasses import dataclass, field
from pathlib import Path

from nodes.confined import ENV  # noqa: F401  (the launcher sets it for each confined node)

CLONE_NEWNS = 0x00020000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x1, 0x2, 0x4, 0x8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 0x20, 0x1000, 0x4000, 1 << 18
PR_CAPBSET_DROP = 24
# CAP_DAC_OVERRIDE 1, CAP_DAC_READ_SEARCH 2, CAP_FOWNER 3, CAP_SYS_MODULE 16, CAP_SYS_RAWIO 17,
# CAP_SYS_PTRACE 19, CAP_SYS_ADMIN 21, CAP_MKNOD 27, CAP_SYSLOG 34, CAP_BPF 39, CAP_CHECKPOINT_RESTORE 40
DROPPED_CAPABILITIES = (1, 2, 3, 16, 17, 19, 21, 27, 34, 39, 40)
MASKED = ("pki", "data", "checkpoints", "logs")  # folders of the state folder covered by a tmpfs


class ConfineError(Exception):
    """The node could not be confined (not root, not Linux, or the kernel refused a namespace)."""


@dataclass
class View:
    """What one node may see of the state folder: paths relative to it, folders and files, and which are
    writable."""

    state_dir: Path
    readable: list[str] = field(default_factory=list)
    writable: list[str] = field(default_factory=list)


def view_for(network, node) -> View:
    """The view of a node: its own secrets and data, the trust anchors, CRLs and public session keys."""
    view = View(network.state_dir.resolve(), ["pki/root", "pki/ca"], [f"pki/nodes/{node.name}", f"data/{node.name}",
                                                                      f"checkpoints/{node.name}.jsonl"])
    sessions = network.state_dir / "pki" / "sessions"
    for pub in sorted(sessions.glob("*.pub")):
        view.readable.append(f"pki/sessions/{pub.name}")
    if node.kind == "kizon":
        view.writable.append(f"pki/sessions/{node.municipality}.key")
    return view


def available() -> str:
    """"" if nodes can be confined here, else why not."""
    if not hasattr(os, "geteuid") or os.uname().sysname != "Linux":
        return "--confine needs Linux (mount namespaces)"
    if os.geteuid() != 0:
        return "--confine needs root (it makes a mount namespace per node)"
    return ""


def prepare(view: View) -> None:
    """Make sure every path of the view exists before the node starts (run in the launcher)."""
    for rel in view.readable + view.writable:
        path = view.state_dir / rel
        if rel.endswith(".jsonl"):
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
        elif not path.exists() and "." not in path.name:
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
    for folder in MASKED:
        (view.state_dir / folder).mkdir(mode=0o700, exist_ok=True)


def enter(view: View):
    """A preexec function: in the child, between fork and exec, build the view and drop the capabilities."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
    present = [rel for rel in view.readable + view.writable if (view.state_dir / rel).exists()]
    top = {rel: rel.split("/", 1)[0] for rel in present}

    def check(result: int, what: str) -> None:
        if result != 0:
            raise ConfineError(f"{what}: {os.strerror(ctypes.get_errno())}")

    def mount(source, target, fstype, flags, data=None) -> None:
        check(libc.mount(source and str(source).encode(), str(target).encode(), fstype and fstype.encode(), flags,
                         data and data.encode()), f"mount {target}")

    def run() -> None:
        check(libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
        mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing mounted here leaks back to the host
        originals = {folder: os.open(view.state_dir / folder, os.O_PATH) for folder in MASKED}
        for folder in MASKED:
            mount("tmpfs", view.state_dir / folder, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0700,size=1m")
        for rel in present:
            folder, rest = top[rel], rel.split("/", 1)[1]
            source = f"/proc/self/fd/{originals[folder]}/{rest}"
            target = view.state_dir / rel
            if os.path.isdir(source):
                os.makedirs(target, mode=0o700, exist_ok=True)
            else:
                os.makedirs(target.parent, mode=0o700, exist_ok=True)
                os.close(os.open(target, os.O_WRONLY | os.O_CREAT, 0o600))
            mount(source, target, None, MS_BIND)
            if rel in view.readable:
                mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
        for fd in originals.values():
            os.close(fd)
        for folder in MASKED:  # the covering tmpfs itself read-only: nothing new appears beside the view
            mount(None, view.state_dir / folder, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                  "mode=0700,size=1m")
        for cap in DROPPED_CAPABILITIES:
            libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)  # a capability the kernel does not know is simply absent

    return run
