"""The rules 法務省's 在留カード等発行システム keeps, and those of the 法務省通知 and 市町村通知 at the CS and kizon."""
from grpc import StatusCode as S

from nodes.refusal import rule

_MOJ_NOTICE = "住基法第30条の50"  # 法務大臣 → 市町村長: a change of a foreign resident's 在留 (the 法務省通知)
_CITY_NOTICE = "入管法第61条の8の2"  # 市町村長 → 法務大臣: a change of a foreign resident's 住居地 or 世帯 (the 市町村通知)

# -- 法務省: the 在留カード and the changes an 入管 office records ------------------------------------------
RESIDENCE_CARD_NUMBER_FORMAT = rule("RESIDENCE_CARD_NUMBER_FORMAT", S.INVALID_ARGUMENT, "moj", "入管法第19条の4",
                                    "a 在留カード番号 is 2 letters, 8 digits and 2 letters (AB12345678CD)")
RESIDENCE_CARD_NOT_VALID = rule("RESIDENCE_CARD_NOT_VALID", S.FAILED_PRECONDITION, "moj", "入管法第19条の14",
                                "a change is recorded on a card that is 有効: not one replaced, or of a holder who "
                                "left (出国) or whose 在留 ended (失効)")
RESIDENCE_CHANGE_KIND = rule("RESIDENCE_CHANGE_KIND", S.INVALID_ARGUMENT, "moj", "入管法第19条の18",
                             "a change is one of 在留資格変更, 在留期間更新, 在留カード再交付, 出国, 失効")
RESIDENCE_CHANGE_ITEMS = rule("RESIDENCE_CHANGE_ITEMS", S.INVALID_ARGUMENT, "moj", "入管法第20条, 第21条, 第19条の12",
                              "each kind carries its items and no others: 在留資格変更 the new 在留資格, 満了の日 and "
                              "card; 在留期間更新 the 満了の日 and card; 再交付 the card; 出国 and 失効 none")
RESIDENCE_PERIOD_EXPIRY = rule("RESIDENCE_PERIOD_EXPIRY", S.INVALID_ARGUMENT, "moj", "入管法第20条, 第21条",
                               "the new 在留期間の満了の日 of a 変更 or 更新 is a date after the office's today")
RESIDENCE_CARD_NUMBER_TAKEN = rule("RESIDENCE_CARD_NUMBER_TAKEN", S.ALREADY_EXISTS, "moj", "入管法第19条の4",
                                   "a new card's number was never given to another card (nor to an earlier one)")
RESIDENCE_CHANGE_NO_MUNICIPALITY = rule("RESIDENCE_CHANGE_NO_MUNICIPALITY", S.FAILED_PRECONDITION, "moj",
                                        _MOJ_NOTICE,
                                        "a change is recorded for a holder whose 住居地 municipality has a CS in this "
                                        "network: its 法務省通知 has somewhere to go")
RESIDENCE_CARD_STATUS = rule("RESIDENCE_CARD_STATUS", S.INVALID_ARGUMENT, "moj", "入管法第19条の14",
                             "a card is 有効, or no longer: its holder left (出国) or their 在留 ended (失効)")
RESIDENCE_CARD_LOAD_TAKEN = rule("RESIDENCE_CARD_LOAD_TAKEN", S.ALREADY_EXISTS, "moj", "移行",
                                 "a load brings cards not yet held (a repeat of the same card is answered, not loaded "
                                 "twice)")
MUNICIPALITY_NOTICE_SENDER = rule("MUNICIPALITY_NOTICE_SENDER", S.PERMISSION_DENIED, "moj", _CITY_NOTICE,
                                  "a CS sends only its own municipality's 市町村通知")
MUNICIPALITY_NOTICE_GAP = rule("MUNICIPALITY_NOTICE_GAP", S.FAILED_PRECONDITION, "moj", f"{_CITY_NOTICE}; DESIGN §5",
                               "a municipality's 市町村通知 arrive in its order, none skipped (a repeat is answered)")

# -- the CS: 法務省通知 received for kizon, 市町村通知 numbered for 法務省 ------------------------------------------
IMMIGRATION_NOTICE_ADDRESSEE = rule("IMMIGRATION_NOTICE_ADDRESSEE", S.PERMISSION_DENIED, "cs", _MOJ_NOTICE,
                                    "a 法務省通知 reaches the CS of the municipality it is addressed to (the 住居地)")
IMMIGRATION_NOTICE_GAP = rule("IMMIGRATION_NOTICE_GAP", S.FAILED_PRECONDITION, "cs", f"{_MOJ_NOTICE}; DESIGN §5",
                              "法務省通知 arrive in 法務省's order for the municipality, none skipped (a repeat is "
                              "answered)")
MUNICIPALITY_NOTICE_ITEMS = rule("MUNICIPALITY_NOTICE_ITEMS", S.INVALID_ARGUMENT, "cs", _CITY_NOTICE,
                                 "a 市町村通知 kizon attaches is about the person of its update, from its municipality, "
                                 "with their 在留カード番号")

# -- kizon's 住基GW applying the 法務省通知 (職権) -----------------------------------------------------------------
IMMIGRATION_NOTICE_RESIDENT = rule("IMMIGRATION_NOTICE_RESIDENT", S.FAILED_PRECONDITION, "kizon",
                                   f"{_MOJ_NOTICE}; 住基法第30条の45",
                                   "a 法務省通知 changes the 住民票 of a current foreign resident here who holds the "
                                   "card it names (otherwise it is set aside for the office)")
IMMIGRATION_NOTICE_ITEMS = rule("IMMIGRATION_NOTICE_ITEMS", S.INVALID_ARGUMENT, "kizon", _MOJ_NOTICE,
                                "a 法務省通知 is of a kind 法務省 records, with the items that kind carries")
