"""The rules of J-LIS's 証明書交付センター: the card's 利用者証明用電子証明書, the challenge it signs, the municipality."""
from grpc import StatusCode as S

from nodes.refusal import rule

# -- the 利用者証明用電子証明書 ----------------------------------------------------------------------------
CENTRE_CERTIFICATE_FORMAT = rule("CENTRE_CERTIFICATE_FORMAT", S.INVALID_ARGUMENT, "centre", "公的個人認証法第22条",
                                 "the kiosk presents the card's 利用者証明用電子証明書 as one DER X.509 certificate with "
                                 "an EC P-256 key")
CENTRE_CERTIFICATE_UNTRUSTED = rule("CENTRE_CERTIFICATE_UNTRUSTED", S.UNAUTHENTICATED, "centre", "公的個人認証法第38条",
                                    "a 利用者証明用電子証明書 counts only when the JPKI 利用者証明用 CA signed it")
CENTRE_CERTIFICATE_EXPIRED = rule("CENTRE_CERTIFICATE_EXPIRED", S.UNAUTHENTICATED, "centre", "公的個人認証法第23条",
                                  "a 利用者証明用電子証明書 counts only within its validity, by the centre's clock")
CENTRE_CERTIFICATE_REVOKED = rule("CENTRE_CERTIFICATE_REVOKED", S.PERMISSION_DENIED, "centre", "公的個人認証法第24条, 第38条",
                                  "a 利用者証明用電子証明書 the card system revoked (card suspended, revoked, returned, "
                                  "re-issued; the holder died) proves no one")
CENTRE_CERTIFICATE_UNKNOWN = rule("CENTRE_CERTIFICATE_UNKNOWN", S.UNAUTHENTICATED, "centre", "公的個人認証法第38条",
                                  "a 利用者証明用電子証明書 the card system never issued proves no one")
# -- the challenge -----------------------------------------------------------------------------------------
CENTRE_CHALLENGE_UNKNOWN = rule("CENTRE_CHALLENGE_UNKNOWN", S.NOT_FOUND, "centre", "DESIGN §3 (challenge-response)",
                                "a signature answers a challenge the centre gave")
CENTRE_CHALLENGE_SPENT = rule("CENTRE_CHALLENGE_SPENT", S.FAILED_PRECONDITION, "centre", "DESIGN §3 (challenge-response)",
                              "a challenge is answered once: right or wrong, an answer spends it")
CENTRE_CHALLENGE_EXPIRED = rule("CENTRE_CHALLENGE_EXPIRED", S.FAILED_PRECONDITION, "centre", "DESIGN §3 (challenge-response)",
                                "a challenge is answered within its lifetime (60 s), by the centre's clock")
CENTRE_SIGNATURE = rule("CENTRE_SIGNATURE", S.UNAUTHENTICATED, "centre", "公的個人認証法第22条 (利用者証明)",
                        "the card proves its holder with an ECDSA-SHA256 signature over the challenge by the key of its "
                        "利用者証明用電子証明書")
# -- the municipality --------------------------------------------------------------------------------------
CENTRE_MUNICIPALITY = rule("CENTRE_MUNICIPALITY", S.PERMISSION_DENIED, "centre", "住基法第12条の4 (コンビニ交付)",
                           "the certificate is asked of the municipality the card system names for the holder, one that "
                           "offers コンビニ交付")
