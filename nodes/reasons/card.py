"""The rules of the 個人番号カード管理システム: the card's lifecycle, the PIN, the 送付先情報."""
from grpc import StatusCode as S

from nodes.refusal import rule

# -- the card's lifecycle ------------------------------------------------------------------------------
CARD_ACTION_UNKNOWN = rule("CARD_ACTION_UNKNOWN", S.INVALID_ARGUMENT, "card", "DESIGN §5 (card lifecycle)",
                           "a card step is one of the lifecycle's actions (or a housekeeping step of the CS)")
CARD_OWN_RESIDENTS = rule("CARD_OWN_RESIDENTS", S.PERMISSION_DENIED, "card", "DESIGN §3; DESIGN §5 (card lifecycle)",
                          "a CS acts only on the cards of its own municipality's residents")
CARD_STATE_TRANSITION = rule("CARD_STATE_TRANSITION", S.FAILED_PRECONDITION, "card", "DESIGN §5 (card lifecycle)",
                             "a card step starts only from a state the lifecycle allows it from "
                             "(apply → manufacture → issue → suspend/lift → revoke → return)")
CARD_NOT_USABLE = rule("CARD_NOT_USABLE", S.FAILED_PRECONDITION, "card", "DESIGN §5 (本人確認 with card)",
                       "only an issued card (not applied, suspended, revoked or returned) is checked with its PIN")

# -- the PIN -------------------------------------------------------------------------------------------
PIN_FORMAT = rule("PIN_FORMAT", S.INVALID_ARGUMENT, "card", "DESIGN §5 (card lifecycle)",
                  "a card's PIN is four digits, set at the counter on issue or reset")
PIN_LOCKED = rule("PIN_LOCKED", S.FAILED_PRECONDITION, "card", "PIA Ⅱ(1)3⑤⑧; DESIGN §5 (本人確認 with card)",
                  "a card is locked after 3 wrong PINs; the PIN is reset at the counter")
PIN_WRONG = rule("PIN_WRONG", S.UNAUTHENTICATED, "card", "PIA Ⅱ(1)3⑤⑧; DESIGN §5 (本人確認 with card)",
                 "a card proves its holder only with the PIN the holder set (each wrong PIN counts towards the lock)")

# -- the 利用者証明用電子証明書 (JPKI) ------------------------------------------------------------------------
JPKI_KEY_FORMAT = rule("JPKI_KEY_FORMAT", S.INVALID_ARGUMENT, "card", "公的個人認証法第22条; DESIGN §5 (card lifecycle)",
                       "a card's 利用者証明用 key is an EC P-256 public key (DER SubjectPublicKeyInfo) made on the card")
JPKI_KEY_ON_ISSUE = rule("JPKI_KEY_ON_ISSUE", S.INVALID_ARGUMENT, "card", "公的個人認証法第22条",
                         "the 利用者証明用電子証明書 is issued with the card at the counter (ISSUE) and with no other step")
JPKI_SERIAL_FORMAT = rule("JPKI_SERIAL_FORMAT", S.INVALID_ARGUMENT, "card", "公的個人認証法第37条",
                          "a 利用者証明用電子証明書シリアル番号 is a decimal number of at most 60 digits")
