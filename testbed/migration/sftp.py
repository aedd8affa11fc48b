"""Media exchange by SFTP over asyncssh (DESIGN §8): the target site's SFTP server and the sending side.

The server (`python -m testbed.migration.sftp serve ...`, a process of its own at the target site, confined
wherever the machine allows it: see server_command) admits only vendors whose public key it was given, one
key file per vendor (no shared accounts), with no password and no keyboard-interactive login; it offers SFTP
alone, rooted at the site's inbox: no shell, no exec, no PTY, no agent, X11 or port forwarding.

Paths are resolved by the server itself at the moment each request uses them (Inbox): one component at a
time from a descriptor of the inbox, never following a link, so that a path which would leave the inbox or
pass through a symbolic link is refused whatever was renamed or planted since. There are no links in a media
exchange: creating one is refused. Every surface is bounded (Limits): connections waiting to log in and
their login grace, sessions, channels, window and packet sizes, files, bytes and open handles per SFTP
session, and the entries of a listing.

The sender resumes a file where the last attempt stopped (the size already at the target), and can be told
to run slowly (a slow link) or to drop the connection once partway (an interrupted transfer), so that a
rehearsal sees both.
"""
from __future__ import annotations

import argparse
import asyncio
import errno
import functools
import inspect
import os
import re
import signal
import stat
import sys
import time
import weakref
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path

import asyncssh
from asyncssh.constants import DISC_TOO_MANY_CONNECTIONS, OPEN_RESOURCE_SHORTAGE
from asyncssh.stream import SSHServerStreamSession
from asyncssh.sftp import FXF_APPEND, FXF_CREAT, FXF_EXCL, FXF_READ, FXF_TRUNC, FXF_WRITE

CHUNK = 256 * 1024
CONNECT_TIMEOUT = 10.0
RULE = "SFTP rule"
NO_LINKS = "no links in the media exchange: a path that is or passes through a symbolic link is refused"


# -- keys --------------------------------------------------------------------------------------------------
def ensure_key(path: Path) -> asyncssh.SSHKey:
    """An Ed25519 key at path (made, 0600 in a 0700 folder, if there is none), with its .pub beside it."""
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = asyncssh.generate_private_key("ssh-ed25519", comment=path.parent.name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key.export_private_key())
        path.with_suffix(".pub").write_bytes(key.export_public_key())
    return asyncssh.read_private_key(str(path))


# -- the bounds of a server (shared with the bastion) -----------------------------------------------------
@dataclass
class Limits:
    """What one SSH server holds at most; the defaults fit a migration export of a city with room to spare."""

    max_startups: int = 16  # connections not yet logged in; past it the oldest is dropped (a newcomer gets in)
    login_grace: float = 5.0  # seconds a connection has to log in
    max_sessions: int = 8  # logged-in connections at once; past it a login is refused
    max_channels: int = 2  # session channels per connection
    window: int = 512 * 1024  # the receive window of a channel (bytes in flight towards the server)
    max_pktsize: int = 32 * 1024  # the largest SSH packet of a channel
    max_files: int = 64  # files and folders created per SFTP session
    max_bytes: int = 4 * 1024 ** 3  # bytes written per SFTP session, and the largest file
    max_handles: int = 16  # files and folders open at once per SFTP session
    max_listing: int = 1000  # entries of a folder listed
    max_path: int = 1024  # bytes of a path
    max_depth: int = 16  # components of a path

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """One --max-... option per limit, defaulting to this one's values."""
        for f in fields(self):
            parser.add_argument(f"--{f.name.replace('_', '-')}", type=type(getattr(self, f.name)),
                                default=getattr(self, f.name), dest=f"limit_{f.name}")

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "Limits":
        """The limits an argument parser of add_arguments read."""
        return cls(**{f.name: getattr(args, f"limit_{f.name}") for f in fields(cls)})

    def argv(self) -> list[str]:
        """These limits as command-line options (for a server started as a process)."""
        return [part for f in fields(self) for part in (f"--{f.name.replace('_', '-')}", str(getattr(self, f.name)))]


class Gate:
    """The connections one server holds: those waiting to log in (the oldest dropped when a new one arrives past
    the limit, so that a flood of idle connections cannot keep a vendor out) and the logged-in sessions (a
    login past that limit is refused)."""

    def __init__(self, limits: Limits, log, rule: str = RULE):
        self.limits, self.log, self.rule = limits, log, rule
        self.waiting: dict = {}  # connection → arrival; a dict keeps the order of arrival
        self.sessions: set = set()
        self.dropped = 0

    def arrived(self, conn) -> None:
        """A new TCP connection: make room for it among those waiting to log in."""
        while len(self.waiting) >= self.limits.max_startups:
            oldest = next(iter(self.waiting))
            del self.waiting[oldest]
            self.dropped += 1
            if self.dropped & (self.dropped - 1) == 0:  # logged at 1, 2, 4, 8 …: a flood does not fill the disk
                self.log(f"{self.rule}: at most {self.limits.max_startups} connections waiting to log in; "
                         f"dropped the oldest ({self.dropped} so far)")
            oldest.abort()
        self.waiting[conn] = time.monotonic()

    def full(self) -> str:
        """"" while a login may still be admitted, else the rule that refuses it."""
        if len(self.sessions) < self.limits.max_sessions:
            return ""
        return f"{self.rule}: at most {self.limits.max_sessions} sessions at once; try again when one has ended"

    def logged_in(self, conn) -> str:
        """A connection has logged in: "" if it is admitted as a session, else the rule that refuses it."""
        self.waiting.pop(conn, None)
        why = self.full()
        if not why:
            self.sessions.add(conn)
        return why

    def left(self, conn) -> None:
        """A connection has closed."""
        self.waiting.pop(conn, None)
        self.sessions.discard(conn)


def refuse_env(chan) -> None:
    """No environment variables on a channel: nothing here reads them, and each one would be kept (unbounded)."""
    chan._process_env_request = lambda packet: False  # asyncssh looks the handler up on the channel instance


# -- the inbox: every path resolved when it is used ------------------------------------------------------
def refusal(why: str) -> asyncssh.SFTPPermissionDenied:
    """An SFTP refusal naming its rule."""
    return asyncssh.SFTPPermissionDenied(f"{RULE}: {why}")


def split_path(path: bytes, limits: Limits) -> list[str]:
    """A client's path as components ('' and '.' dropped, '..' kept for the walk); refused if too long or not text."""
    if len(path) > limits.max_path:
        raise refusal(f"a path has at most {limits.max_path} bytes")
    if b"\0" in path:
        raise refusal("a path holds no NUL")
    try:
        parts = [p for p in path.decode("utf-8").split("/") if p not in ("", ".")]
    except UnicodeDecodeError:
        raise refusal("a path is UTF-8") from None
    if len(parts) > limits.max_depth:
        raise refusal(f"a path has at most {limits.max_depth} components")
    return parts


class _Open:
    """A file a vendor has open: its descriptor, whether it was opened to write and to append."""

    __slots__ = ("fd", "writes", "append")

    def __init__(self, fd: int, writes: bool, append: bool):
        self.fd, self.writes, self.append = fd, writes, append

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        """As a file's seek (the ranges extension asks for the data and holes of a file)."""
        return os.lseek(self.fd, offset, whence)

    def fileno(self) -> int:
        """The descriptor."""
        return self.fd


class _Listing:
    """The entries of a folder, read when it was opened (a handle keeps a bounded list, not an open folder)."""

    def __init__(self, names: list):
        self.names = names

    def __aiter__(self):
        return self

    async def __anext__(self):
        if not self.names:
            raise StopAsyncIteration
        return self.names.pop(0)


def _rules(method):
    """Refusals named by their rule and logged; a link met by the kernel (O_NOFOLLOW: ELOOP) is the links rule too."""
    def translated(self, exc: Exception, args: tuple) -> Exception:
        if isinstance(exc, OSError) and exc.errno == errno.ELOOP:
            exc = refusal(NO_LINKS)
        if isinstance(exc, asyncssh.SFTPPermissionDenied) and str(exc.reason).startswith(RULE):
            shown = " ".join(repr(a.decode("utf-8", "replace")) for a in args if isinstance(a, bytes))
            self.log(f"{self.vendor}: {method.__name__} {shown} refused: {exc.reason}")
        return exc

    if inspect.iscoroutinefunction(method):
        @functools.wraps(method)
        async def run_async(self, *args):
            try:
                return await method(self, *args)
            except (OSError, asyncssh.SFTPError) as exc:
                raise translated(self, exc, args) from None
        return run_async

    @functools.wraps(method)
    def run(self, *args):
        try:
            return method(self, *args)
        except (OSError, asyncssh.SFTPError) as exc:
            raise translated(self, exc, args) from None
    return run


O_PATH = getattr(os, "O_PATH", 0)
FOLDER = O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC


class Inbox(asyncssh.SFTPServer):
    """One vendor's SFTP session in the inbox: each path walked from a descriptor of the inbox, component by
    component, without following any link; the session's files, bytes and handles counted against Limits."""

    def __init__(self, chan, root: Path, limits: Limits, log, session=None):
        super().__init__(chan)
        self.limits, self.log, self.session = limits, log, session
        self.vendor = chan.get_extra_info("username")
        self.root = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        self.created = self.written = self.handles = 0

    # -- resolution -----------------------------------------------------------------------------------------
    def _step(self, folder: int, name: str) -> int:
        """A descriptor of the folder name in folder; a link there (planted, or swapped in) is refused."""
        try:
            fd = os.open(name, FOLDER, dir_fd=folder)
        except FileNotFoundError:
            raise asyncssh.SFTPNoSuchFile(f"no such folder: {name}") from None
        kind = os.fstat(fd).st_mode  # the descriptor's own type: what was opened, not what was looked at before
        if not stat.S_ISDIR(kind):
            os.close(fd)
            if stat.S_ISLNK(kind):
                raise refusal(NO_LINKS)
            raise asyncssh.SFTPNoSuchFile(f"{name} is not a folder")
        return fd

    def _folder(self, parts: list[str]) -> tuple[int, list[str]]:
        """A descriptor of the folder parts lead to, walked from the inbox; and its components from the inbox."""
        stack, names = [os.dup(self.root)], []
        try:
            for part in parts:
                if part == "..":
                    if len(stack) == 1:
                        raise refusal("a path stays in the inbox ('..' above its root)")
                    os.close(stack.pop())
                    names.pop()
                else:
                    stack.append(self._step(stack[-1], part))
                    names.append(part)
            return stack.pop(), names
        finally:
            for fd in stack:
                os.close(fd)

    @contextmanager
    def _at(self, path: bytes):
        """(folder descriptor, entry name) of a path; the name is None when the path is a folder itself (the inbox,
        or a path ending in '..')."""
        parts = split_path(path, self.limits)
        name = parts.pop() if parts and parts[-1] != ".." else None
        fd, _ = self._folder(parts)
        try:
            yield fd, name
        finally:
            os.close(fd)

    @staticmethod
    def _entry(folder: int, name: str) -> os.stat_result:
        """The attributes of an entry itself; a link is refused (nothing here follows one)."""
        st = os.stat(name, dir_fd=folder, follow_symlinks=False)
        if stat.S_ISLNK(st.st_mode):
            raise refusal(NO_LINKS)
        return st

    @staticmethod
    def _named(name: str | None) -> str:
        if name is None:
            raise refusal("name a file or folder in the inbox (not the inbox itself nor a path ending in '..')")
        return name

    def _take_handle(self) -> None:
        if self.handles >= self.limits.max_handles:
            raise refusal(f"at most {self.limits.max_handles} files and folders open at once per session")
        self.handles += 1

    def _release_handle(self) -> None:
        self.handles -= 1

    def _create(self) -> None:
        if self.created >= self.limits.max_files:
            raise refusal(f"at most {self.limits.max_files} files and folders created per session")
        self.created += 1

    # -- files ----------------------------------------------------------------------------------------------
    @_rules
    def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs) -> _Open:
        """Open a regular file of the inbox (created 0600 if asked); never a link, a device or a hard-linked file."""
        writes = bool(pflags & (FXF_WRITE | FXF_APPEND))
        access = os.O_RDWR if writes and pflags & FXF_READ else os.O_WRONLY if writes else os.O_RDONLY
        base = access | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | (os.O_APPEND if pflags & FXF_APPEND else 0)
        self._take_handle()
        try:
            with self._at(path) as (folder, name):
                fd = self._open_file(folder, self._named(name), base, bool(pflags & FXF_CREAT), bool(pflags & FXF_EXCL))
            if pflags & FXF_TRUNC and writes:
                os.ftruncate(fd, 0)  # after the checks: a refused file is never truncated
            return _Open(fd, writes, bool(pflags & FXF_APPEND))
        except BaseException:
            self._release_handle()
            raise

    def _open_file(self, folder: int, name: str, base: int, create: bool, exclusive: bool) -> int:
        try:
            before = self._entry(folder, name)
        except FileNotFoundError:
            before = None
        if before is not None:
            if exclusive:
                raise asyncssh.SFTPFileAlreadyExists(f"{name} exists")
            self._regular(before, name)
            fd = os.open(name, base, dir_fd=folder)
        elif not create:
            raise asyncssh.SFTPNoSuchFile(f"no such file: {name}")
        else:
            self._create()
            fd = os.open(name, base | os.O_CREAT | os.O_EXCL, 0o600, dir_fd=folder)
        try:
            self._regular(os.fstat(fd), name)  # what was opened, in case the entry changed since it was looked at
        except BaseException:
            os.close(fd)
            raise
        os.set_blocking(fd, True)
        return fd

    @staticmethod
    def _regular(st: os.stat_result, name: str) -> None:
        if not stat.S_ISREG(st.st_mode):
            raise refusal(f"only regular files are opened ({name} is not one)")
        if st.st_nlink > 1:  # a hard link planted beside the inbox's own files could name any file of the disk
            raise refusal(f"a file with more than one name (a hard link) is not opened ({name})")

    def close(self, file_obj: _Open) -> None:
        """Close a file."""
        os.close(file_obj.fd)
        self._release_handle()

    @_rules
    async def read(self, file_obj: _Open, offset: int, size: int) -> bytes:
        """Read a block, once the replies already sent have drained (a client that never reads cannot pile them up)."""
        if self.session is not None:
            await self.session.drain(None)
        return os.pread(file_obj.fd, size, offset)

    @_rules
    def write(self, file_obj: _Open, offset: int, data: bytes) -> int:
        """Write a block, within the bytes a session may write and the size a file may reach."""
        if not file_obj.writes:
            raise asyncssh.SFTPPermissionDenied("the file was not opened for writing")
        if self.written + len(data) > self.limits.max_bytes:
            raise refusal(f"at most {self.limits.max_bytes:,} bytes written per session")
        end = (os.fstat(file_obj.fd).st_size if file_obj.append else offset) + len(data)
        if end > self.limits.max_bytes:
            raise refusal(f"a file holds at most {self.limits.max_bytes:,} bytes")
        written = os.pwrite(file_obj.fd, data, offset)  # with O_APPEND, Linux appends whatever the offset
        self.written += written
        return written

    def fstat(self, file_obj: _Open) -> os.stat_result:
        """The attributes of an open file."""
        return os.fstat(file_obj.fd)

    @_rules
    def fsetstat(self, file_obj: _Open, attrs: asyncssh.SFTPAttrs) -> None:
        """Change an open file's size, mode or times (never its owner)."""
        self._apply(file_obj.fd, attrs, regular=True)

    def fsync(self, file_obj: _Open) -> None:
        """Flush an open file to the disk."""
        os.fsync(file_obj.fd)

    def fstatvfs(self, file_obj: _Open) -> os.statvfs_result:
        """The file system of an open file."""
        return os.statvfs(file_obj.fd)

    # -- attributes -----------------------------------------------------------------------------------------
    @_rules
    def stat(self, path: bytes) -> os.stat_result:
        """The attributes of a file or folder of the inbox (a link is refused, not followed)."""
        with self._at(path) as (folder, name):
            return os.fstat(folder) if name is None else self._entry(folder, name)

    lstat = stat  # nothing is followed, so stat and lstat are the same

    @_rules
    def setstat(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        """Change a file's or folder's size, mode or times (never its owner, never the inbox itself)."""
        with self._at(path) as (folder, name):
            st = self._entry(folder, self._named(name))
            is_folder = stat.S_ISDIR(st.st_mode)
            if not is_folder:
                self._regular(st, name)
            flags = os.O_RDONLY | os.O_DIRECTORY if is_folder else \
                (os.O_WRONLY if attrs.size is not None else os.O_RDONLY) | os.O_NONBLOCK
            fd = os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=folder)
        try:
            now = os.fstat(fd)  # what was opened, in case the entry changed since it was looked at
            if stat.S_ISDIR(now.st_mode) != is_folder:
                raise refusal(f"{name} changed while its attributes were being set")
            if not is_folder:
                self._regular(now, name)
            self._apply(fd, attrs, regular=not is_folder)
        finally:
            os.close(fd)

    lsetstat = setstat

    def _apply(self, fd: int, attrs: asyncssh.SFTPAttrs, regular: bool) -> None:
        if attrs.uid is not None or attrs.gid is not None or attrs.owner is not None or attrs.group is not None:
            raise refusal("owners are not changed")
        if attrs.size is not None:
            if not regular or attrs.size > self.limits.max_bytes:
                raise refusal(f"a file holds at most {self.limits.max_bytes:,} bytes")
            os.ftruncate(fd, attrs.size)
        if attrs.permissions is not None:
            os.fchmod(fd, attrs.permissions & 0o700)  # the vendor's own bits only: no set-id, nothing for others
        if attrs.atime is not None and attrs.mtime is not None:
            os.utime(fd, (attrs.atime, attrs.mtime))

    # -- folders --------------------------------------------------------------------------------------------
    @_rules
    def scandir(self, path: bytes) -> _Listing:
        """The entries of a folder (at most Limits.max_listing), read now; each entry's own attributes."""
        self._take_handle()
        try:
            fd, _ = self._folder(split_path(path, self.limits))
            try:
                names = self._list(fd)
            finally:
                os.close(fd)
        except BaseException:
            self._release_handle()
            raise
        listing = _Listing(names)
        weakref.finalize(listing, self._release_handle)  # the handle is gone when asyncssh drops the listing
        return listing

    def _list(self, folder: int) -> list:
        here = asyncssh.SFTPAttrs.from_local(os.fstat(folder))
        # '..' is shown with the folder's own attributes: nothing of a parent is told (the inbox's is not the vendor's)
        names = [asyncssh.SFTPName(b".", attrs=here), asyncssh.SFTPName(b"..", attrs=here)]
        readable = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=folder)  # O_PATH cannot be read
        try:
            return self._entries(readable, names)
        finally:
            os.close(readable)

    def _entries(self, folder: int, names: list) -> list:
        with os.scandir(folder) as entries:  # (scandir reads a duplicate of the descriptor)
            for entry in entries:
                if len(names) - 2 >= self.limits.max_listing:
                    raise refusal(f"a folder of more than {self.limits.max_listing} entries is not listed")
                names.append(asyncssh.SFTPName(os.fsencode(entry.name),
                                               attrs=asyncssh.SFTPAttrs.from_local(entry.stat(follow_symlinks=False))))
        return names

    @_rules
    def mkdir(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        """Make a folder (0700)."""
        with self._at(path) as (folder, name):
            name = self._named(name)
            self._create()
            os.mkdir(name, 0o700, dir_fd=folder)

    @_rules
    def rmdir(self, path: bytes) -> None:
        """Remove an empty folder."""
        with self._at(path) as (folder, name):
            self._entry(folder, self._named(name))
            os.rmdir(name, dir_fd=folder)

    @_rules
    def remove(self, path: bytes) -> None:
        """Remove a file."""
        with self._at(path) as (folder, name):
            if stat.S_ISDIR(self._entry(folder, self._named(name)).st_mode):
                raise asyncssh.SFTPFailure(f"{name} is a folder (rmdir removes a folder)")
            os.unlink(name, dir_fd=folder)

    @_rules
    def rename(self, oldpath: bytes, newpath: bytes) -> None:
        """Rename a file or folder inside the inbox; an existing target is kept (SFTP v3)."""
        self._rename(oldpath, newpath, replace=False)

    @_rules
    def posix_rename(self, oldpath: bytes, newpath: bytes) -> None:
        """Rename a file or folder inside the inbox, replacing a file there."""
        self._rename(oldpath, newpath, replace=True)

    def _rename(self, oldpath: bytes, newpath: bytes, replace: bool) -> None:
        with self._at(oldpath) as (old, old_name), self._at(newpath) as (new, new_name):
            self._entry(old, self._named(old_name))
            try:
                self._entry(new, self._named(new_name))
                if not replace:
                    raise asyncssh.SFTPFileAlreadyExists(f"{new_name} exists")
            except FileNotFoundError:
                pass
            os.rename(old_name, new_name, src_dir_fd=old, dst_dir_fd=new)

    @_rules
    def realpath(self, path: bytes) -> bytes:
        """The path as the vendor sees it from the inbox, '..' and '.' resolved; its folders must be real folders."""
        parts = split_path(path, self.limits)
        tail = [parts.pop()] if parts and parts[-1] != ".." else []
        fd, names = self._folder(parts)
        try:
            if tail:
                try:
                    self._entry(fd, tail[0])
                except FileNotFoundError:
                    pass  # the name of a file not made yet
        finally:
            os.close(fd)
        return ("/" + "/".join(names + tail)).encode()

    @_rules
    def statvfs(self, path: bytes) -> os.statvfs_result:
        """The file system of the inbox."""
        with self._at(path) as (folder, _):
            return os.statvfs(folder)

    # -- refused --------------------------------------------------------------------------------------------
    @_rules
    def readlink(self, path: bytes) -> bytes:
        """Refused: there are no links here."""
        raise refusal(NO_LINKS)

    @_rules
    def symlink(self, oldpath: bytes, newpath: bytes) -> None:
        """Refused: the media exchange needs no links (a link checked when made is followed later, elsewhere)."""
        raise refusal(NO_LINKS + " (symlink refused)")

    @_rules
    def link(self, oldpath: bytes, newpath: bytes) -> None:
        """Refused: no hard links either."""
        raise refusal(NO_LINKS + " (hard link refused)")

    @_rules
    def open56(self, path: bytes, desired_access: int, flags: int, attrs: asyncssh.SFTPAttrs):
        """Refused: this server speaks SFTP version 3."""
        raise refusal("SFTP version 3 only")

    def exit(self) -> None:
        """The session ended."""
        os.close(self.root)


VENDOR_NAME = re.compile(r"[a-z][a-z0-9-]{0,31}")  # a vendor's login name, and its key file's


# -- the server --------------------------------------------------------------------------------------------
class _Session(SSHServerStreamSession):
    """A session channel that runs SFTP alone (no shell, no exec) and tells its connection when it closes."""

    def __init__(self, sftp_factory, closed):
        super().__init__(None, sftp_factory, 3, False)
        self._closed = closed

    def connection_lost(self, exc) -> None:
        super().connection_lost(exc)
        self._closed()


class VendorServer(asyncssh.SSHServer):
    """The policy every SSH server here shares: key authentication per vendor (vendors/NAME.pub, NAME a vendor
    name), connections and logins bounded by the gate, channels by the limits, no password, keyboard-interactive
    or host-based login. A kind of server says what it records of a login and of an unknown name, and what a
    session runs."""

    rule = RULE  # the words a refusal of this server starts with

    def __init__(self, vendors: Path, limits: Limits, gate: Gate, log):
        self.vendors, self.limits, self.gate, self.log = vendors, limits, gate, log
        self.conn = None
        self.user = ""
        self.channels = 0

    def connection_made(self, conn):
        self.conn = conn
        self.gate.arrived(conn)

    def connection_lost(self, exc):
        self.gate.left(self.conn)

    def begin_auth(self, username: str) -> bool:
        self.user = username
        if why := self.gate.full():  # no login can be admitted now: say so before any key is tried
            self.log(f"login refused for {username[:32]!r}: {why}")
            self.conn.disconnect(DISC_TOO_MANY_CONNECTIONS, why)
            return True
        keys = self.vendors / f"{username}.pub"
        if VENDOR_NAME.fullmatch(username) and keys.is_file():
            self.conn.set_authorized_keys(str(keys))
        else:
            self.no_such_vendor(username)
        return True  # authentication is always required (with no keys set, nothing will pass)

    def no_such_vendor(self, username: str) -> None:
        """A login name that is no vendor's (or whose vendor has no key): nothing will let it in."""
        self.log(f"login refused: no vendor {username[:32]!r}")

    def auth_completed(self) -> None:
        if why := self.gate.logged_in(self.conn):
            self.log(f"vendor {self.user} refused: {why}")
            self.conn.disconnect(DISC_TOO_MANY_CONNECTIONS, why)
            return
        self.logged_in(self.user, str(self.conn.get_extra_info("peername")[0]))

    def logged_in(self, vendor: str, address: str) -> None:
        """A vendor's key was accepted and the gate admitted the login."""
        self.log(f"vendor {vendor} logged in from {address}")

    def open_channel(self):
        """A session channel, within the connection's limit of channels, with environment requests refused."""
        if self.channels >= self.limits.max_channels:
            raise asyncssh.ChannelOpenError(OPEN_RESOURCE_SHORTAGE,
                                            f"{self.rule}: at most {self.limits.max_channels} channels per connection")
        chan = self.conn.create_server_channel()
        refuse_env(chan)
        self.channels += 1
        return chan

    def channel_closed(self) -> None:
        """A session channel of this connection closed."""
        self.channels -= 1

    def password_auth_supported(self) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return False

    def host_based_auth_supported(self) -> bool:
        return False


class _Server(VendorServer):
    """SFTP sessions only; every forwarding and other request refused."""

    def __init__(self, vendors: Path, root: Path, limits: Limits, gate: Gate, log):
        super().__init__(vendors, limits, gate, log)
        self.root = root

    def session_requested(self):
        chan = self.open_channel()
        session = _Session(lambda ch: Inbox(ch, self.root, self.limits, self.log, session), self.channel_closed)
        return chan, session

    def connection_requested(self, *args):  # direct TCP/IP (local forwarding)
        self.log("refused: a port forwarding request")
        return False

    def server_requested(self, *args):  # remote forwarding
        self.log("refused: a remote forwarding request")
        return False

    def unix_connection_requested(self, *args):
        return False

    def unix_server_requested(self, *args):
        return False


def server_options(limits: Limits) -> dict:
    """The asyncssh server options every SSH server here shares: bounded, and nothing but what is offered."""
    return dict(login_timeout=limits.login_grace, window=limits.window, max_pktsize=limits.max_pktsize,
                allow_pty=False, agent_forwarding=False, x11_forwarding=False, allow_scp=False,
                password_auth=False, kbdint_auth=False, sftp_factory=None, process_factory=None,
                session_factory=None, keepalive_interval=30, keepalive_count_max=3)


async def serve(listen: str, root: Path, host_key: Path, vendors: Path, ready: Path | None, log_path: Path,
                limits: Limits | None = None) -> None:
    """Run the SFTP server until SIGTERM."""
    from nodes.confined import harden_self
    limits = limits or Limits()
    confined = harden_self()
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    log_file = open(log_path, "a", encoding="utf-8")

    def log(line: str) -> None:
        log_file.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} sftp {line}\n")
        log_file.flush()

    gate = Gate(limits, log)
    host, port = listen.rsplit(":", 1)
    server = await asyncssh.create_server(lambda: _Server(vendors, root, limits, gate, log), host, int(port),
                                          server_host_keys=[str(host_key)], **server_options(limits))
    bound = server.sockets[0].getsockname()[1]
    log(f"serving SFTP on {host}:{bound}, inbox {root}"
        + ("; confined: own mount namespace, no PKI but its host key" if confined else "; not confined"))
    if ready is not None:
        ready.write_text(str(bound))
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()
    log("stopped")


def server_command(state_dir: Path, site: str, limits: Limits | None = None, confine: bool | None = None) -> tuple[list[str], Path]:
    """The command that starts a site's SFTP server on a free loopback port, and the file it writes its port to.

    Its paths in the state folder: the inbox sites/SITE/inbox, the vendors' keys sites/SITE/vendors/*.pub, the
    host key pki/ssh/sites/SITE/host_key, the log logs/sftp-SITE.log, the port run/sftp-SITE.port. Confined
    (by default wherever the machine allows it), the process sees of the state folder only these: no other key
    of the PKI, no export, no other site."""
    from testbed import confine as confinement
    state = Path(state_dir).resolve()
    rel = {"inbox": f"sites/{site}/inbox", "vendors": f"sites/{site}/vendors", "host_key": f"pki/ssh/sites/{site}/host_key",
           "log": f"logs/sftp-{site}.log", "ready": f"run/sftp-{site}.port"}
    for name in ("inbox", "vendors"):
        (state / rel[name]).mkdir(mode=0o700, parents=True, exist_ok=True)
    ensure_key(state / rel["host_key"])
    for name in ("log", "ready"):
        (state / rel[name]).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(os.open(state / rel[name], os.O_WRONLY | os.O_CREAT, 0o600))
    (state / rel["ready"]).write_text("")  # empty until the server has bound its port
    program = [sys.executable, "-m", "testbed.migration.sftp", "serve", "--listen", "127.0.0.1:0",
               "--root", str(state / rel["inbox"]), "--host-key", str(state / rel["host_key"]),
               "--vendors", str(state / rel["vendors"]), "--ready", str(state / rel["ready"]),
               "--log", str(state / rel["log"]), *(limits or Limits()).argv()]
    if confine is None:
        confine = not confinement.available()
    if confine:
        program = confinement.service_command(state, f"sftp-{site}", readable=[rel["host_key"], rel["vendors"]],
                                              writable=[rel["inbox"], rel["log"], rel["ready"]], program=program)
    return program, state / rel["ready"]


# -- the sender --------------------------------------------------------------------------------------------
@dataclass
class Sent:
    """What a transfer did: bytes, seconds, files, and each resumption."""

    files: int = 0
    bytes: int = 0
    seconds: float = 0.0
    resumed: list[str] = field(default_factory=list)
    attempts: int = 0


@dataclass
class Link:
    """How the link behaves in this run: a rate limit (bytes/s, 0 none) and a drop once after some bytes."""

    rate: int = 0
    drop_after: int = 0  # 0: never


class Dropped(ConnectionError):
    """The connection was dropped on purpose (an interrupted transfer rehearsed)."""


async def send(address: str, vendor: str, key: asyncssh.SSHKey, host_key_pub: bytes, files: list[Path], remote_dir: str,
               link: Link | None = None, max_attempts: int = 5) -> Sent:
    """Send files (in order) into remote_dir of the target's inbox; resume after a dropped connection."""
    link = link or Link()
    sent = Sent()
    started = time.monotonic()
    host, port = address.rsplit(":", 1)
    known = asyncssh.import_known_hosts(f"[{host}]:{port} {host_key_pub.decode().strip()}\n")
    while True:
        sent.attempts += 1
        try:
            async with asyncssh.connect(host, int(port), username=vendor, client_keys=[key], known_hosts=known,
                                        agent_path=None, agent_forwarding=False, password=None,
                                        connect_timeout=CONNECT_TIMEOUT) as conn:
                async with conn.start_sftp_client() as sftp:
                    if not await sftp.exists(remote_dir):
                        await sftp.mkdir(remote_dir)
                    for path in files:
                        await _send_file(sftp, conn, path, f"{remote_dir}/{path.name}", link, sent)
            break
        except (Dropped, OSError, asyncssh.Error) as exc:
            if sent.attempts >= max_attempts:
                raise ConnectionError(f"SFTP transfer failed after {sent.attempts} attempts: {exc}") from None
            await asyncio.sleep(0.2)
    sent.files = len(files)
    sent.seconds = time.monotonic() - started
    return sent


async def _send_file(sftp, conn, path: Path, remote: str, link: Link, sent: Sent) -> None:
    size = path.stat().st_size
    try:
        offset = (await sftp.stat(remote)).size or 0
    except asyncssh.SFTPNoSuchFile:
        offset = 0
    if offset > size:  # something else is there: start the file again
        await sftp.remove(remote)
        offset = 0
    if offset == size:
        return
    if offset:
        sent.resumed.append(f"{path.name} at byte {offset:,}")
    began, base = time.monotonic(), sent.bytes
    async with sftp.open(remote, "ab") as out:
        with open(path, "rb") as f:
            f.seek(offset)
            while block := f.read(CHUNK):
                if link.drop_after and sent.bytes + len(block) > link.drop_after:
                    cut = link.drop_after - sent.bytes
                    if cut > 0:
                        await out.write(block[:cut])
                        sent.bytes += cut
                    link.drop_after = 0  # once
                    conn.abort()
                    raise Dropped(f"connection dropped after {sent.bytes:,} bytes, in {path.name}")
                await out.write(block)
                sent.bytes += len(block)
                if link.rate:  # a slow link: never faster than its rate
                    ahead = (sent.bytes - base) / link.rate - (time.monotonic() - began)
                    if ahead > 0:
                        await asyncio.sleep(min(ahead, 1.0))


def main(argv: list[str] | None = None) -> int:
    """`python -m testbed.migration.sftp serve --listen H:P --root DIR --host-key K --vendors DIR`."""
    parser = argparse.ArgumentParser(prog="python -m testbed.migration.sftp")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="the target site's SFTP server")
    p.add_argument("--listen", required=True)
    p.add_argument("--root", type=Path, required=True, help="the inbox, every vendor's root")
    p.add_argument("--host-key", type=Path, required=True)
    p.add_argument("--vendors", type=Path, required=True, help="a folder of <vendor>.pub files (authorized keys)")
    p.add_argument("--ready", type=Path, help="write the bound port here once listening")
    p.add_argument("--log", type=Path, required=True)
    Limits().add_arguments(p)
    args = parser.parse_args(argv)
    os.umask(0o077)
    try:
        asyncio.run(serve(args.listen, args.root, args.host_key, args.vendors, args.ready, args.log,
                          Limits.from_args(args)))
    except OSError as exc:
        print(f"sftp: cannot serve on {args.listen}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
