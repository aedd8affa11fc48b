"""Attacks on a site's SFTP server, each written as the attacker ran it: the escape to the root CA's key through a
symbolic link made inside the inbox and then moved, links planted by someone else, '..' and absolute paths,
renames over and into places; the bounds of every surface (files, bytes, handles, listings, channels, sessions,
login grace), a flood of idle connections beside a vendor's real login, and the server's confinement."""
from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import subprocess
import time
from pathlib import Path

import asyncssh
import psutil
import pytest

from helpers import poll as wait_for
from testbed import confine
from testbed.migration import sftp

SITE, VENDOR = "gcloud", "vendor-a"
SECRET = b"-----BEGIN PRIVATE KEY----- the root CA's own key -----END PRIVATE KEY-----\n"


# -- a state folder of the real layout, with a secret in its PKI ------------------------------------------
def make_state(root: Path) -> Path:
    """A state folder laid out like a network's: a root CA key, a node key, the topology, a site's inbox and a
    vendor's key."""
    state = root / "state"
    for rel, data in (("pki/private/root/ca.key", SECRET), ("pki/nodes/kizon-142140/client.key", b"node key\n"),
                      ("topology.yaml", b"name: kanagawa\n"), ("data/kizon-142140/store.sqlite", b"register\n"),
                      ("migrations/142140-gcloud-1/export/history.csv", b"a,b\n")):
        (state / rel).parent.mkdir(parents=True, exist_ok=True)
        (state / rel).write_bytes(data)
    vendor = sftp.ensure_key(state / "pki" / "ssh" / "vendors" / VENDOR / "id_ed25519")
    (state / "sites" / SITE / "vendors").mkdir(parents=True, exist_ok=True)
    (state / "sites" / SITE / "vendors" / f"{VENDOR}.pub").write_bytes(vendor.export_public_key())
    return state


class Server:
    """A site's SFTP server started as the rehearsal starts it (server_command), on a free loopback port."""

    def __init__(self, state: Path, limits: sftp.Limits | None = None, confined: bool = False):
        self.state = state
        program, ready = sftp.server_command(state, SITE, limits, confine=confined)
        self.proc = subprocess.Popen(program, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + 15
        while not ready.read_text().strip():
            assert self.proc.poll() is None, self.proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the SFTP server did not start"
            time.sleep(0.02)
        self.port = int(ready.read_text())
        self.inbox = state / "sites" / SITE / "inbox"
        host = sftp.ensure_key(state / "pki" / "ssh" / "sites" / SITE / "host_key")
        self.known = asyncssh.import_known_hosts(f"[127.0.0.1]:{self.port} "
                                                 f"{host.export_public_key().decode().strip()}\n")
        self.vendor_key = asyncssh.read_private_key(str(state / "pki" / "ssh" / "vendors" / VENDOR / "id_ed25519"))

    def connect(self, **kw):
        """An SSH connection as the vendor."""
        return asyncssh.connect("127.0.0.1", self.port, username=VENDOR, client_keys=[self.vendor_key],
                                known_hosts=self.known, agent_path=None, connect_timeout=10, **kw)

    def log(self) -> str:
        """The server's log."""
        return (self.state / "logs" / f"sftp-{SITE}.log").read_text()

    def stop(self) -> None:
        """SIGTERM, and wait for it."""
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The SFTP server of a state folder with a secret, unconfined: its own path rules are what is tested."""
    srv = Server(make_state(tmp_path_factory.mktemp("sftp")))
    yield srv
    srv.stop()


def run(server: Server, attack):
    """Run attack(sftp client) in a vendor's SFTP session; its result."""
    async def go():
        async with server.connect() as conn:
            async with conn.start_sftp_client() as client:
                return await attack(client)
    return asyncio.run(go())


async def attempt(step):
    """One step of an attack: ("ok", its value) or ("refused", the server's reason); the attack goes on."""
    try:
        return "ok", await step
    except asyncssh.SFTPError as exc:
        return "refused", exc.reason


def outside(state: Path) -> dict[str, str]:
    """Every file of the state folder outside the inbox, with a digest: to show that nothing there changed."""
    inbox = state / "sites" / SITE / "inbox"
    return {str(p.relative_to(state)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(state.rglob("*")) if p.is_file() and inbox not in p.parents and not p.is_symlink()
            and p.parent.name != "logs"}


OUTSIDE_NAMES = {"pki", "topology.yaml", "data", "migrations", "ca.key", "private", "sites", "vendors"}  # (of the state
# folder, none in the inbox: a listing showing one of them shows the outside)


# -- the reported escape, and its variations -------------------------------------------------------------
def test_the_reported_escape_to_the_root_ca_key_returns_nothing(server):
    """The attack as reported: makedirs e/b/c/d, a symlink ../../../../pki/private/root/ca.key in it (inside the
    inbox where it was made), the folder renamed to x, open x/l. The symlink is refused naming the rule, so x/l
    does not exist; the key is never returned."""
    async def attack(client):
        steps = [await attempt(client.makedirs("e/b/c/d")),
                 await attempt(client.symlink("../../../../pki/private/root/ca.key", "e/b/c/d/l")),
                 await attempt(client.rename("e/b/c/d", "x"))]

        async def read():
            async with client.open("x/l", "rb") as f:
                return await f.read()
        steps.append(await attempt(read()))
        return steps
    made, link, moved, opened = run(server, attack)
    assert made[0] == "ok" and moved[0] == "ok"
    assert link[0] == "refused" and "SFTP rule: no links" in link[1] and "symlink refused" in link[1]
    assert opened[0] == "refused" and SECRET not in str(opened[1]).encode()
    assert not os.path.lexists(server.inbox / "x" / "l") and (server.inbox / "x").is_dir()
    assert "symlink" in server.log() and "SFTP rule: no links" in server.log()


@pytest.mark.parametrize("target,how", [("../../../../pki/private/root/ca.key", "read"),
                                        ("../../../..", "list"), ("../../../../topology.yaml", "write")])
def test_the_same_trick_neither_lists_the_state_folder_nor_writes_outside(server, target, how):
    """The same trick aimed at the whole state folder (listed) and at topology.yaml (overwritten); with a hard
    link instead of a symbolic one as well: each link refused; nothing outside the inbox listed or changed."""
    before = outside(server.state)
    folder = f"t-{how}"

    async def attack(client):
        await attempt(client.makedirs(f"{folder}/b/c/d"))
        link = await attempt(client.symlink(target, f"{folder}/b/c/d/l"))
        hard = await attempt(client.link("/" + target.replace("../", ""), f"{folder}/b/c/d/h"))
        await attempt(client.rename(f"{folder}/b/c/d", f"{folder}-x"))
        if how == "list":
            done = await attempt(client.listdir(f"{folder}-x/l"))
        elif how == "read":
            done = await attempt(client.open(f"{folder}-x/l", "rb"))
        else:
            async def overwrite(name):
                async with client.open(f"{folder}-x/{name}", "wb") as f:
                    await f.write(b"name: owned\n")
            done = await attempt(overwrite("l"))
            await attempt(overwrite("h"))
        return link, hard, done
    link, hard, done = run(server, attack)
    assert link[0] == "refused" and "SFTP rule" in link[1] and hard[0] == "refused" and "hard link" in hard[1]
    if how in ("list", "read"):
        assert done[0] == "refused" and SECRET not in str(done[1]).encode()
    else:  # the write went (if anywhere) to a new file of that name inside the inbox
        assert (server.inbox / f"{folder}-x" / "l").read_bytes() == b"name: owned\n"
        assert not (server.inbox / f"{folder}-x" / "l").is_symlink()
    assert outside(server.state) == before and (server.state / "topology.yaml").read_bytes() == b"name: kanagawa\n"


def test_links_planted_on_disk_by_someone_else_are_never_followed(server):
    """Links planted inside the inbox by someone else (relative and absolute symbolic links to the key, a link to
    the state folder, a hard link to the key): every operation through them is refused naming the rule; a listing
    of the inbox shows the entries themselves and nothing of what they point at."""
    state = server.state
    planted = server.inbox / "planted"
    planted.mkdir()
    (planted / "rel").symlink_to("../../../../pki/private/root/ca.key")
    (planted / "abs").symlink_to(state / "pki" / "private" / "root" / "ca.key")
    (planted / "state").symlink_to(state)
    os.link(state / "pki" / "private" / "root" / "ca.key", planted / "hard")
    before = outside(state)

    async def attack(client):
        results = {}
        for name in ("rel", "abs", "hard"):
            async def read(name=name):
                async with client.open(f"planted/{name}", "rb") as f:
                    return await f.read()
            results[f"open {name}"] = await attempt(read())
        for name in ("rel", "abs", "state"):
            results[f"stat {name}"] = await attempt(client.stat(f"planted/{name}"))
            results[f"lstat {name}"] = await attempt(client.lstat(f"planted/{name}"))
            results[f"readlink {name}"] = await attempt(client.readlink(f"planted/{name}"))
            results[f"rename {name}"] = await attempt(client.rename(f"planted/{name}", f"planted/{name}-2"))
            results[f"remove {name}"] = await attempt(client.remove(f"planted/{name}"))
            results[f"chmod {name}"] = await attempt(client.chmod(f"planted/{name}", 0o777))
        results["list through"] = await attempt(client.listdir("planted/state"))
        results["list deeper"] = await attempt(client.listdir("planted/state/pki/private/root"))
        results["open deeper"] = await attempt(client.open("planted/state/pki/private/root/ca.key", "rb"))
        results["mkdir through"] = await attempt(client.mkdir("planted/state/new"))
        results["write through"] = await attempt(client.open("planted/state/topology.yaml", "wb"))
        results["realpath through"] = await attempt(client.realpath("planted/state/pki"))
        results["dotdot after link"] = await attempt(client.stat("planted/state/../rel"))
        listing = await client.listdir("planted")
        return results, listing
    results, listing = run(server, attack)
    leaked = {what: value for what, (outcome, value) in results.items() if outcome == "ok"}
    assert not leaked, leaked
    assert all("SFTP rule" in reason for _, reason in results.values()), results
    assert "hard link" in results["open hard"][1]
    assert sorted(n for n in listing if n not in (".", "..")) == ["abs", "hard", "rel", "state"]
    assert outside(state) == before and (planted / "rel").is_symlink()


def test_dot_dot_and_absolute_paths_stay_in_the_inbox(server):
    """'..' above the inbox is refused naming the rule, whatever it is mixed with; an absolute path is a path from
    the inbox (the vendor's root), so /etc/passwd and /pki/... are names in the inbox, not the machine's."""
    before = outside(server.state)

    async def attack(client):
        await client.makedirs("dots/a")
        async with client.open("dots/f", "wb") as f:
            await f.write(b"x")
        tries = {
            "open ..": client.open("../../../pki/private/root/ca.key", "rb"),
            "open /..": client.open("/../../../pki/private/root/ca.key", "rb"),
            "open a/../../..": client.open("dots/a/../../../x", "rb"),
            "list ..": client.listdir(".."),
            "list /..": client.listdir("/.."),
            "stat ..": client.stat("dots/../.."),
            "mkdir ..": client.mkdir("../escaped"),
            "rename out": client.rename("dots/f", "../../f"),
            "realpath ..": client.realpath("/dots/../.."),
            "chmod ..": client.chmod("..", 0o777),
            "remove ..": client.remove("../../../topology.yaml"),
        }
        results = {what: await attempt(step) for what, step in tries.items()}
        results["open /etc/passwd"] = await attempt(client.open("/etc/passwd", "rb"))
        results["open /pki"] = await attempt(client.open("/pki/private/root/ca.key", "rb"))
        async with client.open("/dots/a/../f", "rb") as f:
            back = await f.read()
        inside = {"realpath": await client.realpath("/dots/a/../f"), "root": sorted(await client.listdir("/")),
                  "dot": sorted(await client.listdir(".")), "read": back}
        return results, inside
    results, inside = run(server, attack)
    for what in ("open ..", "open /..", "open a/../../..", "list ..", "list /..", "stat ..", "mkdir ..", "rename out",
                 "realpath ..", "chmod ..", "remove .."):
        assert results[what][0] == "refused" and "SFTP rule: a path stays in the inbox" in results[what][1], what
    assert results["open /etc/passwd"][0] == "refused" and results["open /pki"][0] == "refused"
    assert inside["realpath"] == "/dots/f" and inside["root"] == inside["dot"] and inside["read"] == b"x"
    assert not OUTSIDE_NAMES & set(inside["root"])
    assert outside(server.state) == before and (server.inbox / "dots" / "f").exists()
    assert not (server.state / "sites" / "escaped").exists() and not (server.state / "f").exists()


def test_renames_over_and_into_places_stay_inside(server):
    """A folder renamed into itself, over an existing name, through a planted link, and a file renamed over a
    file: the first three refused, the last done (posix-rename); every name stays in the inbox."""
    (server.inbox / "moves" / "deep").mkdir(parents=True)
    (server.inbox / "moves" / "link").symlink_to(server.state)
    before = outside(server.state)

    async def attack(client):
        for name in ("one", "two"):
            async with client.open(f"moves/{name}", "wb") as f:
                await f.write(name.encode())
        return {"into itself": await attempt(client.rename("moves/deep", "moves/deep/inner")),
                "over a name": await attempt(client.rename("moves/one", "moves/two")),
                "into a link": await attempt(client.rename("moves/one", "moves/link/one")),
                "a link away": await attempt(client.rename("moves/link", "moves/deep/link")),
                "posix over": await attempt(client.posix_rename("moves/one", "moves/two"))}
    results = run(server, attack)
    assert results["into itself"][0] == "refused" and results["over a name"][0] == "refused"
    assert "SFTP rule: no links" in results["into a link"][1] and "SFTP rule: no links" in results["a link away"][1]
    assert results["posix over"][0] == "ok" and (server.inbox / "moves" / "two").read_bytes() == b"one"
    assert outside(server.state) == before and not (server.state / "one").exists()


# -- bounded surfaces ------------------------------------------------------------------------------------
TIGHT = sftp.Limits(max_startups=4, login_grace=2.0, max_sessions=2, max_channels=2, max_files=5, max_bytes=64 * 1024,
                    max_handles=3, max_listing=20)


@pytest.fixture(scope="module")
def tight(tmp_path_factory):
    """A server with small limits, to reach each of them."""
    srv = Server(make_state(tmp_path_factory.mktemp("tight")), TIGHT)
    yield srv
    srv.stop()


def test_files_bytes_handles_and_listings_are_bounded_per_session(tight):
    """Past 5 files made, 64 KiB written, 3 handles open or 20 entries listed, the session is refused naming the
    rule; a new session starts its own count."""
    for i in range(30):
        (tight.inbox / "big").mkdir(exist_ok=True)
        (tight.inbox / "big" / f"f{i}").write_bytes(b"")

    async def attack(client):
        results = {}
        made = [await attempt(client.mkdir(f"n{i}")) for i in range(4)]
        async with client.open("n0-data", "wb"):  # the fifth
            pass
        assert all(m[0] == "ok" for m in made), made
        results["files"] = await attempt(client.mkdir("n5"))
        results["after the limit"] = await attempt(client.open("n1-data", "wb"))
        async with client.open("n0-data", "r+b") as f:  # an existing file: no new one made
            results["bytes under"] = await attempt(f.write(b"x" * 60 * 1024))
            results["bytes over"] = await attempt(f.write(b"x" * 8 * 1024, 60 * 1024))
            results["sparse far"] = await attempt(f.write(b"x", 10 ** 12))
        handles = [await attempt(client.open("n0-data", "rb")) for _ in range(4)]
        results["handles"] = handles[-1]
        for outcome, handle in handles:
            if outcome == "ok":
                await handle.close()
        results["listing"] = await attempt(client.listdir("big"))
        results["size by setstat"] = await attempt(client.truncate("n0-data", 10 ** 9))
        results["owner"] = await attempt(client.chown("n0-data", 1000, 1000))
        return results
    results = run(tight, attack)
    assert "SFTP rule: at most 5 files and folders created per session" in results["files"][1]
    assert "at most 5 files" in results["after the limit"][1]
    assert results["bytes under"][0] == "ok" and "at most 65,536 bytes written per session" in results["bytes over"][1]
    assert results["sparse far"][0] == "refused"
    assert "at most 3 files and folders open at once" in results["handles"][1]
    assert "a folder of more than 20 entries is not listed" in results["listing"][1]
    assert "SFTP rule" in results["size by setstat"][1] and "owners are not changed" in results["owner"][1]
    assert run(tight, lambda client: client.mkdir("a-new-session")) is None  # its own count


def test_channels_sessions_and_login_grace_are_bounded(tight):
    """A third SFTP channel on one connection, a third logged-in connection and a connection that never logs in:
    refused, refused naming the rule, closed after the login grace."""
    async def attack():
        results = {}
        async with tight.connect() as first, tight.connect() as second:
            clients = [await first.start_sftp_client(), await first.start_sftp_client()]
            try:
                results["third channel"] = await attempt(first.start_sftp_client())
            except asyncssh.ChannelOpenError as exc:
                results["third channel"] = ("refused", exc.reason)
            for client in clients:
                client.exit()
            try:
                async with tight.connect():
                    results["third session"] = ("ok", None)
            except asyncssh.DisconnectError as exc:
                results["third session"] = ("refused", exc.reason)
            async with second.start_sftp_client() as client:
                results["second works"] = ("ok", await client.listdir("/"))
        return results
    results = asyncio.run(attack())
    assert results["third channel"] == ("refused", "SFTP rule: at most 2 channels per connection")
    assert results["third session"][0] == "refused" and "SFTP rule: at most 2 sessions at once" in results["third session"][1]
    assert results["second works"][0] == "ok"
    with socket.create_connection(("127.0.0.1", tight.port), timeout=TIGHT.login_grace + 10) as idle:
        began = time.monotonic()
        banner = idle.recv(256)
        while idle.recv(4096):  # the server's key exchange offer, then nothing: until it closes the connection
            pass
        waited = time.monotonic() - began
    assert banner.startswith(b"SSH-2.0-")
    print(f"an idle connection was closed after {waited:.2f} s (login grace {TIGHT.login_grace} s)")


FLOOD = 500


def established(pid: int) -> int:
    """How many TCP connections a process holds open."""
    return sum(1 for c in psutil.Process(pid).net_connections("tcp") if c.status == psutil.CONN_ESTABLISHED)



def test_a_flood_of_idle_connections_neither_keeps_a_vendor_out_nor_grows_the_server(tmp_path):
    """500 idle TCP connections (loopback), held open: the server keeps at most its 16 waiting to log in (the
    oldest dropped for each newcomer), a vendor's login and listing work during the flood, and the server's memory
    stays within a bound during and after it (and its descriptors come back). Figures (RSS, latency) are printed,
    not asserted."""
    srv = Server(make_state(tmp_path))
    limits = sftp.Limits()
    proc = psutil.Process(srv.proc.pid)
    sockets: list[socket.socket] = []

    def login_and_list() -> float:
        began = time.monotonic()
        assert run(srv, lambda client: client.listdir("/")) is not None
        return time.monotonic() - began
    try:
        quiet_latency = login_and_list()
        rss_before, fds_before = proc.memory_info().rss, proc.num_fds()
        for _ in range(FLOOD):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            sockets.append(s)
        held = wait_for(lambda: (n := established(srv.proc.pid)) <= limits.max_startups and n or None, 30,
                        "the server to drop the oldest connections")
        rss_flood = proc.memory_info().rss
        flood_latency = login_and_list()
        assert established(srv.proc.pid) <= limits.max_startups + 1
    finally:
        for s in sockets:
            s.close()
    try:
        wait_for(lambda: established(srv.proc.pid) == 0, 30, "the server to close every connection")
        rss_after = proc.memory_info().rss
        assert srv.proc.poll() is None and proc.num_fds() <= fds_before + 2  # every session's descriptors closed
        assert rss_flood - rss_before < 32 * 2 ** 20 and rss_after - rss_before < 32 * 2 ** 20
        assert "connections waiting to log in; dropped the oldest" in srv.log()
        print(f"flood of {FLOOD} idle connections: server held {held}; RSS before {rss_before / 2 ** 20:.1f} MiB, "
              f"during {rss_flood / 2 ** 20:.1f} MiB, after {rss_after / 2 ** 20:.1f} MiB; vendor login+listdir "
              f"{quiet_latency * 1000:.0f} ms quiet, {flood_latency * 1000:.0f} ms during the flood")
    finally:
        srv.stop()


# -- confinement -----------------------------------------------------------------------------------------
@pytest.mark.skipif(bool(confine.available()), reason=confine.available() or "")
def test_the_sftp_server_cannot_read_the_pki(tmp_path):
    """Started as the rehearsal starts it, the SFTP server runs in a mount namespace of its own: through its own
    root, the PKI holds its host key alone (the root CA's key, the nodes' keys are not there), and neither the
    register, the export nor the other sites can be seen; it cannot get back the capabilities to undo that; and
    it still serves its inbox."""
    state = make_state(tmp_path)
    (state / "sites" / "other" / "inbox").mkdir(parents=True)
    srv = Server(state, confined=True)
    try:
        root = Path(f"/proc/{srv.proc.pid}/root")
        view = root / str(state.resolve()).lstrip("/")
        for secret in ("pki/private/root/ca.key", "pki/nodes/kizon-142140/client.key", "data/kizon-142140/store.sqlite",
                       "migrations/142140-gcloud-1/export/history.csv", f"pki/ssh/vendors/{VENDOR}/id_ed25519"):
            assert (state / secret).exists()
            with pytest.raises(OSError):
                (view / secret).read_bytes()
        assert sorted(p.relative_to(view / "pki").as_posix() for p in (view / "pki").rglob("*") if p.is_file()) == \
            [f"ssh/sites/{SITE}/host_key"]
        assert os.listdir(view / "sites") == [SITE] and os.listdir(view / "data") == []
        status = open(f"/proc/{srv.proc.pid}/status").read()
        bounding = int(next(line for line in status.splitlines() if line.startswith("CapBnd:")).split()[1], 16)
        assert not bounding & (1 << 21) and not bounding & (1 << 19) and not bounding & (1 << 2)
        assert "confined: own mount namespace" in srv.log()
        assert run(srv, lambda client: client.listdir("/")) is not None
    finally:
        srv.stop()
