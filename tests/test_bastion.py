"""The SSH maintenance bastion: vendor keys only, the allowed commands only, no shell or forwarding, and every
session and command in its keyed audit chain."""
from __future__ import annotations

import asyncio
import io

import asyncssh
import pytest

from nodes import audit
from testbed import bastion


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
    """A shell, a port forwarding, an unknown key, an unknown vendor and a password are all refused."""
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
            with pytest.raises(asyncssh.ChannelOpenError):
                await conn.create_connection(asyncssh.SSHTCPSession, "127.0.0.1", 22)
            with pytest.raises(asyncssh.ChannelListenError):
                await conn.forward_remote_port("127.0.0.1", 0, "127.0.0.1", 22)
            shell = await conn.create_process()  # no command: a shell is asked for
            result = await shell.wait()
            assert result.exit_status == 2 and "no shell" in result.stderr
    asyncio.run(attempts())
    text = paths.audit.read_text()
    assert '"method":"ssh/forward"' in text and '"method":"ssh/shell"' in text and '"caller":"ssh:vendor-z"' in text
