"""The one command-line entry point: ``testbed``.

The commands live in one module per group, each adding its parsers with ``register(subparsers)``: network (pki, up,
status, down, health, metrics, link, compose, topology), audit (audit, check, consistency, probe, rules), conform
(the conformance suite), data (population, load, batch, trace), migration (migrate, bastion, ssh) and runs (run,
bench, tour); common holds what they share. This module assembles the parser and runs a command: what a command cannot do (a ``Refusal``, or the
errors of the network, the PKI and the nodes it meets) ends in one line on stderr and an exit code, never a
traceback."""
from __future__ import annotations

import argparse
import difflib
import os
import signal
import sys
from pathlib import Path

import grpc

from certs.pki import PassphraseError
from testbed.cli import audit, backup, conform, data, deploy, migration, network, report, runs
from testbed.cli.audit import (audit_node, cmd_audit_follow, cmd_audit_verify, cmd_check, cmd_consistency,
                               cmd_probe, cmd_rules, rules_table)
from testbed.cli.common import Refusal, known_municipality, open_network
from testbed.cli.data import cmd_batch, cmd_load, cmd_population_generate, cmd_trace, write_population
from testbed.cli.migration import cmd_bastion, cmd_migrate, cmd_ssh
from testbed.cli.network import (STATUS_TRIES, cmd_compose, cmd_down, cmd_health, cmd_link, cmd_metrics,
                                 cmd_pki_init, cmd_pki_protect, cmd_pki_reissue, cmd_pki_revoke, cmd_status,
                                 cmd_topology_generate, cmd_up)
from testbed.cli.runs import cmd_bench, cmd_run, cmd_tour
from testbed.client import default_state_dir
from testbed.network import NetworkError

# (the private helpers too, by the names they had before the commands were split by group)
_network, _municipality = open_network, known_municipality
_chain_of_file, _warn_weakened = audit._chain_of_file, network._warn_weakened

# what testbed.cli offers, as before the split: main, the parser, the Refusal, and every command and helper by its name
__all__ = ["main", "build_parser", "Parser", "Refusal", "open_network", "known_municipality", "STATUS_TRIES",
           "cmd_pki_init", "cmd_pki_revoke", "cmd_pki_reissue", "cmd_pki_protect", "cmd_up", "cmd_status", "cmd_down",
           "cmd_health", "cmd_metrics", "cmd_link", "cmd_compose", "cmd_topology_generate",
           "cmd_audit_verify", "cmd_audit_follow", "audit_node", "cmd_check", "cmd_consistency", "cmd_probe",
           "cmd_rules", "rules_table",
           "cmd_population_generate", "write_population", "cmd_load", "cmd_batch", "cmd_trace",
           "cmd_migrate", "cmd_bastion", "cmd_ssh", "cmd_run", "cmd_bench", "cmd_tour"]

GROUPS = (network, audit, conform, data, migration, runs, report, deploy, backup)
# `testbed --help` lists the commands in the order it always has, not group by group (a command not named here,
# such as a new one, comes after these)
LISTING = ("pki", "up", "status", "down", "audit", "population", "load", "migrate", "compose", "link", "health",
           "metrics", "bastion", "ssh", "consistency", "check", "probe", "bench", "topology", "run", "trace",
           "batch", "tour")


class Parser(argparse.ArgumentParser):
    """The testbed's parsers (every subparser is one too): options only by their full names, a mistake in one line."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)  # `up --isolate` or `run --resident 100` must not be taken silently
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message}; see `{self.prog} --help`\n")

    def parse_args(self, args=None, namespace=None):
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:  # named after the subcommand that was given them, with the option meant when it is a near miss
            command, deeper = self, True
            while deeper:
                deeper = next((a.choices.get(getattr(parsed, a.dest, None) or "") for a in command._actions
                               if isinstance(a, argparse._SubParsersAction)), None)
                command = deeper or command
            near = [m for e in extras if e.startswith("--")
                    for m in difflib.get_close_matches(e.split("=")[0], command._option_string_actions, 1, 0.8)]
            command.error(f"unrecognized arguments: {' '.join(extras)}" + (f" (did you mean {near[0]}?)" if near else ""))
        return parsed


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = Parser(prog="testbed", description="Simulated municipal network testbed (住基ネット over gRPC with mutual TLS).")
    parser.add_argument("--state-dir", type=Path, default=default_state_dir(),
                        help="working folder for PKI, data, logs (default: $TESTBED_HOME or ./.testbed)")
    parser.add_argument("--topology", help="topology file (default: the one in use, else kanagawa)")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.register(sub)
    _in_listing_order(sub)
    return parser


def _in_listing_order(sub: argparse._SubParsersAction) -> None:
    """Put the subcommands in LISTING's order: in the help, the usage line and an invalid choice's message."""
    rank = {name: i for i, name in enumerate(LISTING)}
    parsers = sorted(sub.choices.items(), key=lambda item: rank.get(item[0], len(rank)))
    sub.choices.clear()  # (in place: the same dict maps a name to its parser when parsing)
    sub.choices.update(parsers)
    sub._choices_actions.sort(key=lambda action: rank.get(action.dest, len(rank)))


def _everywhere(parser: argparse.ArgumentParser) -> None:
    """--state-dir and --topology are taken before or after the subcommand (after it, they win)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                if "--state-dir" not in sub._option_string_actions:
                    sub.add_argument("--state-dir", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
                if "--topology" not in sub._option_string_actions:
                    sub.add_argument("--topology", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
                _everywhere(sub)


def main(argv: list[str] | None = None) -> int:
    """Run the testbed command line."""
    parser = build_parser()
    _everywhere(parser)
    args = parser.parse_args(argv)
    try:
        try:
            code = args.func(args)
        except Refusal as exc:  # what every command says when it cannot go on: one line, its exit code
            print(f"testbed {exc.command or args.command}: {exc}", file=sys.stderr)
            code = exc.code
        sys.stdout.flush()  # (a reader that went away, as `| head` does, is found here, not at exit)
        return code
    except BrokenPipeError:  # the reader of our output went away: stop quietly, as other Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # (nothing more to flush at exit)
        return 128 + signal.SIGPIPE
    except KeyboardInterrupt:  # Ctrl-C in a command that has no clean stop of its own (`run` has)
        print(f"testbed {args.command}: interrupted", file=sys.stderr)
        return 128 + signal.SIGINT
    except (PassphraseError, NetworkError) as exc:  # NetworkError: from any command that brings the network up
        print(f"testbed {args.command}: {exc}", file=sys.stderr)
        return 2
    except grpc.RpcError as exc:  # a node refused or could not be reached: one line, never a traceback
        details = (exc.details() or "").splitlines()[0] if hasattr(exc, "details") else str(exc)
        hint = "; is the network up? (`testbed status`)" if exc.code() in (
            grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED) else ""
        print(f"testbed {args.command}: {exc.code().name}: {details}{hint}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 (a migration that cannot start, from run or bench too: one line)
        from testbed.migration.rehearsal import StepFailed  # (imported only then: it brings asyncssh)
        if not isinstance(exc, StepFailed):
            raise
        print(f"testbed {args.command}: {exc}", file=sys.stderr)
        return 2
