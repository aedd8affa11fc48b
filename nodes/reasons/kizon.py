"""The rules 既存住基 keeps: the 届出 at the counter, the register, issuance, operators and bulk output."""
from grpc import StatusCode as S

from nodes.refusal import rule

# -- the counter (異動) --------------------------------------------------------------------------------
MOVE_IN_CERTIFICATE_REQUIRED = rule("MOVE_IN_CERTIFICATE_REQUIRED", S.INVALID_ARGUMENT, "kizon", "住基法第22条; DESIGN §5",
                                    "a 転入 presents a 転出証明書, or is a 特例転入 with the 個人番号カード")
MOVE_IN_CERTIFICATE_OTHER_PERSON = rule("MOVE_IN_CERTIFICATE_OTHER_PERSON", S.INVALID_ARGUMENT, "kizon", "DESIGN §5",
                                        "the 転出証明書 of a 転入 is the one of the person moving in")
MOVE_IN_ITEMS_FROM_CERTIFICATE = rule("MOVE_IN_ITEMS_FROM_CERTIFICATE", S.INVALID_ARGUMENT, "kizon", "DESIGN §5",
                                      "a 転入 gives only the 住民票コード and 続柄: the other items come from the "
                                      "転出証明書 or the office")
MOVE_IN_INDIVIDUAL_NUMBER_REQUIRED = rule("MOVE_IN_INDIVIDUAL_NUMBER_REQUIRED", S.INVALID_ARGUMENT, "kizon", "DESIGN §5",
                                          "a 転入 of a person national knows carries the 個人番号 of the 転出証明書")
MOVE_WITHIN_IS_TENKYO = rule("MOVE_WITHIN_IS_TENKYO", S.INVALID_ARGUMENT, "kizon", "住基法第23条",
                             "a move within the municipality is a 転居, never a 転出 or 転入")
ABROAD_MOVE_IN_NEW_PERSON = rule("ABROAD_MOVE_IN_NEW_PERSON", S.FAILED_PRECONDITION, "kizon", "DESIGN §5",
                                 "a 国外転入 registers a person national does not know; a known one moves in by 転入")
HOUSEHOLD_RELATIONSHIP_REQUIRED = rule("HOUSEHOLD_RELATIONSHIP_REQUIRED", S.INVALID_ARGUMENT, "kizon", "PIA 別添1 (続柄)",
                                       "a person who joins a household has a 続柄")
MOVE_OUT_DATE_WINDOW = rule("MOVE_OUT_DATE_WINDOW", S.FAILED_PRECONDITION, "kizon", "住基法第24条",
                            "the planned date of a 転出 lies within the window the law allows")
SPECIAL_MOVE_OUT_CARD_HOLDER = rule("SPECIAL_MOVE_OUT_CARD_HOLDER", S.FAILED_PRECONDITION, "kizon", "住基法第24条の2",
                                    "only a 個人番号カード holder moves out without a 転出証明書 (特例転出)")
DEATH_AFTER_BIRTH = rule("DEATH_AFTER_BIRTH", S.INVALID_ARGUMENT, "kizon", "DESIGN §4",
                         "a 死亡年月日 is not before the person's 生年月日")
CORRECTION_ITEMS = rule("CORRECTION_ITEMS", S.INVALID_ARGUMENT, "kizon", "DESIGN §4",
                        "a 職権修正 corrects the person's items and eligibility flags, never numbers or keys")
CORRECTION_EMPTY = rule("CORRECTION_EMPTY", S.INVALID_ARGUMENT, "kizon", "DESIGN §4",
                        "a 職権修正 corrects at least one item")
HOUSEHOLD_SPLIT_MEMBER = rule("HOUSEHOLD_SPLIT_MEMBER", S.FAILED_PRECONDITION, "kizon", "DESIGN §5",
                              "a 世帯分離 takes a member other than the 世帯主 out of a household of two or more")
HOUSEHOLD_MERGE_TWO = rule("HOUSEHOLD_MERGE_TWO", S.INVALID_ARGUMENT, "kizon", "DESIGN §5",
                           "a 世帯合併 names two different households")
HOUSEHOLD_MERGE_SAME_ADDRESS = rule("HOUSEHOLD_MERGE_SAME_ADDRESS", S.FAILED_PRECONDITION, "kizon", "DESIGN §5",
                                    "households merge only at the same address")
HOUSEHOLDER_CHANGE_OTHER_MEMBER = rule("HOUSEHOLDER_CHANGE_OTHER_MEMBER", S.FAILED_PRECONDITION, "kizon", "DESIGN §5",
                                       "a 世帯主変更 makes a member of the household other than its 世帯主 the 世帯主")
NAME_KANA_KATAKANA = rule("NAME_KANA_KATAKANA", S.INVALID_ARGUMENT, "kizon", "PIA 別添1 (氏名ふりがな); DESIGN §4",
                          "the ふりがな of a name is written in katakana")

# -- the register ----------------------------------------------------------------------------------------
CURRENT_RESIDENT_REQUIRED = rule("CURRENT_RESIDENT_REQUIRED", S.FAILED_PRECONDITION, "kizon", "住基法第8条",
                                 "a counter operation changes the 住民票 of a current resident, not a 除票")
HOUSEHOLD_NOT_FOUND = rule("HOUSEHOLD_NOT_FOUND", S.NOT_FOUND, "kizon", "DESIGN §4",
                           "a 世帯番号 names a household of this municipality with current members")
TOWN_CODE_UNKNOWN = rule("TOWN_CODE_UNKNOWN", S.INVALID_ARGUMENT, "kizon", "DESIGN §4",
                         "an address is on a 町字 of the municipality's list")

# -- issuance (証明書, コンビニ交付, the card) ---------------------------------------------------------------
CERTIFICATE_KIND_UNKNOWN = rule("CERTIFICATE_KIND_UNKNOWN", S.INVALID_ARGUMENT, "kizon", "DESIGN §5",
                                "a certificate is of a kind the office issues")
INDIVIDUAL_NUMBER_PRINT_PERMISSION = rule("INDIVIDUAL_NUMBER_PRINT_PERMISSION", S.PERMISSION_DENIED, "kizon",
                                          "PIA Ⅲ(1)3 リスク2",
                                          "the 個人番号 is printed only for staff with the permission, on a terminal "
                                          "registered for it")
CERTIFICATE_REMOVED_ONLY = rule("CERTIFICATE_REMOVED_ONLY", S.FAILED_PRECONDITION, "kizon", "DESIGN §5",
                                "a 除票の写し or 転出証明書 certifies a 除票, not a current resident")
MOVE_OUT_CERTIFICATE_FOR_MOVE_OUT = rule("MOVE_OUT_CERTIFICATE_FOR_MOVE_OUT", S.FAILED_PRECONDITION, "kizon",
                                         "住基法施行令第23条", "a 転出証明書 is issued for a 転出 only")
CERTIFICATE_CURRENT_ONLY = rule("CERTIFICATE_CURRENT_ONLY", S.FAILED_PRECONDITION, "kizon", "DESIGN §5",
                                "a 住民票の写し or 記載事項証明書 certifies a current resident (a 除票 has its 除票の写し)")
WIDE_AREA_RESIDENT_COPY_ONLY = rule("WIDE_AREA_RESIDENT_COPY_ONLY", S.INVALID_ARGUMENT, "kizon", "住基法第12条の4",
                                    "広域交付 issues a 住民票の写し (個人) only, without the 個人番号")
KIOSK_CALLER = rule("KIOSK_CALLER", S.PERMISSION_DENIED, "kizon", "DESIGN §5",
                    "コンビニ交付 is issued to a kiosk front end only")
KIOSK_HOURS = rule("KIOSK_HOURS", S.FAILED_PRECONDITION, "kizon", "DESIGN §6",
                   "コンビニ交付 runs 06:30–23:00")
KIOSK_RESIDENT_COPY_ONLY = rule("KIOSK_RESIDENT_COPY_ONLY", S.INVALID_ARGUMENT, "kizon", "DESIGN §5",
                                "コンビニ交付 issues a 住民票の写し (個人 or 世帯) only")
KIOSK_RESIDENT_ONLY = rule("KIOSK_RESIDENT_ONLY", S.FAILED_PRECONDITION, "kizon", "DESIGN §5",
                           "コンビニ交付 issues to a card holder who is a current resident of the municipality")
CARD_CURRENT_RESIDENT = rule("CARD_CURRENT_RESIDENT", S.FAILED_PRECONDITION, "kizon", "DESIGN §5",
                             "a 個人番号カード is applied for and issued to a current resident of the municipality")

# -- operators and bulk output ---------------------------------------------------------------------------
LOGIN_AT_TERMINAL = rule("LOGIN_AT_TERMINAL", S.PERMISSION_DENIED, "kizon", "DESIGN §3",
                         "operators log in at a terminal")
OPERATOR_AUTHENTICATION = rule("OPERATOR_AUTHENTICATION", S.UNAUTHENTICATED, "kizon", "DESIGN §3; PIA Ⅲ(2)3",
                               "an operator logs in with their own credential")
BULK_OUTPUT_APPROVAL_REQUEST = rule("BULK_OUTPUT_APPROVAL_REQUEST", S.INVALID_ARGUMENT, "kizon", "PIA Ⅲ(2)3",
                                    "an approval of bulk output is for at least one record, for an operator and a "
                                    "terminal of the municipality")
BULK_OUTPUT_SELF_APPROVAL = rule("BULK_OUTPUT_SELF_APPROVAL", S.PERMISSION_DENIED, "kizon", "PIA Ⅲ(2)3",
                                 "an operator never approves their own bulk output")
BULK_OUTPUT_APPROVAL_REQUIRED = rule("BULK_OUTPUT_APPROVAL_REQUIRED", S.PERMISSION_DENIED, "kizon", "PIA Ⅲ(2)3",
                                     "output beyond the limit of the window needs a manager's prior approval")
BULK_OUTPUT_APPROVAL_INVALID = rule("BULK_OUTPUT_APPROVAL_INVALID", S.PERMISSION_DENIED, "kizon", "PIA Ⅲ(2)3",
                                    "an approval is signed by the municipality and on its record")
BULK_OUTPUT_APPROVAL_USED = rule("BULK_OUTPUT_APPROVAL_USED", S.PERMISSION_DENIED, "kizon", "PIA Ⅲ(2)3",
                                 "an approval is good for one export")
BULK_OUTPUT_APPROVAL_EXPIRED = rule("BULK_OUTPUT_APPROVAL_EXPIRED", S.PERMISSION_DENIED, "kizon", "PIA Ⅲ(2)3",
                                    "an approval is good until it expires")
BULK_OUTPUT_APPROVAL_OTHER_OPERATOR = rule("BULK_OUTPUT_APPROVAL_OTHER_OPERATOR", S.PERMISSION_DENIED, "kizon",
                                           "PIA Ⅲ(2)3", "an approval is for the operator and terminal it names")
BULK_OUTPUT_APPROVAL_PURPOSE = rule("BULK_OUTPUT_APPROVAL_PURPOSE", S.PERMISSION_DENIED, "kizon", "PIA Ⅲ(2)3",
                                    "an approval is for the purpose it names")
BULK_OUTPUT_APPROVAL_COUNT = rule("BULK_OUTPUT_APPROVAL_COUNT", S.PERMISSION_DENIED, "kizon", "PIA Ⅲ(2)3",
                                  "an approval covers at most the count of records it names")

# -- who asks (届出人 and 請求者: requesters.py) -------------------------------------------------------------
REQUESTER_REQUIRED = rule("REQUESTER_REQUIRED", S.INVALID_ARGUMENT, "kizon", "PIA 635, 1947 (本人確認)",
                          "a 届出 names its 届出人 and a request for a 写し its 請求者 (本人, 同一世帯の者, 代理人 or "
                          "第三者), with the 本人確認書類 the counter saw")
REQUESTER_DOCUMENT = rule("REQUESTER_DOCUMENT", S.INVALID_ARGUMENT, "kizon", "PIA 1947 (本人確認)",
                          "the 本人確認書類 is one the counter accepts")
NOTIFIER_KIND = rule("NOTIFIER_KIND", S.PERMISSION_DENIED, "kizon", "住基法第26条; 戸籍法第87条",
                     "a 届出 is made by whom the law lets make it (a 死亡 not by the person; a 第三者 only a 死亡)")
REQUESTER_NOT_SELF = rule("REQUESTER_NOT_SELF", S.PERMISSION_DENIED, "kizon", "住基法第12条; PIA 635",
                          "a request as 本人 is made by the person it is about (checked against the register)")
REQUESTER_NOT_HOUSEHOLD = rule("REQUESTER_NOT_HOUSEHOLD", S.PERMISSION_DENIED, "kizon", "住基法第12条; PIA 635",
                               "a request as 同一世帯の者 is made by a current member of the person's household")
REQUESTER_INDIVIDUAL_NUMBER = rule("REQUESTER_INDIVIDUAL_NUMBER", S.PERMISSION_DENIED, "kizon",
                                   "住基法第12条第5項; 番号法第19条",
                                   "a 写し with the 個人番号 is given to 本人 or 同一世帯の者 only")
REQUESTER_THIRD_PARTY_SCOPE = rule("REQUESTER_THIRD_PARTY_SCOPE", S.PERMISSION_DENIED, "kizon", "住基法第12条の3",
                                   "a 第三者 is given the 基礎証明事項 of the persons asked for, not a household's 写し")

# -- 職権 and 国外転出 (official.py) --------------------------------------------------------------------------
OFFICIAL_ROLE = rule("OFFICIAL_ROLE", S.PERMISSION_DENIED, "kizon", "PIA 77, 81 (職権記載・職権消除)",
                     "職権記載 and 職権消除 are made by an operator holding the role official")
OFFICIAL_SURVEY_REQUIRED = rule("OFFICIAL_SURVEY_REQUIRED", S.INVALID_ARGUMENT, "kizon", "住基法第34条; PIA 81",
                                "a 職権記載 or 職権消除 names its reason and the 実態調査 it rests on")
EMIGRATION_DESTINATION = rule("EMIGRATION_DESTINATION", S.INVALID_ARGUMENT, "kizon", "住基法第24条; PIA 81",
                              "a 国外転出 names the country and a planned date within the window of a 転出")

# -- changes (依頼管理番号, settling with the CS) -----------------------------------------------------------------
REQUEST_IN_PROGRESS = rule("REQUEST_IN_PROGRESS", S.ABORTED, "kizon", "DESIGN §5 (crash-safety)",
                           "a 依頼管理番号 being served is answered once that request has been answered")
CHANGES_WAIT_FOR_CS = rule("CHANGES_WAIT_FOR_CS", S.UNAVAILABLE, "kizon", "DESIGN §5 (crash-safety)",
                           "no change is made while changes sent to the 市町村CS wait to be settled with it")
CHANGE_OUTCOME_UNKNOWN = rule("CHANGE_OUTCOME_UNKNOWN", S.UNAVAILABLE, "kizon", "DESIGN §5 (crash-safety)",
                              "a change the 市町村CS may have applied is settled with it when it is back; retry with "
                              "the same 依頼管理番号 (x-request-id) for its answer")

# -- migration (移行: the initial load) -------------------------------------------------------------------
INITIAL_LOAD_DUPLICATE = rule("INITIAL_LOAD_DUPLICATE", S.INVALID_ARGUMENT, "kizon", "DESIGN",
                              "a batch of the initial load names each 住民票コード and 宛名番号 once")
INITIAL_LOAD_ALREADY_RECORDED = rule("INITIAL_LOAD_ALREADY_RECORDED", S.ALREADY_EXISTS, "kizon", "DESIGN",
                                     "the initial load never overwrites a resident already recorded")

# -- the roster of operators (operators.py; docs/operators.md) ------------------------------------------------------
ROSTER_MANAGER = rule("ROSTER_MANAGER", S.PERMISSION_DENIED, "kizon", "PIA 2464–2471 (アカウント管理)",
                      "only an operator holding the role manager reads or changes the roster, at a terminal")
ROLE_UNKNOWN = rule("ROLE_UNKNOWN", S.INVALID_ARGUMENT, "kizon", "PIA 1922–1925; DESIGN §3",
                    "a role given is one of the testbed's roles (nodes/sessions.py ROLES)")
ROSTER_SELF_CHANGE = rule("ROSTER_SELF_CHANGE", S.PERMISSION_DENIED, "kizon", "PIA 2464–2471 (権限を必要最小限に)",
                          "a manager never changes their own roles (no one grants themselves a role)")
LAST_MANAGER = rule("LAST_MANAGER", S.FAILED_PRECONDITION, "kizon", "PIA 2464–2471 (アカウント管理)",
                    "the roster keeps at least one manager: the last one is neither removed nor stripped of the role")
OPERATOR_ID_TAKEN = rule("OPERATOR_ID_TAKEN", S.ALREADY_EXISTS, "kizon", "PIA 1925 (共用ＩＤの利用を禁止)",
                         "an added operator's id is new: never shared, never given again once its holder was removed")
OPERATOR_ID_FORMAT = rule("OPERATOR_ID_FORMAT", S.INVALID_ARGUMENT, "kizon", "DESIGN §3",
                          "an operator id is 1 to 32 letters, digits, '-' or '_'")
OPERATOR_UNKNOWN = rule("OPERATOR_UNKNOWN", S.NOT_FOUND, "kizon", "PIA 2464–2471",
                        "a change or removal names a current operator of the roster")
CONTRACTOR_ROLES = rule("CONTRACTOR_ROLES", S.INVALID_ARGUMENT, "kizon", "PIA 783–868 (委託); PIA 1922–1925",
                        "an operator of a 委託先 holds the role contractor and no other (never the 個人番号); the "
                        "municipality's own staff never hold it")
SUBCONTRACT_PERMISSION = rule("SUBCONTRACT_PERMISSION", S.FAILED_PRECONDITION, "kizon",
                              "PIA 783–868 (⑤再委託の許諾方法)",
                              "an operator of a 再委託先 names their 委託先 and the permission a manager recorded for that "
                              "再委託")
