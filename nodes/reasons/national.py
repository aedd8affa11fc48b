"""The rules of the 都道府県サーバ and the 全国サーバ: who sends whose updates, the code pool, 個人番号 issuance."""
from grpc import StatusCode as S

from nodes.refusal import rule

# -- the 都道府県サーバ ---------------------------------------------------------------------------------
PREFECTURE_OWN_MUNICIPALITIES = rule("PREFECTURE_OWN_MUNICIPALITIES", S.PERMISSION_DENIED, "prefecture", "DESIGN §2",
                                     "a prefecture server takes updates only of the municipalities of its prefecture")

# -- the 全国サーバ: who sends whose updates --------------------------------------------------------------
PREFECTURE_SENDS_OWN = rule("PREFECTURE_SENDS_OWN", S.PERMISSION_DENIED, "national", "DESIGN §2",
                            "national takes from a prefecture only the updates of that prefecture's municipalities")

# -- 住民票コード: pools and offers ---------------------------------------------------------------------
POOL_OWN_MUNICIPALITY = rule("POOL_OWN_MUNICIPALITY", S.PERMISSION_DENIED, "national", "DESIGN §4",
                             "a CS takes a pool of 住民票コード only for its own municipality")
POOL_ISSUE_SIZE = rule("POOL_ISSUE_SIZE", S.INVALID_ARGUMENT, "national", "DESIGN §4",
                       "a pool request takes 1..MAX_POOL codes")
CODE_OFFER_SIZE = rule("CODE_OFFER_SIZE", S.INVALID_ARGUMENT, "national", "DESIGN §5",
                       "a 住民票コード変更請求 is offered 1..10 candidates")
RESIDENT_CODE_ISSUED_TO = rule("RESIDENT_CODE_ISSUED_TO", S.PERMISSION_DENIED, "national", "DESIGN §4",
                               "a 住民票コード pooled or offered to one municipality gets a 個人番号 only for it")

# -- 個人番号 ------------------------------------------------------------------------------------------
INDIVIDUAL_NUMBER_UNIQUE = rule("INDIVIDUAL_NUMBER_UNIQUE", S.FAILED_PRECONDITION, "national", "番号法第8条; DESIGN §4",
                                "every 個人番号 generated is unique (refused when no unique one could be generated)")
