"""市町村コミュニケーションサーバ (市町村CS): the municipality's gateway into Juki-net.

Keeps the 本人確認情報ファイル and checks every update from kizon before it acknowledges it
(PIA Ⅲ(2)5), numbers it (更新順番号) and sends it from a durable outbox to the prefecture;
keeps the 住民票コード pool national issued; passes 転出証明書情報 and 転入通知 to other CSs;
answers 本人確認情報検索 and runs the 整合性確認 against the prefecture and national.

The package is split by concern: checks (what an update is held to), updates (本人確認情報の更新),
queries (照会, 検索, 整合性確認), pool (住民票コード and 個人番号), moves (転出証明書情報, 転入通知), cards,
and service (the servicer that wires them).
"""
from nodes.cs.checks import changed_items, check_items, check_special_move_in  # noqa: F401
from nodes.cs.service import SCHEMA, SERVICE_NAME, Servicer, add_to_server  # noqa: F401
