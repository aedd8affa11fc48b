"""Fuzzing gRPC services from their protobuf descriptors, for tests/test_fuzz.py: hypothesis strategies of every
message type built from its fields, raw bodies that are no message at all, calls of every kind (unary and
streaming) with raw bytes, what is wrong with an answer, shrinking a request that shows a fault, and the request
written back as Python to reproduce it. Nothing here knows the testbed: its people, codes and footholds are the
test's."""
from __future__ import annotations

import itertools
import re
import time
from dataclasses import dataclass

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import FieldDescriptor as FD
from hypothesis import strategies as st

import nodes.reasons  # noqa: F401 (the catalogue, filled)
from nodes.refusal import CATALOGUE, DETAILS_KEY, rule_of

MAX_REPLIES = 2  # replies read from a server stream before it is cancelled
# gRPC's default limits on the metadata a client receives (a status's details travel in it): over the soft limit an
# answer is dropped at random, over the hard one always. Channels made with CHANNEL_LIMITS drop past the hard limit
# every time (no random band), and classify() reports any answer past the soft one: the same findings on every run.
SOFT_METADATA_LIMIT, HARD_METADATA_LIMIT = 8 * 1024, 16 * 1024
CHANNEL_LIMITS = [("grpc.max_metadata_size", HARD_METADATA_LIMIT),
                  ("grpc.absolute_max_metadata_size", HARD_METADATA_LIMIT)]
MAX_DEPTH = 3  # nested messages
MAX_REPEAT = 3  # items of a repeated or map field, messages of a client stream
LONG = 10_000

GARBAGE = b"\xff\xff\xff\xff\x0f"  # not a message: a field tag with no end
RAW_EDGES = [
    b"", GARBAGE, b"\x00", b"\x0b" * 200,  # field 0; groups opened and never closed
    b"\x08" + b"\xff" * 10 + b"\x01",  # a varint of eleven bytes
    b"\x0a\xff\xff\xff\xff\x07",  # a length of 2 GiB with nothing behind it
    b"\x12\x02\xc3\x28",  # a string item that is not UTF-8
    b"\x0a\x00" * 5000,  # the first item repeated 5,000 times
]


def _nested(depth: int) -> bytes:
    data = b""
    for _ in range(depth):
        data = b"\x0a" + _varint(len(data)) + data
    return data


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


RAW_EDGES.append(_nested(200))  # field 1 inside field 1, 200 deep (past protobuf's recursion limit)


EDGE_TEXT = [
    "", " ", "\x00", "a\x00b", "\x07\x1b[2J", "\r\n", "\t", "\x7f", "\u202e反転", "\ufeff", "\u200b", "\u3000",
    "𠮷野家", "😀😀", "\U0010ffff", "\ue000外字", "ｼｹﾝ ﾀﾛｳ", "%s%n", "{0}", "' OR '1'='1", "../../../etc/passwd",
    "<script>alert(1)</script>", "NaN", "-1", "0", "長" * LONG, "a" * LONG, "𠮷" * LONG, "\x00" * LONG,
]
EDGE_INTS = [0, 1, -1, 2, 7, 100, 10_000, 10**6, 10**9, 2**31 - 1, -2**31, 2**32 - 1, 2**53 + 1, 2**63 - 1,
             -2**63, 2**64 - 1]
INT_RANGES = {
    **dict.fromkeys((FD.TYPE_INT32, FD.TYPE_SINT32, FD.TYPE_SFIXED32), (-2**31, 2**31 - 1)),
    **dict.fromkeys((FD.TYPE_INT64, FD.TYPE_SINT64, FD.TYPE_SFIXED64), (-2**63, 2**63 - 1)),
    **dict.fromkeys((FD.TYPE_UINT32, FD.TYPE_FIXED32), (0, 2**32 - 1)),
    **dict.fromkeys((FD.TYPE_UINT64, FD.TYPE_FIXED64), (0, 2**64 - 1)),
}


# What a status's details look like when they are a Python exception rather than a rule.
EXCEPTION_TEXT = re.compile(r"Traceback \(most recent call last\)|File \"[^\"]*\", line \d+|Unexpected <class|"
                            r"Exception calling application|<class '|\b\w*(Error|Exception)(: |\(|$)|"
                            r"<\w+(Error|Exception)\b| object at 0x[0-9a-f]+")
# What a status's details look like when they come from gRPC's transport, not from the node.
TRANSPORT_TEXT = re.compile(r"^(failed to connect|Socket closed|Connection reset|Stream removed|Received RST_STREAM|"
                            r"GOAWAY|recvmsg|Broken pipe|Connection refused|Cancelling all calls|Received http2 header|"
                            r"Connection closed|Endpoint closing)")


# -- requests from descriptors -------------------------------------------------------------------------------------
def is_map(f) -> bool:
    return f.type == FD.TYPE_MESSAGE and f.message_type.GetOptions().map_entry


def assign(message, f, value) -> None:
    """Set one field of message to a value of its strategy (a list for repeated fields, pairs for maps)."""
    try:
        if is_map(f):
            target, value_field = getattr(message, f.name), f.message_type.fields_by_name["value"]
            for k, v in value:
                if value_field.type == FD.TYPE_MESSAGE:
                    target[k].CopyFrom(v)
                else:
                    target[k] = v
        elif f.is_repeated:
            target = getattr(message, f.name)
            if f.type == FD.TYPE_MESSAGE:
                for v in value:
                    target.add().CopyFrom(v)
            else:
                target.extend(value)
        elif f.type == FD.TYPE_MESSAGE:
            getattr(message, f.name).CopyFrom(value)
        else:
            setattr(message, f.name, value)
    except (ValueError, TypeError):  # a value the field cannot hold (a closed enum's unknown number)
        message.ClearField(f.name)


@dataclass(frozen=True)
class Body:
    """One request as sent: its bytes, and the message they were made from (None for raw bytes)."""

    data: bytes
    message: object = None

    @staticmethod
    def of(message) -> "Body":
        return Body(message.SerializeToString(), message)


class Grammar:
    """Hypothesis strategies for every message type, from its descriptor. hints: text values by a part of the item
    names they suit (e.g. "date" → dates), "*" for every text item; templates: valid messages by type full name,
    sent as they are and with an item or two replaced."""

    def __init__(self, hints: dict[str, list[str]], templates: dict[str, list]):
        self.hints, self.templates = hints, templates
        self._messages: dict[tuple[str, int], st.SearchStrategy] = {}
        self._scalars: dict[str, st.SearchStrategy] = {}
        self._bodies: dict[str, st.SearchStrategy] = {}

    def body(self, desc) -> st.SearchStrategy:
        """A request body of a message type: generated, a valid one altered, or raw bytes."""
        if desc.full_name not in self._bodies:
            branches = [self.message(desc).map(Body.of)]
            templates = self.templates.get(desc.full_name)
            if templates and desc.fields:  # (weighted: a valid request as it is once, altered twice as often)
                altered = self._altered(templates).map(Body.of)
                branches += [st.sampled_from(templates).map(Body.of), altered, altered]
            branches.append(st.one_of(st.sampled_from(RAW_EDGES), st.binary(max_size=256)).map(Body))
            self._bodies[desc.full_name] = st.one_of(branches)
        return self._bodies[desc.full_name]

    def message(self, desc, depth: int = 0) -> st.SearchStrategy:
        key = (desc.full_name, depth)
        if key not in self._messages:
            cls = message_factory.GetMessageClass(desc)
            fields = [f for f in desc.fields if depth < MAX_DEPTH or f.type != FD.TYPE_MESSAGE]

            @st.composite
            def build(draw):
                message = cls()
                if not fields:
                    return message
                if draw(st.integers(0, 5)) == 0:  # now and then every item set at once
                    chosen = fields
                else:
                    chosen = draw(st.lists(st.sampled_from(fields), max_size=min(6, len(fields)),
                                           unique_by=lambda f: f.number))
                for f in chosen:
                    assign(message, f, draw(self.field(f, depth)))
                return message
            self._messages[key] = build()
        return self._messages[key]

    def field(self, f, depth: int) -> st.SearchStrategy:
        if is_map(f):
            entry = f.message_type.fields_by_name
            pair = st.tuples(self.scalar(entry["key"]), self.value(entry["value"], depth))
            return st.lists(pair, max_size=MAX_REPEAT)
        one = self.value(f, depth)
        return st.lists(one, max_size=MAX_REPEAT) if f.is_repeated else one

    def value(self, f, depth: int) -> st.SearchStrategy:
        if f.type == FD.TYPE_MESSAGE:
            return self.message(f.message_type, depth + 1)
        return self.scalar(f)

    def scalar(self, f) -> st.SearchStrategy:
        if f.full_name not in self._scalars:
            self._scalars[f.full_name] = self._scalar(f)
        return self._scalars[f.full_name]

    def _scalar(self, f) -> st.SearchStrategy:
        if f.type == FD.TYPE_STRING:
            # (in the hints' own order: the same draws pick the same kind of value on every run, whatever codes
            # the seeded people were given)
            hinted = list(dict.fromkeys(v for hint, values in self.hints.items() if hint in f.name for v in values))
            branches = [st.sampled_from(hinted)] * 2 if hinted else []
            branches += [st.sampled_from(self.hints["*"]), st.sampled_from(EDGE_TEXT), st.text(max_size=24),
                         st.text(st.characters(categories=["Cc", "Cf", "Co", "Zs", "Lo", "So"]), max_size=12)]
            return st.one_of(branches)
        if f.type == FD.TYPE_BYTES:
            return st.one_of(st.binary(max_size=48), st.sampled_from([b"", b"\x00" * LONG, bytes(range(256))]))
        if f.type == FD.TYPE_BOOL:
            return st.booleans()
        if f.type == FD.TYPE_ENUM:
            known = [v.number for v in f.enum_type.values]
            return st.one_of(st.sampled_from(known), st.sampled_from([-1, 99, 2**31 - 1, -2**31]))
        if f.type in (FD.TYPE_FLOAT, FD.TYPE_DOUBLE):
            return st.floats(width=32 if f.type == FD.TYPE_FLOAT else 64)
        lo, hi = INT_RANGES[f.type]
        return st.one_of(st.sampled_from([v for v in EDGE_INTS if lo <= v <= hi]), st.integers(lo, hi))

    def _altered(self, templates) -> st.SearchStrategy:
        """A valid request with one or two items (possibly nested) replaced by generated values."""
        @st.composite
        def alter(draw):
            template = draw(st.sampled_from(templates))
            message = type(template)()
            message.CopyFrom(template)
            for _ in range(draw(st.integers(1, 2))):
                target, depth = message, 0
                while target.DESCRIPTOR.fields:
                    f = draw(st.sampled_from(list(target.DESCRIPTOR.fields)))
                    if (f.type == FD.TYPE_MESSAGE and not f.is_repeated and target.HasField(f.name) and depth < 2
                            and draw(st.booleans())):
                        target, depth = getattr(target, f.name), depth + 1
                        continue
                    target.ClearField(f.name)
                    assign(target, f, draw(self.field(f, depth)))
                    break
            return message
        return alter()


# -- calls and answers ---------------------------------------------------------------------------------------------
@dataclass
class Outcome:
    """How a call ended: its status, the status's details, how long it took, how many replies came."""

    code: grpc.StatusCode
    details: str
    seconds: float
    replies: int = 0
    reason: str = ""  # the rule id of the refusal's ErrorInfo ("" when it names none)
    status_bytes: int = 0  # the size of its google.rpc.Status trailer (grpc-status-details-bin, before base64)


def invoke(ch: grpc.Channel, path: str, method, bodies: list[Body], metadata: tuple, deadline: float) -> Outcome:
    """One call of any kind (method: its descriptor) with raw bodies, bounded in time and in the replies read."""
    started = time.monotonic()
    replies = 0
    kw = {"timeout": deadline, "metadata": metadata or None}
    try:
        if not method.client_streaming and not method.server_streaming:
            ch.unary_unary(path)(bodies[0].data, **kw)
            replies = 1
        elif method.client_streaming and not method.server_streaming:
            ch.stream_unary(path)(iter([b.data for b in bodies]), **kw)
            replies = 1
        else:
            if method.client_streaming:
                call = ch.stream_stream(path)(iter([b.data for b in bodies]), **kw)
            else:
                call = ch.unary_stream(path)(bodies[0].data, **kw)
            limit = 1 if method.name == "Watch" else MAX_REPLIES  # a health watch never ends by itself
            for _ in call:
                replies += 1
                if replies >= limit:
                    call.cancel()
                    break
    except grpc.RpcError as exc:
        if not (exc.code() == grpc.StatusCode.CANCELLED and replies >= (1 if method.name == "Watch" else MAX_REPLIES)):
            status = dict(exc.trailing_metadata() or ()).get(DETAILS_KEY, b"")
            return Outcome(exc.code(), exc.details() or "", time.monotonic() - started, replies, rule_of(exc),
                           len(status) if isinstance(status, bytes) else 0)
    return Outcome(grpc.StatusCode.OK, "", time.monotonic() - started, replies)


# Kinds of finding (a category starting "crash" is a crash).
CRASH = "crash"
HANG = "no answer within the deadline"
NO_RULE = "a refusal that names no rule"
SERVED = "served a certificate that is no working credential"
PARSED = "the body parsed before the caller was refused"
DIED = "crash: the node died"
INVARIANT = "invariant broken"


def classify(outcome: Outcome, bad: bool = False, tls_refused: bool = False) -> tuple[str, str] | None:
    """(category, signature) of what is wrong with an answer, or None. The signature tells findings of one
    category apart (the exception's type, the status). bad: the caller holds no working credential (nothing may
    be served to it); tls_refused: its handshake is refused (a transport failure is then the answer to expect)."""
    code, details = outcome.code, outcome.details
    if bad:
        if code == grpc.StatusCode.OK:
            return SERVED, "OK"
        if tls_refused and code == grpc.StatusCode.UNAVAILABLE and TRANSPORT_TEXT.match(details):
            return None  # the handshake refused, as it should be
    if code == grpc.StatusCode.OK:
        return None
    exception = EXCEPTION_TEXT.search(details)
    if exception:
        kind = re.search(r"(\w+(?:Error|Exception))", details)
        kind = kind.group(1) if kind else exception.group(0)
        if code in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL):
            return f"{CRASH}: {code.name} with Python exception text", kind
        return f"{NO_RULE}: Python exception text in a {code.name} status", kind
    if code in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL):
        return f"{CRASH}: {code.name}", code.name
    if code == grpc.StatusCode.CANCELLED or (code == grpc.StatusCode.UNAVAILABLE and TRANSPORT_TEXT.match(details)):
        return f"{CRASH}: dropped connection", code.name
    if TRANSPORT_TEXT.match(details):  # e.g. a status whose details are past gRPC's limit for metadata: never delivered
        return f"{CRASH}: the answer did not reach the caller ({code.name} from gRPC itself)", code.name
    if wire_size(details) + (outcome.status_bytes + 2) // 3 * 4 > SOFT_METADATA_LIMIT - 512:  # (base64; other headers)
        return f"{CRASH}: an answer a default gRPC client may drop (status details over 8 KiB)", "oversized"
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return HANG, code.name
    if not details.strip():
        return NO_RULE, code.name
    if outcome.reason not in CATALOGUE:  # a refusal of a node names its rule by id, not only in words
        return f"{NO_RULE}: no rule id of the catalogue in its ErrorInfo", code.name
    return None


def wire_size(details: str) -> int:
    """The bytes of a status's details on the wire (grpc-message: UTF-8, percent-encoded outside printable ASCII)."""
    return sum(1 if 0x20 <= b <= 0x7E and b != 0x25 else 3 for b in details.encode())


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"… ({len(text)} chars)"


# -- reproductions as Python ---------------------------------------------------------------------------------------
def _module(desc) -> str:
    return desc.file.name.rsplit("/", 1)[-1].replace(".proto", "_pb2")


def _qualified(desc) -> str:
    return desc.full_name[len(desc.file.package) + 1:] if desc.file.package else desc.full_name


def text_expr(s) -> str:
    """A string (or bytes) as a Python expression, runs of one character written as 'c' * n."""
    parts, literal = [], s[:0]
    for ch, run in itertools.groupby(s):
        n = len(list(run))
        if n >= 8:
            if literal:
                parts.append(repr(literal))
                literal = s[:0]
            one = bytes([ch]) if isinstance(s, bytes) else ch
            parts.append(f"{one!r} * {n}")
        else:
            literal += (bytes([ch]) if isinstance(s, bytes) else ch) * n
    if literal or not parts:
        parts.append(repr(literal))
    return " + ".join(parts)


def message_expr(message) -> str:
    desc = message.DESCRIPTOR
    items = [f"{f.name}={_field_expr(f, v)}" for f, v in message.ListFields()]
    return f"{_module(desc)}.{_qualified(desc)}({', '.join(items)})"


def _field_expr(f, value) -> str:
    if is_map(f):
        value_field = f.message_type.fields_by_name["value"]
        return "{" + ", ".join(f"{_single(f.message_type.fields_by_name['key'], k)}: {_single(value_field, v)}"
                               for k, v in value.items()) + "}"
    if f.is_repeated:
        return "[" + ", ".join(_single(f, v) for v in value) + "]"
    return _single(f, value)


def _single(f, value) -> str:
    if f.type == FD.TYPE_MESSAGE:
        return message_expr(value)
    if f.type == FD.TYPE_ENUM:
        known = f.enum_type.values_by_number.get(value)
        if known is None:
            return str(value)
        outer = f.enum_type.containing_type
        return f"{_module(f.enum_type)}.{_qualified(outer) + '.' if outer else ''}{known.name}"
    if f.type in (FD.TYPE_STRING, FD.TYPE_BYTES):
        return text_expr(value)
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return f"float({str(value)!r})"
    return repr(value)


def body_expr(body: Body) -> str:
    if body.message is None:
        return f"raw bytes {text_expr(body.data)}"
    hexed = f"  [bytes {body.data.hex()}]" if len(body.data) <= 96 else f"  [{len(body.data)} bytes]"
    return message_expr(body.message) + hexed


# -- shrinking -----------------------------------------------------------------------------------------------------
def _copy(message):
    twin = type(message)()
    twin.CopyFrom(message)
    return twin


def simpler_messages(message):
    """Messages one step simpler than message: an item cleared, a list cut to one, a text shortened, a nested
    message simplified."""
    fields = message.ListFields()
    for f, _ in fields:
        twin = _copy(message)
        twin.ClearField(f.name)
        yield twin
    for f, value in fields:
        if f.is_repeated and not is_map(f) and len(value) > 1:
            twin = _copy(message)
            twin.ClearField(f.name)
            assign(twin, f, [value[0]])
            yield twin
        elif f.type in (FD.TYPE_STRING, FD.TYPE_BYTES) and not f.is_repeated and len(value) > 1:
            for shorter in (value[:1], value[:len(value) // 2]):
                twin = _copy(message)
                setattr(twin, f.name, shorter)
                yield twin
        elif f.type == FD.TYPE_MESSAGE and not f.is_repeated:
            for simpler in simpler_messages(value):
                twin = _copy(message)
                getattr(twin, f.name).CopyFrom(simpler)
                yield twin
        elif f.type == FD.TYPE_MESSAGE and f.is_repeated and not is_map(f) and len(value) == 1:
            for simpler in simpler_messages(value[0]):
                twin = _copy(message)
                twin.ClearField(f.name)
                assign(twin, f, [simpler])
                yield twin


def simpler_bodies(bodies: list[Body]):
    if len(bodies) > 1:
        for i in range(len(bodies)):
            yield bodies[:i] + bodies[i + 1:]
    for i, body in enumerate(bodies):
        if body.message is not None:
            candidates = (Body.of(m) for m in simpler_messages(body.message))
        else:
            data = body.data
            candidates = (Body(d) for d in ([b""] if data else []) + ([data[:len(data) // 2], data[len(data) // 2:]]
                                                                      if len(data) > 1 else []))
        for candidate in candidates:
            yield bodies[:i] + [candidate] + bodies[i + 1:]
