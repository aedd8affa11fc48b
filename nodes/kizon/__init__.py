"""既存住民基本台帳システム (既存住基): the resident register behind the counter.

Every counter operation (出生, 転入, 転居, 転出, 死亡, 職権修正, 住民票コード変更, 世帯分離,
世帯合併, 世帯主変更) writes a new history entry (個人履歴番号) for each person it touches and
keeps removed records (除票). The CS checks and acknowledges the 本人確認情報 first; only then does
kizon commit, so a refused CS leaves nothing written, and a change whose answer was lost is settled
with the CS (nodes/intents.py). A retried request (same x-request-id) is answered, not applied twice.
Changes reach atena from a durable outbox.

The node is composed of parts, each owning its state and given what it uses through the Protocols of
parts.py (constructor injection); service.py builds them and its RPCs only delegate:
  register      Register: the residents, history and household tables (reads, town codes, entry writes);
                Inquiry: 照会 and bulk output of them
  changes       ChangeEngine: 依頼管理番号, intents (the Ledger), locks, the group sender to the CS, the commit,
                settling with the CS
  counter       Counter: the 届出 (出生, 転入, 転居, 転出, 死亡, 職権修正, 住民票コード変更, 世帯…)
  notices       MoveInNotices: 転入通知 from the CS, the 転出確定 of a 除票
  issuance      Issuance: certificates (窓口, 広域交付, コンビニ交付) and the card steps
  operators     Operators: login, sessions, a manager's approval of bulk output
  disclosure    Disclosures: bulk output counted at every door
  initial_load  InitialLoad: the bulk load of an existing register, and the 整合性確認
  relocation    KizonSite: 移行 from one site to the next (the register's side of nodes/site.py)
  items         the 住民票's items and the rules on them, shared by all
"""
from nodes.kizon.service import SCHEMA, SERVICE_NAME, Servicer, add_to_server  # noqa: F401
