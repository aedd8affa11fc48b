"""既存住民基本台帳システム (既存住基): the resident register behind the counter.

Every counter operation (出生, 転入, 転居, 転出, 死亡, 職権修正, 住民票コード変更, 世帯分離,
世帯合併, 世帯主変更) writes a new history entry (個人履歴番号) for each person it touches and
keeps removed records (除票). The CS checks and acknowledges the 本人確認情報 first; only then does
kizon commit, so a refused CS leaves nothing written, and a change whose answer was lost is settled
with the CS (nodes/intents.py). A retried request (same x-request-id) is answered, not applied twice.
Changes reach atena from a durable outbox.

The package is split by concern: items (the 住民票's items and rules), changes (how a change is made),
counter (異動), issuance (証明書, cards), register (照会, export), operators (login, approvals),
migration (移行, 整合性確認) and service (the servicer that wires them).
"""
from nodes.kizon.service import SCHEMA, SERVICE_NAME, Servicer, add_to_server  # noqa: F401
