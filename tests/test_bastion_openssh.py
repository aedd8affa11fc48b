"""The bastion as a vendor meets it with the stock OpenSSH client (`ssh`, `ssh-keygen`, `ssh-agent`): a command runs;
-t, -A, -X, -L, -W and -R are refused naming their rule and audited; a key the vendor made logs in; the port is the
kernel's choice, published, or one outside the ephemeral range."""
from __future__ import annotations

import contextlib
import io
import json
import os
import pty
import random
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from nodes import audit
from testbed import bastion
from testbed.cli import main

pytestmark = pytest.mark.skipif(not (shutil.which("ssh") and shutil.which("ssh-keygen")),
                                reason="the OpenSSH client (ssh, ssh-keygen) is not installed")
TIMEOUT = 60  # seconds any one ssh, ssh-keygen or testbed call may take


def cli(state: Path, *args: str) -> SimpleNamespace:
    """`testbed --state-dir STATE ARGS...` (in this process: a traceback would fail the test); its exit status and
    what it printed."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--state-dir", str(state), *args])
    return SimpleNamespace(returncode=code, stdout=out.getvalue(), stderr=err.getvalue())


def ssh_argv(paths: bastion.Paths, port: int, key: Path, *options: str, command: str | None = None,
             user: str = "vendor-a") -> list[str]:
    """A stock `ssh` command line at the bastion: no config file, batch mode, its known_hosts only, the key given."""
    return ["ssh", "-F", "none", "-o", "BatchMode=yes", "-o", f"UserKnownHostsFile={paths.known_hosts}",
            "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes",
            "-o", "ConnectTimeout=20", "-i", str(key), "-p", str(port), *options, f"{user}@127.0.0.1",
            *([command] if command is not None else [])]


def client_env(**extra: str) -> dict:
    """The environment of an ssh call: no agent or display unless given."""
    return {**{k: v for k, v in os.environ.items() if k not in ("SSH_AUTH_SOCK", "DISPLAY")}, **extra}


def ssh(paths, port, key, *options, command=None, user="vendor-a", env=None,
        stdin=subprocess.DEVNULL) -> subprocess.CompletedProcess:
    """Run stock ssh to its end (within TIMEOUT); its result."""
    return subprocess.run(ssh_argv(paths, port, key, *options, command=command, user=user), capture_output=True,
                          text=True, stdin=stdin, env=client_env(**(env or {})), timeout=TIMEOUT)


def entries(paths: bastion.Paths) -> list[dict]:
    """The bastion's audit entries."""
    return [json.loads(line) for line in paths.audit.read_text().splitlines() if line.strip()]


def wait_for(condition, what: str, timeout: float = 30):
    """condition()'s first true value, polled until timeout."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return value


def audited(paths, since: int, **fields) -> dict:
    """The first entry after the first `since` entries with these fields (waited for)."""
    return wait_for(lambda: next((e for e in entries(paths)[since:] if all(e.get(k) == v for k, v in fields.items())),
                                 None), f"an audit entry {fields}")


@pytest.fixture(scope="module")
def gate(tmp_path_factory):
    """A bastion of a state folder of its own (no network: `migrate --layout` and `status` need none), started by the
    CLI with the kernel choosing its port, one vendor with a key made here."""
    state = tmp_path_factory.mktemp("openssh-bastion")
    assert cli(state, "bastion", "add-vendor", "vendor-a").returncode == 0
    started = cli(state, "bastion", "start")
    assert started.returncode == 0, started.stderr
    paths = bastion.Paths(state)
    yield paths, int(paths.port.read_text()), paths.vendor_key("vendor-a"), started.stdout
    cli(state, "bastion", "stop")


def test_a_command_runs_under_stock_ssh(gate):
    """`ssh … vendor-a@127.0.0.1 migrate --layout` prints the layout, exits 0 and is audited with its vendor; the
    port the CLI printed is the one published, and the kernel chose it (port 0)."""
    paths, port, key, printed = gate
    assert f"bastion on 127.0.0.1:{port};" in printed and len(printed.strip().splitlines()) == 1
    assert paths.known_hosts.read_text().startswith(f"[127.0.0.1]:{port} ")
    before = len(entries(paths))
    result = ssh(paths, port, key, command="migrate --layout")
    assert result.returncode == 0, result.stderr
    assert "history.csv" in result.stdout
    audited(paths, before, caller="ssh:vendor-a", method="ssh/migrate", status="OK", subject="migrate --layout")


def test_a_pty_is_refused_naming_the_rule_and_the_command_is_not_run_unseen(gate):
    """`ssh -t` from a terminal (and `-tt`): the PTY is refused with "bastion rule: no PTY; run without -t" on stderr;
    OpenSSH then gives up (exit 255), so the command asked for on that channel is not run; both are audited. An
    interactive login gets the same line and "no shell"."""
    paths, port, key, _ = gate
    master, terminal = pty.openpty()
    try:
        for flag, stdin in (("-t", terminal), ("-tt", subprocess.DEVNULL)):
            before = len(entries(paths))
            result = ssh(paths, port, key, flag, command="status", stdin=stdin)
            assert result.returncode == 255 and result.stdout == ""
            assert "bastion: bastion rule: no PTY; run without -t" in result.stderr.splitlines()
            audited(paths, before, caller="ssh:vendor-a", method="ssh/pty", status="PERMISSION_DENIED")
            audited(paths, before, caller="ssh:vendor-a", method="ssh/command", status="PERMISSION_DENIED",
                    subject="status")
            assert not any(e["method"] == "ssh/status" for e in entries(paths)[before:])
        before = len(entries(paths))
        login = ssh(paths, port, key, stdin=terminal)  # no command: a terminal login
        assert login.returncode == 2
        assert "bastion: bastion rule: no PTY; run without -t" in login.stderr
        assert "bastion: no shell here" in login.stderr
        audited(paths, before, caller="ssh:vendor-a", method="ssh/shell", status="PERMISSION_DENIED")
    finally:
        os.close(master)
        os.close(terminal)
    result = ssh(paths, port, key, "-t", command="migrate --layout")  # -t without a terminal: no PTY asked for, it runs
    assert result.returncode == 0 and "history.csv" in result.stdout


@pytest.mark.skipif(not shutil.which("ssh-agent"), reason="ssh-agent is not installed")
def test_agent_and_x11_forwarding_are_refused_and_audited(gate, tmp_path):
    """`ssh -A` (with an agent running) and `ssh -X` (with a display): each refused naming its rule on stderr and
    audited ("forwarding request refused: agent" / "x11"); the command itself runs without them."""
    paths, port, key, _ = gate
    socket_path = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(socket_path)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        wait_for(socket_path.exists, "ssh-agent's socket")
        before = len(entries(paths))
        result = ssh(paths, port, key, "-A", command="migrate --layout", env={"SSH_AUTH_SOCK": str(socket_path)})
    finally:
        agent.terminate()
        agent.wait(timeout=TIMEOUT)
    assert result.returncode == 0 and "history.csv" in result.stdout
    assert "bastion: bastion rule: no agent forwarding (-A); refused" in result.stderr
    audited(paths, before, caller="ssh:vendor-a", method="ssh/forward", status="PERMISSION_DENIED",
            subject="forwarding request refused: agent")
    audited(paths, before, method="ssh/migrate", status="OK")
    before = len(entries(paths))
    result = ssh(paths, port, key, "-X", command="migrate --layout", env={"DISPLAY": ":77"})
    assert result.returncode == 0 and "history.csv" in result.stdout
    assert "bastion: bastion rule: no X11 forwarding (-X); refused" in result.stderr
    audited(paths, before, method="ssh/forward", status="PERMISSION_DENIED", subject="forwarding request refused: x11")


def free_port() -> int:
    """A loopback port free just now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_port_forwarding_is_administratively_prohibited_and_audited(gate):
    """`ssh -L` (a connection to the local end) and `ssh -W`: "open failed: administratively prohibited: bastion rule:
    no port forwarding"; `ssh -R`: refused (a global request's refusal carries no reason: OpenSSH says "remote port
    forwarding failed"). Each is audited with what was asked for."""
    paths, port, key, _ = gate
    before = len(entries(paths))
    result = ssh(paths, port, key, "-W", "127.0.0.1:22")
    assert result.returncode == 255
    assert "open failed: administratively prohibited: bastion rule: no port forwarding" in result.stderr
    audited(paths, before, caller="ssh:vendor-a", method="ssh/forward", status="PERMISSION_DENIED",
            subject="forwarding request refused: port 127.0.0.1:22")

    local = free_port()
    before = len(entries(paths))
    forwarder = subprocess.Popen(ssh_argv(paths, port, key, "-N", "-o", "ExitOnForwardFailure=yes", "-L",
                                          f"127.0.0.1:{local}:127.0.0.1:22"), env=client_env(),
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        def connected():
            assert forwarder.poll() is None, "ssh -L exited"
            try:
                return socket.create_connection(("127.0.0.1", local), timeout=5)
            except OSError:
                return None
        with wait_for(connected, "ssh -L to listen") as conn:
            conn.settimeout(TIMEOUT)
            while conn.recv(4096):  # ssh closes it when the bastion refuses the channel
                pass
        audited(paths, before, method="ssh/forward", status="PERMISSION_DENIED",
                subject="forwarding request refused: port 127.0.0.1:22")
    finally:
        forwarder.terminate()
        _, stderr = forwarder.communicate(timeout=TIMEOUT)
    assert "open failed: administratively prohibited: bastion rule: no port forwarding" in stderr

    before = len(entries(paths))
    result = ssh(paths, port, key, "-o", "ExitOnForwardFailure=yes", "-R", "127.0.0.1:0:127.0.0.1:22",
                 command="migrate --layout")
    assert result.returncode == 255 and "remote port forwarding failed" in result.stderr
    audited(paths, before, method="ssh/forward", status="PERMISSION_DENIED",
            subject="forwarding request refused: remote port 127.0.0.1:0")
    checked = audit.verify(paths.audit, paths.audit_key.read_bytes(), [])
    assert not checked.problems


def keygen(path: Path, *kind: str) -> Path:
    """A key pair made by ssh-keygen (no passphrase); its .pub."""
    subprocess.run(["ssh-keygen", "-q", "-t", *kind, "-N", "", "-C", "made by the vendor", "-f", str(path)],
                   check=True, stdin=subprocess.DEVNULL, capture_output=True, timeout=TIMEOUT)
    return path.with_name(path.name + ".pub")


def test_a_vendor_registers_a_key_of_its_own_and_logs_in_with_it(gate, tmp_path):
    """`ssh-keygen -t ed25519`, then `testbed bastion add-vendor vendor-b --public-key id_ed25519.pub`: stored 0600
    beside the others, rebuilt from the key (no options, the vendor's name as comment), and stock ssh logs in with the
    vendor's private key, which never left it; the key made here for vendor-a does not open vendor-b."""
    paths, port, key, _ = gate
    public = keygen(tmp_path / "id_ed25519", "ed25519")
    added = cli(paths.state_dir, "bastion", "add-vendor", "vendor-b", "--public-key", str(public))
    assert added.returncode == 0 and len(added.stdout.strip().splitlines()) == 1, added.stderr
    stored = paths.vendors / "vendor-b.pub"
    assert stored.stat().st_mode & 0o777 == 0o600
    assert stored.read_text() == " ".join(public.read_text().split()[:2]) + " vendor-b\n"
    assert not paths.vendor_key("vendor-b").exists()
    before = len(entries(paths))
    result = ssh(paths, port, tmp_path / "id_ed25519", command="migrate --layout", user="vendor-b")
    assert result.returncode == 0 and "history.csv" in result.stdout, result.stderr
    audited(paths, before, caller="ssh:vendor-b", method="ssh/migrate", status="OK")
    assert ssh(paths, port, key, command="migrate --layout", user="vendor-b").returncode == 255  # Permission denied
    again = cli(paths.state_dir, "bastion", "add-vendor", "vendor-b")  # would replace the vendor's key with ours
    assert again.returncode == 2 and "has a key of its own registered" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("case", ["rsa-2048", "dsa", "options", "two keys", "private key", "garbage", "rsa-3072",
                                  "ecdsa-256"])
def test_a_vendor_key_is_validated(tmp_path, case):
    """Accepted: Ed25519, RSA of 3072 bits or more, ECDSA P-256 and up. Refused naming the rule, in one line, with
    nothing stored: RSA of 2048 bits, DSA, a line with options, two keys, a private key, text that is no key."""
    made = {"rsa-2048": ("rsa", "-b", "2048"), "dsa": ("dsa",), "rsa-3072": ("rsa", "-b", "3072"),
            "ecdsa-256": ("ecdsa", "-b", "256")}
    ed = keygen(tmp_path / "ed", "ed25519")
    source = tmp_path / "given.pub"
    if case in made:
        try:
            source = keygen(tmp_path / "k", *made[case])
        except subprocess.CalledProcessError:
            pytest.skip(f"this ssh-keygen makes no {case} key")
    elif case == "options":
        source.write_text('command="/bin/sh",no-pty ' + ed.read_text())
    elif case == "two keys":
        source.write_text(ed.read_text() * 2)
    elif case == "private key":
        source = tmp_path / "ed"
    else:
        source.write_text("ssh-ed25519 bm90IGEga2V5 vendor\n")
    state = tmp_path / "state"
    result = cli(state, "bastion", "add-vendor", "vendor-c", "--public-key", str(source))
    stored = bastion.Paths(state).vendors / "vendor-c.pub"
    if case in ("rsa-3072", "ecdsa-256"):
        assert result.returncode == 0 and stored.is_file(), result.stderr
        return
    assert result.returncode == 2 and not stored.exists()
    assert len(result.stderr.strip().splitlines()) == 1 and "bastion rule:" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_port_is_outside_the_ephemeral_range_or_the_kernels_choice(tmp_path):
    """`bastion start --port P` inside net.ipv4.ip_local_port_range is refused in one line naming the rule; a port
    outside it is used, printed and published, and stock ssh reaches the bastion there."""
    low, high = bastion.ephemeral_range()
    state = tmp_path / "state"
    assert cli(state, "bastion", "add-vendor", "vendor-a").returncode == 0
    refused = cli(state, "bastion", "start", "--port", str((low + high) // 2))
    assert refused.returncode == 2 and "bastion rule:" in refused.stderr and "ephemeral range" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and not bastion.running(bastion.Paths(state))

    def outside() -> int:
        candidates = [*range(max(low - 4000, 1024), low), *range(high + 1, min(high + 4000, 65536))]
        random.shuffle(candidates)  # (another test choosing the same way, at the same time, is unlikely to take it)
        for candidate in candidates:
            if not bastion.port_refused(candidate):
                return candidate
        pytest.skip("no free port outside the ephemeral range")
    chosen = outside()
    try:
        started = cli(state, "bastion", "start", "--port", str(chosen))
        assert started.returncode == 0, started.stderr
        paths = bastion.Paths(state)
        assert f"bastion on 127.0.0.1:{chosen};" in started.stdout and int(paths.port.read_text()) == chosen
        result = ssh(paths, chosen, paths.vendor_key("vendor-a"), command="migrate --layout")
        assert result.returncode == 0 and "history.csv" in result.stdout, result.stderr
        moved = cli(state, "bastion", "start", "--port", str(outside()))
        assert moved.returncode == 2 and "already runs" in moved.stderr
    finally:
        cli(state, "bastion", "stop")
