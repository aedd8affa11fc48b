"""The guard in front of every node's services: who is calling (mutual TLS, the topology, the CRL), whether the
policy lets them call this method, the operator's session at a terminal, and the audit entry of every call,
admitted or refused (default deny). A refused caller's request body is never parsed."""
from __future__ import annotations

import contextvars
import inspect
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import grpc

from certs.identity import KIND_DOMAIN
from nodes import audit, kinds, limits
from nodes.authn import AuthenticationError
from nodes.metrics import UNKNOWN
from nodes.policy import Decision, authorize
from nodes.reasons import access as A
from nodes.refusal import Rule, Violation, trailers
from nodes.rules import check_message_text, unknown_fields
from nodes.sessions import OperatorSession, Roster, RosterBook, RosterEntry, TokenError, check_session, methods_allowed

OPERATOR_KEY = "x-operator-id"
TERMINAL_KEY = "x-terminal-id"
SESSION_KEY = "x-operator-session"
APPROVAL_KEY = "x-approval-token"
REQUEST_KEY = "x-request-id"
DETAILS_SHOWN = 400  # characters of a refusal's message sent: twice (grpc-message percent-encoded, and in the google.rpc.Status),
# at most ~5.4 KiB together, CJK included
LOGIN_METHOD = "/testbed.v1.Kizon/Login"
# Callers that are not nodes (terminal, kiosk, infonws, portal, and the domains' monitors and consoles).
CLIENT_KINDS = (frozenset(KIND_DOMAIN) | {"monitor", "console"}) - frozenset(kinds.NAMES)
# What a migration target not yet cut over to may call: the reads of the verification (移行 rule).
TARGET_METHODS = frozenset({"/testbed.v1.CommunicationServer/RegisterDigests", "/testbed.v1.CommunicationServer/GetIdentity",
                            "/testbed.v1.CommunicationServer/CheckConsistency", "/grpc.health.v1.Health/Check"})

_call_var: contextvars.ContextVar = contextvars.ContextVar("call")



def bounded(details: str) -> str:
    """A refusal's message as it may travel: a message that repeats a caller's 10,000-character item would exceed
    what a stock client takes as trailing metadata (grpc-message, percent-encoded: 8 KiB soft, 16 KiB hard) and
    the client would see the stream dropped instead of the rule."""
    if len(details) <= DETAILS_SHOWN:
        return details
    return f"{details[:DETAILS_SHOWN]}…({len(details)} characters)"

def current_call() -> "CallContext":
    """The authenticated caller of the call being served."""
    return _call_var.get()


def serve_as(call: "CallContext") -> None:
    """Make call the call context of the running task: for a node's own background job that makes changes as the
    node itself (no terminal, no operator), which the change engine reads like any caller's."""
    _call_var.set(call)


@dataclass
class CallContext:
    """What the interceptor learned about the caller, handed to the servicer."""

    peer: object
    method: str = ""
    operator: str = ""
    terminal: str = ""
    session: OperatorSession | None = None
    metadata: dict = field(default_factory=dict)

    @property
    def is_terminal(self) -> bool:
        """Whether a counter terminal (not another node) is calling."""
        return self.peer.identity.kind == "terminal"

    def require_role(self, roles: set[str], rule: str, *, by: Rule = A.OPERATOR_ROLE) -> None:
        """At a terminal, the operator must hold one of roles (nodes calling each other are not asked); refused
        under by, the message naming rule."""
        if self.is_terminal and not (self.session is not None and roles & set(self.session.roles)):
            raise by(f"{rule}: operator {self.operator or '?'} needs the role {' or '.join(sorted(roles))}")


class GuardInterceptor(grpc.aio.ServerInterceptor):
    """Authenticates and authorizes every call, then writes its audit entry (default deny)."""

    def __init__(self, runtime):  # the node's NodeRuntime (this module does not import it)
        self.runtime = runtime
        self._guarded: dict[str, grpc.RpcMethodHandler] = {}  # one wrapped handler per method, made once
        self._verdicts: dict[tuple, str] = {}  # (caller identity, served method) → "" (allowed) or the refusal
        self._rosters: tuple = (None, {})  # (the topology read, municipality → its initial Roster)
        # The rosters kizon signed and this node holds (none at a node whose store keeps none: the topology's stands).
        self._book = RosterBook(getattr(runtime, "store", None), runtime.session_keys)

    async def intercept_service(self, continuation, handler_call_details):
        method = handler_call_details.method
        guarded = self._guarded.get(method)
        if guarded is None:
            handler = await continuation(handler_call_details)
            if handler is None:  # an unknown method: still authenticated and audited (not cached: names are free)
                return grpc.unary_unary_rpc_method_handler(self._unknown(limits.logged_method(method)))
            guarded = self._guarded[method] = self._wrap(handler, method)
        return guarded

    def _wrap(self, handler, method: str):
        """The handler behind authentication: it receives the request's bytes and parses them only once the
        caller has been authenticated and authorized (a refused caller's body is never deserialized)."""
        parse = handler.request_deserializer or (lambda data: data)
        serialize = handler.response_serializer
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(self._wrap_unary(handler.unary_unary, method, parse),
                                                       response_serializer=serialize)
        if handler.stream_stream:
            return grpc.stream_stream_rpc_method_handler(self._wrap_stream(handler.stream_stream, method, _each(parse)),
                                                         response_serializer=serialize)
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(self._wrap_stream(handler.unary_stream, method, parse),
                                                        response_serializer=serialize)
        return grpc.stream_unary_rpc_method_handler(self._wrap_unary(handler.stream_unary, method, _each(parse)),
                                                    response_serializer=serialize)

    def _unknown(self, method: str):
        """The handler of a method no service has (method: what is kept of the caller's name for it): UNIMPLEMENTED."""
        # Authenticated first, audited like any call and counted under the one "unknown" label, but not authorized
        # (_admit): no rule can apply to a method that does not exist, and its absence tells nothing reflection does not.
        async def unknown(request, context):
            async with self._guard(context, method, served=False):
                raise A.METHOD_UNKNOWN(f"method rule: {method} is not a method of {self.runtime.label}")
        return unknown

    def _admit(self, context, method: str, served: bool = True) -> CallContext:
        """Authenticate the peer and apply the policy (to a method the node serves); raise (code, message) on refusal.
        Verdicts are kept for the methods the node serves alone (a caller chooses as many other names as it likes)."""
        auth = context.auth_context()
        pem = (auth.get("x509_pem_cert") or [None])[0]
        try:
            peer = self.runtime.authenticator.authenticate(pem)
        except AuthenticationError as exc:
            raise _Refusal(exc.rule, str(exc), "") from None
        call = CallContext(peer, method)
        if not served and not peer.identity.kit:  # (a kit identity is not the topology's: the policy refuses it)
            call.terminal = peer.identity.terminal or ""  # (a terminal's or kiosk's, for the audit entry)
            return call
        key = (peer.identity, method)
        verdict = self._verdicts.get(key)
        if verdict is None:  # the policy is static: decide once per (caller, served method)
            try:
                authorize(self.runtime.identity, peer.identity, method)
                verdict = ()
            except Decision as exc:
                verdict = (exc.rule, str(exc))
            if served:
                self._verdicts[key] = verdict
        if verdict:
            raise _Refusal(*verdict, peer.identity.uri)
        if peer.target and method not in TARGET_METHODS:
            raise _Refusal(A.TARGET_READS_ONLY, f"移行 rule: {peer.identity.uri} is a migration target "
                           f"not yet cut over to: it may only read ({method} is not a read)", peer.identity.uri)
        call.metadata = dict(context.invocation_metadata() or ())
        if peer.identity.kind == "kiosk":
            call.terminal = peer.identity.terminal
        if peer.identity.kind == "terminal" and not method.startswith("/grpc."):
            self._admit_operator(call, method)
        return call

    def _admit_operator(self, call: CallContext, method: str) -> None:
        """A terminal call needs a valid operator session for this very terminal (DESIGN §3)."""
        peer, metadata = call.peer, call.metadata
        call.terminal = peer.identity.terminal
        claimed_terminal = metadata.get(TERMINAL_KEY)
        if claimed_terminal and claimed_terminal != call.terminal:
            raise _Refusal(A.TERMINAL_CLAIM,
                           f"terminal rule: {TERMINAL_KEY} {claimed_terminal} is not the certificate's terminal {call.terminal}",
                           peer.identity.uri, call)
        claimed_operator = metadata.get(OPERATOR_KEY, "")
        if method == LOGIN_METHOD:
            return  # the operator is known once Login has checked the credential (it sets call.operator)
        token = metadata.get(SESSION_KEY)
        key = self.runtime.session_keys.get(peer.identity.municipality)
        if not token or key is None:
            raise _Refusal(A.SESSION_REQUIRED,
                           f"operator rule: a terminal call must carry an operator session ({SESSION_KEY}) from Login",
                           peer.identity.uri, CallContext(peer, method, claimed_operator[:32], call.terminal))
        try:
            call.session = check_session(key, token, peer.identity.municipality, call.terminal, peer.fingerprint)
        except TokenError as exc:
            raise _Refusal(exc.rule, f"session rule: {exc}", peer.identity.uri,
                           CallContext(peer, method, claimed_operator[:32], call.terminal)) from None
        call.operator = call.session.operator
        if claimed_operator and claimed_operator != call.operator:
            raise _Refusal(A.OPERATOR_CLAIM,
                           f"operator rule: {OPERATOR_KEY} {claimed_operator} is not the session's operator {call.operator}",
                           peer.identity.uri, call)
        self._admit_roster(call)

    def _admit_roster(self, call: CallContext) -> None:
        """A session proves its signer, not the roster: the operator must be in the municipality's current roster (the
        newest kizon signed that this node holds, else the topology's), hold there every role the session claims, and
        the session must be no older than the last change that took something from them; a role limited to some
        methods (contractor: the 委託's) allows those alone. So a removed operator, or one whose roles were reduced,
        is refused on their next call here once the version has arrived (docs/operators.md)."""
        municipality, session = call.peer.identity.municipality, call.session
        roster = self._roster(municipality, call)
        entry = roster.operators.get(session.operator)
        behind = session.roster_version > roster.version  # (kizon's newer roster is still on its way here)
        if entry is None:
            operator = call.operator = session.operator[:32]  # (audited and named as far as an id goes)
            if behind:
                raise _Refusal(A.ROSTER_BEHIND, f"operator rule: {operator}'s session is of roster version "
                               f"{session.roster_version} of {municipality}; this node holds version {roster.version} "
                               "(retry once it has arrived)", call.peer.identity.uri, call)
            raise _Refusal(A.OPERATOR_NOT_IN_ROSTER, f"operator rule: {operator} is not an operator of "
                           f"{municipality} (not in the roster)", call.peer.identity.uri, call)
        beyond = sorted(set(session.roles) - entry.roles)
        if beyond:
            rule = A.ROSTER_BEHIND if behind else A.OPERATOR_ROLE_NOT_HELD
            raise _Refusal(rule, f"operator rule: {session.operator} holds no role "
                           f"{', '.join(r[:32] for r in beyond[:5])} in the roster of {municipality} (version "
                           f"{roster.version})", call.peer.identity.uri, call)
        if session.roster_version < entry.since:
            raise _Refusal(A.SESSION_REVOKED, f"session rule: {session.operator}'s session was issued under roster "
                           f"version {session.roster_version}, before their entry changed at version {entry.since}: "
                           "log in again", call.peer.identity.uri, call)
        allowed = methods_allowed(session.roles)
        if allowed is not None and call.method not in allowed:
            raise _Refusal(A.ROLE_SCOPE, f"委託 rule: {session.operator} ({', '.join(session.roles)}) may not call "
                           f"{call.method}: the 委託 covers 住民票の写し等の交付 and 住所異動 only",
                           call.peer.identity.uri, call)

    def _roster(self, municipality: str, call: CallContext | None = None) -> Roster:
        """The current roster of a municipality: the newest kizon signed that this node holds, else the topology's
        (version 0, read again once the topology is reloaded). A stored roster that fails its signature admits no one
        (fail closed)."""
        try:
            held = self._book.current(municipality)
        except TokenError as exc:
            raise _Refusal(exc.rule, f"roster rule: {exc}", call.peer.identity.uri if call else "", call) from None
        if held is not None:
            return held
        topology, rosters = self._rosters
        if topology is not self.runtime.topology:
            topology, rosters = self._rosters = (self.runtime.topology, {})
        roster = rosters.get(municipality)
        if roster is None:
            try:
                operators = topology.municipality(municipality).operators
            except KeyError:  # (a municipality the topology does not name has no operators)
                operators = ()
            roster = rosters[municipality] = Roster(municipality, 0, {o.id: RosterEntry(frozenset(o.roles))
                                                                      for o in operators})
        return roster

    def _record(self, call: CallContext | None, caller: str, method: str, status: str) -> None:
        self.runtime.audit.append(
            caller=caller, method=method, status=status, subject=audit.subject_var.get(),
            operator=call.operator if call else "", terminal=call.terminal if call else "",
        )

    @asynccontextmanager
    async def _guard(self, context, method: str, served: bool = True):
        """Admit the call or abort it; answer rule violations with their status; audit it either way. A method the
        node does not serve is counted under the "unknown" label, never under its name."""
        audit.subject_var.set("")
        started = time.perf_counter()
        label = method if served else UNKNOWN
        try:
            call = self._admit(context, method, served)
        except _Refusal as refusal:
            self._record(refusal.call, refusal.caller, method, refusal.code.name)
            self.runtime.metrics.observe(label, refusal.code.name, time.perf_counter() - started)
            await self._abort(context, refusal.rule(refusal.message))
        _call_var.set(call)
        status = "OK"
        try:
            yield
        except Violation as violation:
            status = violation.code.name
            # The refusal's traceback holds the frames of the request being refused (up to 4 MiB and its parse):
            # it goes no further than here, whatever keeps the abort's exception and its context.
            violation.__traceback__ = None
            await self._abort(context, violation)
        except BaseException:
            code = context.code()
            status = code.name if isinstance(code, grpc.StatusCode) else "CANCELLED"
            raise
        finally:
            self._record(call, call.peer.identity.uri, method, status)
            self.runtime.metrics.observe(label, status, time.perf_counter() - started)

    async def _abort(self, context, violation: Violation) -> None:
        """End the call with the violation's status, its message and its rule (google.rpc.Status with ErrorInfo)."""
        message = bounded(str(violation))
        await context.abort(violation.code, message, trailers(violation, self.runtime.label, message))

    def _wrap_unary(self, behavior, method, parse):
        async def guarded(request, context):
            async with self._guard(context, method):
                return await behavior(_parsed(parse, request, method), context)
        return guarded

    def _wrap_stream(self, behavior, method, parse):
        if inspect.iscoroutinefunction(behavior):  # a handler that answers with context.write() (health Watch)
            async def written(request_or_iterator, context):
                async with self._guard(context, method):
                    await behavior(_parsed(parse, request_or_iterator, method), context)
            return written

        async def guarded(request_or_iterator, context):
            async with self._guard(context, method):
                async for item in behavior(_parsed(parse, request_or_iterator, method), context):
                    yield item
        return guarded


def _parsed(parse, data, method: str):
    """The request parsed from its bytes; a malformed body is INVALID_ARGUMENT naming the method. What a client
    (terminal, kiosk, platform client, operations) sends has every text item checked here, once, for every
    method: sizes and characters (nodes check what other nodes send by the rules of each item)."""
    try:
        message = parse(data)
    except Violation:
        raise
    except Exception:  # protobuf's DecodeError, or any parser's own
        raise A.MESSAGE_MALFORMED(f"message rule: the request is not a valid message for {method}") from None
    if hasattr(message, "DiscardUnknownFields"):
        _refuse_unknown_fields(message, lambda: parse(data), data, method)
    call = _call_var.get(None)
    if call is not None and call.peer.identity.kind in CLIENT_KINDS and hasattr(message, "ListFields"):
        check_message_text(message)
    return message


def _refuse_unknown_fields(message, parsed_again, data, method: str) -> None:
    """Only the items a message defines travel (告示第334号 第6-7): a request with a field outside them, at any depth,
    is refused whoever sends it, so that nothing a sender adds is stored or passed on to the next hop. Cheap on the
    common path: two sizes and a discard, in C; the request is parsed again to name the fields only when there are some."""
    size = message.ByteSize()
    message.DiscardUnknownFields()
    if message.ByteSize() == size:
        return
    # The top level first, from the bytes received (no second parse of a request that may be a million fields);
    # parsed again only to find fields hidden in a nested item.
    where = unknown_fields(message, wire=data, nested=False) if isinstance(data, bytes) else []
    where = where or unknown_fields(parsed_again())
    shown = ", ".join(w[:80] for w in where[:5]) + (" …" if len(where) > 5 else "")
    raise A.MESSAGE_UNKNOWN_FIELD(f"message rule: the request to {method} carries fields its message does not define "
                                  f"({shown}); only the items of the message travel")


def _each(parse):
    """A parser for a stream of requests: each item parsed as it arrives, after authentication."""
    def parse_stream(iterator):
        async def items():
            async for data in iterator:
                yield _parsed(parse, data, "this stream")
        return items()
    return parse_stream


class _Refusal(Exception):
    """A caller refused before its request is parsed: the rule, what to say, who called (for the audit)."""

    def __init__(self, rule: Rule, message: str, caller: str, call: CallContext | None = None):
        super().__init__(message)
        self.rule, self.code, self.message, self.caller, self.call = rule, rule.code, message, caller, call
