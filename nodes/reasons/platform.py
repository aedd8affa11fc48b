"""The rules of the 宛名 system, the 中間サーバ, certificates printed and health."""
from grpc import StatusCode as S

from nodes.refusal import rule

# -- 団体内統合宛名システム -------------------------------------------------------------------------------
ATENA_OWN_MUNICIPALITY = rule("ATENA_OWN_MUNICIPALITY", S.INVALID_ARGUMENT, "atena", "DESIGN §3",
                              "an atena takes 異動 only of records of its own municipality (市町村コード)")

# -- 中間サーバ・プラットフォーム --------------------------------------------------------------------------
TENANT_ISOLATION = rule("TENANT_ISOLATION", S.PERMISSION_DENIED, "intermediate",
                        "PIA Ⅲ(1)7 中間サーバ・プラットフォーム③; DESIGN §3",
                        "an atena registers 副本 only of its own municipality, into its own tenant")
INTERMEDIATE_NO_INDIVIDUAL_NUMBER = rule("INTERMEDIATE_NO_INDIVIDUAL_NUMBER", S.INVALID_ARGUMENT, "intermediate",
                                         "PIA 中間サーバ ※１; DESIGN §3",
                                         "a 副本 carries no 個人番号: between institutions people are identified "
                                         "by 符号 only")
PROVISION_JIMU_REQUIRED = rule("PROVISION_JIMU_REQUIRED", S.INVALID_ARGUMENT, "intermediate",
                               "番号法第19条第8号; PIA (seed l.459–467: 主務省令第2条の表)",
                               "a 情報照会 names the 事務 it is for (a code of the 主務省令第2条の表)")
# PERMISSION_DENIED, not FAILED_PRECONDITION: the request is well formed and no state of the 中間サーバ would make it
# succeed later; the law does not let the 市町村長 provide for that 事務, as the policy does not let a caller in.
PROVISION_JIMU_NOT_IN_TABLE = rule("PROVISION_JIMU_NOT_IN_TABLE", S.PERMISSION_DENIED, "intermediate",
                                   "番号法第19条第8号; PIA (seed l.459–467, l.641–642: 主務省令第2条の表)",
                                   "住民票関係情報 is provided only for a 事務 of the 主務省令第2条の表 whose 情報提供者 is the "
                                   "市町村長, and only that 事務's items")
PORTAL_OWN_RECORD = rule("PORTAL_OWN_RECORD", S.PERMISSION_DENIED, "intermediate", "DESIGN §5 (情報提供)",
                         "a card holder reads only their own 情報提供等記録 (マイナポータル)")

# -- certificates (住民票の写し and the others kizon prints) ----------------------------------------------
CERTIFICATE_NUMBER_JUSTIFICATION = rule("CERTIFICATE_NUMBER_JUSTIFICATION", S.INVALID_ARGUMENT, "certificates",
                                        "DESIGN §5 (住民票の写し)",
                                        "a certificate prints the 個人番号 only when asked for with a justification")
CERTIFICATE_STATED_ITEMS = rule("CERTIFICATE_STATED_ITEMS", S.INVALID_ARGUMENT, "certificates",
                                "DESIGN §5 (住民票の写し)",
                                "a 記載事項証明書 names the items it certifies, each an item of the 住民票 "
                                "(the 個人番号 only through the justification)")

# -- health (grpc.health.v1) ---------------------------------------------------------------------------
HEALTH_SERVICE_UNKNOWN = rule("HEALTH_SERVICE_UNKNOWN", S.NOT_FOUND, "health", "gRPC Health Checking Protocol",
                              "Check names \"\" or a service the node serves (as List names them)")
