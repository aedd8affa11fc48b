"""市町村コミュニケーションサーバ (市町村CS): the municipality's gateway into Juki-net.

Keeps the 本人確認情報ファイル and checks every update from kizon before it acknowledges it
(PIA Ⅲ(2)5), numbers it (更新順番号) and sends it from a durable outbox to the prefecture;
keeps the 住民票コード pool national issued; passes 転出証明書情報 and 転入通知 to other CSs;
answers 本人確認情報検索 and runs the 整合性確認 against the prefecture and national.

The package is made of parts, each owning its state and reaching the others only through the interfaces of
parts (typing.Protocol): updates (本人確認情報の更新, group commit, the outbox), pool (住民票コード and 個人番号),
moves (転出証明書情報, 転入通知, 特例転入), cards (card steps, 広域交付), queries (照会, 整合性確認), search
(本人確認情報検索; terminals' searches are served by the search process, nodes/search_process.py, with the same
part), housekeeping (the purge), register (a person's record here) and peers (national, prefecture, card system);
checks (what an update is held to), and service (the servicer that builds the parts; its RPCs delegate).
"""
from nodes.cs.checks import changed_items, check_items, check_special_move_in  # noqa: F401
from nodes.cs.service import SCHEMA, SERVICE_NAME, Servicer, add_to_server  # noqa: F401
