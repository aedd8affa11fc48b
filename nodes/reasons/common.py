"""Rules of the items themselves and rules more than one kind of node keeps (the register's one-residence and
removal rules are kept by kizon, the CS and national alike: each is one rule, whichever node refuses)."""
from grpc import StatusCode as S

from nodes.refusal import rule

# -- the items: formats, sizes, characters, dates ---------------------------------------------------
RESIDENT_CODE_FORMAT = rule("RESIDENT_CODE_FORMAT", S.INVALID_ARGUMENT, "common", "DESIGN §4; 住基法施行令第30条の2",
                            "a 住民票コード is 11 digits with a valid check digit")
INDIVIDUAL_NUMBER_FORMAT = rule("INDIVIDUAL_NUMBER_FORMAT", S.INVALID_ARGUMENT, "common", "総務省令第85号 §5",
                                "a 個人番号 is 12 digits with a valid check digit")
MUNICIPALITY_CODE_FORMAT = rule("MUNICIPALITY_CODE_FORMAT", S.INVALID_ARGUMENT, "common", "DESIGN §2; JIS X 0401",
                                "a 地方公共団体コード is 6 digits with a valid check digit")
DATE_FORMAT = rule("DATE_FORMAT", S.INVALID_ARGUMENT, "common", "DESIGN §4",
                   "a date item is written YYYY-MM-DD")
DATE_NOT_FUTURE = rule("DATE_NOT_FUTURE", S.INVALID_ARGUMENT, "common", "DESIGN §4",
                       "a date that has happened is not after the server's today nor before the oldest possible")
NOTIFICATION_LATE = rule("NOTIFICATION_LATE", S.FAILED_PRECONDITION, "common", "住基法第22条〜第25条",
                         "a 届出 comes within its legal window of the event (転入 and 転居: 14 days)")
ITEM_REQUIRED = rule("ITEM_REQUIRED", S.INVALID_ARGUMENT, "common", "PIA 別添1",
                     "a required item is present")
ITEM_LENGTH = rule("ITEM_LENGTH", S.INVALID_ARGUMENT, "common", "PIA 別添1; DESIGN §4",
                   "a text item is within its length")
ITEM_CHARACTERS = rule("ITEM_CHARACTERS", S.INVALID_ARGUMENT, "common", "DESIGN §4",
                       "a text item holds no control, format or surrogate character")
GAIJI_ITEMS = rule("GAIJI_ITEMS", S.INVALID_ARGUMENT, "common", "PIA 別添1 (2) 外字数・外字フラグ; docs/characters.md",
                   "the 外字数 and 外字フラグ of a record are those its items hold by the definition")
SET_BY_SERVER = rule("SET_BY_SERVER", S.INVALID_ARGUMENT, "common", "DEVELOPERS: the server decides",
                     "items the office derives (numbers, history, status, dates) are not set by the request")
SEX_CODE = rule("SEX_CODE", S.INVALID_ARGUMENT, "common", "PIA 別添1 (性別)",
                "性別 is 1 (男), 2 (女) or 9 (不詳)")

# -- the register, kept at every hop ----------------------------------------------------------------
ONE_CURRENT_RESIDENCE = rule("ONE_CURRENT_RESIDENCE", S.FAILED_PRECONDITION, "common", "住基法第30条の7; PIA Ⅲ(2)5",
                             "a person is a current resident of one municipality at a time")
REMOVED_STAY_REMOVED = rule("REMOVED_STAY_REMOVED", S.FAILED_PRECONDITION, "common", "住基法第8条; PIA Ⅲ(2)5",
                            "a person recorded as dead (除票) is never registered again")
INDIVIDUAL_NUMBER_BY_NATIONAL = rule("INDIVIDUAL_NUMBER_BY_NATIONAL", S.INVALID_ARGUMENT, "common", "番号法第8条",
                                     "national alone issues 個人番号: a new person's number is the one it issued, "
                                     "and no update changes a number")
MUNICIPALITY_OWN = rule("MUNICIPALITY_OWN", S.PERMISSION_DENIED, "common", "DESIGN §3",
                        "a node of a municipality sends and serves only that municipality's records")
CONSISTENCY_OWN_RECORDS = rule("CONSISTENCY_OWN_RECORDS", S.PERMISSION_DENIED, "common", "PIA Ⅲ(2)6",
                               "a 整合性確認 compares only the caller's own records")
CONSISTENCY_RANGE = rule("CONSISTENCY_RANGE", S.INVALID_ARGUMENT, "common", "PIA Ⅲ(2)6; nodes/digests.py",
                         "a 整合性確認 names ranges of 住民票コード by 1 to 4 leading digits, at most 10,000 at a time")
REQUEST_ID_REUSED = rule("REQUEST_ID_REUSED", S.FAILED_PRECONDITION, "common", "DESIGN §5 (crash-safety)",
                         "a 依頼管理番号 names one request: used again for another, it is refused")
RECORD_NOT_FOUND = rule("RECORD_NOT_FOUND", S.NOT_FOUND, "common", "DESIGN §4",
                 "a read names a record the node holds")
PEER_UNAVAILABLE = rule("PEER_UNAVAILABLE", S.UNAVAILABLE, "common", "DESIGN §5",
                        "a peer the request needs did not answer; nothing was changed, retry later")

# -- the move between sites (移行), the same rules for every node that moves ---------------------------
MIGRATION_FOREIGN_RECORD = rule("MIGRATION_FOREIGN_RECORD", S.INVALID_ARGUMENT, "common", "DESIGN §7",
                                "an export of a municipality holds only that municipality's records")
MIGRATION_UNKNOWN_ITEM = rule("MIGRATION_UNKNOWN_ITEM", S.INVALID_ARGUMENT, "common", "DESIGN §7",
                              "an export holds only the kinds of record its layout defines")
