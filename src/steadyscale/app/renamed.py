"""A cluster whose ``cluster_name`` changed, found before its daemon starts.

The ledger's path comes from the name, so a renamed cluster would start on a new, empty
ledger and list by a tag its instances do not carry, while they run on untracked. The
runtime calls ``refuse_if_renamed`` before anything starts: a new or empty ledger is refused
while a ledger beside it, run by the same config under another name, still tracks live
nodes (the way out: the old name back, or ``steadyscale ledger carry-over``), and while a
ledger beside it still carries nodes tagged with the name (a cluster of that name would
take them for strangers), and while this config's ledger of this very name lies beside it
(a carry-over cut short before it moved the file). ``claim_ledger`` then records who runs
the ledger.

A PostgreSQL ledger has nothing beside it, and its URL does not depend on the name: a
renamed cluster on one is carried over in place by ``claim_ledger``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from steadyscale.config import ClusterConfig, DatabaseURL, LedgerLocation
from steadyscale.store.ledger import Ledger, LedgerError
from steadyscale.store.ownership import LedgerFile, claim, ledgers_beside, read_ledger_file

log = logging.getLogger("steadyscale.runtime")


def refuse_if_renamed(
    config: ClusterConfig, config_path: str | Path | None, path: LedgerLocation
) -> None:
    """Refuse (LedgerError, one line) to start the new or empty ledger at ``path`` while a
    ledger beside it would be orphaned by it, or has nodes it would kill. Ledgers of other
    configs never block a new cluster; those that do not say which config ran them (an
    older steadyscale's) are only warned about, and so are this config's other ledgers
    once its own ledger tracks nodes."""
    if config_path is None or isinstance(path, DatabaseURL):
        return
    config_file = str(Path(config_path).resolve())
    own = read_ledger_file(path) if path.exists() else None
    empty = not path.exists() or (own is not None and own.live_nodes == 0)
    for other in ledgers_beside(path):
        if not other.live_nodes:
            continue
        if other.owner.cluster_name == config.cluster_name:
            # This config's ledger, of this name, beside the one to start: carry-over moves
            # it here after it wrote the name; killed in between, it was left there.
            if empty and other.owner.config_file == config_file:
                raise LedgerError(_cut_short(config, config_path, other, path))
            continue
        if other.owner.config_file == config_file:
            if empty:
                raise LedgerError(_renamed(config, config_path, other))
            log.warning(
                "this config's ledger %s (cluster %s) still tracks %d live node(s) under "
                "its former cluster_name, which this daemon does not list",
                other.path,
                other.owner.cluster_name,
                other.live_nodes,
            )
        elif empty and other.carried.get(config.cluster_name):
            raise LedgerError(_still_carried(config, other))
        elif other.owner.config_file is None and empty:
            log.warning(
                "ledger %s (of an older steadyscale) tracks %d live node(s); if it is this "
                "cluster's under a former cluster_name, stop and carry it over: "
                "steadyscale ledger carry-over %s --from %s",
                other.path,
                other.live_nodes,
                config_path,
                other.path.stem,
            )


def _renamed(config: ClusterConfig, config_path: str | Path, other: LedgerFile) -> str:
    old, new = other.owner.cluster_name, config.cluster_name
    return (
        f"cluster_name is now {new}, but this config's ledger {other.path} (cluster {old}, "
        f"{other.live_nodes} live node(s)) still tracks instances tagged "
        f"steadyscale:cluster={old}, which cluster {new} would never see; set cluster_name "
        f"back to {old}, or carry the cluster over to {new} with: steadyscale ledger "
        f"carry-over {config_path} --from {old}"
    )


def _cut_short(
    config: ClusterConfig, config_path: str | Path, other: LedgerFile, path: Path
) -> str:
    return (
        f"this config's ledger {other.path} runs cluster {config.cluster_name} "
        f"({other.live_nodes} live node(s)), but the ledger of cluster {config.cluster_name} "
        f"is {path}: a carry-over was cut short; finish it with: steadyscale ledger "
        f"carry-over {config_path} --from {other.path.stem}"
    )


def _still_carried(config: ClusterConfig, other: LedgerFile) -> str:
    name = config.cluster_name
    return (
        f"cluster_name {name} is still the tag of {other.carried[name]} live node(s) that "
        f"ledger {other.path} (cluster {other.owner.cluster_name}) carried over from it; a "
        f"new cluster {name} would take their instances for strangers and terminate them: "
        "pick another cluster_name until they are gone"
    )


def claim_ledger(ledger: Ledger, config: ClusterConfig, config_path: str | Path | None) -> None:
    """Record in the ledger the config file that runs it and the cluster name it runs
    under; a ledger whose path does not depend on the name carries its nodes over."""
    config_file = str(Path(config_path).resolve()) if config_path is not None else None
    former = claim(ledger, config_file=config_file, cluster_name=config.cluster_name)
    if former is not None:
        log.warning(
            "cluster_name changed from %s to %s on ledger %s: its live nodes keep the tag "
            "steadyscale:cluster=%s (EC2 cannot change it) and are listed by it until gone; "
            "new nodes are tagged %s",
            former,
            config.cluster_name,
            ledger.path,
            former,
            config.cluster_name,
        )
