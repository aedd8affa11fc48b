"""The nodes' zygote: one process that has imported everything a node runs, and forks each node of a network from
there (`python -m nodes.zygote --socket PATH`). A node started this way is the same process as one started with
`python -m nodes` (its own pid, session, log, environment and arguments), without paying again for the interpreter
and the imports (about two thirds of a node's start). The zygote stays single-threaded: it forks nothing but from
its one loop, and only the forked child starts gRPC. A request is one JSON line {argv, env, log} on the unix socket;
the answer one line {pid} or {error}."""
from __future__ import annotations

import argparse
import gc
import json
import os
import signal
import socket
import sys
from pathlib import Path

from nodes import jsonlines

MAX_REQUEST = 1 << 20  # bytes of one request at most (argv and environment)


def preload() -> None:
    """Import what every node imports, and each kind's module (not started: no thread, no gRPC core in use)."""
    import nodes.__main__  # noqa: F401  (the node's entry: argparse, logging, the server and the runtime)
    from nodes import kinds
    for kind in kinds.KINDS.values():
        kinds.load(kind)
        if kind.search:
            kinds.load_search(kind)


def serve(path: Path) -> None:
    """Answer fork requests on a unix socket at path until SIGTERM."""
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the nodes' exits are reaped by the kernel: no zombie here
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    preload()
    if len(os.listdir("/proc/self/task")) > 1:  # a thread would not be in the children: forking would be unsafe
        raise SystemExit("zygote: preloading started a thread; start nodes with `python -m nodes` instead")
    gc.collect()
    gc.freeze()  # what the import allocated stays shared with every child (copy-on-write)
    path.unlink(missing_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        listener.bind(str(path))  # (0600: the state folder's owner alone asks for a node)
    finally:
        os.umask(old)
    listener.listen(64)
    print(f"zygote ready at {path}", flush=True)
    while True:
        conn, _ = listener.accept()
        with conn:
            try:
                line = jsonlines.read_line(conn, MAX_REQUEST)
                if not line.strip():
                    continue  # (a look whether it is up: connected, and gone)
                try:
                    answer = {"pid": _fork(json.loads(line), (listener, conn))}
                except (ValueError, KeyError, TypeError, OSError) as exc:
                    answer = {"error": f"{type(exc).__name__}: {exc}"}
                conn.sendall(json.dumps(answer).encode() + b"\n")
            except OSError:  # the asker went away: nothing to answer
                pass


def _fork(request: dict, sockets) -> int:
    """Fork a node for request; its pid (in the parent)."""
    argv, env, log = list(request["argv"]), dict(request["env"]), str(request["log"])  # (view: optional)
    if argv[:2] != ["-m", "nodes"]:
        raise ValueError("only a node (-m nodes ...) is started here")
    pid = os.fork()
    if pid:
        return pid
    try:  # the child: becomes the node, as `python -m nodes ARGS` in a session of its own would be
        for s in sockets:
            s.close()
        os.setsid()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        os.close(null)
        os.environ.clear()
        os.environ.update(env)
        if request.get("view"):  # confined to its view, as `python -m nodes.confined VIEW -- ...` would have it
            _confine(Path(request["view"]))
        gc.unfreeze()
        sys.argv = ["python -m nodes"] + argv[2:]
        from nodes.__main__ import main
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 (the node's own crash: its traceback in its log, as python would)
        import traceback
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def _confine(view_file: Path) -> None:
    """Enter a node's confined view (nodes/confined.py) in the child, before the node reads anything."""
    from nodes import confined
    view = json.loads(view_file.read_text())
    try:
        confined.enter(Path(view["state_dir"]), view["readable"], view["writable"],
                       tuple(view.get("masked", confined.MASKED)))
    except (confined.ConfineError, OSError) as exc:
        sys.exit(f"confinement refused by the kernel: {exc}; run `testbed up --no-confine`")
    os.environ[confined.ENV] = "1"


def main() -> None:
    """`python -m nodes.zygote --socket PATH`."""
    parser = argparse.ArgumentParser(prog="python -m nodes.zygote", description=__doc__)
    parser.add_argument("--socket", required=True, type=Path)
    serve(parser.parse_args().socket)


if __name__ == "__main__":
    main()
