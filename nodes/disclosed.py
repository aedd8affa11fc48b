"""The queries of an operator's 24-hour account of disclosed records (kizon's and the CS's ledgers of reads), shaped
so that each costs what one call needs and not what the ledger holds: a year of reads puts every resident in it."""
from __future__ import annotations

# Only the records disclosed without an approval count towards the limit: a partial index holds just those (at most
# the limit in any window), so counting them never walks the approved ones (all residents, by the end of a year).
UNAPPROVED_INDEX = ("CREATE INDEX IF NOT EXISTS disclosures_unapproved ON disclosures(operator, at) "
                    "WHERE approval_id IS NULL;")
UNAPPROVED = "SELECT COUNT(*) FROM disclosures WHERE operator=? AND at>? AND approval_id IS NULL"
# Who of these people the operator was shown in the window: found by the key (operator, 住民票コード), not by walking
# the window (`+at` keeps the planner off the index on at); rows_in adds " IN (…)" after the last column.
SEEN = "SELECT resident_code FROM disclosures WHERE operator=? AND +at>? AND resident_code"
