"""The rules of a site during a move (移行): freezing, export, cut-over, wiping a target."""
from grpc import StatusCode as S

from nodes.refusal import rule

SITE_CHANGES_CLOSED = rule("SITE_CHANGES_CLOSED", S.UNAVAILABLE, "site", "DESIGN §7",
                           "a frozen site (移行中, or a target not yet cut over to) refuses every change; reads go on, "
                           "changes come back after the window")
SITE_FREEZE_TIMEOUT = rule("SITE_FREEZE_TIMEOUT", S.DEADLINE_EXCEEDED, "site", "DESIGN §7",
                           "a freeze settles when every accepted change and notification is delivered, "
                           "within the drain time")
SITE_TARGET_NOT_CUT_OVER = rule("SITE_TARGET_NOT_CUT_OVER", S.FAILED_PRECONDITION, "site", "DESIGN §7",
                                "a migration target is not reopened by hand; it opens after the cut over")
SITE_EXPORT_NOT_FROZEN = rule("SITE_EXPORT_NOT_FROZEN", S.FAILED_PRECONDITION, "site", "DESIGN §7",
                              "an export is read only from a frozen site, so that nothing changes while it is read")
SITE_TARGET_ONLY = rule("SITE_TARGET_ONLY", S.FAILED_PRECONDITION, "site", "DESIGN §7",
                        "only a migration target is imported into or wiped")
SITE_IMPORT_NOT_EMPTY = rule("SITE_IMPORT_NOT_EMPTY", S.FAILED_PRECONDITION, "site", "DESIGN §7",
                             "an import goes into an empty target (wipe it before a new import)")
SITE_IMPORT_DUPLICATE = rule("SITE_IMPORT_DUPLICATE", S.INVALID_ARGUMENT, "site", "DESIGN §7",
                             "an export holds each record once; one held twice imports nothing")
