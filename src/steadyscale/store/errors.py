"""The errors of durable state, shared by both backends: a store that cannot be opened or
read, one whose database cannot be reached for a moment, and a write refused by its fence."""

from __future__ import annotations

from steadyscale.errors import SteadyscaleError


class StoreError(SteadyscaleError):
    """A store cannot be opened or read; it is never silently recreated."""


class StoreUnavailableError(StoreError):
    """The database server could not be reached for this one call (a broken connection, a
    restart, a failover); the next call connects again. A write that raised it may or may
    not have committed: what it wrote is read back before it is relied on."""


class FencedError(StoreError):
    """A write transaction was refused because its fence query did not hold: this process
    is no longer the one allowed to write (another replica leads). Nothing was written."""


class LedgerError(StoreError):
    """The ledger cannot be opened or read; it is never silently recreated."""


class LedgerUnavailableError(LedgerError, StoreUnavailableError):
    """The ledger's database could not be reached for this one call; the next reconnects."""
