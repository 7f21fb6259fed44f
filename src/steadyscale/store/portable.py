"""A ledger as one JSON document, for backups and moves (``steadyscale ledger export`` and
``import``): its id, its meta (node types snapshot, owner, names carried over, ...), the
demand, every launch request with its ClientToken and parameters, every node with its
history, and (version 2 on) the side tables: the workloads' demand entries, usage reports,
drains, EC2's marks on nodes, the API's kept answers and audit log
(``store.portable_tables``). Versioned; an import goes only into an empty ledger, in one
transaction, and keeps the ledger's id, so the instances it launched stay provably its
own. A version 1 export (no side tables) still imports: its demand becomes the entry
``default``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from typing import Any

from steadyscale.core.lifecycle import HistoryEntry, NodeRecord, Status
from steadyscale.core.resources import DemandItem
from steadyscale.store.ledger import LEDGER_ID, LaunchRequest, Ledger, LedgerError
from steadyscale.store.portable_tables import export_tables, import_tables, parse_tables

FORMAT = "steadyscale-ledger"
VERSION = 2
READS = (1, 2)
_REQUEST_FIELDS = {f.name for f in fields(LaunchRequest)}
_NODE_FIELDS = {f.name for f in fields(NodeRecord)} - {"history"}


def export_ledger(ledger: Ledger, cluster_name: str) -> dict[str, Any]:
    """The ledger as a JSON-ready document (the same ledger gives the same document)."""
    requests = sorted(ledger.requests(), key=lambda r: (r.created_at, r.request_id))
    nodes = ledger.nodes(include_terminal=True, with_history=True)
    meta = {k: v for k, v in sorted(ledger.all_meta().items()) if k != LEDGER_ID}
    return {
        "format": FORMAT,
        "version": VERSION,
        "cluster_name": cluster_name,
        "ledger_id": ledger.ledger_id,
        "meta": meta,
        "demand": [{"bundle": i.bundle, "count": i.count} for i in ledger.demand()],
        "requests": [asdict(r) for r in requests],
        "nodes": [_node(r) for r in nodes],
        "tables": export_tables(ledger.store),
    }


def _node(record: NodeRecord) -> dict[str, Any]:
    values = {name: getattr(record, name) for name in sorted(_NODE_FIELDS)}
    values["status"] = record.status.value
    values["history"] = [
        {"status": e.status.value, "at": e.at, "reason": e.reason} for e in record.history
    ]
    return values


def import_ledger(ledger: Ledger, document: Any, *, source: str, cluster_name: str) -> int:
    """Fill the empty ``ledger`` from an export of cluster ``cluster_name``; returns the
    nodes imported. Anything else (another format or version, another cluster, a ledger
    with records or demand) is refused with one line naming ``source``."""
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise LedgerError(f'{source}: not a steadyscale ledger export (no "format": "{FORMAT}")')
    if document.get("version") not in READS:
        raise LedgerError(
            f"{source}: ledger export version {document.get('version')!r}; this steadyscale "
            f"reads versions {' and '.join(map(str, READS))} (import it with the version "
            "that exported it)"
        )
    if document.get("cluster_name") != cluster_name:
        raise LedgerError(
            f"{source}: an export of cluster {document.get('cluster_name')!r}, but the config "
            f"names {cluster_name!r}: import it under the name it ran with, then "
            "`steadyscale ledger carry-over` to rename"
        )
    try:
        parsed = _parse(document)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise LedgerError(f"{source}: a damaged ledger export ({_one_line(exc)})") from None
    if not ledger.is_empty() or ledger.demand():
        raise LedgerError(
            f"ledger {ledger.path} is not empty: import only into a new ledger (move this one "
            "aside first, only if no instance it tracks still runs)"
        )
    ledger_id, meta, demand, requests, records, tables = parsed
    with ledger.transaction():
        for request in requests:
            ledger.save_request(request)
        ledger.save_nodes(records, [(r.node_id, e) for r in records for e in r.history])
        ledger.write_demand(demand, float(meta.get("demand_updated_at", 0.0)))
        import_tables(ledger.store, tables)
        for key, value in {**meta, LEDGER_ID: ledger_id}.items():
            ledger.set_meta(key, value)
    return len(records)


_Parsed = tuple[
    str,
    dict[str, str],
    list[DemandItem],
    list[LaunchRequest],
    list[NodeRecord],
    dict[str, list[tuple[Any, ...]]],
]


def _parse(document: dict[str, Any]) -> _Parsed:
    ledger_id = document["ledger_id"]
    if not isinstance(ledger_id, str) or not ledger_id:
        raise ValueError("ledger_id must be a non-empty string")
    meta = {str(k): _text(v) for k, v in document["meta"].items()}
    demand = [
        DemandItem(bundle=_bundle(d["bundle"]), count=int(d["count"])) for d in document["demand"]
    ]
    requests = [LaunchRequest(**_only(r, _REQUEST_FIELDS)) for r in document["requests"]]
    records = []
    for raw in document["nodes"]:
        values = _only(raw, _NODE_FIELDS | {"history"})
        history = [
            HistoryEntry(Status(e["status"]), float(e["at"]), str(e["reason"]))
            for e in values.pop("history")
        ]
        values["status"] = Status(values["status"])
        records.append(NodeRecord(**values, history=history))
    tables = (
        parse_tables(document["tables"], {r.node_id for r in records})
        if document["version"] >= 2
        else {}
    )
    _check_entries(tables.get("demand_entries"), demand)
    return ledger_id, meta, demand, requests, records, tables


def _check_entries(rows: list[tuple[Any, ...]] | None, demand: list[DemandItem]) -> None:
    """The demand is the sum of its entries, in their order (as ``store.demand_entries``
    keeps it); an export where they differ was edited or damaged."""
    if rows is None:
        return
    summed = [(json.loads(r[2]), r[3]) for r in rows if r[3] > 0]
    if summed != [(item.bundle, item.count) for item in demand]:
        raise ValueError("its demand is not the sum of its demand entries")


def _only(raw: Any, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise TypeError(f"expected an object, got {type(raw).__name__}")
    unknown = set(raw) - allowed
    if unknown:
        raise ValueError(f"unknown keys {sorted(unknown)}")
    return dict(raw)


def _bundle(raw: Any) -> dict[str, float]:
    """A bundle as written (2 stays 2: an export of the import is the same document)."""
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in raw.values()):
        raise ValueError(f"a demand bundle's amounts are numbers, got {json.dumps(raw)}")
    return {str(k): v for k, v in raw.items()}


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"meta values are strings, got {json.dumps(value)}")
    return value


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())
