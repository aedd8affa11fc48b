"""The README and docs/*.md hold to the code (fast, no network).

Every relative link resolves to a file (and to a heading, when it names an anchor); every `testbed ...` command
shown in a fenced code block or an inline code span parses: `testbed <subcommand path> --help` exits 0 for each
distinct subcommand path shown, and every `--option` shown for it is in that help (or is a global option); every
`make` target shown is in the Makefile; the README stays at most 200 lines.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import warnings
from functools import cache
from pathlib import Path

import pytest

from testbed.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TESTBED = Path(sys.executable).with_name("testbed")  # .venv/bin/testbed, beside the interpreter running the tests
README_MAX_LINES = 200

# ---- Coming in this change (issue 20) -------------------------------------------------------------------------
# Commands, options and documents the README and docs/ already show while others are adding them. While one is
# missing it is tolerated; once it exists it is checked like any other (and a warning says it can leave this list).
# REMOVE EACH ENTRY ONCE IT HAS LANDED.
COMING_COMMANDS: set[tuple[str, ...]] = set()  # (subcommand path): a command a change shows before it lands
COMING_OPTIONS: set[tuple[tuple[str, ...], str]] = set()  # ((subcommand path), "--option")
COMING_FILES: set[str] = set()  # a document a change links before it lands
# ------------------------------------------------------------------------------------------------------------------

FENCE = re.compile(r"^(```|~~~)[^\n]*\n(.*?)^\1[ \t]*$", re.M | re.S)
SPAN = re.compile(r"`([^`\n]+)`")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$", re.M)
OPTION = re.compile(r"--[A-Za-z][\w-]*")
PLACEHOLDER = re.compile(r"[A-Z][A-Z0-9_.]*(\.\.\.|…)?|\.\.\.|…|<[^>]*>")


def relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def fenced(text: str) -> list[str]:
    """The contents of the fenced code blocks of a Markdown text."""
    return [m.group(2) for m in FENCE.finditer(text)]


def prose(text: str) -> str:
    """The text outside fenced code blocks."""
    return FENCE.sub("", text)


def spans(text: str) -> list[str]:
    """The inline code spans outside fenced blocks (`\\|` in a table cell is a `|`)."""
    return [m.group(1).replace("\\|", "|") for m in SPAN.finditer(prose(text))]


def slugs(path: Path) -> set[str]:
    """The anchors GitHub gives the headings of a Markdown file."""
    found, seen = set(), {}
    for m in HEADING.finditer(prose(path.read_text(encoding="utf-8"))):
        slug = re.sub(r"<[^>]+>", "", m.group(2)).strip().lower()
        slug = re.sub(r"[^\w\- ]", "", slug).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


# ---- links ------------------------------------------------------------------------------------------------------

def links() -> list[tuple[Path, str]]:
    """(document, target) of every relative link of the documents (code blocks and spans left out)."""
    found = []
    for doc in DOCUMENTS:
        text = SPAN.sub("", prose(doc.read_text(encoding="utf-8")))
        found += [(doc, m.group(1)) for m in LINK.finditer(text)
                  if not re.match(r"[a-z][a-z0-9+.-]*:", m.group(1))]  # (http:, https:, mailto: …)
    return found


def test_every_relative_link_resolves():
    """Each relative link of README.md and docs/*.md names a file that exists, and a heading of it if it has an
    anchor (a document coming in this change is tolerated while it is missing)."""
    broken = []
    for doc, target in links():
        path, _, anchor = target.partition("#")
        file = (doc.parent / path).resolve() if path else doc
        where = f"{relative(doc)}: ({target})"
        if not file.exists():
            if file.is_relative_to(ROOT) and relative(file) in COMING_FILES:
                continue
            broken.append(f"{where}: no file {path}")
        elif anchor and (file.suffix != ".md" or anchor not in slugs(file)):
            broken.append(f"{where}: no heading #{anchor} in {relative(file)}")
    assert not broken, "\n".join(broken)
    for coming in COMING_FILES:
        if (ROOT / coming).exists():
            warnings.warn(f"{coming} has landed: remove it from COMING_FILES in tests/test_docs.py")


def test_links_are_found():
    """(The link test sees the links: the README links into docs/.)"""
    assert any(doc.name == "README.md" and target.startswith("docs/") for doc, target in links())


# ---- testbed commands -------------------------------------------------------------------------------------------

def command_lines(code: str, block: bool) -> list[list[str]]:
    """The word lists after `testbed` of each testbed command in a piece of code. In a block, `#` starts a comment
    and `|`, `&`, `;` separate commands; in a span (often usage syntax: `[--json | --write]`) only `&&` and `;` do.
    A quoted string is one word."""
    found = []
    for line in code.replace("\\\n", " ").splitlines():
        line = re.sub(r"\"[^\"]*\"|'[^']*'", "QUOTED", line)
        if block:
            line = re.sub(r"(^|\s)#.*", "", line)
        for segment in re.split(r"&&|\|\||[;|&]" if block else r"&&|;", line):
            words = segment.split()
            if words and re.fullmatch(r"(\S*/)?testbed", words[0]):
                found.append(words[1:])
    return found


def subparsers(parser: argparse.ArgumentParser) -> dict:
    action = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
    return action.choices if action else {}


@cache
def parser() -> argparse.ArgumentParser:
    return build_parser()


def subcommand(path) -> argparse.ArgumentParser | None:
    """The parser of `testbed PATH`, or None where there is no such subcommand."""
    at = parser()
    for word in path:
        at = subparsers(at).get(word)
        if at is None:
            return None
    return at


def resolve(words: list[str]) -> tuple[tuple[str, ...], list[str], str | None]:
    """(subcommand path, the words after it, the word where an unknown subcommand was asked for, or None)."""
    at, i, path = parser(), 0, []
    while i < len(words) and words[i].startswith("-"):  # global options before the command: --state-dir DIR
        i += 1 if "=" in words[i] else 2
    while i < len(words) and subparsers(at):
        word = words[i].strip("[]()")
        if word not in subparsers(at):
            return tuple(path), words[i:], word
        path.append(word)
        at = subparsers(at)[word]
        i += 1
    return tuple(path), words[i:], None


def shown() -> tuple[dict[tuple[str, ...], dict[str, set[str]]], list[str]]:
    """The subcommand paths the documents show → {option → where shown}; and the problems met on the way (unknown
    subcommands), leaving out commands coming in this change and placeholders such as `testbed CMD`."""
    paths: dict[tuple[str, ...], dict[str, set[str]]] = {}
    problems = []

    def add(words: list[str], where: str, before: tuple[str, ...] = ()) -> None:
        path, rest, unknown = resolve(words)
        if unknown is not None:
            asked = path + (unknown,)
            if any(c[:len(asked)] == asked for c in COMING_COMMANDS) or (not path and PLACEHOLDER.fullmatch(unknown)):
                return
            if path or not PLACEHOLDER.fullmatch(unknown):
                problems.append(f"{where}: `testbed {' '.join(words)}`: no subcommand {' '.join(asked)}")
            return
        if not path:
            return
        options = paths.setdefault(path, {})
        if path == ("ssh",) and rest:  # testbed ssh VENDOR COMMAND...: the command is a testbed command of its own
            inner = rest[1:]
            if inner and not PLACEHOLDER.fullmatch(inner[0]):
                add(inner, where)
            return
        for word in words[:len(words) - len(rest)] + rest:
            for option in OPTION.findall(word):
                options.setdefault(option, set()).add(where)

    for doc in DOCUMENTS:
        text = doc.read_text(encoding="utf-8")
        for code, block in [(c, True) for c in fenced(text)] + [(s, False) for s in spans(text)]:
            for words in command_lines(code, block):
                add(words, relative(doc))
    return paths, problems


SHOWN, PROBLEMS = shown()


@cache
def helps() -> dict[tuple[str, ...], subprocess.CompletedProcess]:
    """`testbed PATH --help` of every path shown, and of the top level: the top level as a process of its own (the
    command as installed), each path's from the same parser in this process (a process each cost a second apiece)."""
    top = subprocess.run([str(TESTBED), "--help"], capture_output=True, text=True, timeout=120)
    done = {(): top}
    for path in sorted(SHOWN):
        at = subcommand(path)
        done[path] = (subprocess.CompletedProcess(["testbed", *path, "--help"], 0, at.format_help(), "") if at else
                      subprocess.CompletedProcess(["testbed", *path, "--help"], 2, "", f"no subcommand {' '.join(path)}"))
    return done


def in_help(option: str, text: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text) is not None


def test_commands_are_found():
    """(The command test sees the commands: the README shows testbed commands of several paths.)"""
    assert len(SHOWN) >= 20 and ("migrate",) in SHOWN and ("pki", "init") in SHOWN, sorted(SHOWN)


def test_no_unknown_subcommand_is_shown():
    """Every subcommand the documents show exists (those coming in this change are tolerated while missing)."""
    assert not PROBLEMS, "\n".join(PROBLEMS)


@pytest.mark.parametrize("path", sorted(SHOWN), ids=lambda p: " ".join(p))
def test_the_command_shown_parses(path):
    """`testbed PATH --help` exits 0, and every option the documents show with PATH is in its help (or is a global
    option of `testbed --help`); an option coming in this change is tolerated while it is missing."""
    ran = helps()[path]
    assert ran.returncode == 0, f"testbed {' '.join(path)} --help: exit {ran.returncode}\n{ran.stderr}"
    top = helps()[()]
    assert top.returncode == 0, top.stderr
    missing = []
    for option, where in sorted(SHOWN[path].items()):
        if in_help(option, ran.stdout) or in_help(option, top.stdout):
            if (path, option) in COMING_OPTIONS:
                warnings.warn(f"{' '.join(path)} {option} has landed: remove it from COMING_OPTIONS in tests/test_docs.py")
            continue
        if (path, option) not in COMING_OPTIONS:
            missing.append(f"`testbed {' '.join(path)} {option}` (shown in {', '.join(sorted(where))})")
    assert not missing, "options not in the help:\n" + "\n".join(missing)


def test_coming_commands_are_tolerated_only_while_missing():
    """A command coming in this change that has landed is checked like the others (and should leave the list)."""
    for coming in sorted(COMING_COMMANDS):
        if subcommand(coming) is not None:
            warnings.warn(f"testbed {' '.join(coming)} has landed: remove it from COMING_COMMANDS in tests/test_docs.py")
            ran = subprocess.run([str(TESTBED), *coming, "--help"], capture_output=True, text=True, timeout=120)
            assert ran.returncode == 0, ran.stderr


# ---- make targets and the README's length --------------------------------------------------------------------------

def test_every_make_target_shown_exists():
    """Each `make TARGET` in a code block or span of the documents is a target of the Makefile."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([A-Za-z][\w.-]*)[ \t]*:(?!=)", makefile, re.M))
    shown_targets = {}
    for doc in DOCUMENTS:
        text = doc.read_text(encoding="utf-8")
        for code in fenced(text) + spans(text):
            for target in re.findall(r"(?:^|[\s;&|(])make[ \t]+([A-Za-z][\w.-]*)", code, re.M):
                shown_targets.setdefault(target, set()).add(relative(doc))
    assert {"demo", "test", "test-fast"} <= set(shown_targets), sorted(shown_targets)
    unknown = {t: sorted(w) for t, w in shown_targets.items() if t not in targets}
    assert not unknown, f"make targets not in the Makefile: {unknown}"


def test_the_readme_is_short():
    """A newcomer reads the README in five minutes: at most 200 lines (the rest is in docs/)."""
    lines = (ROOT / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines (at most {README_MAX_LINES}): move detail to docs/"
