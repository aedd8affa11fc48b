"""The cases of a site during a move (移行, DESIGN §7), as the operations console of its trust domain reaches a kizon
or an atena through the Migration service: an export is read only from a frozen site, only a target is imported
into and only an empty one, a target is not reopened by hand, and a frozen site refuses every change.

No case sends anything that could change a site that keeps the rules wrongly: an import is an empty stream, and
no case calls Wipe or Freeze (a wrongly kept Wipe would empty the node under test).
"""
from __future__ import annotations

from nodes.clock import office_today
from nodes.reasons import common as C, site as R
from protos import kizon_pb2, kizon_pb2_grpc, migration_pb2, migration_pb2_grpc, records_pb2
from testbed.client import console_cert
from testbed.conform.case import Skipped, case, refused
from testbed.conform.kizon import _taken
from testbed.requests import with_notifier

ROLES = ("kizon", "atena")  # the kinds that migrate (nodes/kinds.py)

# The site rules no case tries over the wire, and why.
NOT_A_CASE = {
    R.SITE_FREEZE_TIMEOUT.reason: "needs a site whose queued work cannot drain in time (a stopped peer)",
    R.SITE_IMPORT_DUPLICATE.reason: "needs an import into an empty target, which the suite never makes",
    C.MIGRATION_FOREIGN_RECORD.reason: "an export's content, checked by the import into an empty target, "
                                       "which the suite never makes",
    C.MIGRATION_UNKNOWN_ITEM.reason: "an export's content, as MIGRATION_FOREIGN_RECORD",
}


def _migration(subject):
    """The subject's Migration service as the operations console of its domain calls it."""
    return migration_pb2_grpc.MigrationStub(subject.channel(console_cert(subject.pki, subject.role)))


def _state(subject) -> str:
    """The subject's site state in brief: frozen or open, and its reason."""
    state = _migration(subject).GetSiteState(migration_pb2.FreezeRequest(), timeout=10)
    return f"frozen={state.frozen} reason={state.reason!r}"


@case("site/export/not-frozen", roles=ROLES, profiles=("rules",), rules=(R.SITE_EXPORT_NOT_FROZEN,),
      request="Migration/Export as the console, of an open site",
      asserts="FAILED_PRECONDITION SITE_EXPORT_NOT_FROZEN before any batch; the site still open")
def export_not_frozen(subject) -> str:
    """An export is read only from a frozen site, so that nothing changes while it is read."""
    if subject.target:
        raise Skipped(f"{subject.node.name} is a target (frozen): its export is allowed")
    migration = _migration(subject)
    observed = refused(lambda: _taken(migration.Export(migration_pb2.MigrationExportRequest(), timeout=30), 1),
                       R.SITE_EXPORT_NOT_FROZEN, node=subject.node.name)
    return f"{observed}; afterwards {_state(subject)}"


@case("site/import/target-only", roles=ROLES, profiles=("rules", "security"),
      rules=(R.SITE_TARGET_ONLY, R.SITE_IMPORT_NOT_EMPTY),
      request="Migration/Import as the console: an empty stream, into the subject",
      asserts="FAILED_PRECONDITION SITE_TARGET_ONLY at a live site; SITE_IMPORT_NOT_EMPTY at a loaded target")
def import_target_only(subject) -> str:
    """Only a migration target is imported into, and only while it is empty."""
    rule = R.SITE_IMPORT_NOT_EMPTY if subject.target else R.SITE_TARGET_ONLY
    migration = _migration(subject)
    return refused(lambda: migration.Import(iter(()), timeout=10), rule, node=subject.node.name)


@case("site/reopen/target", roles=ROLES, profiles=("rules",), rules=(R.SITE_TARGET_NOT_CUT_OVER,),
      request="Migration/Reopen as the console, of a target not yet cut over to",
      asserts="FAILED_PRECONDITION SITE_TARGET_NOT_CUT_OVER; the target still frozen")
def reopen_target(subject) -> str:
    """A target opens after the cut over, never by hand before it."""
    if not subject.target:
        raise Skipped(f"{subject.node.name} is no migration target (the case runs against a target: "
                      "`testbed migrate` runs it before the cut over)")
    migration = _migration(subject)
    observed = refused(lambda: migration.Reopen(migration_pb2.FreezeRequest(reason="conformance"), timeout=10),
                       R.SITE_TARGET_NOT_CUT_OVER, node=subject.node.name)
    return f"{observed}; afterwards {_state(subject)}"


@case("site/frozen/changes-closed", roles=("kizon",), profiles=("rules",), rules=(R.SITE_CHANGES_CLOSED,),
      request="MoveWithin (転居) of the run's person at a target not yet cut over to",
      asserts="UNAVAILABLE SITE_CHANGES_CLOSED; the person's address unchanged")
def changes_closed(subject) -> str:
    """A frozen site refuses every change (reads go on)."""
    if not subject.target:
        raise Skipped(f"{subject.node.name} is open (the case runs against a frozen target)")
    person = subject.person()
    stub = kizon_pb2_grpc.KizonStub(subject.channel(subject.terminal(), subject.node))
    move = with_notifier(kizon_pb2.MoveWithinRequest(
        resident_code=person.resident_code, move_date=office_today().isoformat(),
        address=records_pb2.Address(town_code=person.town_code, address_line="適合99番地")))
    return refused(lambda: stub.MoveWithin(move, metadata=subject.session(), timeout=10), R.SITE_CHANGES_CLOSED,
                   node=subject.node.name)
