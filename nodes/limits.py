"""What a node's servers admit, in numbers: connections, handshakes, idle connections, streams, message and
metadata sizes on the gRPC servers (gRPC core channel arguments), the same for the HTTPS metrics endpoint, and how
much of what a caller names is kept in metrics and the audit. Nothing a caller sends may grow a node without bound:
every figure below is where an outside attacker was, or would be, stopped."""
from __future__ import annotations

import asyncio
import ctypes
import logging
import resource

import psutil

log = logging.getLogger(__name__)

# -- gRPC servers (a node's own port and a CS's search port) ---------------------------------------------------------
# Connections one server holds at once, from TCP accept until closed (handshakes in progress included). A
# municipality's terminals, its peers, the monitor, the console and a load test use tens to a few hundred; an idle
# flood past this is closed as it is accepted, so descriptors and memory stay bounded (each connection waiting in
# its TLS handshake costs a descriptor and some 45 KB).
MAX_CONNECTIONS = 1_000
# Descriptors kept free beyond the connection cap, as a share of the open-files limit: the store and its WAL, the
# audit log, peer channels, the metrics endpoint's connections and the search process's pipes all need some.
CONNECTIONS_SHARE_OF_FILES = 4  # the cap is at most a quarter of RLIMIT_NOFILE
# A TLS handshake (and HTTP/2 preface) must be done within this: on loopback or a LAN it takes milliseconds, on a
# loaded two-core box well under a second. gRPC's default is 120 s, which let a connection that never sends a
# ClientHello hold its descriptor for two minutes.
HANDSHAKE_TIMEOUT_MS = 5_000
# A connection with no call for this long gets a GOAWAY: a caller that finished TLS (a revoked certificate does:
# revocation is checked per call) cannot park a connection for ever. Clients reconnect by themselves on their next
# call, at the cost of one handshake after five idle minutes.
MAX_CONNECTION_IDLE_MS = 300_000
# Calls in flight on one connection (without it, one connection may open as many as it likes, each with its call
# state in gRPC core and a task in the node's loop). grpcio 1.85's client does not reliably queue calls past a
# server's limit: those over it are refused (UNAVAILABLE, RST_STREAM REFUSED_STREAM; tests/test_bounds.py). So the
# limit is far above what any of the testbed's clients keeps in flight on one channel (the bench 32, a replay 16 by
# default, a load 2 streams, a terminal 1).
MAX_CONCURRENT_STREAMS = 256
# The largest request message: gRPC's own default, stated so that it is a decision (the largest requests, batches of
# BulkLoad and migration imports, are well under a megabyte).
MAX_RECEIVE_MESSAGE = 4 * 2**20
# Request metadata (headers, the :path with the method name included): a session token, an approval token and a
# request id take under 1.5 KB. Past the soft limit calls are refused with a growing probability, past the absolute
# one always; gRPC's defaults are 8 and 16 KiB.
MAX_METADATA_SIZE = 4 * 2**10
ABSOLUTE_MAX_METADATA_SIZE = 8 * 2**10
# Not set, on purpose: the server's maximum_concurrent_rpcs (its RESOURCE_EXHAUSTED refusals are made before the
# guard runs, so they would be the only calls without an audit entry), and grpc.max_connection_age_ms (its GOAWAY
# cuts a stream that outlives age + grace, and the migration's Export/Import, BulkLoad and ExportResidents of a
# whole municipality may). The idle and handshake limits are what bound a flood.

# -- the HTTPS metrics endpoint (asyncio, nodes/metrics.py) ----------------------------------------------------------
METRICS_MAX_CONNECTIONS = 32  # one monitor scrapes every few seconds, `testbed metrics` now and then
METRICS_HANDSHAKE_SECONDS = 5.0  # as for gRPC: a TLS handshake that is not done by then never will be
METRICS_REQUEST_SECONDS = 5.0  # to send the request head once TLS is up: a scrape is one short GET
METRICS_WRITE_SECONDS = 10.0  # to take the answer: a client that stops reading does not hold its connection
METRICS_MAX_REQUEST = 8192  # bytes of an HTTP request head

# -- memory given back ------------------------------------------------------------------------------------------
# What a flood allocated (connections' buffers in gRPC core's threads) is freed when they close, but glibc keeps it in
# its arenas: the resident size stayed at the flood's peak and rose with each flood (75 → 120 → 133 → 156 MB over
# three of 1,500 connections). malloc_trim(0) gives it back (110 → 44 MB in a bare server); it is called when the
# resident size is this much above what the node needs, looked at this often.
TRIM_GROWTH = 16 * 2**20
TRIM_SECONDS = 5.0

# -- what is kept of a caller's text -----------------------------------------------------------------------------
LOGGED_METHOD = 128  # characters of a method name no service has, in its audit entry and refusal (names are free)


def open_files_limit() -> int:
    """The soft RLIMIT_NOFILE after raising it to the hard limit (a node's connections, files and peers share it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard and hard != resource.RLIM_INFINITY:  # (Linux refuses an unlimited number of open files)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as exc:
            log.warning("open-files limit left at %s: %s", soft, exc)
    return soft


def max_connections() -> int:
    """The connection cap of a gRPC server in this process: MAX_CONNECTIONS, less when the open-files limit is low."""
    files = open_files_limit()
    if files == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS
    return max(16, min(MAX_CONNECTIONS, files // CONNECTIONS_SHARE_OF_FILES))


def server_options() -> list[tuple[str, int]]:
    """gRPC core channel arguments of a node's server: the limits above."""
    return [
        ("grpc.so_reuseport", 0),  # a port in use is an error, never shared with another process
        ("grpc.max_allowed_incoming_connections", max_connections()),
        ("grpc.server_handshake_timeout_ms", HANDSHAKE_TIMEOUT_MS),
        ("grpc.max_connection_idle_ms", MAX_CONNECTION_IDLE_MS),
        ("grpc.max_concurrent_streams", MAX_CONCURRENT_STREAMS),
        ("grpc.max_receive_message_length", MAX_RECEIVE_MESSAGE),
        ("grpc.max_metadata_size", MAX_METADATA_SIZE),
        ("grpc.absolute_max_metadata_size", ABSOLUTE_MAX_METADATA_SIZE),
    ]


def logged_method(method: str) -> str:
    """What is kept of a caller-supplied method name: its first LOGGED_METHOD characters, marked when cut."""
    return method if len(method) <= LOGGED_METHOD else f"{method[:LOGGED_METHOD]}…({len(method)} characters)"


def _malloc_trim():
    """glibc's malloc_trim, or None where the C library has none (musl)."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


async def give_back_memory() -> None:
    """While the node runs: hand freed memory back to the system whenever the resident size is TRIM_GROWTH above
    its floor (a background task of the node's runtime). The floor is what the node needs: its size at start, raised
    only when a trim finds the memory in use."""
    trim = _malloc_trim()
    if trim is None:
        return
    process = psutil.Process()
    floor = process.memory_info().rss
    while True:
        await asyncio.sleep(TRIM_SECONDS)
        if process.memory_info().rss > floor + TRIM_GROWTH:
            # in a thread: ctypes lets go of the GIL, and a trim of fragmented arenas takes some 20-30 ms
            await asyncio.to_thread(trim, 0)
            after = process.memory_info().rss
            if after > floor + TRIM_GROWTH:
                floor = after  # (in use: the node has grown, not a flood's leftovers)
