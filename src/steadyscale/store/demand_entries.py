"""Demand in named entries: each workload owns its entry, and the demand the loop reads
(the ``demand`` table) is their sum, rewritten in the same transaction as any entry.
Replacing the whole demand (``steadyscale request``, ``PUT /api/v1/demand``, a scenario
step) leaves one entry, ``default``, with exactly what was asked."""

from __future__ import annotations

import json
from collections.abc import Iterable

from steadyscale.core.resources import DemandItem
from steadyscale.store.storage import SET_META, Storage

DEFAULT_ENTRY = "default"


def _rows(name: str, items: Iterable[DemandItem], at: float) -> list[tuple[object, ...]]:
    return [
        (name, position, json.dumps(item.bundle, sort_keys=True), item.count, at)
        for position, item in enumerate(items)
        if item.count > 0
    ]


def replace_demand(db: Storage, items: Iterable[DemandItem], at: float) -> None:
    """The whole demand is ``items`` (entry ``default``); inside the caller's transaction."""
    items = list(items)
    db.execute("DELETE FROM demand_entries")
    _insert(db, _rows(DEFAULT_ENTRY, items, at))
    _write_sum(db, items, at)


def set_entry(db: Storage, name: str, items: Iterable[DemandItem], at: float) -> None:
    """Entry ``name`` is ``items`` (an empty list removes it), the sum rewritten; inside
    the caller's transaction."""
    db.execute("DELETE FROM demand_entries WHERE name = ?", (name,))
    _insert(db, _rows(name, items, at))
    _write_sum(db, _flatten(read_entries(db)), at)


def delete_entry(db: Storage, name: str, at: float) -> bool:
    """Remove entry ``name``; False (nothing changed) when there is none."""
    if name not in read_entries(db):
        return False
    set_entry(db, name, (), at)
    return True


def read_entries(db: Storage) -> dict[str, list[DemandItem]]:
    """Every entry by name, ``default`` first, then by name."""
    entries: dict[str, list[DemandItem]] = {}
    rows = db.rows(
        "SELECT name, bundle, count FROM demand_entries "
        "ORDER BY CASE WHEN name = ? THEN 0 ELSE 1 END, name, position",
        (DEFAULT_ENTRY,),
    )
    for row in rows:
        entries.setdefault(row["name"], []).append(
            DemandItem(bundle=json.loads(row["bundle"]), count=row["count"])
        )
    return entries


def _flatten(entries: dict[str, list[DemandItem]]) -> list[DemandItem]:
    """The sum of the entries: each entry's items in turn (the scheduler places bundles,
    so a bundle listed twice weighs as one item with both counts)."""
    return [item for items in entries.values() for item in items]


def _insert(db: Storage, rows: list[tuple[object, ...]]) -> None:
    db.executemany(
        "INSERT INTO demand_entries (name, position, bundle, count, updated_at) "
        "VALUES (?, ?, ?, ?, ?)",
        rows,
    )


def _write_sum(db: Storage, items: Iterable[DemandItem], at: float) -> None:
    rows = [
        (position, json.dumps(item.bundle, sort_keys=True), item.count, at)
        for position, item in enumerate(items)
        if item.count > 0
    ]
    db.execute("DELETE FROM demand")
    db.executemany(
        "INSERT INTO demand (position, bundle, count, updated_at) VALUES (?, ?, ?, ?)", rows
    )
    db.execute(SET_META, ("demand_updated_at", str(at)))
