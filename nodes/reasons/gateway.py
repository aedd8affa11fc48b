"""The rules kizon's 住基GW keeps: the 裁判員候補者名簿 for the 名簿調製プログラム."""
from grpc import StatusCode as S

from nodes.refusal import rule

SEED = "PIA システム3 ②3 (seed l.208–209, l.312)"  # 「名簿調製プログラムへの裁判員候補者名簿の通知を行う」

# -- the 裁判員候補者名簿 (nodes/kizon/jury.py, docs/jury.md) ---------------------------------------------------
# FAILED_PRECONDITION where the office's clock or its register decides (a year, the limit, a list drawn already);
# INVALID_ARGUMENT where the request is wrong whatever the register holds.
JURY_LIST_CALLER = rule("JURY_LIST_CALLER", S.PERMISSION_DENIED, "kizon", f"裁判員法第22条; DESIGN §3; {SEED}",
                        "only the municipality's own 名簿調製プログラム is given its 裁判員候補者名簿 (defence in depth: the "
                        "policy refuses any other caller first)")
JURY_LIST_YEAR = rule("JURY_LIST_YEAR", S.FAILED_PRECONDITION, "kizon", f"裁判員法第21条, 第22条; {SEED}",
                      "a 裁判員候補者名簿 is drawn for the office's next year, or for the current year until the end "
                      "of March")
JURY_LIST_COUNT = rule("JURY_LIST_COUNT", S.INVALID_ARGUMENT, "kizon", f"裁判員法第20条, 第21条; {SEED}",
                       "a 裁判員候補者名簿 names at least one person")
JURY_LIST_ALLOTMENT_LIMIT = rule("JURY_LIST_ALLOTMENT_LIMIT", S.FAILED_PRECONDITION, "kizon",
                                 f"裁判員法第20条; PIA Ⅲ(2)3; {SEED}",
                                 "a 裁判員候補者名簿 names at most one in 200 of the eligible electors (at least one): "
                                 "no allotment comes near it, so more is a bulk output of the electorate")
JURY_LIST_ALLOTMENT = rule("JURY_LIST_ALLOTMENT", S.INVALID_ARGUMENT, "kizon", f"裁判員法第20条; {SEED}",
                           "a 裁判員候補者名簿 is drawn under the 地方裁判所's notice of the allotment, which the "
                           "request names")
JURY_LIST_ONCE_A_YEAR = rule("JURY_LIST_ONCE_A_YEAR", S.FAILED_PRECONDITION, "kizon", f"裁判員法第21条; {SEED}",
                             "the 裁判員候補者名簿 of a year is drawn once: the same request answers the same list, a "
                             "different one is refused")
