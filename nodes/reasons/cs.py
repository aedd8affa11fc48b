"""The rules the 市町村CS keeps: updates in order, the pool of 住民票コード, moves between municipalities, searches."""
from grpc import StatusCode as S

from nodes.refusal import rule

# -- the pool of 住民票コード and the codes offered for a change ------------------------------------------
POOL_DRAW_SIZE = rule("POOL_DRAW_SIZE", S.INVALID_ARGUMENT, "cs", "DESIGN §4",
                      "a draw from the 住民票コード pool takes 1..1000 codes")
POOL_EMPTY = rule("POOL_EMPTY", S.RESOURCE_EXHAUSTED, "cs", "DESIGN §4",
                  "a draw needs codes left in the municipality's 住民票コード pool")
POOL_CODE_RESERVED = rule("POOL_CODE_RESERVED", S.FAILED_PRECONDITION, "cs", "DESIGN §4; DESIGN §5",
                          "a new person's 住民票コード (出生, 国外転入) is one this CS drew from its pool for that request")
RECODE_OFFERED_CODE = rule("RECODE_OFFERED_CODE", S.FAILED_PRECONDITION, "cs", "DESIGN §5",
                           "a 住民票コード変更 takes one of the codes national offered to the person")

# -- the updates of the 本人確認情報 from kizon (PIA Ⅲ(2)5) -------------------------------------------------
CS_MUNICIPALITY = rule("CS_MUNICIPALITY", S.INVALID_ARGUMENT, "cs", "DESIGN §3",
                       "a CS takes updates only of its own municipality (the batch's and each record's 市町村コード)")
GROUP_SIZE = rule("GROUP_SIZE", S.INVALID_ARGUMENT, "cs", "DESIGN",
                  "a group commit carries at most GROUP_LIMIT batches")
ALREADY_CURRENT_RESIDENT = rule("ALREADY_CURRENT_RESIDENT", S.FAILED_PRECONDITION, "cs", "PIA Ⅲ(2)5",
                                "a 出生, 転入, 国外転入 or 移行 is of someone not already a current resident here")
CHANGE_NEEDS_RECORD = rule("CHANGE_NEEDS_RECORD", S.FAILED_PRECONDITION, "cs", "PIA Ⅲ(2)5",
                           "an update other than a new person's changes 本人確認情報 the CS holds")
CHANGE_CURRENT_ONLY = rule("CHANGE_CURRENT_ONLY", S.FAILED_PRECONDITION, "cs", "PIA Ⅲ(2)5",
                           "a 除票 (no longer a resident) is changed only by a 職権修正")
MOVE_WITHIN_ADDRESS_ONLY = rule("MOVE_WITHIN_ADDRESS_ONLY", S.FAILED_PRECONDITION, "cs", "PIA Ⅲ(2)5",
                                "a 転居 changes only the address of the 本人確認情報")

# -- 更新順番号 and 本人確認情報検索 (the 本人確認情報ファイル, nodes/identityfile.py) ------------------------
UPDATE_SEQUENCE_ORDER = rule("UPDATE_SEQUENCE_ORDER", S.FAILED_PRECONDITION, "cs", "PIA 別添1 (2) 29–30; DESIGN §5",
                             "updates are applied in 更新順番号 order: a gap is refused, naming the number due")
SEARCH_ADDRESS_KEY = rule("SEARCH_ADDRESS_KEY", S.INVALID_ARGUMENT, "cs", "PIA Ⅲ(2)2",
                          "a 住所 search key names at least the prefecture and the municipality")
SEARCH_TWO_ITEMS = rule("SEARCH_TWO_ITEMS", S.INVALID_ARGUMENT, "cs", "PIA Ⅲ(2)2",
                        "a search is by 住民票コード, by 個人番号, or by 氏名 with 生年月日 or 住所 (性別 is no key)")

# -- between municipalities: 転出証明書情報, 特例転入, 転入通知 --------------------------------------------
MOVE_OUT_CERTIFICATE_SENDER = rule("MOVE_OUT_CERTIFICATE_SENDER", S.PERMISSION_DENIED, "cs", "DESIGN §5",
                                   "a CS sends only its own 転出証明書情報, addressed to the CS it reaches")
MOVE_OUT_CERTIFICATE_NOT_FOUND = rule("MOVE_OUT_CERTIFICATE_NOT_FOUND", S.NOT_FOUND, "cs", "DESIGN §5",
                                      "a 特例転入 at kizon takes the 転出証明書情報 that has arrived for the person")
SPECIAL_MOVE_IN_CERTIFICATE = rule("SPECIAL_MOVE_IN_CERTIFICATE", S.FAILED_PRECONDITION, "cs", "DESIGN §5",
                                   "a 特例転入 update needs the 転出証明書情報 that has arrived for the person")
SPECIAL_MOVE_IN_CARD_HOLDER = rule("SPECIAL_MOVE_IN_CARD_HOLDER", S.FAILED_PRECONDITION, "cs", "DESIGN §5",
                                   "only a 個人番号カード holder moves in without a 転出証明書 (特例転入)")
SPECIAL_MOVE_IN_CARD_USABLE = rule("SPECIAL_MOVE_IN_CARD_USABLE", S.FAILED_PRECONDITION, "cs", "DESIGN §5",
                                   "a 特例転入 needs a 個人番号カード the card system holds as usable")
SPECIAL_MOVE_IN_AFTER_MOVE_IN = rule("SPECIAL_MOVE_IN_AFTER_MOVE_IN", S.FAILED_PRECONDITION, "cs",
                                     "PIA Ⅰ2 システム2 ③", "a 特例転入's 転入届 comes within 14 days of moving in")
SPECIAL_MOVE_IN_AFTER_MOVE_OUT = rule("SPECIAL_MOVE_IN_AFTER_MOVE_OUT", S.FAILED_PRECONDITION, "cs",
                                      "PIA Ⅰ2 システム2 ③",
                                      "a 特例転入's 転入届 comes within 30 days of the planned move-out date")
MOVE_IN_NOTICE_SENDER = rule("MOVE_IN_NOTICE_SENDER", S.PERMISSION_DENIED, "cs", "DESIGN §5",
                             "a CS sends only its own 転入通知, addressed to the CS it reaches")
MOVE_IN_NOTICE_FORMER_RESIDENT = rule("MOVE_IN_NOTICE_FORMER_RESIDENT", S.FAILED_PRECONDITION, "cs", "DESIGN §5",
                                      "a 転入通知 is of a former resident whose 転出 here it closes")
ANNEX_NOTICE_SENDER = rule("ANNEX_NOTICE_SENDER", S.PERMISSION_DENIED, "cs", "住基法第19条",
                           "a CS sends only its own 戸籍附票通知 (from its municipality), addressed to the 本籍地")
ANNEX_NOTICE_GAP = rule("ANNEX_NOTICE_GAP", S.FAILED_PRECONDITION, "cs", "住基法第19条; DESIGN §5",
                        "戸籍附票通知 from one municipality arrive in their order, none skipped (a repeat is answered)")
ANNEX_NOTICE_ITEMS = rule("ANNEX_NOTICE_ITEMS", S.INVALID_ARGUMENT, "cs", "住基法第19条",
                          "a 戸籍附票通知 kizon attaches is about the person of its update, to a valid 本籍地")

# -- the 個人番号カード and 広域交付 --------------------------------------------------------------------
CARD_STEP_BY_CS = rule("CARD_STEP_BY_CS", S.PERMISSION_DENIED, "cs", "DESIGN §5",
                       "a card TRANSFER or RECODE is a step the CS takes itself, never one asked at the counter")
WIDE_AREA_HOME = rule("WIDE_AREA_HOME", S.FAILED_PRECONDITION, "cs", "DESIGN §5",
                      "a 広域交付 asks the CS of the municipality the card holder lives in")
WIDE_AREA_CURRENT_RESIDENT = rule("WIDE_AREA_CURRENT_RESIDENT", S.FAILED_PRECONDITION, "cs", "DESIGN §5",
                                  "a CS provides for a 広域交付 only the 本人確認情報 of its current residents")

# -- bulk output at the 統合端末 (PIA Ⅲ(2)3 その他; seed 2376, 2665) --------------------------------------------------
_BULK = "PIA Ⅲ(2)3 その他 (seed 2376, 2665)"
CS_BULK_OUTPUT_APPROVAL_REQUIRED = rule("CS_BULK_OUTPUT_APPROVAL_REQUIRED", S.PERMISSION_DENIED, "cs", _BULK,
                                        "a terminal's reads at the CS beyond BULK_OUTPUT_LIMIT people in "
                                        "BULK_WINDOW_HOURS need a manager's prior approval for the CS (x-cs-read-approval-token)")
CS_BULK_OUTPUT_APPROVAL_INVALID = rule("CS_BULK_OUTPUT_APPROVAL_INVALID", S.PERMISSION_DENIED, "cs", _BULK,
                                       "an approval spent at the CS is signed with the municipality's session key, "
                                       "unexpired, and names its requester, terminal and count")
CS_BULK_OUTPUT_APPROVAL_OTHER_OPERATOR = rule("CS_BULK_OUTPUT_APPROVAL_OTHER_OPERATOR", S.PERMISSION_DENIED, "cs", _BULK,
                                              "an approval covers the reads of the operator at the terminal it names "
                                              "alone")
CS_BULK_OUTPUT_SELF_APPROVAL = rule("CS_BULK_OUTPUT_SELF_APPROVAL", S.PERMISSION_DENIED, "cs", _BULK,
                                    "an operator's own approval covers none of their reads")
CS_BULK_OUTPUT_APPROVAL_COUNT = rule("CS_BULK_OUTPUT_APPROVAL_COUNT", S.PERMISSION_DENIED, "cs", _BULK,
                                     "an approval covers at the CS the number of people it names, and no more")

# -- 更新順番号 after a restore ------------------------------------------------------------------------------------
SEQUENCE_BEHIND_PREFECTURE = rule("SEQUENCE_BEHIND_PREFECTURE", S.FAILED_PRECONDITION, "cs",
                                  "DESIGN §5 (nothing acknowledged is lost)",
                                  "a CS numbers no update while its prefecture has applied more of its 更新順番号 than "
                                  "it holds (a store restored from an old copy): it is rolled forward first")
