"""Whose a ledger is, and which of its nodes carry a former cluster name.

The daemon records in the ledger's meta table the config file that runs it and the cluster
name it runs under (``claim``), so that a cluster whose name changed finds the ledger of its
former name beside its own (``ledgers_beside``) instead of starting empty while its
instances run on untracked. ``carry_over`` moves a ledger to a new cluster name. EC2 cannot
retag those instances (tags are set at launch only), so the ledger remembers which nodes
carry which former name (``carried``) until none of them is live.

A PostgreSQL ledger does not move: its URL does not depend on the cluster name, so, as a
file named by ``ledger:``, it is carried over in place (by ``claim`` at the daemon's start,
or by ``carry_over`` under its advisory writer lock), and no ledger lies beside it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

from steadyscale.config.location import DatabaseURL, LedgerLocation
from steadyscale.store.ledger import (
    Ledger,
    LedgerError,
    LedgerUnavailableError,
    WriterLock,
    ledger_exists,
)

_CONFIG_FILE = "config_file"
_CLUSTER_NAME = "cluster_name"
_CARRIED = "carried_over"
# The files of one SQLite ledger in WAL mode, moved together.
_SUFFIXES = ("", "-wal", "-shm")


@dataclass(frozen=True)
class Owner:
    """What the last daemon on a ledger recorded: None where it recorded nothing (a ledger
    of an older steadyscale, or one no daemon has run yet)."""

    config_file: str | None
    cluster_name: str | None


def owner(ledger: Ledger) -> Owner:
    return Owner(config_file=ledger.meta(_CONFIG_FILE), cluster_name=ledger.meta(_CLUSTER_NAME))


def carried(ledger: Ledger) -> dict[str, frozenset[str]]:
    """Former cluster name -> the ids of the nodes launched under it (their tag)."""
    text = ledger.meta(_CARRIED)
    if not text:
        return {}
    return {name: frozenset(ids) for name, ids in json.loads(text).items()}


def set_carried(ledger: Ledger, by_name: Mapping[str, Collection[str]]) -> None:
    kept = {name: sorted(ids) for name, ids in sorted(by_name.items()) if ids}
    ledger.set_meta(_CARRIED, json.dumps(kept))


def _carry(ledger: Ledger, cluster_name: str, previous: str | None) -> dict[str, frozenset[str]]:
    """What ``carried`` becomes when the ledger runs as ``cluster_name`` after ``previous``:
    its live nodes not carried already were launched under ``previous``; a former name that
    is the current one again is dropped (its nodes are the cluster's own again), and so is
    every node no longer live."""
    live = {record.node_id for record in ledger.nodes()}
    by_name = {name: ids & live for name, ids in carried(ledger).items()}
    if previous and previous != cluster_name:
        own = live.difference(*by_name.values())
        by_name[previous] = by_name.get(previous, frozenset()) | own
    by_name.pop(cluster_name, None)
    return {name: ids for name, ids in by_name.items() if ids}


def claim(ledger: Ledger, *, config_file: str | None, cluster_name: str) -> str | None:
    """Record that ``config_file`` runs the ledger as ``cluster_name`` (at each daemon start).

    Returns the name the ledger ran under before when it differs and live nodes carry it
    (the ledger's path does not depend on the name, so the cluster was carried over in
    place), else None."""
    with ledger.transaction():
        previous = owner(ledger).cluster_name
        before = carried(ledger)
        after = _carry(ledger, cluster_name, previous)
        if after != before:
            set_carried(ledger, after)
        if config_file is not None:
            ledger.set_meta(_CONFIG_FILE, config_file)
        ledger.set_meta(_CLUSTER_NAME, cluster_name)
    renamed = previous is not None and previous != cluster_name and previous in after
    return previous if renamed else None


@dataclass(frozen=True)
class LedgerFile:
    """A ledger file as a reader finds it: who runs it, and how many live nodes it tracks."""

    path: Path
    owner: Owner
    live_nodes: int
    carried: Mapping[str, int]  # former cluster name -> live nodes still tagged with it


def read_ledger(where: LedgerLocation) -> LedgerFile | None:
    """The ledger at ``where`` (a file or a database), read without its lock; None when
    there is none, or it is not a ledger this steadyscale reads (another SQLite file, a
    damaged one, another schema version). ``path`` is the location as text for a URL."""
    try:
        if not ledger_exists(where):
            return None
        ledger = Ledger(where, readonly=True)
    except LedgerUnavailableError:
        raise  # a database that cannot be reached now is not "no ledger"
    except LedgerError:
        return None
    try:
        live = {record.node_id for record in ledger.nodes()}
        return LedgerFile(
            path=where if isinstance(where, Path) else Path(str(where)),
            owner=owner(ledger),
            live_nodes=len(live),
            carried={name: len(ids & live) for name, ids in carried(ledger).items()},
        )
    finally:
        ledger.close()


def read_ledger_file(path: Path) -> LedgerFile | None:
    """The ledger file at ``path``: ``read_ledger``."""
    return read_ledger(path)


def ledgers_beside(path: Path) -> list[LedgerFile]:
    """The other ledgers in ``path``'s directory (``*.db``), by name."""
    if not path.parent.is_dir():
        return []
    found = []
    for other in sorted(path.parent.glob("*.db")):
        if other.resolve() != path.resolve() and other.is_file():
            ledger = read_ledger_file(other)
            if ledger is not None:
                found.append(ledger)
    return found


@dataclass(frozen=True)
class CarriedOver:
    """What ``carry_over`` did."""

    live_nodes: int  # live nodes the ledger tracks
    carried: Mapping[str, int]  # former cluster name -> live nodes carrying its tag
    replaced: Path | None  # where an empty ledger at the new path was moved aside


def carry_over(
    old: LedgerLocation,
    new: LedgerLocation,
    *,
    config_file: str,
    former_name: str,
    cluster_name: str,
) -> CarriedOver:
    """Make the ledger of ``former_name`` at ``old`` the ledger of ``cluster_name`` at
    ``new`` (the same file when the path does not depend on the name; always the same
    database for a PostgreSQL ledger). Refused while a daemon runs on either, when ``new``
    tracks live nodes, and when the ledger belongs to another config file that still
    exists."""
    if isinstance(old, DatabaseURL) or isinstance(new, DatabaseURL):
        return _carry_over_in_database(
            old, new, config_file=config_file, former_name=former_name, cluster_name=cluster_name
        )
    if not old.exists():
        raise LedgerError(f"no ledger of cluster {former_name} at {old}")
    locks = [WriterLock(old)] + ([WriterLock(new)] if new != old else [])
    taken: list[WriterLock] = []
    try:
        for lock in locks:
            lock.acquire()
            taken.append(lock)
        ledger = Ledger(old)
        try:
            _check_config(ledger, old, config_file)
            replaced = _move_aside_if_empty(new, cluster_name) if new != old else None
            by_name = _rename(ledger, config_file, former_name, cluster_name)
            live = len(ledger.nodes())
        finally:
            ledger.close()  # the last connection: SQLite folds the WAL into the file
        if new != old:
            _move(old, new)
    finally:
        for lock in taken:
            lock.release()
    return CarriedOver(
        live_nodes=live, carried={n: len(ids) for n, ids in by_name.items()}, replaced=replaced
    )


def _rename(
    ledger: Ledger, config_file: str, former_name: str, cluster_name: str
) -> dict[str, frozenset[str]]:
    """Record the new name and which live nodes carry a former one, in one transaction."""
    with ledger.transaction():
        by_name = _carry(ledger, cluster_name, owner(ledger).cluster_name or former_name)
        set_carried(ledger, by_name)
        ledger.set_meta(_CONFIG_FILE, config_file)
        ledger.set_meta(_CLUSTER_NAME, cluster_name)
    return by_name


def _carry_over_in_database(
    old: LedgerLocation,
    new: LedgerLocation,
    *,
    config_file: str,
    former_name: str,
    cluster_name: str,
) -> CarriedOver:
    """``carry_over`` of a PostgreSQL ledger: in place, under its advisory writer lock."""
    if old != new:
        raise LedgerError(
            f"the ledger of cluster {former_name} is {old} and that of {cluster_name} is "
            f"{new}: a ledger moves between files only, never into or out of a PostgreSQL "
            "database; keep the same ledger: setting for both names"
        )
    if not ledger_exists(old):
        raise LedgerError(f"no ledger of cluster {former_name} at {old}")
    ledger = Ledger(old)
    try:
        ledger.acquire_writer()
        _check_config(ledger, old, config_file)
        by_name = _rename(ledger, config_file, former_name, cluster_name)
        live = len(ledger.nodes())
    finally:
        ledger.close()
    return CarriedOver(
        live_nodes=live, carried={n: len(ids) for n, ids in by_name.items()}, replaced=None
    )


def _check_config(ledger: Ledger, path: LedgerLocation, config_file: str) -> None:
    """Refuse a ledger another config runs: two configs on one cluster would fight."""
    recorded = owner(ledger)
    other = recorded.config_file
    if other is None or other == config_file or not Path(other).exists():
        return
    raise LedgerError(
        f"ledger {path} is run by config {other} (cluster {recorded.cluster_name}), "
        f"not by {config_file}; carry it over with that config, or move that config away "
        "if it no longer runs this cluster"
    )


def _move_aside_if_empty(path: Path, cluster_name: str) -> Path | None:
    """A ledger already at the new path is moved aside if it tracks no live node (its
    history is kept there), refused otherwise."""
    if not path.exists():
        return None
    ledger = Ledger(path)
    try:
        live = len(ledger.nodes())
    finally:
        ledger.close()
    if live:
        raise LedgerError(
            f"ledger {path} already tracks {live} live node(s) of cluster {cluster_name}; "
            "carry a cluster over only to a name whose ledger has none (scale it to zero "
            "first, or pick another cluster_name)"
        )
    number = 1
    while Path(f"{path}.replaced-{number}").exists():
        number += 1
    aside = Path(f"{path}.replaced-{number}")
    _move(path, aside)
    return aside


def _move(old: Path, new: Path) -> None:
    """Move a closed ledger's files (the database first: it is whole on its own once its
    last connection closed)."""
    for suffix in _SUFFIXES:
        source = Path(f"{old}{suffix}")
        if source.exists():
            os.replace(source, f"{new}{suffix}")
