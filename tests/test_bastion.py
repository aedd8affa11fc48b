"""The SSH maintenance bastion: vendor keys only, the allowed commands only, no shell or forwarding, and every
session and command in its keyed audit chain."""
from __future__ import annotations

import asyncio
import io
import os
import socket
import time
from pathlib import Path

import asyncssh
import pytest
from asyncssh.constants import OPEN_ADMINISTRATIVELY_PROHIBITED

from nodes import audit
from testbed import bastion, confine
from testbed.migration.sftp import Limits


@pytest.fixture(scope="module")
def gate(network):
    """The bastion of the session network, with one vendor."""
    paths = bastion.Paths(network.state_dir)
    bastion.add_vendor(paths, "vendor-a")
    port = bastion.start(network.state_dir)
    yield paths, port
    bastion.stop(network.state_dir)


def test_an_allowed_command_runs_and_is_audited(gate, network):
    """`status` and `consistency M` run for a registered vendor; each is in the audit chain with its vendor."""
    paths, _ = gate
    out = io.StringIO()
    assert asyncio.run(bastion.run_command(network.state_dir, "vendor-a", "status", out)) == 0
    assert "kizon-142140" in out.getvalue()
    out = io.StringIO()
    asyncio.run(bastion.run_command(network.state_dir, "vendor-a", "consistency 142140", out))
    assert "整合性確認 142140" in out.getvalue()
    text = paths.audit.read_text()
    assert '"method":"ssh/status"' in text and '"caller":"ssh:vendor-a"' in text and '"method":"ssh/consistency"' in text
    checked = audit.verify(paths.audit, paths.audit_key.read_bytes(), [])
    assert checked.entries >= 4 and not checked.problems


@pytest.mark.parametrize("command", ["rm -rf /", "status; id", "migrate 142140 --to gcloud --json /etc/x",
                                     "consistency 14214", "audit verify --fix", "migrate 142140 --to gcloud --inject meteor"])
def test_a_command_off_the_list_is_refused(gate, network, command):
    """Anything but the listed commands with well-formed items: refused (exit 2), audited, nothing run."""
    paths, _ = gate
    out = io.StringIO()
    assert asyncio.run(bastion.run_command(network.state_dir, "vendor-a", command, out)) == 2
    assert "not an allowed command" in out.getvalue()
    assert f'"subject":"{command}"' in paths.audit.read_text()


def test_no_shell_no_forwarding_no_stranger(gate, tmp_path):
    """A shell, a port forwarding (administratively prohibited, naming the rule), an unknown key, an unknown vendor
    and a password are all refused."""
    paths, port = gate
    stranger = bastion.ensure_key(tmp_path / "stranger" / "id")
    vendor = asyncssh.read_private_key(str(paths.vendor_key("vendor-a")))
    common = dict(known_hosts=str(paths.known_hosts), agent_path=None, connect_timeout=5)

    async def attempts():
        for user, keys, extra in (("vendor-a", [stranger], {}), ("vendor-z", [vendor], {}),
                                  ("vendor-a", [], {"password": "secret"})):
            with pytest.raises(asyncssh.PermissionDenied):
                await asyncssh.connect("127.0.0.1", port, username=user, client_keys=keys, **common, **extra)
        async with asyncssh.connect("127.0.0.1", port, username="vendor-a", client_keys=[vendor], **common) as conn:
            with pytest.raises(asyncssh.ChannelOpenError) as refused:
                await conn.create_connection(asyncssh.SSHTCPSession, "127.0.0.1", 22)
            assert refused.value.code == OPEN_ADMINISTRATIVELY_PROHIBITED
            assert refused.value.reason == "bastion rule: no port forwarding"
            with pytest.raises(asyncssh.ChannelListenError):
                await conn.forward_remote_port("127.0.0.1", 0, "127.0.0.1", 22)
            shell = await conn.create_process()  # no command: a shell is asked for
            result = await shell.wait()
            assert result.exit_status == 2 and "no shell" in result.stderr
    asyncio.run(attempts())
    text = paths.audit.read_text()
    assert '"method":"ssh/forward"' in text and '"method":"ssh/shell"' in text and '"caller":"ssh:vendor-z"' in text


# -- confinement and privilege separation -----------------------------------------------------------------
@pytest.mark.skipif(bool(confine.available()), reason=confine.available() or "")
def test_the_front_vendors_reach_cannot_read_the_pki(gate, network):
    """The SSH server vendors reach (the front) runs in a mount namespace of its own: through its root, the PKI
    holds its host key and audit key alone (not the root CA's key, a node's key, a vendor's private key), the
    stores cannot be seen, and it cannot get back the capabilities to undo that; commands still run (the runner,
    outside, runs them)."""
    paths, _ = gate
    front = bastion.front_pid(paths)
    assert front and front != bastion.running(paths)
    state = network.state_dir.resolve()
    view = Path(f"/proc/{front}/root") / str(state).lstrip("/")
    for secret in ("pki/private/root/ca.key", "pki/nodes/kizon-142140/client.key", "pki/ssh/vendors/vendor-a/id_ed25519",
                   "data/kizon-142140/store.sqlite"):
        assert (state / secret).exists()
        with pytest.raises(OSError):
            (view / secret).read_bytes()
    assert sorted(p.relative_to(view / "pki").as_posix() for p in (view / "pki").rglob("*") if p.is_file()) == \
        ["ssh/bastion/audit.key", "ssh/bastion/host_key"]
    assert os.listdir(view / "data") == [] and os.listdir(view / "bastion") == ["audit.jsonl", "vendors"]
    status = open(f"/proc/{front}/status").read()
    bounding = int(next(line for line in status.splitlines() if line.startswith("CapBnd:")).split()[1], 16)
    assert not bounding & (1 << 21) and not bounding & (1 << 19) and not bounding & (1 << 2)
    out = io.StringIO()
    assert asyncio.run(bastion.run_command(network.state_dir, "vendor-a", "migrate --layout", out)) == 0
    assert "history.csv" in out.getvalue()


def test_a_compromised_front_can_ask_the_runner_for_no_more_than_a_vendor_may(gate):
    """The runner checks every request again: an unregistered vendor, a command off the list, a malformed request
    and more commands at once than allowed are refused; a vendor's allowed command is not."""
    paths, _ = gate
    runner = bastion.Runner(paths, writer=None)
    assert runner.check("vendor-a", ["status"]) == ""
    assert "no vendor" in runner.check("vendor-zz", ["status"]) and "no vendor" in runner.check("../x", ["status"])
    assert "no vendor" in runner.check(None, ["status"])
    assert "not an allowed command" in runner.check("vendor-a", ["migrate", "142140", "--to", "gcloud", "--json", "/x"])
    assert runner.check("vendor-a", "status") == "a malformed command" and runner.check("vendor-a", [1]) == "a malformed command"
    runner.running = {object() for _ in range(bastion.MAX_COMMANDS)}
    assert "bastion rule: at most" in runner.check("vendor-a", ["status"])


# -- bounded surfaces ------------------------------------------------------------------------------------
TIGHT = Limits(max_startups=4, login_grace=2.0, max_sessions=2, max_channels=2)


@pytest.fixture(scope="module")
def tight(tmp_path_factory):
    """A bastion of a state folder of its own (no network: `migrate --layout` needs none), with small limits."""
    state = tmp_path_factory.mktemp("tight-bastion")
    paths = bastion.Paths(state)
    bastion.add_vendor(paths, "vendor-a")
    port = bastion.start(state, limits=TIGHT)
    yield paths, port
    bastion.stop(state)


def vendor_connection(paths, port: int):
    """An asyncssh connection to the bastion as vendor-a, with its own key (no agent)."""
    key = asyncssh.read_private_key(str(paths.vendor_key("vendor-a")))
    return asyncssh.connect("127.0.0.1", port, username="vendor-a", client_keys=[key],
                            known_hosts=str(paths.known_hosts), agent_path=None, connect_timeout=10)


def test_sessions_channels_commands_and_login_grace_are_bounded(tight):
    """A third logged-in connection, a third channel on one connection, a command of 600 characters and a
    connection that never logs in: refused naming the rule, refused, refused and audited, closed after the grace."""
    paths, port = tight

    def connect():
        return vendor_connection(paths, port)

    async def attack():
        results = {}
        async with connect() as first, connect():
            try:
                async with connect():
                    results["third session"] = "admitted"
            except asyncssh.DisconnectError as exc:
                results["third session"] = exc.reason
            held = [await first.create_process("status"), await first.create_process("status")]
            try:
                await first.create_process("status")
                results["third channel"] = "opened"
            except asyncssh.ChannelOpenError as exc:
                results["third channel"] = exc.reason
            for process in held:
                process.close()
                await process.wait_closed()
            long = await first.run("status " + "x" * 600, check=False)
            results["long"] = (long.exit_status, long.stderr)
        return results
    results = asyncio.run(attack())
    assert "bastion rule: at most 2 sessions at once" in results["third session"]
    assert results["third channel"] == "bastion rule: at most 2 channels per connection"
    assert results["long"][0] == 2 and "bastion rule: a command has at most 512 characters" in results["long"][1]
    assert '"method":"ssh/command","subject":"status xxx' in paths.audit.read_text()
    with socket.create_connection(("127.0.0.1", port), timeout=TIGHT.login_grace + 10) as idle:
        assert idle.recv(256).startswith(b"SSH-2.0-")
        while idle.recv(4096):  # until the bastion closes it
            pass


def test_a_connection_gets_a_bounded_number_of_refusals(tight):
    """Each refused forwarding request costs a witnessed audit entry: past MAX_REFUSALS on one connection the bastion
    closes it, naming the rule, and audits that once; a new connection is served as before."""
    paths, port = tight

    def connect():
        return vendor_connection(paths, port)

    async def flood():
        refused = 0
        try:
            async with connect() as conn:
                for _ in range(bastion.MAX_REFUSALS + 5):
                    try:
                        await conn.create_connection(asyncssh.SSHTCPSession, "127.0.0.1", 22)
                    except asyncssh.ChannelOpenError as exc:  # (then "SSH connection closed", once it is)
                        refused += exc.code == OPEN_ADMINISTRATIVELY_PROHIBITED
                await asyncio.wait_for(conn.wait_closed(), 10)
        except (asyncssh.DisconnectError, asyncssh.ConnectionLost):
            pass
        async with connect() as conn:
            result = await conn.run("migrate --layout", check=False)
        return refused, result.exit_status
    before = len(paths.audit.read_text().splitlines())
    refused, status = asyncio.run(flood())
    assert refused == bastion.MAX_REFUSALS and status == 0
    new = paths.audit.read_text().splitlines()[before:]
    assert sum('"method":"ssh/forward"' in line for line in new) == bastion.MAX_REFUSALS
    assert sum(f'"subject":"bastion rule: at most {bastion.MAX_REFUSALS} refused requests per connection"' in line
               for line in new) == 1


def test_a_listening_port_is_outside_the_ephemeral_range():
    """--port 0 leaves the choice to the kernel; a port inside net.ipv4.ip_local_port_range or out of 1-65535 is
    refused naming the rule (an outgoing connection could take it first)."""
    low, high = bastion.ephemeral_range()
    assert bastion.port_refused(0) == ""
    assert "ephemeral range" in bastion.port_refused(low) and "ephemeral range" in bastion.port_refused(high)
    assert bastion.port_refused(70000).startswith("bastion rule:")
    with pytest.raises(ValueError, match="ephemeral range"):
        bastion.start(Path("/nonexistent-state"), port=low)


def test_a_flood_of_idle_connections_does_not_keep_a_vendor_out(tmp_path):
    """500 idle TCP connections (loopback) at the bastion: it keeps at most its 16 waiting to log in, a vendor's
    command runs during the flood, and the front's memory stays within a bound. Figures printed, not asserted."""
    import psutil
    paths = bastion.Paths(tmp_path)
    bastion.add_vendor(paths, "vendor-a")
    port = bastion.start(tmp_path)
    sockets = []
    try:
        front = psutil.Process(bastion.front_pid(paths))

        def command() -> float:
            began, out = time.monotonic(), io.StringIO()
            assert asyncio.run(bastion.run_command(tmp_path, "vendor-a", "migrate --layout", out)) == 0
            return time.monotonic() - began

        def held() -> int:
            return sum(1 for c in front.net_connections("tcp") if c.status == psutil.CONN_ESTABLISHED)
        quiet, rss_before = command(), front.memory_info().rss
        sockets = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(500)]
        deadline = time.monotonic() + 30
        while held() > Limits().max_startups:
            assert time.monotonic() < deadline, "the bastion kept more connections than it may"
            time.sleep(0.05)
        during, rss_flood = command(), front.memory_info().rss
        for s in sockets:
            s.close()
        while held():
            assert time.monotonic() < deadline + 30, "the bastion did not close the connections"
            time.sleep(0.05)
        rss_after = front.memory_info().rss
        assert rss_flood - rss_before < 32 * 2 ** 20 and rss_after - rss_before < 32 * 2 ** 20
        print(f"bastion, 500 idle connections: RSS {rss_before / 2 ** 20:.1f} → {rss_flood / 2 ** 20:.1f} → "
              f"{rss_after / 2 ** 20:.1f} MiB; a vendor's command {quiet * 1000:.0f} ms quiet, {during * 1000:.0f} ms "
              "during the flood")
    finally:
        for s in sockets:
            s.close()
        bastion.stop(tmp_path)
