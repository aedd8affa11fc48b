"""Links between nodes with a profile: latency, jitter, loss, rate, and cuts (DESIGN §2, link profiles).

The kernel here has no `sch_netem`, so delay, loss and cuts come from a small relay of our own: one TCP
listener per link (caller → callee) in a links process (`python -m testbed.links serve`), which the caller
reaches instead of the callee. Each chunk is held for the one-way delay (half the profile's round trip, plus
jitter, in order), a lost chunk costs a retransmission's stall, a rate limit paces the bytes, and a cut
drops every open connection of the link and refuses new ones until it is restored. It works on loopback
(every profile and cut exercised in CI) and between network namespaces (the relay then listens on the
host's address on the segment the link crosses). The plan (link → address) is written at `testbed up`;
`testbed link cut|restore|set` write the control file the relay watches.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from nodes.topology import free_ports
from testbed import processes

POLL_SECONDS = 0.1  # how often the relay looks at the control file
LOSS_STALL = 0.2  # a lost segment costs about one retransmission timeout
CHUNK = 64 * 1024
START_TIMEOUT = 10.0  # seconds the relay has to open every listener of the plan
MARKER = b"testbed.links"  # in the relay's command line


@dataclass(frozen=True)
class Profile:
    """How a link behaves: round trip in ms, jitter (± ms, one way), loss (0–1 per chunk), rate (bytes/s, 0: none)."""

    rtt_ms: float = 0.0
    jitter_ms: float = 0.0
    loss: float = 0.0
    rate: int = 0


PROFILES = {
    "lan": Profile(),
    "lgwan": Profile(rtt_ms=2.0, jitter_ms=0.5),
    "jukinet": Profile(rtt_ms=4.0, jitter_ms=1.0),
    "gcloud": Profile(rtt_ms=20.0, jitter_ms=3.0),
    "wan-lossy": Profile(rtt_ms=40.0, jitter_ms=8.0, loss=0.01, rate=2_000_000),
}


def segment_profile(segment: str) -> str:
    """The built-in profile of a segment: its kind (lan-142140 → lan, cloud-gcloud → gcloud)."""
    if segment.startswith("lan-"):
        return "lan"
    if segment.startswith("cloud-"):
        return "gcloud"
    return segment if segment in PROFILES else "lan"


def link_name(caller: str, callee: str) -> str:
    """The name of a link: caller->callee."""
    return f"{caller}->{callee}"


class Paths:
    """The links' files in a state folder."""

    def __init__(self, state_dir: Path):
        self.folder = Path(state_dir) / "links"
        self.plan = self.folder / "plan.json"  # link → {listen, target, segment}; read by nodes at start
        self.control = self.folder / "control.json"  # link → {profile, cut}; watched by the relay
        self.applied = self.folder / "applied"  # the control file's mtime (ns) the relay has applied, written after
        self.pid = self.folder / "pid"


def write_plan(paths: Paths, links: dict[str, dict]) -> None:
    """The plan and, where there is none yet, the control file (each link with its segment's profile)."""
    paths.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    paths.plan.write_text(json.dumps(links, indent=1))
    control = read_control(paths)
    for name, link in links.items():
        control.setdefault(name, {"profile": segment_profile(link["segment"]), "cut": False})
    write_control(paths, {k: v for k, v in control.items() if k in links})


def read_control(paths: Paths) -> dict:
    """The control file (empty when there is none)."""
    try:
        return json.loads(paths.control.read_text())
    except (OSError, ValueError):
        return {}


def write_control(paths: Paths, control: dict) -> None:
    """Replace the control file atomically (the relay re-reads it within POLL_SECONDS)."""
    tmp = paths.control.with_suffix(".tmp")
    tmp.write_text(json.dumps(control, indent=1))
    os.replace(tmp, paths.control)


def change(paths: Paths, caller: str, callee: str, **what) -> list[str]:
    """Change the links between two nodes (both directions that exist): cut, profile; the links changed."""
    control = read_control(paths)
    names = [n for n in (link_name(caller, callee), link_name(callee, caller)) if n in control]
    if not names:
        raise KeyError(f"no link between {caller} and {callee} (the links: `testbed link list`)")
    for name in names:
        if "profile" in what and what["profile"] not in PROFILES:
            raise KeyError(f"no profile {what['profile']!r} (profiles: {', '.join(PROFILES)})")
        control[name].update(what)
    write_control(paths, control)
    return names


# -- the relay ---------------------------------------------------------------------------------------------
class Link:
    """One relayed link: its listener, its open connections and its current profile."""

    def __init__(self, name: str, listen: str, target: str):
        self.name, self.listen, self.target = name, listen, target
        self.profile, self.cut = Profile(), False
        self.open: set[asyncio.StreamWriter] = set()
        self.rng = random.Random(name)

    def delay(self) -> float:
        """One chunk's one-way delay in seconds."""
        p = self.profile
        one_way = p.rtt_ms / 2 + (self.rng.uniform(-p.jitter_ms, p.jitter_ms) if p.jitter_ms else 0.0)
        if p.loss and self.rng.random() < p.loss:
            one_way += LOSS_STALL * 1000
        return max(0.0, one_way) / 1000

    async def handle(self, client_reader, client_writer) -> None:
        if self.cut:
            client_writer.close()
            return
        host, port = self.target.rsplit(":", 1)
        try:
            server_reader, server_writer = await asyncio.open_connection(host, int(port))
        except OSError:
            client_writer.close()
            return
        self.open |= {client_writer, server_writer}
        try:
            await asyncio.gather(self._pump(client_reader, server_writer), self._pump(server_reader, client_writer))
        finally:
            for writer in (client_writer, server_writer):
                self.open.discard(writer)
                writer.close()

    async def _pump(self, reader, writer) -> None:
        """Copy one direction, each chunk delivered after its delay, in order, at the profile's rate."""
        queue: asyncio.Queue = asyncio.Queue()

        async def deliver():
            while True:
                due, data = await queue.get()
                if data is None:
                    break
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()
                if self.profile.rate:
                    await asyncio.sleep(len(data) / self.profile.rate)
            if writer.can_write_eof():
                writer.write_eof()

        sender = asyncio.create_task(deliver())
        try:
            while data := await reader.read(CHUNK):
                due = time.monotonic() + self.delay()
                queue.put_nowait((due, data))
        except (ConnectionError, OSError):
            pass
        finally:
            queue.put_nowait((0, None))
            try:
                await sender
            except (ConnectionError, OSError):
                pass

    def apply(self, profile: Profile, cut: bool) -> None:
        """Take a new profile; on a cut, drop every open connection."""
        self.profile = profile
        if cut and not self.cut:
            for writer in list(self.open):
                writer.transport.abort()
            self.open.clear()
        self.cut = cut


async def serve(state_dir: Path) -> None:
    """Relay every link of the plan until SIGTERM, following the control file."""
    paths = Paths(state_dir)
    plan = json.loads(paths.plan.read_text())
    links = {name: Link(name, spec["listen"], spec["target"]) for name, spec in plan.items()}
    servers = []
    for link in links.values():
        host, port = link.listen.rsplit(":", 1)
        servers.append(await asyncio.start_server(link.handle, host, int(port)))
    stamp = None
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    print(f"relaying {len(links)} links", flush=True)
    while not stop.is_set():
        try:
            current = paths.control.stat().st_mtime_ns
        except OSError:
            current = None
        if current != stamp:
            stamp = current
            for name, spec in read_control(paths).items():
                if name in links:
                    links[name].apply(PROFILES.get(spec.get("profile", "lan"), Profile()), bool(spec.get("cut")))
            _acknowledge(paths, current)
        try:
            await asyncio.wait_for(stop.wait(), POLL_SECONDS)
        except asyncio.TimeoutError:
            pass
    for server in servers:
        server.close()


def _acknowledge(paths: Paths, stamp: int | None) -> None:
    """Say which control file is in force (atomically: a reader sees the old stamp or the new, never half)."""
    tmp = paths.applied.with_suffix(".tmp")
    tmp.write_text(str(stamp or 0))
    os.replace(tmp, paths.applied)


def applied(paths: Paths) -> bool:
    """Whether the relay has applied the control file as it is now."""
    try:
        return int(paths.applied.read_text()) == paths.control.stat().st_mtime_ns
    except (OSError, ValueError):
        return False


def wait_applied(paths: Paths, timeout: float = 5.0) -> bool:
    """Wait until the relay has applied the control file just written (it looks every POLL_SECONDS); whether it
    did within timeout. No wait when no relay runs (it reads the file when it starts)."""
    if not running(paths):
        return False
    deadline = time.monotonic() + timeout
    while not applied(paths):
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_SECONDS / 10)
    return True


async def wait_applied_async(paths: Paths, timeout: float = 5.0) -> bool:
    """wait_applied() from an asyncio program (a fault plan of the replay)."""
    deadline = time.monotonic() + timeout
    while running(paths) and not applied(paths):
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(POLL_SECONDS / 10)
    return running(paths) is not None


def loopback_plan(topology) -> dict[str, dict]:
    """Every link of the topology through a relay on a free loopback port of its own."""
    return _plan(topology, lambda caller, callee: ("127.0.0.1", callee.address))


def isolated_plan(topology, layout) -> dict[str, dict]:
    """Every link through a relay on the host's address of a segment caller and callee share (the relay runs
    on the host, which is on every segment), towards the callee's address on that segment."""
    def ends(caller, callee):
        shared = next(s for s in topology.segments_of(caller) if s in topology.segments_of(callee))
        port = callee.address.rsplit(":", 1)[1]
        return layout.host_ip(shared), f"{layout.addresses[callee.name][shared]}:{port}"
    return _plan(topology, ends)


def _plan(topology, ends) -> dict[str, dict]:
    """link → {listen, target, segment}: ends(caller, callee) gives the relay's host and the callee's address;
    each relay gets a port free on its host now, below the ephemeral range."""
    # The nodes' own ports are not bound yet when the relay starts: none of them may go to a link. Ports are
    # chosen below the ephemeral range, per host at once (no two links get the same one).
    reserved = {int(address.rsplit(":", 1)[1]) for n in topology.all_nodes for address in n.listening}
    links = [(caller, callee, segment, *ends(caller, callee)) for caller, callee, segment in topology.links()]
    ports = {host: iter(free_ports(host, sum(1 for link in links if link[3] == host), reserved))
             for host in {link[3] for link in links}}
    return {link_name(caller.name, callee.name): {"listen": f"{host}:{next(ports[host])}", "target": target,
                                                  "segment": segment}
            for caller, callee, segment, host, target in links}


def running(paths: Paths) -> int | None:
    """The relay's process id while it runs."""
    return processes.running(paths.pid, MARKER)


def start(state_dir: Path, log: Path) -> int:
    """Start the relay of the plan (once); its process id, once every listener of the plan accepts (the nodes
    call through them)."""
    paths = Paths(state_dir)
    listeners = [spec["listen"] for spec in json.loads(paths.plan.read_text()).values()]
    return processes.start_helper([sys.executable, "-m", "testbed.links", "serve", "--state-dir", str(state_dir)],
                                  paths.pid, log, MARKER, what="the links relay",
                                  ready=processes.accepting(listeners), timeout=START_TIMEOUT).pid


def stop(state_dir: Path) -> bool:
    """Stop the relay; whether it ran."""
    return processes.stop_recorded(Paths(state_dir).pid, MARKER)


def describe(paths: Paths) -> list[dict]:
    """Every link with its segment, addresses, profile and state (for `testbed link list`)."""
    plan, control = json.loads(paths.plan.read_text()), read_control(paths)
    return [{"link": name, **spec, **control.get(name, {}),
             "profile_values": asdict(PROFILES.get(control.get(name, {}).get("profile", "lan"), Profile()))}
            for name, spec in plan.items()]


def main(argv: list[str] | None = None) -> int:
    """`python -m testbed.links serve --state-dir DIR`."""
    parser = argparse.ArgumentParser(prog="python -m testbed.links")
    parser.add_argument("command", choices=["serve"])
    parser.add_argument("--state-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    asyncio.run(serve(args.state_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
