"""The operator's lifecycle (docs/operators.md): a manager adds, changes and removes operators in kizon's own roster,
each change audited with its reason; a removed operator's live session, or one whose roles were reduced, is refused on
its very next call; a 委託先's operator does the 委託's work and nothing else, never sees the 個人番号, and a 再委託先's
operator is added only under a recorded permission; a removal acknowledged holds through kill -9 of kizon.

The roster changes here, so the module runs a network of its own. The unit tests at the end check what every node that
admits terminal sessions does with a signed roster (nodes/sessions.py), the CS's and the 中間サーバ's side included."""
from __future__ import annotations

import json
import stat

import pytest
from grpc import StatusCode as Code

from conftest import make_network
from helpers import TODAY, address, kill, move_in_from_abroad, poll, refused
from nodes.reasons import access as A, common as C, kizon as K
from nodes.sessions import (ROLE_METHODS, ROLES, Roster, RosterBook, RosterEntry, TokenError, RosterReceiver,
                            methods_allowed, sign_roster)
from nodes.store import Store
from protos import card_pb2, common_pb2, identity_pb2, kizon_pb2, kizon_pb2_grpc
from testbed import requests
from testbed.client import Counter, channel, cs_stub, eventually, session_metadata, terminal_ends
from testbed.topology import Topology

M = "142140"  # 伊勢原市: the roster the tests change
OTHER = "142115"  # 秦野市: its one manager (the last-manager test)


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    """A network of this module's own (its rosters change), whose topology names one more clerk of 伊勢原市, OP0004,
    for the kill -9 test to remove (an operator of the topology: a roster kept nowhere but in memory would bring them
    back with the topology on restart)."""
    data = Topology.load().to_dict()
    next(m for m in data["municipalities"] if m["code"] == M)["operators"].append({"id": "OP0004", "roles": ["clerk"]})
    network = make_network(tmp_path_factory.mktemp("operators"), Topology.from_dict(data))
    network.up()
    yield network
    network.down()


@pytest.fixture(scope="module")
def manager(net):
    """OP0003 (manager) at T0003 of 伊勢原市."""
    with Counter(net, M, "T0003", "OP0003") as counter:
        yield counter


class Terminal:
    """A counter terminal where an operator logs in with a credential given (an operator added at run time)."""

    def __init__(self, network, terminal: str, operator: str, credential: str, municipality: str = M):
        cert, ends = terminal_ends(network, municipality, terminal)
        self.municipality = municipality
        self.channels = [channel(end, cert) for end in ends]
        self.kizon = kizon_pb2_grpc.KizonStub(self.channels[0])
        self.cs = cs_stub(*self.channels[1:])
        self.session = self.kizon.Login(kizon_pb2.LoginRequest(operator_id=operator, credential=credential), timeout=10)
        self.metadata = session_metadata(self.session.token)

    def __call__(self, method, request, timeout: float = 30):
        return method(requests.with_notifier(request), metadata=self.metadata, timeout=timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for ch in self.channels:
            ch.close()


def change(operator: str, roles=(), reason: str = "試験: 名簿の変更", **entry) -> kizon_pb2.OperatorChange:
    """A roster change naming an operator, roles and a reason."""
    return kizon_pb2.OperatorChange(entry=kizon_pb2.OperatorEntry(operator_id=operator, roles=list(roles), **entry),
                                    reason=reason)


def add(manager: Counter, operator: str, roles, **entry) -> kizon_pb2.RosterChange:
    """AddOperator by the manager; the reply (with the credential)."""
    reply = manager(manager.kizon.AddOperator, change(operator, roles, reason=f"試験: {operator} を追加", **entry))
    assert reply.credential and reply.roster_version > 0
    return reply


def masked(number: str) -> bool:
    """Whether a 個人番号 item is shown masked (no digit of it)."""
    return not any(c.isdigit() for c in number)


def audit_entries(network, method: str) -> list[dict]:
    entries = [json.loads(line) for line in network.audit_file(f"kizon-{M}").read_text().splitlines()]
    return [e for e in entries if e["method"].endswith(f"/{method}")]


def cs_holds(reply: kizon_pb2.RosterChange, network, municipality: str = M) -> bool:
    """Whether the change's version reached the CS (once the CS takes rosters: docs/operators.md)."""
    cs = network.topology.find("cs", municipality).name
    assert cs in set(reply.delivered_to) | set(reply.pending), "the CS is named either way, never left out"
    return cs in reply.delivered_to


# -- the lifecycle ----------------------------------------------------------------------------------------------------
def test_an_added_operator_logs_in_with_the_credential_shown_once(net, manager):
    """AddOperator answers the credential once; kizon keeps only its salted verifier, in a 0600 file of its own
    secrets; the new operator logs in with it and works; the change is audited with its reason."""
    reply = add(manager, "OP0101", ["clerk"])
    with Terminal(net, "T0002", "OP0101", reply.credential) as clerk:
        assert list(clerk.session.roles) == ["clerk"]
        moved_in = move_in_from_abroad(clerk)
        assert clerk(clerk.kizon.GetResident, common_pb2.ResidentKey(resident_code=moved_in.resident_code)).name_kanji
    with refused(Code.UNAUTHENTICATED, reason=K.OPERATOR_AUTHENTICATION.reason):
        Terminal(net, "T0002", "OP0101", "0" * 32)
    verifiers = net.pki.dir / "nodes" / f"kizon-{M}" / "operators.json"
    assert stat.S_IMODE(verifiers.stat().st_mode) == 0o600
    kept = verifiers.read_text()
    assert '"OP0101"' in kept and reply.credential not in kept
    assert reply.credential not in net.audit_file(f"kizon-{M}").read_text()
    listed = manager(manager.kizon.ListOperators, kizon_pb2.RosterRequest())
    assert listed.version >= reply.roster_version and "OP0101" in {o.operator_id for o in listed.operators}
    added = poll(lambda: [e for e in audit_entries(net, "AddOperator") if "OP0101" in e["subject"]])
    assert added[-1]["status"] == "OK" and added[-1]["operator"] == "OP0003"
    assert "試験: OP0101 を追加" in added[-1]["subject"] and f"v{reply.roster_version}" in added[-1]["subject"]


def test_roles_reduced_refuse_the_old_session_even_once_given_back(net, manager):
    """A session claims the roles it was issued with: once one is taken away, the old session is refused at once
    (its role is not held); a new login has the new roles; and when the role is given back, the old session still
    counts no more (it predates the change that took the role away)."""
    reply = add(manager, "OP0102", ["clerk", "manager"])
    with Terminal(net, "T0002", "OP0102", reply.credential) as old:
        assert old(old.kizon.ListOperators, kizon_pb2.RosterRequest()).version >= reply.roster_version
        reduced = manager(manager.kizon.ChangeOperatorRoles, change("OP0102", ["clerk"]))
        with refused(Code.PERMISSION_DENIED, "OP0102", reason=A.OPERATOR_ROLE_NOT_HELD.reason):
            old(old.kizon.ListOperators, kizon_pb2.RosterRequest())
        with refused(Code.PERMISSION_DENIED, reason=A.OPERATOR_ROLE_NOT_HELD.reason):  # any call, not just the role's
            old(old.kizon.GetResident, common_pb2.ResidentKey(resident_code="00000000000"))
        with Terminal(net, "T0002", "OP0102", reply.credential) as new:
            assert list(new.session.roles) == ["clerk"]
            with refused(Code.PERMISSION_DENIED, reason=K.ROSTER_MANAGER.reason):
                new(new.kizon.ListOperators, kizon_pb2.RosterRequest())
        manager(manager.kizon.ChangeOperatorRoles, change("OP0102", ["clerk", "manager"]))
        with refused(Code.UNAUTHENTICATED, f"version {reduced.roster_version}", reason=A.SESSION_REVOKED.reason):
            old(old.kizon.ListOperators, kizon_pb2.RosterRequest())
        with Terminal(net, "T0002", "OP0102", reply.credential) as again:
            again(again.kizon.ListOperators, kizon_pb2.RosterRequest())
    changed = [e for e in audit_entries(net, "ChangeOperatorRoles") if "OP0102" in e["subject"]]
    assert "[clerk,manager] → [clerk]" in changed[-2]["subject"] and "試験: 名簿の変更" in changed[-2]["subject"]


def test_a_removed_operators_live_session_is_refused_on_its_next_call(net, manager):
    """OP0002 works at T0002 (kizon and the CS); a manager removes them: their live session is refused on its very next
    call at kizon, they cannot log in again, and at the CS too once the CS holds the version (docs/operators.md)."""
    with Counter(net, M, "T0002", "OP0002") as clerk:
        clerk(clerk.kizon.GetResident, common_pb2.ResidentKey(resident_code=move_in_from_abroad(clerk).resident_code))
        clerk(clerk.cs.GetPoolStatus, common_pb2.Empty())
        reply = manager(manager.kizon.RemoveOperator, change("OP0002", reason="試験: 退職"))
        with refused(Code.UNAUTHENTICATED, "OP0002", reason=A.OPERATOR_NOT_IN_ROSTER.reason):
            clerk(clerk.kizon.GetResident, common_pb2.ResidentKey(resident_code="00000000000"))
        if cs_holds(reply, net):
            with refused(Code.UNAUTHENTICATED, "OP0002", reason=A.OPERATOR_NOT_IN_ROSTER.reason):
                clerk(clerk.cs.GetPoolStatus, common_pb2.Empty())
    with refused(Code.UNAUTHENTICATED, reason=K.OPERATOR_AUTHENTICATION.reason):
        Counter(net, M, "T0002", "OP0002")
    assert "OP0002" not in {o.operator_id for o in manager(manager.kizon.ListOperators, kizon_pb2.RosterRequest()).operators}
    assert '"OP0002"' not in (net.pki.dir / "nodes" / f"kizon-{M}" / "operators.json").read_text()
    removed = poll(lambda: [e for e in audit_entries(net, "RemoveOperator") if "OP0002" in e["subject"]])
    assert removed[-1]["status"] == "OK" and "試験: 退職" in removed[-1]["subject"]
    with refused(Code.ALREADY_EXISTS, reason=K.OPERATOR_ID_TAKEN.reason):  # never given to someone else
        manager(manager.kizon.AddOperator, change("OP0002", ["clerk"]))


def test_a_clerk_changes_nothing_in_the_roster(net):
    """OP0001 (clerk, 個人番号) tries every roster RPC: each is refused, and audited as refused."""
    calls = [("ListOperators", kizon_pb2.RosterRequest()), ("AddOperator", change("OP0199", ["clerk"])),
             ("ChangeOperatorRoles", change("OP0001", ["clerk", "manager"])),
             ("RemoveOperator", change("OP0003")),
             ("PermitSubcontract", kizon_pb2.SubcontractPermission(contractor="a", subcontractor="b", reference="c",
                                                                   reason="d"))]
    with Counter(net, M, "T0001", "OP0001") as clerk:
        for method, request in calls:
            with refused(Code.PERMISSION_DENIED, "manager", reason=K.ROSTER_MANAGER.reason):
                clerk(getattr(clerk.kizon, method), request)
    for method, _ in calls:
        assert poll(lambda: [e for e in audit_entries(net, method) if e["operator"] == "OP0001"])[-1]["status"] == \
            "PERMISSION_DENIED"


def test_a_manager_oversteps_nothing(net, manager):
    """No self-escalation, no role outside the set, no id given twice, a reason for every change; a 委託先's operator
    holds the role contractor alone (never the 個人番号), staff never hold it; a 再委託先's operator needs the
    permission a manager recorded."""
    kizon = manager.kizon
    with refused(Code.PERMISSION_DENIED, reason=K.ROSTER_SELF_CHANGE.reason):
        manager(kizon.ChangeOperatorRoles, change("OP0003", ["clerk", "manager", "official", "individual_number"]))
    with refused(Code.INVALID_ARGUMENT, "superuser", reason=K.ROLE_UNKNOWN.reason):
        manager(kizon.AddOperator, change("OP0110", ["clerk", "superuser"]))
    with refused(Code.INVALID_ARGUMENT, reason=K.ROLE_UNKNOWN.reason):
        manager(kizon.ChangeOperatorRoles, change("OP0001", ["admin"]))
    with refused(Code.INVALID_ARGUMENT, reason=K.ROLE_UNKNOWN.reason):
        manager(kizon.AddOperator, change("OP0110", []))
    with refused(Code.ALREADY_EXISTS, reason=K.OPERATOR_ID_TAKEN.reason):
        manager(kizon.AddOperator, change("OP0001", ["clerk"]))
    with refused(Code.INVALID_ARGUMENT, reason=K.OPERATOR_ID_FORMAT.reason):
        manager(kizon.AddOperator, change("OP 0110", ["clerk"]))
    with refused(Code.INVALID_ARGUMENT, "理由", reason=C.ITEM_REQUIRED.reason):
        manager(kizon.AddOperator, change("OP0110", ["clerk"], reason=""))
    with refused(Code.NOT_FOUND, reason=K.OPERATOR_UNKNOWN.reason):
        manager(kizon.RemoveOperator, change("OP9999"))
    with refused(Code.INVALID_ARGUMENT, reason=K.CONTRACTOR_ROLES.reason):
        manager(kizon.AddOperator, change("OP0111", ["contractor", "individual_number"], contractor="ミツイワ株式会社"))
    with refused(Code.INVALID_ARGUMENT, reason=K.CONTRACTOR_ROLES.reason):
        manager(kizon.AddOperator, change("OP0111", ["clerk"], contractor="ミツイワ株式会社"))
    with refused(Code.INVALID_ARGUMENT, reason=K.CONTRACTOR_ROLES.reason):
        manager(kizon.AddOperator, change("OP0111", ["contractor"]))  # staff never hold it
    add(manager, "OP0111", ["contractor"], contractor="ミツイワ株式会社")
    with refused(Code.INVALID_ARGUMENT, reason=K.CONTRACTOR_ROLES.reason):
        manager(kizon.ChangeOperatorRoles, change("OP0111", ["contractor", "individual_number"]))
    sub = dict(contractor="ミツイワ株式会社", subcontractor="株式会社 エイジェック")
    with refused(Code.FAILED_PRECONDITION, reason=K.SUBCONTRACT_PERMISSION.reason):
        manager(kizon.AddOperator, change("OP0112", ["contractor"], **sub))
    with refused(Code.FAILED_PRECONDITION, reason=K.SUBCONTRACT_PERMISSION.reason):
        manager(kizon.AddOperator, change("OP0112", ["contractor"], permission="許諾-2024-001", **sub))
    manager(kizon.PermitSubcontract, kizon_pb2.SubcontractPermission(reference="許諾-2024-001", reason="再委託承認依頼を審査",
                                                                     **sub))
    with refused(Code.FAILED_PRECONDITION, reason=K.SUBCONTRACT_PERMISSION.reason):  # the permission is for that pair
        manager(kizon.AddOperator, change("OP0112", ["contractor"], contractor="他社", subcontractor=sub["subcontractor"],
                                          permission="許諾-2024-001"))
    add(manager, "OP0112", ["contractor"], permission="許諾-2024-001", **sub)
    listed = {o.operator_id: o for o in manager(kizon.ListOperators, kizon_pb2.RosterRequest()).operators}
    assert (listed["OP0112"].subcontractor, listed["OP0112"].permission) == (sub["subcontractor"], "許諾-2024-001")


def test_the_last_manager_stays(net):
    """秦野市 has one manager: they cannot remove themselves; with a second manager added they can, and then the new one
    is the last."""
    with Counter(net, OTHER, "T0003", "OP0003") as only:
        with refused(Code.FAILED_PRECONDITION, "last manager", reason=K.LAST_MANAGER.reason):
            only(only.kizon.RemoveOperator, change("OP0003", reason="試験: 異動"))
        second = add(only, "OP0120", ["clerk", "manager"])
        only(only.kizon.RemoveOperator, change("OP0003", reason="試験: 異動"))
    with Terminal(net, "T0003", "OP0120", second.credential, municipality=OTHER) as last:
        with refused(Code.FAILED_PRECONDITION, reason=K.LAST_MANAGER.reason):
            last(last.kizon.RemoveOperator, change("OP0120", reason="試験: 異動"))
        with refused(Code.PERMISSION_DENIED, reason=K.ROSTER_SELF_CHANGE.reason):
            last(last.kizon.ChangeOperatorRoles, change("OP0120", ["clerk"]))


def test_a_contractors_operator_does_the_itaku_and_nothing_else(net, manager):
    """A 委託先's operator (ミツイワ株式会社), even at T0001 (registered for the 個人番号): reads with the 個人番号 masked,
    issues a 住民票の写し without it, enters a 転居; never the 個人番号 printed, nothing outside the 委託 (出生, bulk
    output, cards, the roster), nothing at the CS."""
    with Counter(net, M, "T0001", "OP0001") as staff:
        person = move_in_from_abroad(staff)
        assert staff(staff.kizon.GetResident, common_pb2.ResidentKey(resident_code=person.resident_code)).individual_number
    reply = add(manager, "OP0130", ["contractor"], contractor="ミツイワ株式会社")
    key = common_pb2.ResidentKey(resident_code=person.resident_code)
    with Terminal(net, "T0001", "OP0130", reply.credential) as contractor:
        read = contractor(contractor.kizon.GetResident, key)
        assert read.name_kanji == person.name_kanji and masked(read.individual_number)
        copy = contractor(contractor.kizon.IssueCertificate, kizon_pb2.CertificateRequest(
            kind=kizon_pb2.RESIDENT_COPY, resident_code=person.resident_code))
        assert copy.ListFields()
        with refused(Code.PERMISSION_DENIED, reason=K.INDIVIDUAL_NUMBER_PRINT_PERMISSION.reason):
            contractor(contractor.kizon.IssueCertificate, kizon_pb2.CertificateRequest(
                kind=kizon_pb2.RESIDENT_COPY, resident_code=person.resident_code, include_individual_number=True,
                justification="本人の請求"))
        moved = contractor(contractor.kizon.MoveWithin, kizon_pb2.MoveWithinRequest(
            resident_code=person.resident_code, address=address(M, "77番地"), move_date=TODAY))
        assert moved.records[0].address.endswith("77番地") and masked(moved.records[0].individual_number)
        outside = [("Birth", requests.birth(person.household_number, today=TODAY)),
                   ("ExportResidents", kizon_pb2.ExportRequest(purpose="試験")),
                   ("GetHistory", key), ("ListOperators", kizon_pb2.RosterRequest()),
                   ("AddOperator", change("OP0131", ["contractor"], contractor="ミツイワ株式会社")),
                   ("ChangeCard", card_pb2.CardRequest(resident_code=person.resident_code))]
        for method, request in outside:
            with refused(Code.PERMISSION_DENIED, "委託", reason=A.ROLE_SCOPE.reason):
                response = contractor(getattr(contractor.kizon, method), request)
                list(response) if method == "ExportResidents" else response
        search = identity_pb2.IdentitySearch(name_kana=person.name_kana, address="神奈川県伊勢原市")
        # (a CS that does not hold kizon's roster yet knows no such operator: it waits for the version the session names)
        expected = (Code.PERMISSION_DENIED, A.ROLE_SCOPE) if cs_holds(reply, net) else (Code.UNAVAILABLE, A.ROSTER_BEHIND)
        with refused(expected[0], reason=expected[1].reason):
            contractor(contractor.cs.GetIdentity, key)
        with refused(expected[0], reason=expected[1].reason):
            contractor(contractor.cs.SearchIdentity, search)


def test_a_removal_acknowledged_holds_through_kill_9_of_kizon(net, manager):
    """kizon is killed the moment it has answered the removal of OP0004 (an operator of the topology); after its
    restart OP0004's live session and login are refused and the roster is at the removal's version: the topology, the
    initial roster, does not bring them back."""
    with Counter(net, M, "T0002", "OP0004") as doomed:
        doomed(doomed.kizon.GetResident, common_pb2.ResidentKey(resident_code=move_in_from_abroad(doomed).resident_code))
        removed = manager(manager.kizon.RemoveOperator, change("OP0004", reason="試験: 即日失効"))
        kill(net, f"kizon-{M}")
        net.up()  # restarts only the killed node
        probe = common_pb2.ResidentKey(resident_code="00000000000")
        with refused(Code.UNAUTHENTICATED, "OP0004", reason=A.OPERATOR_NOT_IN_ROSTER.reason):
            eventually(lambda: doomed(doomed.kizon.GetResident, probe), timeout=30, codes=(Code.UNAVAILABLE,))
    with refused(Code.UNAUTHENTICATED, reason=K.OPERATOR_AUTHENTICATION.reason):
        Counter(net, M, "T0002", "OP0004")
    roster = manager(manager.kizon.ListOperators, kizon_pb2.RosterRequest())
    assert roster.version >= removed.roster_version and "OP0004" not in {o.operator_id for o in roster.operators}


# -- what a node that admits terminal sessions does with a signed roster (the CS's and the 中間サーバ's side too) --------
def test_a_signed_roster_is_believed_only_from_its_municipality_and_only_forward(tmp_path):
    """RosterReceiver (the receiving end) keeps a roster signed with the municipality's key and newer than the one
    held; a roster of another municipality, one signed by another key, or an older one changes nothing; RosterBook
    (the guard's reader) refuses a stored roster whose signature fails (fail closed)."""
    from cryptography.hazmat.primitives.asymmetric import ed25519
    from nodes.refusal import Violation
    from nodes.sessions import ROSTER_SCHEMA
    key, other = ed25519.Ed25519PrivateKey.generate(), ed25519.Ed25519PrivateKey.generate()
    keys = {M: key.public_key(), OTHER: other.public_key()}
    store = Store(tmp_path / "store.sqlite", ROSTER_SCHEMA)
    book, receiver = RosterBook(store, keys), RosterReceiver(store, keys)
    assert book.current(M) is None  # nothing received: the topology's roster stands

    def signed(version: int, ops: dict, signer=key, municipality: str = M) -> kizon_pb2.SignedRoster:
        roster = Roster(municipality, version, {op: RosterEntry(frozenset(r), s) for op, (r, s) in ops.items()})
        return kizon_pb2.SignedRoster(municipality=municipality, version=version, token=sign_roster(signer, roster))

    assert receiver.receive(signed(2, {"OP0001": (["clerk"], 0)}), M).version == 2
    assert set(book.current(M).operators) == {"OP0001"}
    assert receiver.receive(signed(1, {"OP0001": (["clerk"], 0), "OP0002": (["clerk"], 0)}), M).version == 2
    assert set(book.current(M).operators) == {"OP0001"}, "an older roster replaces nothing"
    for forged, sender in ((signed(3, {"OP0009": (["manager"], 0)}, signer=other), M),
                           (signed(3, {"OP0009": (["manager"], 0)}), OTHER),
                           (kizon_pb2.SignedRoster(municipality=M, version=4, token=signed(3, {}).token), M)):
        with pytest.raises(Violation) as caught:
            receiver.receive(forged, sender)
        assert caught.value.rule is A.ROSTER_SENDER
    assert book.current(M).version == 2
    with store.transaction() as db:  # whoever writes the store cannot put a roster of their own in it
        db.execute("UPDATE operator_rosters SET version=5, token=? WHERE municipality=?",
                   (signed(5, {"OP0009": (["manager"], 0)}, signer=other).token, M))
    with pytest.raises(TokenError) as caught:
        book.current(M)
    assert caught.value.rule is A.ROSTER_UNVERIFIED
    store.close()


def test_the_roles_are_one_set_and_the_contractors_methods_the_itaku():
    """The one set of roles; the contractor's methods are the 委託's (写しの交付, 住所異動 and the reads they need)."""
    assert set(ROLES) == {"clerk", "individual_number", "manager", "official", "operations", "contractor"}
    assert methods_allowed(["clerk"]) is None and methods_allowed(["clerk", "contractor"]) is None
    allowed = methods_allowed(["contractor"])
    assert allowed == ROLE_METHODS["contractor"]
    assert {m.rsplit("/", 1)[1] for m in allowed} == {"GetResident", "GetHousehold", "IssueCertificate", "MoveIn",
                                                      "MoveWithin", "MoveOut"}
    served = set(kizon_pb2.DESCRIPTOR.services_by_name["Kizon"].methods_by_name)
    assert {m.rsplit("/", 1)[1] for m in allowed} <= served
