"""The cases of access control (DESIGN §3; PIA Ⅲ(2)3): at the counter, an operator's session is signed by the
municipality, bound to the terminal it was issued to and to the operator it names; the roster of operators is
kizon's, and a removed operator, or one whose roles were reduced, is refused on the next call, at kizon and at the
CS; a 委託先's operator does the 委託's work alone; a role's operations need the role; the CS takes a roster only
from its own municipality's kizon, and a migration target not yet cut over to only reads; the CS's search process
serves 本人確認情報検索 alone. Of every node: a client certificate names one identity of the testbed and allows
clientAuth; a method no service has is UNIMPLEMENTED by name; a request is a valid message of its method, carrying
only the items it defines. Each as a terminal (or kizon, or the monitor) sends it.

The operators these cases add to the roster are the cases' own (fresh ids), removed again at the end of each case;
the certificates they mint are revoked at the end of the run. The helpers of the roster are roster.py's too."""
from __future__ import annotations

import time
import uuid
from contextlib import contextmanager

from certs.identity import KIND_DOMAIN, monitor_uri, node_uri
from certs.pki import PassphraseError, cert_pem, issue_leaf, key_pem, write_private, write_public
from nodes.guard import OPERATOR_KEY, SESSION_KEY, TERMINAL_KEY
from nodes.reasons import access as A, kizon as K
from protos import common_pb2, cs_pb2, cs_pb2_grpc, identity_pb2, kizon_pb2, kizon_pb2_grpc, records_pb2
from nodes.tls import ClientCert
from testbed.client import login_request, monitor_cert, node_cert, session_metadata, terminal_cert
from testbed.conform.case import EVERY_ROLE, Failed, Skipped, answered, case, outcome, refused, said, same
from testbed.conform.cs import _as_kizon, _held, _restated
from testbed.conform.kizon import _move_in, _taken

HEALTH = "/grpc.health.v1.Health/Check"
WAIT = 10.0  # seconds a roster change may take to reach the CS (kizon sends it until the CS acknowledges it)
CHANGE = 30  # seconds a roster change may take at kizon (it waits a moment for the other nodes' acknowledgement)
# Field 999 as a varint of 1 (tag 999 << 3 | 0, then 1): a field no message of the testbed defines.
_UNKNOWN_FIELD = b"\xb8\x3e\x01"
_KANA = "アイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワ"


# -- the counter, the CS and the roster as the cases reach them ------------------------------------------------------
def _katakana(length: int = 6) -> str:
    """A reading of katakana no one else of the run has (a name of the case's own)."""
    number = uuid.uuid4().int
    return "".join(_KANA[(number >> (6 * i)) % len(_KANA)] for i in range(length))


def _terminal(subject, terminal: str | None = None):
    """The certificate of a terminal of the subject's municipality (default: its first)."""
    return terminal_cert(subject.pki, subject.home(), terminal) if terminal else subject.terminal()


def _counter_stub(subject, terminal: str | None = None) -> kizon_pb2_grpc.KizonStub:
    """The municipality's kizon (the subject, or the one that serves it) as a terminal reaches it."""
    return kizon_pb2_grpc.KizonStub(subject.channel(_terminal(subject, terminal), subject.kizon()))


def _cs_ends(subject, terminal: str | None = None):
    """(the CS, its search process) of the municipality as a terminal reaches them (the search process is the CS
    itself for a CS without one); Skipped when the topology has no CS of the municipality."""
    if subject.role == "cs":
        node = subject.node
    else:
        try:
            node = subject.topology.find("cs", subject.home())
        except KeyError:
            raise Skipped(f"no 市町村CS of {subject.home()} in this topology") from None
    cert = _terminal(subject, terminal)
    return (cs_pb2_grpc.CommunicationServerStub(subject.channel(cert, node)),
            cs_pb2_grpc.CommunicationServerStub(subject.channel(cert, node.search_end() or node)))


def _other_terminal(subject) -> str:
    """The second terminal of the municipality, or SKIPPED."""
    place = subject.topology.municipality(subject.home())
    if len(place.terminals) < 2:
        raise Skipped(f"{place.code} has one terminal: name a second in the topology to try the rule")
    return place.terminals[1]


def _with_role(subject, role: str, without: bool = False) -> str:
    """The first operator of the topology's roster holding role (or, without, not holding it), or SKIPPED."""
    place = subject.topology.municipality(subject.home())
    found = next((o.id for o in place.operators if (role in o.roles) != without), None)
    if found is None:
        raise Skipped(f"no operator of {place.code} {'lacks' if without else 'holds'} the role {role}")
    return found


def _login(subject, operator: str, credential: str, terminal: str | None = None) -> tuple[tuple[str, str], ...]:
    """Call metadata of operator logged in with credential at a terminal (default: the first)."""
    stub = _counter_stub(subject, terminal)
    session = answered(lambda: stub.Login(kizon_pb2.LoginRequest(operator_id=operator, credential=credential),
                                          timeout=10))
    return session_metadata(session.token)


def _change(operator: str, roles=(), reason: str = "適合試験: 名簿の変更", **entry) -> kizon_pb2.OperatorChange:
    """A roster change naming an operator, their roles (to add or change them) and a reason."""
    return kizon_pb2.OperatorChange(entry=kizon_pb2.OperatorEntry(operator_id=operator, roles=list(roles), **entry),
                                    reason=reason)


def _manage(subject, method: str, change) -> kizon_pb2.RosterChange:
    """A roster change (AddOperator, ChangeOperatorRoles, RemoveOperator) made by the municipality's manager at the
    first terminal; its reply (Failed when refused)."""
    call = getattr(_counter_stub(subject), method)
    session = subject.session(_with_role(subject, "manager"))
    return answered(lambda: call(change, metadata=session, timeout=CHANGE))


def _fresh_id() -> str:
    """An operator id no one ever had (an id, once given, is never given again)."""
    return f"CF{uuid.uuid4().hex[:12].upper()}"


@contextmanager
def _operator(subject, roles=("clerk",), **entry):
    """An operator of the case's own, added by the manager with roles (and entry's 委託先 items): yields (id,
    credential, the reply); removed again at the end, whatever happened (a removal the case made itself stands)."""
    operator = _fresh_id()
    reply = _manage(subject, "AddOperator", _change(operator, roles, reason="適合試験: 試験用の操作者を追加", **entry))
    ended = False
    try:
        yield operator, reply.credential, reply
        ended = True
    finally:
        stub, session = _counter_stub(subject), subject.session(_with_role(subject, "manager"))
        code, reason, details, _ = outcome(lambda: stub.RemoveOperator(
            _change(operator, reason="適合試験: 試験用の操作者を削除"), metadata=session, timeout=CHANGE))
        if ended and code.name != "OK" and reason != K.OPERATOR_UNKNOWN.reason:
            raise Failed(f"the case's operator {operator} removed again", said(code, reason, details), reason)


def _approval(subject, requester: str, terminal: str, count: int) -> str:
    """A manager's approval token of a bulk output of count records by requester at terminal (Failed when refused)."""
    stub, session = _counter_stub(subject), subject.session(_with_role(subject, "manager"))
    return answered(lambda: stub.ApproveBulkOutput(kizon_pb2.BulkApprovalRequest(
        purpose="適合試験", max_records=count, requester_operator_id=requester, terminal_id=terminal),
        metadata=session, timeout=10)).token


def _until_roster(call) -> None:
    """Wait (at most WAIT seconds) while call is refused ROSTER_BEHIND: the roster a new session was issued under
    is still on its way from kizon to the node."""
    deadline = time.monotonic() + WAIT
    while outcome(call)[1] == A.ROSTER_BEHIND.reason and time.monotonic() < deadline:
        time.sleep(0.05)  # (a bounded wait for kizon's roster to reach the node)


# -- helpers -------------------------------------------------------------------------------------------------------
def _key(subject) -> common_pb2.ResidentKey:
    """The run's person, as a read asks for them."""
    return common_pb2.ResidentKey(resident_code=subject.person().resident_code)


def _read(subject, terminal: str | None = None):
    """A read at the counter (GetResident of the run's person) from a terminal, given the call metadata."""
    stub, key = _counter_stub(subject, terminal), _key(subject)
    return lambda metadata: stub.GetResident(key, metadata=metadata, timeout=10)


def _altered(token: str) -> str:
    """A token with two characters of its signed body changed (its signature no longer matches)."""
    body, _, signature = token.partition(".")
    return body[:-2] + ("AA" if body[-2:] != "AA" else "BB") + "." + signature


def _token(metadata) -> str:
    """The session token in call metadata."""
    return dict(metadata)[SESSION_KEY]


def _pool_status(cs):
    """A terminal's harmless call at the CS (GetPoolStatus), given the call metadata."""
    return lambda metadata: cs.GetPoolStatus(common_pb2.Empty(), metadata=metadata, timeout=10)


def _by_code(search, code: str):
    """SearchIdentity by 住民票コード at an end of the CS, given the call metadata."""
    return lambda metadata: search.SearchIdentity(identity_pb2.IdentitySearch(resident_code=code), metadata=metadata,
                                                  timeout=10)


def _foreign(subject):
    """(terminal certificate, session metadata) of an operator logged in at another municipality's kizon, or None
    when the topology has no other municipality with a 既存住基."""
    for place in subject.topology.municipalities:
        if place.code == subject.home() or not place.terminals or not place.operators:
            continue
        try:
            kizon = subject.topology.find("kizon", place.code)
        except KeyError:
            continue
        cert = terminal_cert(subject.pki, place.code, place.terminals[0])
        stub = kizon_pb2_grpc.KizonStub(subject.channel(cert, kizon))
        token = answered(lambda: stub.Login(login_request(subject.network, place.code, place.operators[0].id),
                                            timeout=10)).token
        return cert, session_metadata(token)
    return None


def _unprivileged(subject) -> str:
    """An operator of the topology holding neither the manager nor the operations role, or SKIPPED."""
    place = subject.topology.municipality(subject.home())
    found = next((o.id for o in place.operators if not {"manager", "operations"} & set(o.roles)), None)
    if found is None:
        raise Skipped(f"every operator of {place.code} holds the manager or operations role")
    return found


def _refused_until(call, rule, what: str, waiting=()) -> str:
    """call refused under rule, waited for while it is still answered, or refused under a rule of waiting (the node
    still holds the roster before the change on its way to it), at most WAIT seconds; what was observed."""
    deadline = time.monotonic() + WAIT
    waiting = {r.reason for r in waiting} | {A.ROSTER_BEHIND.reason}
    while True:
        code, reason, _, _ = outcome(call)
        if reason == rule.reason or time.monotonic() > deadline or (code.name not in ("OK", "UNAVAILABLE") and reason not in waiting):
            return refused(call, rule)
        time.sleep(0.05)  # (a bounded wait for kizon's roster to reach the node: `what`)


# -- sessions at the counter (kizon) ---------------------------------------------------------------------------------
@case("kizon/session/forged", roles=("kizon",), profiles=("security",), rules=(A.SESSION_INVALID,),
      request="GetResident with the operator's session altered in its signed body; with a manager's bulk-output "
              "approval token as the session; with a session another municipality's kizon issued",
      asserts="UNAUTHENTICATED SESSION_INVALID, each")
def session_forged(subject) -> str:
    """A session is one the municipality signed, unaltered, of the session kind."""
    read, session = _read(subject), subject.session()
    place = subject.topology.municipality(subject.home())
    tries = [("altered", session_metadata(_altered(_token(session))))]
    try:  # (a node that takes no change yet, a migration target, issues no approval: the other tries stand)
        approval = _approval(subject, _with_role(subject, "manager", without=True), place.terminals[0], 1)
        tries.append(("an approval", session_metadata(approval)))
    except Failed:
        pass
    foreign = _foreign(subject)
    if foreign is not None:
        tries.append(("another municipality's", foreign[1]))
    seen = [f"{what}: {refused(lambda: read(metadata), A.SESSION_INVALID, node=subject.node.name).split(':')[0]}"
            for what, metadata in tries]
    return "; ".join(seen)


@case("kizon/session/other-terminal", roles=("kizon",), profiles=("security",), rules=(A.SESSION_OTHER_TERMINAL,),
      request="GetResident from a second terminal with the session its operator got at the first",
      asserts="PERMISSION_DENIED SESSION_OTHER_TERMINAL")
def session_other_terminal(subject) -> str:
    """A session is valid only at the terminal it was issued to (a session read off one terminal is no use at
    another)."""
    elsewhere = _other_terminal(subject)
    return refused(lambda: _read(subject, elsewhere)(subject.session()), A.SESSION_OTHER_TERMINAL,
                   node=subject.node.name)


@case("kizon/terminal/claim", roles=("kizon",), profiles=("security",), rules=(A.TERMINAL_CLAIM,),
      request=f"GetResident, then Login, from the first terminal claiming ({TERMINAL_KEY}) to be the second",
      asserts="PERMISSION_DENIED TERMINAL_CLAIM, both")
def terminal_claim(subject) -> str:
    """A terminal is the one its certificate names, not one it claims."""
    elsewhere = _other_terminal(subject)
    claim = ((TERMINAL_KEY, elsewhere),)
    stub, session = _counter_stub(subject), subject.session()
    login = login_request(subject.network, subject.home(), subject.topology.municipality(subject.home()).operators[0].id)
    seen = [refused(lambda: _read(subject)(session + claim), A.TERMINAL_CLAIM, node=subject.node.name),
            refused(lambda: stub.Login(login, metadata=claim, timeout=10), A.TERMINAL_CLAIM, node=subject.node.name)]
    return "; ".join(s.split(":")[0] for s in seen)


@case("kizon/operator/claim", roles=("kizon",), profiles=("security",), rules=(A.OPERATOR_CLAIM,),
      request=f"GetResident with an operator's session, claiming ({OPERATOR_KEY}) to be another operator",
      asserts="PERMISSION_DENIED OPERATOR_CLAIM")
def operator_claim(subject) -> str:
    """The operator is the session's, not one the call claims."""
    place = subject.topology.municipality(subject.home())
    if len(place.operators) < 2:
        raise Skipped(f"{place.code} has one operator: name a second in the topology to try the rule")
    other = place.operators[1].id
    return refused(lambda: _read(subject)(subject.session(place.operators[0].id) + ((OPERATOR_KEY, other),)),
                   A.OPERATOR_CLAIM, node=subject.node.name)


@case("kizon/operator/role", roles=("kizon",), profiles=("rules", "security"), rules=(A.OPERATOR_ROLE,),
      request="ApproveBulkOutput and CheckConsistency (the full 整合性確認) by an operator holding neither the manager "
              "nor the operations role",
      asserts="PERMISSION_DENIED OPERATOR_ROLE, both")
def operator_role(subject) -> str:
    """An operation at a terminal needs an operator holding one of its roles."""
    clerk = _unprivileged(subject)
    place = subject.topology.municipality(subject.home())
    stub, session = _counter_stub(subject), subject.session(clerk)
    other = next((o.id for o in place.operators if o.id != clerk), clerk)
    seen = [refused(lambda: stub.ApproveBulkOutput(kizon_pb2.BulkApprovalRequest(
                purpose="適合試験", max_records=1, requester_operator_id=other, terminal_id=place.terminals[0]),
                metadata=session, timeout=10), A.OPERATOR_ROLE, node=subject.node.name),
            refused(lambda: stub.CheckConsistency(common_pb2.ConsistencyRequest(municipality_code=place.code),
                                                  metadata=session, timeout=30), A.OPERATOR_ROLE, node=subject.node.name)]
    return "; ".join(s.split(":")[0] for s in seen)


# -- the roster: a change holds on the next call ---------------------------------------------------------------------
@case("kizon/名簿/removed", roles=("kizon",), profiles=("security",),
      rules=(A.OPERATOR_NOT_IN_ROSTER, K.OPERATOR_AUTHENTICATION),
      request="an operator of the case's own reads, is removed by a manager, then reads again with their live "
              "session and logs in again",
      asserts="the read answered before; UNAUTHENTICATED OPERATOR_NOT_IN_ROSTER after; the login UNAUTHENTICATED "
              "OPERATOR_AUTHENTICATION")
def removed(subject) -> str:
    """A removed operator's live session is refused on its next call, and they log in no more."""
    read = _read(subject)
    with _operator(subject) as (operator, credential, _):
        session = _login(subject, operator, credential)
        answered(lambda: read(session))
        _manage(subject, "RemoveOperator", _change(operator, reason="適合試験: 退職"))
        observed = refused(lambda: read(session), A.OPERATOR_NOT_IN_ROSTER, node=subject.node.name)
        stub = _counter_stub(subject)
        refused(lambda: stub.Login(kizon_pb2.LoginRequest(operator_id=operator, credential=credential), timeout=10),
                K.OPERATOR_AUTHENTICATION, node=subject.node.name)
    return f"{observed.split(':')[0]}; the login refused"


@case("kizon/名簿/roles-reduced", roles=("kizon",), profiles=("security",), rules=(A.OPERATOR_ROLE_NOT_HELD,),
      request="an operator of the case's own (clerk, official) logs in; a manager takes official away; they read with "
              "the old session, then log in again and read",
      asserts="the old session PERMISSION_DENIED OPERATOR_ROLE_NOT_HELD (on any call); the new one has [clerk] and is "
              "answered")
def roles_reduced(subject) -> str:
    """A session claims no role the roster does not give the operator: once one is taken away, the old session is
    refused."""
    read = _read(subject)
    with _operator(subject, ("clerk", "official")) as (operator, credential, _):
        old = _login(subject, operator, credential)
        answered(lambda: read(old))
        _manage(subject, "ChangeOperatorRoles", _change(operator, ["clerk"]))
        observed = refused(lambda: read(old), A.OPERATOR_ROLE_NOT_HELD, node=subject.node.name)
        stub = _counter_stub(subject)
        new = answered(lambda: stub.Login(kizon_pb2.LoginRequest(operator_id=operator, credential=credential),
                                          timeout=10))
        same(["clerk"], list(new.roles), "the roles of the new session")
        answered(lambda: read(session_metadata(new.token)))
    return f"{observed.split(':')[0]}; a new login [clerk] answered"


@case("kizon/名簿/session-revoked", roles=("kizon",), profiles=("security",), rules=(A.SESSION_REVOKED,),
      request="an operator of the case's own (clerk, official) logs in; a manager takes official away, then gives "
              "it back; they read with the old session",
      asserts="UNAUTHENTICATED SESSION_REVOKED (the session predates the change that took a role away)")
def session_revoked(subject) -> str:
    """A session issued before the operator's entry last lost a role counts no more, even once it is given back."""
    read = _read(subject)
    with _operator(subject, ("clerk", "official")) as (operator, credential, _):
        old = _login(subject, operator, credential)
        answered(lambda: read(old))
        _manage(subject, "ChangeOperatorRoles", _change(operator, ["clerk"]))
        _manage(subject, "ChangeOperatorRoles", _change(operator, ["clerk", "official"]))
        observed = refused(lambda: read(old), A.SESSION_REVOKED, node=subject.node.name)
        answered(lambda: read(_login(subject, operator, credential)))
    return f"{observed.split(':')[0]}; a new login answered"


@case("kizon/委託/role-scope", roles=("kizon",), profiles=("rules", "security"), rules=(A.ROLE_SCOPE,),
      request="an operator of a 委託先 (role contractor, added for the case) at the first terminal: GetResident; then "
              "GetHistory, ListOperators and ExportResidents",
      asserts="GetResident answered with the 個人番号 masked; the others PERMISSION_DENIED ROLE_SCOPE, the export before "
              "any record")
def contractor_scope(subject) -> str:
    """An operator of a 委託先 calls only the operations the 委託 covers (住民票の写し等の交付, 住所異動)."""
    stub, key = _counter_stub(subject), _key(subject)
    with _operator(subject, ("contractor",), contractor="適合試験株式会社") as (operator, credential, _):
        session = _login(subject, operator, credential)
        shown = answered(lambda: stub.GetResident(key, metadata=session, timeout=10))
        if any(c.isdigit() for c in shown.individual_number):
            raise Failed("the 個人番号 masked to a 委託先's operator", repr(shown.individual_number))
        records = []
        seen = [refused(lambda: stub.GetHistory(key, metadata=session, timeout=10), A.ROLE_SCOPE, node=subject.node.name),
                refused(lambda: stub.ListOperators(kizon_pb2.RosterRequest(), metadata=session, timeout=10),
                        A.ROLE_SCOPE, node=subject.node.name),
                refused(lambda: records.extend(_taken(stub.ExportResidents(kizon_pb2.ExportRequest(purpose="適合試験"),
                                                                           metadata=session, timeout=30))),
                        A.ROLE_SCOPE, node=subject.node.name)]
        same([], records, "records sent before the refusal")
    return "GetResident answered, 個人番号 masked; " + "; ".join(s.split(":")[0] for s in seen)


# -- what a request may carry --------------------------------------------------------------------------------------
@case("kizon/message/unknown-field", roles=("kizon",), profiles=("rules", "security"), rules=(A.MESSAGE_UNKNOWN_FIELD,),
      request="MoveIn (国外転入) whose person carries a field the message does not define (field 999)",
      asserts="INVALID_ARGUMENT MESSAGE_UNKNOWN_FIELD; no one of that 氏名 and 生年月日 at the CS afterwards")
def unknown_field(subject) -> str:
    """A request carries only the items its message defines: a field outside them is refused, never stored or
    passed on."""
    kana = f"テキゴウ {_katakana()}"
    request = _move_in(subject, name_kana=kana)
    request.person.CopyFrom(records_pb2.ResidentRecord.FromString(request.person.SerializeToString() + _UNKNOWN_FIELD))
    stub = _counter_stub(subject)
    observed = refused(lambda: stub.MoveIn(request, metadata=subject.session(), timeout=30), A.MESSAGE_UNKNOWN_FIELD,
                       node=subject.node.name)
    try:
        _, search = _cs_ends(subject)
    except Skipped:
        return observed  # (no CS in the topology to ask whether anything was passed on)
    found = answered(lambda: search.SearchIdentity(identity_pb2.IdentitySearch(
        name_kana=kana, birth_date=request.person.birth_date), metadata=subject.session(), timeout=10))
    same([], [m.resident_code for m in found.matches], "people of that 氏名 at the CS afterwards")
    return observed


@case("message/malformed", roles=(EVERY_ROLE,), profiles=("wire", "security"), rules=(A.MESSAGE_MALFORMED,),
      request="Health/Check as the domain's monitor with a body that is no protobuf message (a truncated field)",
      asserts="INVALID_ARGUMENT MESSAGE_MALFORMED, the subject named as the refusing node")
def malformed(subject) -> str:
    """A request is a valid message of its method: a body that does not parse is refused by name, not dropped."""
    call = subject.as_monitor().unary_unary(HEALTH)
    return refused(lambda: call(b"\x0a\x05ab", timeout=5), A.MESSAGE_MALFORMED, node=subject.node.name)


# -- the CS's terminals (the 統合端末) --------------------------------------------------------------------------------
@case("cs/session/required", roles=("cs",), profiles=("security",), rules=(A.SESSION_REQUIRED,),
      request="GetPoolStatus at the CS, and SearchIdentity at its search process, from a terminal with no operator "
              "logged in",
      asserts="UNAUTHENTICATED SESSION_REQUIRED, both")
def cs_session_required(subject) -> str:
    """Every terminal call at the CS, and at its search process, carries an operator's session."""
    cs, search = _cs_ends(subject)
    seen = [refused(lambda: _pool_status(cs)(()), A.SESSION_REQUIRED, node=subject.node.name),
            refused(lambda: _by_code(search, subject.person().resident_code)(()), A.SESSION_REQUIRED)]
    return "; ".join(s.split(":")[0] for s in seen)


@case("cs/session/other-terminal", roles=("cs",), profiles=("security",),
      rules=(A.SESSION_OTHER_TERMINAL, A.SESSION_INVALID),
      request="GetPoolStatus and SearchIdentity from a second terminal with the session its operator got at the "
              "first; then from the first with that session altered",
      asserts="PERMISSION_DENIED SESSION_OTHER_TERMINAL at both ends; UNAUTHENTICATED SESSION_INVALID at both")
def cs_session_other_terminal(subject) -> str:
    """At the CS too, a session is valid only at its terminal, and only as the municipality signed it."""
    session, code = subject.session(), subject.person().resident_code
    cs, search = _cs_ends(subject, _other_terminal(subject))
    here, here_search = _cs_ends(subject)
    altered = session_metadata(_altered(_token(session)))
    seen = [refused(lambda: _pool_status(cs)(session), A.SESSION_OTHER_TERMINAL, node=subject.node.name),
            refused(lambda: _by_code(search, code)(session), A.SESSION_OTHER_TERMINAL),
            refused(lambda: _pool_status(here)(altered), A.SESSION_INVALID, node=subject.node.name),
            refused(lambda: _by_code(here_search, code)(altered), A.SESSION_INVALID)]
    return "; ".join(s.split(":")[0] for s in seen)


@case("cs/operator/role", roles=("cs",), profiles=("rules", "security"), rules=(A.OPERATOR_ROLE,),
      request="CheckConsistency (the full 整合性確認) and PurgeExpiredCertificates at the CS by an operator holding "
              "neither the manager nor the operations role",
      asserts="PERMISSION_DENIED OPERATOR_ROLE, both")
def cs_operator_role(subject) -> str:
    """Batches and the full 整合性確認 at the CS need the manager or operations role."""
    session = subject.session(_unprivileged(subject))
    cs, _ = _cs_ends(subject)
    seen = [refused(lambda: cs.CheckConsistency(common_pb2.ConsistencyRequest(municipality_code=subject.municipality),
                                                metadata=session, timeout=30), A.OPERATOR_ROLE, node=subject.node.name),
            refused(lambda: cs.PurgeExpiredCertificates(common_pb2.Empty(), metadata=session, timeout=30),
                    A.OPERATOR_ROLE, node=subject.node.name)]
    return "; ".join(s.split(":")[0] for s in seen)


@case("cs/名簿/removed", roles=("cs",), profiles=("security",), rules=(A.OPERATOR_NOT_IN_ROSTER,),
      request="an operator of the case's own calls the CS (GetPoolStatus, SearchIdentity), is removed by a manager at "
              "kizon, then calls the CS again with their live session",
      asserts=f"answered before; UNAUTHENTICATED OPERATOR_NOT_IN_ROSTER at both ends once the CS holds the roster "
              f"(within {WAIT:g} s)")
def cs_removed(subject) -> str:
    """A removed operator's live session is refused at the CS too, once kizon's roster has reached it."""
    cs, search = _cs_ends(subject)
    code = subject.person().resident_code
    with _operator(subject) as (operator, credential, _):
        session = _login(subject, operator, credential)
        _until_roster(lambda: _pool_status(cs)(session))
        answered(lambda: _pool_status(cs)(session))
        answered(lambda: _by_code(search, code)(session))
        _manage(subject, "RemoveOperator", _change(operator, reason="適合試験: 退職"))
        seen = [_refused_until(lambda: _pool_status(cs)(session), A.OPERATOR_NOT_IN_ROSTER, "the CS"),
                _refused_until(lambda: _by_code(search, code)(session), A.OPERATOR_NOT_IN_ROSTER, "the search process")]
    return "; ".join(s.split(":")[0] for s in seen)


@case("cs/委託/role-scope", roles=("cs",), profiles=("rules", "security"), rules=(A.ROLE_SCOPE,),
      request="an operator of a 委託先 (role contractor, added for the case): GetIdentity at the CS, SearchIdentity at "
              "its search process",
      asserts="PERMISSION_DENIED ROLE_SCOPE, both (the 委託 covers nothing at the CS)")
def cs_contractor_scope(subject) -> str:
    """An operator of a 委託先 calls nothing at the CS: the 委託 covers 住民票の写し等の交付 and 住所異動 alone."""
    cs, search = _cs_ends(subject)
    key = _key(subject)
    with _operator(subject, ("contractor",), contractor="適合試験株式会社") as (operator, credential, _):
        session = _login(subject, operator, credential)
        read = lambda: cs.GetIdentity(key, metadata=session, timeout=10)  # noqa: E731
        _until_roster(read)
        seen = [refused(read, A.ROLE_SCOPE, node=subject.node.name),
                refused(lambda: _by_code(search, key.resident_code)(session), A.ROLE_SCOPE)]
    return "; ".join(s.split(":")[0] for s in seen)


@case("cs/名簿/sender", roles=("cs",), profiles=("security",), rules=(A.ROSTER_SENDER,),
      request="ReceiveOperatorRoster as the municipality's kizon: a roster of another municipality; a roster of its own "
              "municipality, of a far newer version, with a token it did not sign",
      asserts="PERMISSION_DENIED ROSTER_SENDER, both; the operators' sessions admitted at the CS as before")
def cs_roster_sender(subject) -> str:
    """A roster is received from the municipality's own kizon, signed with its session key: nothing else replaces
    the roster the CS holds."""
    cs = _as_kizon(subject)
    other = next((m.code for m in subject.topology.municipalities if m.code != subject.municipality), "131016")
    seen = [refused(lambda: cs.ReceiveOperatorRoster(kizon_pb2.SignedRoster(
                municipality=other, version=10**9, token="forged.token"), timeout=10), A.ROSTER_SENDER,
                node=subject.node.name),
            refused(lambda: cs.ReceiveOperatorRoster(kizon_pb2.SignedRoster(
                municipality=subject.municipality, version=10**9, token="e30.Zm9yZ2Vk"), timeout=10),
                A.ROSTER_SENDER, node=subject.node.name)]
    main, _ = _cs_ends(subject)
    answered(lambda: _pool_status(main)(subject.session()))
    return "; ".join(s.split(":")[0] for s in seen) + "; a session admitted as before"


@case("cs/検索/search-process", roles=("cs",), profiles=("security",), rules=(A.METHOD_UNKNOWN, A.SCOPE),
      request="at the CS's search process: GetIdentity and SubmitIdentityUpdates with an operator's session; "
              "SearchIdentity from another municipality's terminal with its operator's session",
      asserts="UNIMPLEMENTED METHOD_UNKNOWN, both; PERMISSION_DENIED POLICY_SCOPE")
def search_process(subject) -> str:
    """The search process serves 本人確認情報検索 alone, under the CS's policy."""
    end = subject.node.search_end()
    if end is None:
        raise Skipped(f"{subject.node.name} has no search process of its own (a search address in the topology)")
    session, key = subject.session(), _key(subject)
    stub = cs_pb2_grpc.CommunicationServerStub(subject.channel(subject.terminal(), end))
    seen = [refused(lambda: stub.GetIdentity(key, metadata=session, timeout=10), A.METHOD_UNKNOWN),
            refused(lambda: stub.SubmitIdentityUpdates(identity_pb2.IdentityUpdateBatch(), metadata=session, timeout=10),
                    A.METHOD_UNKNOWN)]
    foreign = _foreign(subject)
    if foreign is None:
        raise Skipped("no other municipality with a 既存住基 in this topology to try the policy's scope")
    cert, theirs = foreign
    outsider = cs_pb2_grpc.CommunicationServerStub(subject.channel(cert, end))
    seen.append(refused(lambda: _by_code(outsider, key.resident_code)(theirs), A.SCOPE))
    return "; ".join(s.split(":")[0] for s in seen)


@case("cs/名簿/roles-reduced", roles=("cs",), profiles=("security",),
      rules=(A.OPERATOR_ROLE_NOT_HELD, A.SESSION_REVOKED),
      request="an operator of the case's own (clerk, official) calls the CS (GetPoolStatus, SearchIdentity); a manager "
              "at kizon takes official away; they call again with that session; official given back, they call again",
      asserts=f"answered before; PERMISSION_DENIED OPERATOR_ROLE_NOT_HELD at both ends once the CS holds the roster "
              f"(within {WAIT:g} s); then UNAUTHENTICATED SESSION_REVOKED at both; a new login answered")
def cs_roles_reduced(subject) -> str:
    """At the CS too, a session claims no role the roster does not give, and one issued before a role was taken
    away counts no more once it is given back."""
    cs, search = _cs_ends(subject)
    code = subject.person().resident_code
    with _operator(subject, ("clerk", "official")) as (operator, credential, _):
        old = _login(subject, operator, credential)
        _until_roster(lambda: _pool_status(cs)(old))
        answered(lambda: _pool_status(cs)(old))
        answered(lambda: _by_code(search, code)(old))
        _manage(subject, "ChangeOperatorRoles", _change(operator, ["clerk"]))
        seen = [_refused_until(lambda: _pool_status(cs)(old), A.OPERATOR_ROLE_NOT_HELD, "the CS"),
                _refused_until(lambda: _by_code(search, code)(old), A.OPERATOR_ROLE_NOT_HELD, "the search process")]
        _manage(subject, "ChangeOperatorRoles", _change(operator, ["clerk", "official"]))
        held = (A.OPERATOR_ROLE_NOT_HELD,)  # (what the CS says until the role given back has reached it)
        seen += [_refused_until(lambda: _pool_status(cs)(old), A.SESSION_REVOKED, "the CS", held),
                 _refused_until(lambda: _by_code(search, code)(old), A.SESSION_REVOKED, "the search process", held)]
        new = _login(subject, operator, credential)
        _until_roster(lambda: _pool_status(cs)(new))
        answered(lambda: _pool_status(cs)(new))
    return "; ".join(s.split(":")[0] for s in seen) + "; a new login answered"


@case("cs/message/unknown-field", roles=("cs",), profiles=("rules", "security"), rules=(A.MESSAGE_UNKNOWN_FIELD,),
      request="SubmitIdentityUpdates as kizon: a 職権修正 of the run's person whose 本人確認情報 carries a field the "
              "message does not define (field 999)",
      asserts="INVALID_ARGUMENT MESSAGE_UNKNOWN_FIELD, whoever sends it (a node too); the 本人確認情報 unchanged")
def cs_unknown_field(subject) -> str:
    """A field outside the message is refused from a node as from a terminal: never stored, never passed on to the
    prefecture."""
    cs = _as_kizon(subject)
    before = _held(subject, cs)
    info = _restated(before, name_kanji="適合 未定義")
    info = records_pb2.IdentityInfo.FromString(info.SerializeToString() + _UNKNOWN_FIELD)
    batch = identity_pb2.IdentityUpdateBatch(municipality_code=subject.municipality, updates=[
        identity_pb2.IdentityUpdate(municipality_code=subject.municipality, info=info)])
    observed = refused(lambda: cs.SubmitIdentityUpdates(batch, timeout=10), A.MESSAGE_UNKNOWN_FIELD,
                       node=subject.node.name)
    same(before, _held(subject, cs), "the 本人確認情報 afterwards")
    return observed


# -- a migration target's identity before the cut over ---------------------------------------------------------------
@case("cs/移行/target-reads-only", roles=("cs",), profiles=("rules", "security"), rules=(A.TARGET_READS_ONLY,),
      request="as the municipality's migration-target kizon (a target of the topology not yet cut over to): GetIdentity "
              "of the run's person; DrawResidentCodes of one code; SubmitIdentityUpdates of the person restated",
      asserts="GetIdentity answered; PERMISSION_DENIED TARGET_READS_ONLY, both others; the 本人確認情報 unchanged")
def target_reads_only(subject) -> str:
    """A migration target not yet cut over to reads for the verification, and changes nothing."""
    target = next((t for t in subject.topology.targets if t.kind == "kizon" and t.municipality == subject.municipality),
                  None)
    if target is None:
        raise Skipped(f"the topology names no migration target of {subject.municipality}'s 既存住基")
    cs = cs_pb2_grpc.CommunicationServerStub(subject.channel(node_cert(subject.pki, target.name)))
    before = _held(subject, _as_kizon(subject))
    key = common_pb2.ResidentKey(resident_code=before.resident_code)
    same(before.name_kanji, answered(lambda: cs.GetIdentity(key, timeout=10)).name_kanji, "the target's read")
    batch = identity_pb2.IdentityUpdateBatch(municipality_code=subject.municipality, updates=[
        identity_pb2.IdentityUpdate(municipality_code=subject.municipality,
                                    info=_restated(before, name_kanji="適合 移行先"))])
    seen = [refused(lambda: cs.DrawResidentCodes(cs_pb2.CodeDraw(count=1), timeout=10), A.TARGET_READS_ONLY,
                    node=subject.node.name),
            refused(lambda: cs.SubmitIdentityUpdates(batch, timeout=10), A.TARGET_READS_ONLY, node=subject.node.name)]
    same(before, _held(subject, _as_kizon(subject)), "the 本人確認情報 afterwards")
    return "GetIdentity answered; " + "; ".join(s.split(":")[0] for s in seen)


# -- what the guard asks of every caller -------------------------------------------------------------------------------
@case("errors/unknown-method", roles=(EVERY_ROLE,), profiles=("wire", "security"), rules=(A.METHOD_UNKNOWN,),
      request="a method no service of the testbed has (/testbed.v1.Conform/NoSuchMethod), as the domain's monitor",
      asserts="UNIMPLEMENTED METHOD_UNKNOWN, the subject named as the refusing node")
def method_unknown(subject) -> str:
    """A method the node does not serve is UNIMPLEMENTED by name, after authentication, like any call."""
    call = subject.as_monitor().unary_unary("/testbed.v1.Conform/NoSuchMethod")
    return refused(lambda: call(b"", timeout=5), A.METHOD_UNKNOWN, node=subject.node.name)


def _minted(subject, label: str, identity: str, *, client_auth: bool = True) -> ClientCert:
    """A client certificate for identity issued by the subject's trust domain's own CA, as a careless issuer would;
    without client_auth it has no extended key usage at all (TLS lets that through: it is the node's to refuse).
    Kept with the run's minted certificates (subject.minter), revoked when the run ends."""
    domain, minter = KIND_DOMAIN[subject.role], subject.minter
    try:
        if client_auth:
            return minter.mint(label, domain, identity)
        ca = subject.pki.authority(domain)
    except PassphraseError as exc:
        raise Skipped(f"{exc} (the case mints certificates with the domain's CA)") from None
    cert, key = issue_leaf(ca, identity, client=False)
    folder = minter.scratch / label
    folder.mkdir(parents=True, exist_ok=True)
    write_public(folder / "client.pem", cert_pem(cert) + cert_pem(ca.cert))
    write_private(folder / "client.key", key_pem(key))
    subject.pki.record(cert, identity, domain, minter.purpose, folder / "client.pem", folder / "client.key")
    minter.minted.append(cert.serial_number)  # (revoked with the others at the end of the run)
    return ClientCert(folder / "client.pem", folder / "client.key", subject.pki.trust_bundle)


def _health(subject, cert: ClientCert):
    """Health/Check with a certificate, as a caller with it would send it."""
    call = subject.channel(cert).unary_unary(HEALTH)
    return lambda: call(b"", timeout=5)


@case("identity/uri-san", roles=(EVERY_ROLE,), profiles=("wire", "security"), rules=(A.CERTIFICATE_IDENTITY,),
      request="Health/Check with certificates of the domain's own CA whose one URI SAN is outside the testbed's trust "
              "root; names a municipality whose code fails its check digit (142141)",
      asserts="UNAUTHENTICATED CERTIFICATE_IDENTITY, both")
def uri_san(subject) -> str:
    """A client certificate names exactly one identity of the testbed, well formed."""
    seen = [refused(_health(subject, _minted(subject, f"identity-{what}", uri)), A.CERTIFICATE_IDENTITY,
                    node=subject.node.name).split(":")[0]
            for what, uri in (("outside", "spiffe://example.org/ops/monitor"),
                              ("check-digit", node_uri("kizon", "142141")))]
    return "; ".join(seen)


@case("identity/client-auth-usage", roles=(EVERY_ROLE,), profiles=("wire", "security"),
      rules=(A.CERTIFICATE_KEY_USAGE,),
      request="Health/Check with the domain's monitor identity on a certificate of its own CA with no extended key "
              "usage at all (which TLS accepts as any usage)",
      asserts="UNAUTHENTICATED CERTIFICATE_KEY_USAGE; the monitor's own certificate answered")
def client_auth_usage(subject) -> str:
    """A client certificate states clientAuth: one that states no usage is refused by the node, not let in."""
    answered(_health(subject, monitor_cert(subject.pki, subject.role)))
    cert = _minted(subject, "no-extended-key-usage", monitor_uri(KIND_DOMAIN[subject.role]), client_auth=False)
    return refused(_health(subject, cert), A.CERTIFICATE_KEY_USAGE, node=subject.node.name)


# -- rules no caller of the topology can reach ------------------------------------------------------------------------
NOT_A_CASE = {
    A.PEER_CERTIFICATE.reason: "a client's rule about the server it calls: the node under test would have to be "
                               "given a peer presenting a revoked or misnamed certificate (a rogue server)",
    A.ROSTER_BEHIND.reason: "needs kizon's roster held back on its way to the node: kizon waits for the node's "
                            "acknowledgement before it answers a change, so only a fault (the node down, the link cut) "
                            "opens the window",
    A.ROSTER_UNVERIFIED.reason: "needs a roster in the node's store that fails its signature (the store written by "
                                "someone else); a forged roster sent over the wire is refused under ROSTER_SENDER",
}
