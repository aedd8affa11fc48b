"""The cases of kizon's roster of operators (操作者の名簿, PIA 2464–2471 アカウント管理; docs/operators.md): only a manager
reads or changes it, at a terminal; a role given is one of the one set; a manager never changes their own roles and the
last manager stays; an operator id is well formed, new and never given twice; a change names a current operator; a
委託先's operator holds the role contractor alone, and a 再委託先's operator names a permission a manager recorded; an
operator logs in with their own credential. Each as a terminal sends it; each refused change reads the roster back
(ListOperators, as the manager) and asserts it is as it was.

The operators these cases add are the cases' own (fresh ids), removed again at the end of each case."""
from __future__ import annotations

import uuid

from nodes.reasons import kizon as K
from protos import kizon_pb2
from testbed.client import login_request
from testbed.conform.access import (CHANGE, _change, _counter_stub, _fresh_id, _login, _manage, _operator,
                                    _with_role)
from testbed.conform.case import Failed, Skipped, answered, case, outcome, refused, said, same

CONTRACTOR = "適合試験株式会社"  # the 委託先 of the cases' own contractors' operators


def _roster(subject, versioned: bool = True):
    """The roster as the municipality's manager reads it: (version, [(id, roles, 委託先, 再委託先, permission)]), or
    without the version (for a case that added and removed an operator of its own, which moves it on)."""
    stub, session = _counter_stub(subject), subject.session(_with_role(subject, "manager"))
    listed = answered(lambda: stub.ListOperators(kizon_pb2.RosterRequest(), metadata=session, timeout=10))
    operators = sorted((o.operator_id, tuple(sorted(o.roles)), o.contractor, o.subcontractor, o.permission)
                       for o in listed.operators)
    return (listed.version, operators) if versioned else operators


def _by_manager(subject, method: str):
    """A roster method called by the municipality's manager at the first terminal, given the request."""
    call = getattr(_counter_stub(subject), method)
    session = subject.session(_with_role(subject, "manager"))
    return lambda request: call(request, metadata=session, timeout=CHANGE)


def _refused_each(tries, rule) -> str:
    """Every call of tries [(what, call)] refused under rule; what was observed, one short line."""
    return "; ".join(f"{what}: {refused(call, rule).split(':')[0]}" for what, call in tries)


@case("kizon/名簿/manager-only", roles=("kizon",), profiles=("rules", "security"), rules=(K.ROSTER_MANAGER,),
      request="ListOperators, AddOperator (a fresh id), ChangeOperatorRoles (their own, manager added), RemoveOperator "
              "(the manager) and PermitSubcontract by an operator without the manager role",
      asserts="PERMISSION_DENIED ROSTER_MANAGER, each; the roster unchanged; the manager's ListOperators answered")
def manager_only(subject) -> str:
    """Only a manager reads or changes the roster."""
    clerk, manager = _with_role(subject, "manager", without=True), _with_role(subject, "manager")
    stub, session = _counter_stub(subject), subject.session(clerk)
    before = _roster(subject)
    calls = [("ListOperators", kizon_pb2.RosterRequest()),
             ("AddOperator", _change(_fresh_id(), ["clerk"])),
             ("ChangeOperatorRoles", _change(clerk, ["clerk", "manager"])),
             ("RemoveOperator", _change(manager)),
             ("PermitSubcontract", kizon_pb2.SubcontractPermission(
                 contractor=CONTRACTOR, subcontractor="適合再委託株式会社", reference=f"適合-{uuid.uuid4().hex[:8]}",
                 reason="適合試験"))]
    observed = _refused_each([(m, lambda m=m, r=r: getattr(stub, m)(r, metadata=session, timeout=CHANGE))
                              for m, r in calls], K.ROSTER_MANAGER)
    same(before, _roster(subject), "the roster afterwards")
    return f"{observed}; the manager reads {len(before[1])} operators"


@case("kizon/名簿/role-unknown", roles=("kizon",), profiles=("rules",), rules=(K.ROLE_UNKNOWN,),
      request="AddOperator (fresh ids) with the roles [clerk, superuser], and with none; ChangeOperatorRoles of an "
              "operator of the case's own to [admin]",
      asserts="INVALID_ARGUMENT ROLE_UNKNOWN, each; the roster unchanged; the operator's roles as they were")
def role_unknown(subject) -> str:
    """A role given is one of the one set of roles, and an operator holds at least one."""
    add, change = _by_manager(subject, "AddOperator"), _by_manager(subject, "ChangeOperatorRoles")
    with _operator(subject) as (operator, _, _):
        before = _roster(subject)
        observed = _refused_each([
            ("superuser", lambda: add(_change(_fresh_id(), ["clerk", "superuser"]))),
            ("no role", lambda: add(_change(_fresh_id(), []))),
            ("changed to admin", lambda: change(_change(operator, ["admin"])))], K.ROLE_UNKNOWN)
        same(before, _roster(subject), "the roster afterwards")
    return observed


@case("kizon/名簿/self-change", roles=("kizon",), profiles=("rules", "security"), rules=(K.ROSTER_SELF_CHANGE,),
      request="a manager of the case's own (clerk, manager) logs in and changes their own roles: adds operations; "
              "takes manager away",
      asserts="PERMISSION_DENIED ROSTER_SELF_CHANGE, both; the roster unchanged")
def self_change(subject) -> str:
    """No one grants themselves a role, nor changes their own roles at all: another manager does."""
    with _operator(subject, ("clerk", "manager")) as (operator, credential, _):
        stub, session = _counter_stub(subject), _login(subject, operator, credential)
        before = _roster(subject)
        observed = _refused_each([
            (f"{roles}", lambda roles=roles: stub.ChangeOperatorRoles(_change(operator, roles), metadata=session,
                                                                      timeout=CHANGE))
            for roles in (["clerk", "manager", "operations"], ["clerk"])], K.ROSTER_SELF_CHANGE)
        same(before, _roster(subject), "the roster afterwards")
    return observed


@case("kizon/名簿/id-format", roles=("kizon",), profiles=("rules",), rules=(K.OPERATOR_ID_FORMAT,),
      request="AddOperator with the ids 'CF 0110' (a space), 33 letters, and none",
      asserts="INVALID_ARGUMENT OPERATOR_ID_FORMAT, each; the roster unchanged")
def id_format(subject) -> str:
    """An operator id is 1 to 32 letters, digits, '-' or '_'."""
    add = _by_manager(subject, "AddOperator")
    before = _roster(subject)
    observed = _refused_each([(what, lambda given=given: add(_change(given, ["clerk"])))
                              for what, given in (("a space", "CF 0110"), ("33 letters", "C" * 33), ("none", ""))],
                             K.OPERATOR_ID_FORMAT)
    same(before, _roster(subject), "the roster afterwards")
    return observed


@case("kizon/名簿/id-taken", roles=("kizon",), profiles=("rules", "security"), rules=(K.OPERATOR_ID_TAKEN,),
      request="AddOperator with the id of an operator of the roster; an operator of the case's own is added and "
              "removed, then AddOperator with their id",
      asserts="ALREADY_EXISTS OPERATOR_ID_TAKEN, both (an id is never shared, never given again); the roster as before")
def id_taken(subject) -> str:
    """An added operator's id is new: never one a current operator holds, never one a removed operator held."""
    add = _by_manager(subject, "AddOperator")
    current = _with_role(subject, "manager", without=True)
    before = _roster(subject, versioned=False)
    with _operator(subject) as (gone, _, _):
        _manage(subject, "RemoveOperator", _change(gone, reason="適合試験: 退職"))
    observed = _refused_each([("current", lambda: add(_change(current, ["clerk"]))),
                              ("removed", lambda: add(_change(gone, ["clerk"])))], K.OPERATOR_ID_TAKEN)
    same(before, _roster(subject, versioned=False), "the roster afterwards")
    return observed


@case("kizon/名簿/operator-unknown", roles=("kizon",), profiles=("rules",), rules=(K.OPERATOR_UNKNOWN,),
      request="ChangeOperatorRoles and RemoveOperator of an id no one holds; of an operator of the case's own once "
              "removed",
      asserts="NOT_FOUND OPERATOR_UNKNOWN, each; the roster as before (the removed operator not back)")
def operator_unknown(subject) -> str:
    """A change or removal names a current operator of the roster."""
    change, remove = _by_manager(subject, "ChangeOperatorRoles"), _by_manager(subject, "RemoveOperator")
    before = _roster(subject, versioned=False)
    with _operator(subject) as (gone, _, _):
        _manage(subject, "RemoveOperator", _change(gone, reason="適合試験: 退職"))
    nobody = _fresh_id()
    observed = _refused_each([("change no one", lambda: change(_change(nobody, ["clerk"]))),
                              ("remove no one", lambda: remove(_change(nobody))),
                              ("change the removed", lambda: change(_change(gone, ["clerk"]))),
                              ("remove the removed", lambda: remove(_change(gone)))], K.OPERATOR_UNKNOWN)
    same(before, _roster(subject, versioned=False), "the roster afterwards")
    return observed


@case("kizon/委託/contractor-roles", roles=("kizon",), profiles=("rules", "security"), rules=(K.CONTRACTOR_ROLES,),
      request=f"AddOperator (fresh ids) of a 委託先's operator ({CONTRACTOR}) with [contractor, individual_number], with "
              "[clerk]; of staff with [contractor]; ChangeOperatorRoles of a 委託先's operator of the case's own to "
              "[contractor, individual_number]",
      asserts="INVALID_ARGUMENT CONTRACTOR_ROLES, each; the roster unchanged")
def contractor_roles(subject) -> str:
    """A 委託先's operator holds the role contractor and no other (never the 個人番号); staff never hold it."""
    add, change = _by_manager(subject, "AddOperator"), _by_manager(subject, "ChangeOperatorRoles")
    with _operator(subject, ("contractor",), contractor=CONTRACTOR) as (operator, _, _):
        before = _roster(subject)
        observed = _refused_each([
            ("個人番号 too", lambda: add(_change(_fresh_id(), ["contractor", "individual_number"], contractor=CONTRACTOR))),
            ("clerk", lambda: add(_change(_fresh_id(), ["clerk"], contractor=CONTRACTOR))),
            ("staff as contractor", lambda: add(_change(_fresh_id(), ["contractor"]))),
            ("changed to 個人番号", lambda: change(_change(operator, ["contractor", "individual_number"])))],
            K.CONTRACTOR_ROLES)
        same(before, _roster(subject), "the roster afterwards")
    return observed


@case("kizon/委託/subcontract-permission", roles=("kizon",), profiles=("rules", "security"),
      rules=(K.SUBCONTRACT_PERMISSION,),
      request=f"AddOperator (fresh ids) of a 再委託先's operator of {CONTRACTOR}: naming no permission; naming one no "
              "manager recorded; a permission without a 再委託先; a 再委託先 without a 委託先",
      asserts="FAILED_PRECONDITION SUBCONTRACT_PERMISSION, each; the roster unchanged")
def subcontract_permission(subject) -> str:
    """A 再委託先's operator names their 委託先 and the permission a manager recorded for that 再委託."""
    add = _by_manager(subject, "AddOperator")
    sub, unrecorded = "適合再委託株式会社", f"適合-未記録-{uuid.uuid4().hex[:8]}"
    before = _roster(subject)
    tries = [("no permission", dict(roles=["contractor"], contractor=CONTRACTOR, subcontractor=sub)),
             ("unrecorded", dict(roles=["contractor"], contractor=CONTRACTOR, subcontractor=sub, permission=unrecorded)),
             ("no 再委託先", dict(roles=["contractor"], contractor=CONTRACTOR, permission=unrecorded)),
             ("no 委託先", dict(roles=["clerk"], subcontractor=sub))]
    observed = _refused_each([(what, lambda entry=entry: add(_change(_fresh_id(), **entry))) for what, entry in tries],
                             K.SUBCONTRACT_PERMISSION)
    same(before, _roster(subject), "the roster afterwards")
    return observed


@case("kizon/login/authentication", roles=("kizon",), profiles=("rules", "security"),
      rules=(K.OPERATOR_AUTHENTICATION,),
      request="Login of an operator of the roster with another's credential, with a made-up one; Login of an id no "
              "one holds; then with their own credential",
      asserts="UNAUTHENTICATED OPERATOR_AUTHENTICATION, each; their own credential answered, a session of theirs")
def authentication(subject) -> str:
    """An operator logs in with their own credential alone."""
    place = subject.topology.municipality(subject.home())
    operator, other = place.operators[0].id, place.operators[-1].id
    mine, theirs = login_request(subject.network, place.code, operator), login_request(subject.network, place.code, other)
    stub = _counter_stub(subject)
    tries = [("made up", kizon_pb2.LoginRequest(operator_id=operator, credential="0" * 32)),
             ("no one's", kizon_pb2.LoginRequest(operator_id=_fresh_id(), credential=mine.credential))]
    if other != operator:
        tries.insert(0, ("another's", kizon_pb2.LoginRequest(operator_id=operator, credential=theirs.credential)))
    observed = _refused_each([(what, lambda r=r: stub.Login(r, timeout=10)) for what, r in tries],
                             K.OPERATOR_AUTHENTICATION)
    session = answered(lambda: stub.Login(mine, timeout=10))
    same(operator, session.operator_id, "the session's operator")
    return f"{observed}; their own answered"


@case("kizon/名簿/last-manager", roles=("kizon",), profiles=("rules", "security"), rules=(K.LAST_MANAGER,),
      request="RemoveOperator by the roster's one manager of themselves",
      asserts="FAILED_PRECONDITION LAST_MANAGER; the roster unchanged (SKIPPED when the roster has more than one "
              "manager)")
def last_manager(subject) -> str:
    """The roster keeps at least one manager: the last one is not removed. (A node that breaks the rule loses its
    one manager, and the roster cases after this one cannot run: it is the last of them.)"""
    manager = _with_role(subject, "manager")
    before = _roster(subject)
    managers = [o[0] for o in before[1] if "manager" in o[1]]
    if managers != [manager]:
        raise Skipped(f"the roster has the managers {', '.join(managers)}: the rule is of the last one")
    remove = _by_manager(subject, "RemoveOperator")
    code, reason, details, _ = outcome(lambda: remove(_change(manager, reason="適合試験: 最後の管理者")))
    if reason != K.LAST_MANAGER.reason or code != K.LAST_MANAGER.code:
        raise Failed(f"{K.LAST_MANAGER.code.name} {K.LAST_MANAGER.reason}", said(code, reason, details) +
                     (f" (the roster lost its one manager, {manager})" if code.name == "OK" else ""), reason)
    same(before, _roster(subject), "the roster afterwards")
    return said(code, reason, details)


# -- rules no caller of the topology can reach ------------------------------------------------------------------------
NOT_A_CASE = {
    K.LOGIN_AT_TERMINAL.reason: "the policy lets only a terminal call Kizon/Login, so any other caller is refused by "
                                "the policy (DEFAULT_DENY, policy/matrix) before the rule is asked",
}
