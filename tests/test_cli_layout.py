"""The command line split by group (testbed/cli/): every command still there, each group registering its own, one
error style, `testbed rules`, and `testbed link` waiting for the relay rather than sleeping. Fast: no network is
started."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from nodes.topology import free_ports
from testbed import catalogue, cli, links
from testbed.cli import audit, backup, conform, data, deploy, migration, network, report, runs

ROOT = Path(__file__).resolve().parent.parent
ENTRY = Path(sys.executable).parent / "testbed"  # the console script pyproject.toml names (testbed.cli:main)
TESTBED = [str(ENTRY)] if ENTRY.exists() else [sys.executable, "-m", "testbed.cli"]
# what `testbed --help` listed before the split, in its order
COMMANDS = ["pki", "up", "status", "down", "audit", "population", "load", "migrate", "compose", "link", "health",
            "metrics", "bastion", "ssh", "consistency", "check", "probe", "bench", "topology", "run", "trace", "batch",
            "tour"]
GROUPS = {network: {"pki", "up", "status", "down", "health", "metrics", "link", "compose", "topology"},
          audit: {"audit", "check", "consistency", "probe", "rules"},
          conform: {"conform"},
          data: {"population", "load", "batch", "trace"},
          migration: {"migrate", "bastion", "ssh"},
          runs: {"run", "bench", "tour"},
          report: {"report"},
          deploy: {"prometheus", "k8s"},
          backup: {"backup", "restore"}}
ADDED = ["rules", "conform", "report", "prometheus", "k8s", "backup", "restore"]  # commands added since the split, in the order --help lists them


def run_testbed(*args: str) -> subprocess.CompletedProcess:
    """`testbed ARGS...` as a user runs it."""
    return subprocess.run([*TESTBED, *args], capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_help_lists_every_command_as_before_then_rules():
    shown = run_testbed("--help")
    assert shown.returncode == 0, shown.stderr
    choices = re.search(r"\{([a-z0-9,-]+)\}", shown.stdout).group(1).split(",")
    assert choices == COMMANDS + ADDED
    for command in choices:
        assert re.search(rf"^    {command} ", shown.stdout, re.M), command


def test_each_group_registers_its_own_commands():
    """Each group module has register(subparsers); together they register every command, each once."""
    seen = {}
    for group, commands in GROUPS.items():
        sub = cli.Parser(prog="testbed").add_subparsers(dest="command")
        group.register(sub)
        assert set(sub.choices) == commands, group.__name__
        for name, parser in sub.choices.items():
            assert name not in seen, f"{name} registered by {seen.get(name)} and {group.__name__}"
            seen[name] = group.__name__
            assert parser.get_default("func") or parser._subparsers, name  # (a command, or a group of subcommands)
    assert set(seen) == set(COMMANDS) | set(ADDED)


@pytest.mark.parametrize("command", COMMANDS + ADDED)
def test_every_command_has_its_help(command, capsys):
    with pytest.raises(SystemExit) as done:
        cli.main([command, "--help"])
    assert done.value.code == 0 and f"usage: testbed {command}" in capsys.readouterr().out


def test_rules_json_lists_the_catalogue():
    shown = run_testbed("rules", "--json")
    assert shown.returncode == 0, shown.stderr
    rules = json.loads(shown.stdout)
    assert rules and all(set(r) == {"reason", "owner", "code", "reference", "summary"} for r in rules)
    assert all(re.fullmatch(r"[A-Z][A-Z0-9]*(_[A-Z0-9]+)*", r["reason"]) for r in rules), rules
    assert all(r["code"] in grpc.StatusCode.__members__ for r in rules)
    assert len({r["reason"] for r in rules}) == len(rules)


def test_rules_table_is_one_rule_a_line(capsys):
    assert cli.main(["rules"]) == 0
    header, *lines = capsys.readouterr().out.splitlines()
    assert header.split() == ["RULE", "OWNER", "CODE", "REFERENCE"]
    rules = catalogue.catalogue()
    assert [line.split()[:3] for line in lines] == [[r.reason, r.owner, r.code.name] for r in rules]


def test_rules_write_writes_the_document(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(catalogue, "DOCUMENT", tmp_path / "rules.md")
    assert cli.main(["rules", "--write"]) == 0
    assert (tmp_path / "rules.md").read_text(encoding="utf-8").startswith("# The rule catalogue")
    assert f"written {tmp_path / 'rules.md'}" in capsys.readouterr().out


def test_an_unknown_command_is_one_line_and_exit_2():
    shown = run_testbed("nosuch")
    assert shown.returncode == 2 and shown.stdout == ""
    assert shown.stderr.count("\n") == 1 and "invalid choice: 'nosuch'" in shown.stderr, shown.stderr


@pytest.mark.parametrize("args, code, line", [
    (["run", "march-peak", "--minutes", "0"], 2, "testbed run: --minutes 0: give more than 0 (e.g. --minutes 1)"),
    (["bastion", "add-vendor"], 2, "testbed bastion add-vendor: give the vendor's name (e.g. vendor-a)"),
    (["pki", "revoke"], 2, "testbed pki revoke: give an identity (URI SAN) or --serial N, not both; "
                           "see `testbed pki revoke --help`"),
    (["compose", "render", "--check", "--root", "{tmp}"], 1, "testbed compose: stale: "),
])
def test_a_refusal_is_one_line_with_its_exit_code(args, code, line, tmp_path, capsys):
    """One error style: the command raises a Refusal, main prints `testbed COMMAND: LINE` and exits with its code."""
    assert cli.main(["--state-dir", str(tmp_path), *(a.format(tmp=tmp_path) for a in args)]) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(line), err


def test_link_waits_for_the_relay_to_apply_the_control_file_not_a_fixed_time(tmp_path):
    """After `testbed link cut`, the command returns once the relay says it has applied the new control file (the
    relay writes the control file's stamp once every link has taken it); with no relay, nothing to wait for."""
    paths = links.Paths(tmp_path)
    (port,) = free_ports("127.0.0.1", 1)
    links.write_plan(paths, {"a->b": {"listen": f"127.0.0.1:{port}", "target": "127.0.0.1:9", "segment": "lan"}})
    links.start(tmp_path, tmp_path / "relay.log")
    try:
        assert links.wait_applied(paths)  # the control file it started with
        links.change(paths, "a", "b", cut=True)
        assert network.relay_took_control(paths)
        assert links.applied(paths) and links.read_control(paths)["a->b"]["cut"] is True
    finally:
        links.stop(tmp_path)
    links.change(paths, "a", "b", cut=False)
    assert not network.relay_took_control(paths)  # no relay runs: nothing to wait for
    assert not links.applied(paths)


def test_python_m_testbed_cli_still_runs():
    """The tests and the bastion run the command line as `python -m testbed.cli`."""
    shown = subprocess.run([sys.executable, "-m", "testbed.cli", "--help"], capture_output=True, text=True,
                           timeout=120, cwd=ROOT, env={**os.environ, "COLUMNS": "80"})
    assert shown.returncode == 0 and shown.stdout.startswith("usage: testbed "), shown.stderr
