"""The 24-hour accounts of disclosed records at kizon and the CS: each read's queries reach only what that read needs
(the records it names, the unapproved ones of the window), however many people the ledger holds after a year."""
from __future__ import annotations

import sqlite3

import pytest

from nodes import disclosed
from nodes.cs import bulk
from nodes.kizon import disclosure
from nodes.store import rows_in

WINDOW_START = 1_000.0


def ledger(schema: str, approved: int, unapproved: int) -> sqlite3.Connection:
    """A ledger with that many people read by OP0001 under an approval and without one."""
    db = sqlite3.connect(":memory:")
    db.executescript(schema)
    db.executemany("INSERT INTO disclosures VALUES (?,?,?,?)",
                   [("OP0001", f"{i:011d}", WINDOW_START + i, "APPROVAL" if i >= unapproved else None)
                    for i in range(approved + unapproved)])
    return db


def plan(db, query: str, params: tuple) -> str:
    """What SQLite's planner does for the query."""
    return " ".join(row[-1] for row in db.execute(f"EXPLAIN QUERY PLAN {query}", params))


@pytest.mark.parametrize("schema", [disclosure.SCHEMA, bulk.SCHEMA], ids=["kizon", "cs"])
def test_the_queries_of_a_read_do_not_walk_the_ledger(schema):
    """The unapproved count walks the partial index of unapproved records only, and the people already seen are
    found by their key; the figures are those of the whole ledger (20,000 approved, 40 unapproved)."""
    db = ledger(schema, approved=20_000, unapproved=40)
    assert "disclosures_unapproved" in plan(db, disclosed.UNAPPROVED, ("OP0001", WINDOW_START - 1))
    assert db.execute(disclosed.UNAPPROVED, ("OP0001", WINDOW_START - 1)).fetchone()[0] == 40
    assert db.execute(disclosed.UNAPPROVED, ("OP0001", WINDOW_START + 20)).fetchone()[0] == 19  # (at > start + 20)
    asked = [f"{i:011d}" for i in (5, 15_000, 30_000)]
    seen_plan = plan(db, f"{disclosed.SEEN} IN (?,?,?)", ("OP0001", WINDOW_START - 1, *asked))
    assert "sqlite_autoindex_disclosures_1 (operator=? AND resident_code=?)" in seen_plan, seen_plan
    seen = {r[0] for r in rows_in(db, disclosed.SEEN, asked, ("OP0001", WINDOW_START + 10))}
    assert seen == {asked[1]}  # (the first was read before the window's start, the last never)
