"""The rules of 庁内連携 (the 宛名 system's OfficeLink): what the office systems of a municipality may read."""
from grpc import StatusCode as S

from nodes.refusal import rule

SEED = "PIA (seed l.1917–1918, l.4430–4438)"  # 「番号法第９条第１項別表に記載されない事務については、個人番号を用いた連携を行えない」

# PERMISSION_DENIED, not FAILED_PRECONDITION: no state of the register would let the caller in; who it is decides.
OFFICE_SYSTEM_UNKNOWN = rule("OFFICE_SYSTEM_UNKNOWN", S.PERMISSION_DENIED, "atena", f"{SEED}; DESIGN §3",
                             "庁内連携 answers only an office system whose 事務 the 宛名 system's table holds")
OFFICE_QUERY_ONE_KEY = rule("OFFICE_QUERY_ONE_KEY", S.INVALID_ARGUMENT, "atena", "DESIGN §4",
                            "an office query names the person by exactly one key: the 団体内統合宛名番号, the 宛名番号 "
                            "or the 個人番号")
OFFICE_KEY_FORMAT = rule("OFFICE_KEY_FORMAT", S.INVALID_ARGUMENT, "atena", "DESIGN §4",
                         "a 団体内統合宛名番号 or 宛名番号 is 15 digits")
OFFICE_NUMBER_NOT_IN_TABLE = rule("OFFICE_NUMBER_NOT_IN_TABLE", S.PERMISSION_DENIED, "atena",
                                  f"番号法第9条第1項 別表; {SEED}",
                                  "only an office system whose 事務 is in 番号法第9条第1項 別表 looks a person up by the "
                                  "個人番号 (選挙 and 戸籍 never do)")
