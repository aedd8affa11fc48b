"""The rules of a municipality's コンビニ交付システム: the 利用者証明用電子証明書シリアル番号 it keeps."""
from grpc import StatusCode as S

from nodes.refusal import rule

CONBINI_SERIAL_FORMAT = rule("CONBINI_SERIAL_FORMAT", S.INVALID_ARGUMENT, "conbini", "seed システム6 (シリアル番号情報の利用管理)",
                             "a シリアル番号 registered or asked for is a decimal number of at most 60 digits, with the "
                             "住民票コード of its holder")
CONBINI_SERIAL_UNKNOWN = rule("CONBINI_SERIAL_UNKNOWN", S.NOT_FOUND, "conbini", "seed システム6 (シリアル番号情報の利用管理)",
                              "a certificate is issued only for a シリアル番号 住基ネット passed on for a resident here")
