"""Demand staged before the first ``run`` (``steadyscale request`` creates the ledger when
no daemon ran yet): an embedded emulator's run starts a fresh ledger, and carries over the
demand of one that never tracked a node or a launch, which is all such a ledger holds."""

from __future__ import annotations

from pathlib import Path

from steadyscale.core.resources import DemandItem
from steadyscale.store import demand_entries
from steadyscale.store.ledger import Ledger

Staged = dict[str, list[DemandItem]]


def staged_demand(path: Path) -> Staged:
    """The demand entries of the ledger at ``path`` if it only stages demand, else none.
    Opening it also checks it is readable: a damaged file is reported, never replaced."""
    ledger = Ledger(path)
    try:
        return demand_entries.read_entries(ledger.store) if ledger.is_empty() else {}
    finally:
        ledger.close()


def restore_staged(ledger: Ledger, staged: Staged, at: float) -> None:
    if not staged:
        return
    with ledger.transaction():
        for name, items in staged.items():
            demand_entries.set_entry(ledger.store, name, items, at)
