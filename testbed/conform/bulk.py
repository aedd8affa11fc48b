"""The cases of bulk output (PIA Ⅲ(2)3 その他: 大量のデータ出力に際しては、事前に管理責任者の承認を得る) and of the kiosk's
door at kizon: a manager's approval of an export at the 既存住基 (what it is for, whom, how many records, once), the
approval of a 統合端末's reads at the 市町村CS (signed by kizon, bound to its requester, terminal and count), and コンビニ交付
asked of kizon by a kiosk only, for a 住民票の写し only.

An export with an approval is counted under the approval, never in the exporter's own window; the exports of these
cases are run by an operator other than the run's (the municipality's first), so that its reads stay within the
limit for the cases after. A case that needs an operator over the limit at the CS adds one of its own to the roster
(a manager's AddOperator), reads BULK_LIMIT people as them, and removes them at its end."""
from __future__ import annotations

import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field

import grpc

from nodes.guard import APPROVAL_KEY
from nodes.reasons import cs as S, gateway as G, kizon as K
from nodes.sessions import CS_READ_APPROVAL_KEY
from protos import common_pb2, cs_pb2_grpc, kizon_pb2, kizon_pb2_grpc
from testbed.client import login_request, named_cert, session_metadata, terminal_cert
from testbed.conform.case import Failed, Skipped, answered, case, outcome, refused, said, same
from testbed.conform.kizon import BULK_LIMIT, _over_the_limit, _taken

PURPOSE = "適合試験 一括出力"  # the purpose the cases' approvals name
NOT_A_CASE = {
    K.BULK_OUTPUT_APPROVAL_EXPIRED.reason: "an approval is good for an hour by kizon's clock: trying it takes an hour's "
                                           "wait or a clock moved, neither of which a caller has",
    K.KIOSK_HOURS.reason: "judged by kizon's clock (pinned to 12:00 under test; a simulated clock only on a network "
                          "started with TESTBED_SIMULATED_CLOCK=1): a caller cannot move it outside the hours",
    G.JURY_LIST_ONCE_A_YEAR.reason: "it needs the year's 裁判員候補者名簿 drawn first, and a draw cannot be undone: the "
                                    "case would use up the one list of the open year for the 名簿調製プログラム",
}


# -- who asks --------------------------------------------------------------------------------------------------------
def _place(subject):
    return subject.topology.municipality(subject.home())


def _manager(subject) -> str:
    """The municipality's first operator holding the manager role (Skipped when there is none)."""
    found = next((o.id for o in _place(subject).operators if "manager" in o.roles), None)
    if found is None:
        raise Skipped(f"no operator of {subject.home()} holds the manager role: add one to the roster to try the rule")
    return found


def _exporter(subject) -> str:
    """An operator other than the run's (the first) and not a manager: the one who runs the cases' exports."""
    place = _place(subject)
    found = next((o.id for o in place.operators[1:] if "manager" not in o.roles), None)
    if found is None:
        raise Skipped(f"{place.code}'s roster has no operator besides {place.operators[0].id} without the manager role")
    return found


def _terminal(subject, index: int):
    """(id, certificate) of the municipality's index-th terminal (Skipped when it has fewer)."""
    terminals = _place(subject).terminals
    if len(terminals) <= index:
        raise Skipped(f"{subject.home()} has {len(terminals)} terminal(s): the case needs {index + 1}")
    return terminals[index], terminal_cert(subject.pki, subject.home(), terminals[index])


def _kizon(subject, index: int = 0):
    """The municipality's 既存住基 as its index-th terminal reaches it."""
    return kizon_pb2_grpc.KizonStub(subject.channel(_terminal(subject, index)[1], subject.kizon()))


def _login(subject, operator: str, index: int = 0, credential: str = "") -> tuple:
    """Session metadata of operator logged in at the index-th terminal (credential: a new operator's)."""
    if index == 0 and not credential:
        return subject.session(operator)
    request = (kizon_pb2.LoginRequest(operator_id=operator, credential=credential) if credential
               else login_request(subject.network, subject.home(), operator))
    return session_metadata(_kizon(subject, index).Login(request, timeout=10).token)


def _approval(subject, requester: str, index: int = 0, *, most: int = 10_000, purpose: str = PURPOSE,
              approver: tuple | None = None, door: str = "kizon") -> str:
    """A manager's approval token for requester at the index-th terminal, spent at door (kizon or cs) (approver: the
    session that approves, the municipality's manager by default)."""
    session = approver or subject.session(_manager(subject))
    terminal = _terminal(subject, index)[0]
    return answered(lambda: _kizon(subject).ApproveBulkOutput(kizon_pb2.BulkApprovalRequest(
        purpose=purpose, max_records=most, requester_operator_id=requester, terminal_id=terminal, spent_at=door),
        metadata=session, timeout=10)).token


def _export(stub, session, token: str = "", purpose: str = PURPOSE, limit: int = BULK_LIMIT + 1) -> list:
    """ExportResidents of the whole register with an approval (when given), at most limit records taken."""
    metadata = session + (((APPROVAL_KEY, token),) if token else ())
    return _taken(stub.ExportResidents(kizon_pb2.ExportRequest(purpose=purpose), metadata=metadata, timeout=30), limit)


def _refused_export(stub, session, token: str, rule, purpose: str = PURPOSE) -> str:
    """Assert an export is refused under rule before any record is sent."""
    seen = []
    observed = refused(lambda: seen.extend(_export(stub, session, token, purpose)), rule)
    same([], seen, "records sent before the refusal")
    return observed


def _exporting(subject):
    """(stub, session) of the exporter at the first terminal, once the register is shown to be over the limit."""
    stub, session = _kizon(subject), subject.session(_exporter(subject))
    _over_the_limit(subject, stub, session)
    return stub, session


# == kizon: an export's approval ====================================================================================
@case("kizon/一括出力/approval-request", roles=("kizon",), profiles=("rules",), rules=(K.BULK_OUTPUT_APPROVAL_REQUEST,),
      request="ApproveBulkOutput by a manager: for 0 records; for an operator not on the roster; at a terminal not of "
              "the municipality", asserts="INVALID_ARGUMENT BULK_OUTPUT_APPROVAL_REQUEST, each; no token given")
def approval_request(subject) -> str:
    """An approval is for at least one record, for an operator and a terminal of the municipality."""
    exporter, terminal = _exporter(subject), _terminal(subject, 0)[0]
    stub, session = _kizon(subject), subject.session(_manager(subject))
    tries = [(0, exporter, terminal), (10, f"NOBODY{uuid.uuid4().hex[:6].upper()}", terminal), (10, exporter, "T9999")]
    seen = [refused(lambda: stub.ApproveBulkOutput(kizon_pb2.BulkApprovalRequest(
        purpose=PURPOSE, max_records=most, requester_operator_id=who, terminal_id=where), metadata=session,
        timeout=10), K.BULK_OUTPUT_APPROVAL_REQUEST) for most, who, where in tries]
    return f"{seen[0].split(':')[0]}, ×3"


@case("kizon/一括出力/count", roles=("kizon",), profiles=("rules", "security"), rules=(K.BULK_OUTPUT_APPROVAL_COUNT,),
      request=f"ExportResidents of a register over {BULK_LIMIT} people with a manager's approval for 1 record",
      asserts="PERMISSION_DENIED BULK_OUTPUT_APPROVAL_COUNT, before any record is sent")
def approval_count(subject) -> str:
    """An approval covers at most the count of records it names."""
    stub, session = _exporting(subject)
    return _refused_export(stub, session, _approval(subject, _exporter(subject), most=1), K.BULK_OUTPUT_APPROVAL_COUNT)


@case("kizon/一括出力/purpose", roles=("kizon",), profiles=("rules", "security"), rules=(K.BULK_OUTPUT_APPROVAL_PURPOSE,),
      request=f"ExportResidents of a register over {BULK_LIMIT} people stating another purpose than the approval's; "
              "then the approval's own",
      asserts="PERMISSION_DENIED BULK_OUTPUT_APPROVAL_PURPOSE before any record is sent; then the export answered "
              "(the refusal did not spend the approval)")
def approval_purpose(subject) -> str:
    """An approval is for the purpose it names."""
    stub, session = _exporting(subject)
    token = _approval(subject, _exporter(subject))
    observed = _refused_export(stub, session, token, K.BULK_OUTPUT_APPROVAL_PURPOSE, purpose="別の目的")
    records = answered(lambda: _export(stub, session, token))
    return f"{observed}; with its own purpose: {len(records)}+ records"


@case("kizon/一括出力/used", roles=("kizon",), profiles=("rules", "security"), rules=(K.BULK_OUTPUT_APPROVAL_USED,),
      request=f"ExportResidents of a register over {BULK_LIMIT} people twice with one manager's approval",
      asserts="the first answered; the second PERMISSION_DENIED BULK_OUTPUT_APPROVAL_USED, before any record is sent")
def approval_used(subject) -> str:
    """An approval is good for one export."""
    stub, session = _exporting(subject)
    token = _approval(subject, _exporter(subject))
    records = answered(lambda: _export(stub, session, token))
    return f"first: {len(records)}+ records; again: " + _refused_export(stub, session, token,
                                                                        K.BULK_OUTPUT_APPROVAL_USED)


@case("kizon/一括出力/door", roles=("kizon",), profiles=("rules", "security"), rules=(K.BULK_OUTPUT_APPROVAL_INVALID,),
      request=f"ExportResidents of a register over {BULK_LIMIT} people with a manager's approval to be spent at the CS "
              "(spent_at cs); then with one to be spent at kizon",
      asserts="PERMISSION_DENIED BULK_OUTPUT_APPROVAL_INVALID before any record is sent (an approval is spent at the "
              "door it names, never at two); the second answered")
def approval_door(subject) -> str:
    """An approval of reads at the CS is not spent at kizon (each door keeps its own account of what was spent)."""
    stub, session = _exporting(subject)
    exporter = _exporter(subject)
    observed = _refused_export(stub, session, _approval(subject, exporter, door="cs"), K.BULK_OUTPUT_APPROVAL_INVALID)
    records = answered(lambda: _export(stub, session, _approval(subject, exporter)))
    return f"{observed}; at kizon: {len(records)}+ records"


@case("kizon/一括出力/other-operator", roles=("kizon",), profiles=("rules", "security"),
      rules=(K.BULK_OUTPUT_APPROVAL_OTHER_OPERATOR,),
      request=f"ExportResidents of a register over {BULK_LIMIT} people with an approval for operator A at terminal 2: "
              "by A at terminal 1, by the run's operator at terminal 1, then by A at terminal 2",
      asserts="PERMISSION_DENIED BULK_OUTPUT_APPROVAL_OTHER_OPERATOR twice, before any record is sent; A at terminal 2 "
              "answered")
def approval_other_operator(subject) -> str:
    """An approval is for the operator and the terminal it names."""
    stub, session = _exporting(subject)
    exporter = _exporter(subject)
    token = _approval(subject, exporter, 1)
    seen = [_refused_export(stub, session, token, K.BULK_OUTPUT_APPROVAL_OTHER_OPERATOR),
            _refused_export(stub, subject.session(), token, K.BULK_OUTPUT_APPROVAL_OTHER_OPERATOR)]
    records = answered(lambda: _export(_kizon(subject, 1), _login(subject, exporter, 1), token))
    return f"{seen[0].split(':')[0]}, ×2; at the approval's terminal: {len(records)}+ records"


# == kizon: the kiosk's door =========================================================================================
def _kiosk_certificate(stub, metadata=(), kind=kizon_pb2.RESIDENT_COPY):
    return lambda: stub.IssueKioskCertificate(kizon_pb2.KioskRequest(card_number="000000000000", pin="1234", kind=kind),
                                              metadata=metadata, timeout=30)


@case("kizon/コンビニ交付/caller", roles=("kizon",), profiles=("rules", "security"), rules=(K.KIOSK_CALLER,),
      request="IssueKioskCertificate from a counter terminal, with an operator's session",
      asserts="PERMISSION_DENIED KIOSK_CALLER")
def kiosk_caller(subject) -> str:
    """コンビニ交付 is issued to a kiosk front end only, never to a counter terminal."""
    return refused(_kiosk_certificate(_kizon(subject), subject.session()), K.KIOSK_CALLER, node=subject.node.name)


@case("kizon/コンビニ交付/resident-copy-only", roles=("kizon",), profiles=("rules",), rules=(K.KIOSK_RESIDENT_COPY_ONLY,),
      request="IssueKioskCertificate from a kiosk for a 住民票記載事項証明書, and for a 転出証明書",
      asserts="INVALID_ARGUMENT KIOSK_RESIDENT_COPY_ONLY, both (judged before the card)")
def kiosk_resident_copy_only(subject) -> str:
    """A kiosk is given a 住民票の写し (個人 or 世帯), nothing else."""
    kiosks = subject.topology.kiosks
    if not kiosks:
        raise Skipped("the topology names no kiosk")
    stub = kizon_pb2_grpc.KizonStub(subject.channel(named_cert(subject.pki, f"kiosk-{kiosks[0]}")))
    seen = []
    for kind in (kizon_pb2.STATED_ITEMS, kizon_pb2.MOVE_OUT):
        try:
            seen.append(refused(_kiosk_certificate(stub, kind=kind), K.KIOSK_RESIDENT_COPY_ONLY,
                                node=subject.node.name))
        except Failed as exc:
            if exc.reason == K.KIOSK_HOURS.reason:
                raise Skipped("outside the hours of コンビニ交付 (06:30–23:00, Japan time): run it within them") from None
            raise
    return f"{seen[0].split(':')[0]}, ×2"


# == the CS: a 統合端末's reads beyond the limit =======================================================================
@dataclass
class _Reader:
    """An operator of the case's own over the limit at the CS: their id and kizon session, the people they read (in
    the window), and people of the CS they have not read."""

    operator: str
    session: tuple
    cs: cs_pb2_grpc.CommunicationServerStub
    read: list = field(default_factory=list)
    unread: list = field(default_factory=list)

    def __call__(self, code: str, approval: str = ""):
        """The read of a person as a call (with an approval when given)."""
        return lambda: self.cs.GetIdentity(common_pb2.ResidentKey(resident_code=code), metadata=self._metadata(approval),
                                           timeout=10)

    def future(self, code: str):
        """The read of a person, sent (its reply to come)."""
        return self.cs.GetIdentity.future(common_pb2.ResidentKey(resident_code=code), metadata=self._metadata(),
                                          timeout=10)

    def _metadata(self, approval: str = "") -> tuple:
        return self.session + (((CS_READ_APPROVAL_KEY, approval),) if approval else ())


@contextmanager
def _over_the_limit_at_the_cs(subject, spare: int = 2):
    """A new operator (clerk and manager) of the roster who has read BULK_LIMIT people at the CS, with spare people
    of the CS they have not read; removed from the roster at the end."""
    manager = _manager(subject)
    kizon, boss = _kizon(subject), subject.session(manager)
    operator = f"CONFORM-{uuid.uuid4().hex[:10].upper()}"
    added = answered(lambda: kizon.AddOperator(kizon_pb2.OperatorChange(
        entry=kizon_pb2.OperatorEntry(operator_id=operator, roles=["clerk", "manager"]),
        reason="適合試験: 統合端末の一括出力"), metadata=boss, timeout=30))
    try:
        session = _login(subject, operator, credential=added.credential)
        # the register's people, by an export the manager approved (counted under the approval, not in the window)
        records = _export(kizon, session, _approval(subject, operator), limit=BULK_LIMIT + 10 * spare)
        reader = _Reader(operator, session, cs_pb2_grpc.CommunicationServerStub(
            subject.channel(subject.terminal(), subject.node)))
        as_kizon = cs_pb2_grpc.CommunicationServerStub(subject.as_node(subject.kizon().name))
        codes = [r.resident_code for r in records]
        while codes and len(reader.read) < BULK_LIMIT:  # (the reads in flight together: at most the limit)
            asked, codes = codes[:BULK_LIMIT - len(reader.read)], codes[BULK_LIMIT - len(reader.read):]
            for code, future in [(c, reader.future(c)) for c in asked]:
                status, reason, details, _ = outcome(future.result)
                if status == grpc.StatusCode.OK:
                    reader.read.append(code)
                elif status != grpc.StatusCode.NOT_FOUND:  # (not at the CS yet: a person registered a moment ago)
                    raise Failed(f"the reads of {BULK_LIMIT} people within the limit answered",
                                 said(status, reason, details), reason)
        held = [(c, as_kizon.GetIdentity.future(common_pb2.ResidentKey(resident_code=c), timeout=10)) for c in codes]
        reader.unread = [c for c, future in held if outcome(future.result)[0] == grpc.StatusCode.OK][:spare]
        if len(reader.unread) < spare:
            raise Skipped(f"the CS holds fewer than {BULK_LIMIT + spare} people of the register: load more (testbed load)")
        yield reader
    finally:
        kizon.RemoveOperator(kizon_pb2.OperatorChange(entry=kizon_pb2.OperatorEntry(operator_id=operator),
                                                      reason="適合試験の終わり"), metadata=boss, timeout=30)


@case("cs/一括出力/approval-required", roles=("cs",), profiles=("rules", "security"),
      rules=(S.CS_BULK_OUTPUT_APPROVAL_REQUIRED, S.CS_BULK_OUTPUT_APPROVAL_COUNT),
      request=f"GetIdentity from a 統合端末 by an operator (of the case's own) who has read {BULK_LIMIT} people: of "
              "another person; of one read already; of the other person with a manager's approval for 1 person; "
              "of a third with the same approval",
      asserts="PERMISSION_DENIED CS_BULK_OUTPUT_APPROVAL_REQUIRED; the person read already answered; the approved read "
              "answered; the third PERMISSION_DENIED CS_BULK_OUTPUT_APPROVAL_COUNT")
def cs_approval_required(subject) -> str:
    """A 統合端末's reads beyond the limit need a manager's approval, which covers the people it names and no more."""
    with _over_the_limit_at_the_cs(subject) as reader:
        first, second = reader.unread
        observed = refused(reader(first), S.CS_BULK_OUTPUT_APPROVAL_REQUIRED, node=subject.node.name)
        same(reader.read[0], answered(reader(reader.read[0])).resident_code, "a person read already in the window")
        token = _approval(subject, reader.operator, most=1, door="cs")
        same(first, answered(reader(first, token)).resident_code, "the read the approval covers")
        spent = refused(reader(second, token), S.CS_BULK_OUTPUT_APPROVAL_COUNT, node=subject.node.name)
    return f"{observed.split(':')[0]}; approved for 1: answered, then {spent.split(':')[0]}"


@case("cs/一括出力/whose-approval", roles=("cs",), profiles=("rules", "security"),
      rules=(S.CS_BULK_OUTPUT_APPROVAL_INVALID, S.CS_BULK_OUTPUT_APPROVAL_OTHER_OPERATOR,
             S.CS_BULK_OUTPUT_SELF_APPROVAL),
      request=f"GetIdentity from a 統合端末 by an operator (a manager, of the case's own) who has read {BULK_LIMIT} "
              "people, of another person with: a token of the caller's making; kizon's approval for them with one "
              "character of it changed; one for them to be spent at kizon; kizon's approval for another operator; "
              "for them at another terminal; the approval they gave another operator; then kizon's approval for "
              "them here",
      asserts="PERMISSION_DENIED CS_BULK_OUTPUT_APPROVAL_INVALID three times (an approval is spent at the door it "
              "names, never at two), CS_BULK_OUTPUT_APPROVAL_OTHER_OPERATOR twice, CS_BULK_OUTPUT_SELF_APPROVAL; the "
              "last answered")
def cs_whose_approval(subject) -> str:
    """An approval spent at the CS is one kizon signed, for the operator at the terminal reading, by someone else."""
    with _over_the_limit_at_the_cs(subject, spare=1) as reader:
        target = reader.unread[0]
        own = _approval(subject, reader.operator, door="cs")
        body, signature = own.split(".", 1)
        tampered = body[:-2] + ("AA" if body[-2:] != "AA" else "BB") + "." + signature
        other = _exporter(subject)
        tries = [("forged.token", S.CS_BULK_OUTPUT_APPROVAL_INVALID), (tampered, S.CS_BULK_OUTPUT_APPROVAL_INVALID),
                 (_approval(subject, reader.operator), S.CS_BULK_OUTPUT_APPROVAL_INVALID),
                 (_approval(subject, other, door="cs"), S.CS_BULK_OUTPUT_APPROVAL_OTHER_OPERATOR),
                 (_approval(subject, reader.operator, 1, door="cs"), S.CS_BULK_OUTPUT_APPROVAL_OTHER_OPERATOR),
                 (_approval(subject, other, approver=reader.session, door="cs"), S.CS_BULK_OUTPUT_SELF_APPROVAL)]
        seen = [refused(reader(target, token), rule, node=subject.node.name).split(":")[0] for token, rule in tries]
        same(target, answered(reader(target, own)).resident_code, "the read with kizon's approval for them here")
    return "; ".join(seen) + "; their own approval: answered"
