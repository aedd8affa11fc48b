"""Confinement of a node (`testbed up --confine`): the mechanism, run in the node's own process.

`python -m nodes.confined VIEW.json -- PROGRAM ARGS...` enters a mount namespace of its own, covers the
folders of the state folder that hold secrets (pki, data, checkpoints, logs) with an empty tmpfs, binds
back only the paths the view names (read-only or writable), makes the covering tmpfs read-only, drops
from its bounding set the capabilities that could undo this (mounting, tracing other processes, reading
past file modes, raw I/O, modules), and only then execs the program, which therefore starts without them.
The started node makes itself non-dumpable (harden_self), so that no other process of the same user reads
its memory or its view through /proc. What a node may see is decided by the launcher (testbed/confine.py).
The work is done here, in a fresh single-threaded process, rather than between fork and exec of a
launcher that has threads.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import sys
from pathlib import Path

ENV = "TESTBED_CONFINED"
PR_SET_DUMPABLE, PR_CAPBSET_DROP = 4, 24
CLONE_NEWNS = 0x00020000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x1, 0x2, 0x4, 0x8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 0x20, 0x1000, 0x4000, 1 << 18
# CAP_DAC_OVERRIDE 1, CAP_DAC_READ_SEARCH 2, CAP_FOWNER 3, CAP_NET_ADMIN 12 (no new routes out of its segments),
# CAP_NET_RAW 13, CAP_SYS_MODULE 16, CAP_SYS_RAWIO 17, CAP_SYS_PTRACE 19, CAP_SYS_ADMIN 21, CAP_MKNOD 27,
# CAP_SYSLOG 34, CAP_BPF 39, CAP_CHECKPOINT_RESTORE 40
DROPPED_CAPABILITIES = (1, 2, 3, 12, 13, 16, 17, 19, 21, 27, 34, 39, 40)
MASKED = ("pki", "data", "checkpoints", "logs")  # folders of the state folder covered by a tmpfs
TMPFS = "mode=0700,size=1m"


class ConfineError(Exception):
    """The node could not be confined (the kernel refused a namespace or a mount)."""


def _libc():
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
    return libc


def enter(state_dir: Path, readable: list[str], writable: list[str], masked: tuple[str, ...] = MASKED) -> None:
    """Confine this process: its own mount namespace, only the view's paths of state_dir, capabilities dropped.
    masked: the folders of state_dir covered (a node's view covers MASKED; a helper's view may cover more)."""
    libc = _libc()

    def check(result: int, what: str) -> None:
        if result != 0:
            raise ConfineError(f"{what}: {os.strerror(ctypes.get_errno())}")

    def mount(source, target, fstype, flags, data=None) -> None:
        check(libc.mount(source and str(source).encode(), str(target).encode(), fstype and fstype.encode(), flags,
                         data and data.encode()), f"mount {target}")

    present = [rel for rel in readable + writable if (state_dir / rel).exists()]
    check(libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing mounted here leaks back to the host
    originals = {folder: os.open(state_dir / folder, os.O_PATH) for folder in masked}
    for folder in masked:
        mount("tmpfs", state_dir / folder, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, TMPFS)
    for rel in present:
        folder, rest = rel.split("/", 1)
        source = f"/proc/self/fd/{originals[folder]}/{rest}"  # the original, under the tmpfs now
        target = state_dir / rel
        if os.path.isdir(source):
            os.makedirs(target, mode=0o700, exist_ok=True)
        else:
            os.makedirs(target.parent, mode=0o700, exist_ok=True)
            os.close(os.open(target, os.O_WRONLY | os.O_CREAT, 0o600))
        mount(source, target, None, MS_BIND)
        if rel in readable:
            mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
    for fd in originals.values():
        os.close(fd)
    for folder in masked:  # the covering tmpfs itself read-only: nothing new appears beside the view
        mount(None, state_dir / folder, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, TMPFS)
    for cap in DROPPED_CAPABILITIES:
        libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)  # one the kernel does not know is absent anyway


def harden_self() -> bool:
    """When started confined: become non-dumpable; whether this process is confined."""
    if os.environ.get(ENV) != "1":
        return False
    if _libc().prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE, 0) refused")
    return True


def main(argv: list[str]) -> None:
    """`python -m nodes.confined VIEW.json -- PROGRAM ARGS...`: confine, then exec the program."""
    if len(argv) < 3 or argv[1] != "--":
        sys.exit("usage: python -m nodes.confined VIEW.json -- PROGRAM ARGS...")
    view = json.loads(Path(argv[0]).read_text())
    try:
        enter(Path(view["state_dir"]), view["readable"], view["writable"], tuple(view.get("masked", MASKED)))
    except (ConfineError, OSError) as exc:
        sys.exit(f"confinement refused by the kernel: {exc}; run `testbed up --no-confine`")
    os.environ[ENV] = "1"
    os.execv(argv[2], argv[2:])


if __name__ == "__main__":
    main(sys.argv[1:])
