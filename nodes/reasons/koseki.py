"""The rules the 戸籍 system keeps (its 届出 and the 附票), and those kizon's 住基GW keeps applying its notices."""
from grpc import StatusCode as S

from nodes.refusal import rule

# -- the 届出 at the 戸籍 counter ------------------------------------------------------------------------
KOSEKI_NOT_IN_REGISTER = rule("KOSEKI_NOT_IN_REGISTER", S.FAILED_PRECONDITION, "koseki", "戸籍法第6条, 第25条",
                              "a 届出 names people 在籍 in a 戸籍 of this municipality (the 本籍地 keeps the 戸籍)")
KOSEKI_NOTIFIER_REQUIRED = rule("KOSEKI_NOTIFIER_REQUIRED", S.INVALID_ARGUMENT, "koseki", "戸籍法第27条の2",
                                "every 届出 names its 届出人 and the document the counter checked them with")
MARRIAGE_AGE = rule("MARRIAGE_AGE", S.FAILED_PRECONDITION, "koseki", "民法第731条",
                    "both parties of a 婚姻 are 18 or over on the office's today")
MARRIAGE_ALREADY_MARRIED = rule("MARRIAGE_ALREADY_MARRIED", S.FAILED_PRECONDITION, "koseki", "民法第732条",
                                "neither party of a 婚姻 is married (重婚の禁止)")
MARRIAGE_PARTIES = rule("MARRIAGE_PARTIES", S.INVALID_ARGUMENT, "koseki", "民法第739条, 第750条; 戸籍法第74条",
                        "a 婚姻届 names two different people, the 夫 and the 妻, and whose 氏 the couple takes")
DIVORCE_NOT_MARRIED = rule("DIVORCE_NOT_MARRIED", S.FAILED_PRECONDITION, "koseki", "民法第763条",
                           "a 離婚届 names a married person")
DIVORCE_SURNAME_KEEPER = rule("DIVORCE_SURNAME_KEEPER", S.FAILED_PRECONDITION, "koseki", "民法第767条; 戸籍法第19条",
                              "the party of a 離婚 who returns to the former 氏 (復氏) is the one who took the other's")
HONSEKI_HERE = rule("HONSEKI_HERE", S.INVALID_ARGUMENT, "koseki", "戸籍法第6条, 第108条",
                    "a new 本籍 of this 戸籍 system lies in this municipality and differs from the present one")
READING_KATAKANA = rule("READING_KATAKANA", S.INVALID_ARGUMENT, "koseki", "戸籍法第13条第2項 (2025-05-26)",
                        "the 振り仮名 of a 氏名 is written in katakana, for the 氏 and the 名")
READING_ONCE = rule("READING_ONCE", S.FAILED_PRECONDITION, "koseki", "戸籍法第29条の2, 第107条の3",
                    "the 振り仮名 is recorded by 届出 once; changing it later needs the 家庭裁判所's permission")
DEATH_DATE = rule("DEATH_DATE", S.INVALID_ARGUMENT, "koseki", "戸籍法第86条",
                  "a 死亡 is on or after the person's birth (one after the office's today is DATE_NOT_FUTURE's)")
KOSEKI_REGISTER_CLOSED = rule("KOSEKI_REGISTER_CLOSED", S.FAILED_PRECONDITION, "koseki", "戸籍法第12条",
                              "a 戸籍 whose every member is 除籍 is a 除籍簿: it takes no 届出 (no 転籍)")
KOSEKI_LOAD_TAKEN = rule("KOSEKI_LOAD_TAKEN", S.ALREADY_EXISTS, "koseki", "移行",
                         "a load brings 戸籍 not yet held here (a repeat of the same 戸籍 is answered, not loaded twice)")

# -- the 附票 -----------------------------------------------------------------------------------------------
ANNEX_NOTICE_ADDRESSEE = rule("ANNEX_NOTICE_ADDRESSEE", S.INVALID_ARGUMENT, "koseki", "住基法第19条",
                              "a 戸籍附票通知 handed to a 戸籍 system is addressed to its municipality (the 本籍地)")

# -- kizon's 住基GW applying the 戸籍 system's notices ---------------------------------------------------------
FAMILY_NOTICE_GAP = rule("FAMILY_NOTICE_GAP", S.FAILED_PRECONDITION, "kizon", "住基法第9条第2項; DESIGN §5",
                         "the 戸籍 system's notices are applied in their order, none skipped")
FAMILY_NOTICE_KIND = rule("FAMILY_NOTICE_KIND", S.INVALID_ARGUMENT, "kizon", "住基法第9条第2項",
                          "a notice of the 戸籍 system is of a 届出 it records (婚姻, 離婚, 転籍, 振り仮名, 死亡)")
FAMILY_NOTICE_RESIDENT = rule("FAMILY_NOTICE_RESIDENT", S.FAILED_PRECONDITION, "kizon", "住基法第9条第2項",
                              "a notice of the 戸籍 system changes the 住民票 of a current resident here")
