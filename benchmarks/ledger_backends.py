"""The ledger's tick write on SQLite and on PostgreSQL, in one run.

A tick that changed N nodes writes them (every field) and one history entry each, in one
transaction (``Ledger.save_nodes``). This times that write for 1,000 changed nodes on a
SQLite file and on a PostgreSQL database (a real server on 127.0.0.1, started here through
``steadyscale.testing.postgres``; Debian's binaries), alternating rounds, and prints the
medians and the ratio. For scale it also times the same PostgreSQL write sent one
statement per row (``execute`` in a loop) instead of ``executemany``, which psycopg sends
in pipeline mode: that is what a thousand round trips would cost.

The test server runs with fsync off (throwaway data), as SQLite here runs with
``synchronous=NORMAL`` in WAL mode: neither waits for the disk on commit. With
``--latency-ms`` the database sits behind that much network (``testing.netproxy``), as a
database on another machine would.

    python benchmarks/ledger_backends.py [--nodes 1000] [--rounds 5] [--latency-ms 0] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

from steadyscale.core.lifecycle import HistoryEntry, NodeRecord, Status
from steadyscale.store.ledger import Ledger
from steadyscale.testing.netproxy import NetProxy
from steadyscale.testing.postgres import PostgresServer

_COLUMNS = [f.name for f in fields(NodeRecord) if f.name != "history"]


def _records(nodes: int) -> list[NodeRecord]:
    return [
        NodeRecord(
            node_id=f"n-{n:06}",
            node_type="cpu",
            status=Status.REQUESTED,
            created_at=1_764_000_000.0 + n,
            request_id=f"r-{n // 100:04}",
            instance_id=f"i-{n:017x}",
            instance_type="m5.large",
            availability_zone="us-east-1a",
        )
        for n in range(nodes)
    ]


def _tick(ledger: Ledger, records: list[NodeRecord], at: float) -> float:
    """Seconds for one tick's write: every record changed, one history entry each."""
    entries = []
    for record in records:
        record.status = Status.READY if record.status is not Status.READY else Status.RUNNING
        record.last_seen_at = at
        entries.append((record.node_id, HistoryEntry(record.status, at, "tick")))
    started = time.perf_counter()
    with ledger.transaction():
        ledger.save_nodes(records, entries)
    return time.perf_counter() - started


def _row_by_row(ledger: Ledger, records: list[NodeRecord], at: float) -> float:
    """The same write as ``_tick``, one statement (one round trip) per row."""
    updates = ", ".join(f"{name} = excluded.{name}" for name in _COLUMNS[1:])
    sql = (
        f"INSERT INTO nodes ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)}) "
        f"ON CONFLICT(node_id) DO UPDATE SET {updates}"
    )
    store = ledger.store
    started = time.perf_counter()
    with ledger.transaction():
        for record in records:
            record.last_seen_at = at
            store.execute(
                sql,
                [getattr(record, name) for name in _COLUMNS[:2]]
                + [record.status.value]
                + [getattr(record, name) for name in _COLUMNS[3:]],
            )
            store.execute(
                "INSERT INTO transitions (node_id, status, at, reason) VALUES (?, ?, ?, ?)",
                (record.node_id, record.status.value, at, "tick"),
            )
    return time.perf_counter() - started


def measure(nodes: int, rounds: int, latency_ms: float = 0.0) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, PostgresServer() as server:
        # (no proxy without latency: its own forwarding would be measured)
        proxy = NetProxy(server.port, delay=latency_ms / 1000) if latency_ms else None
        url = server.create_database("ledger")
        ledgers = {
            "sqlite": Ledger(Path(tmp) / "ledger.db"),
            "postgres": Ledger(proxy.url(url) if proxy else url),
        }
        records = {name: _records(nodes) for name in ledgers}
        seconds: dict[str, list[float]] = {name: [] for name in ledgers}
        for name, ledger in ledgers.items():
            _tick(ledger, records[name], 0.0)  # the first write inserts; ticks update
        for number in range(1, rounds + 1):
            for name, ledger in ledgers.items():
                seconds[name].append(_tick(ledger, records[name], float(number)))
        row_by_row = [
            _row_by_row(ledgers["postgres"], records["postgres"], float(rounds + n))
            for n in range(1, max(2, rounds // 2) + 1)
        ]
        for ledger in ledgers.values():
            ledger.close()
        if proxy is not None:
            proxy.close()
    sqlite_ms = statistics.median(seconds["sqlite"]) * 1000
    postgres_ms = statistics.median(seconds["postgres"]) * 1000
    row_ms = statistics.median(row_by_row) * 1000
    return {
        "nodes": nodes,
        "rounds": rounds,
        "latency_ms": latency_ms,
        "tick_write_ms": {"sqlite": round(sqlite_ms, 2), "postgres": round(postgres_ms, 2)},
        "postgres_over_sqlite": round(postgres_ms / sqlite_ms, 2),
        "postgres_row_by_row_ms": round(row_ms, 2),
        "pipeline_speedup": round(row_ms / postgres_ms, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000, help="changed nodes per tick")
    parser.add_argument("--rounds", type=int, default=5, help="ticks timed per backend")
    parser.add_argument(
        "--latency-ms", type=float, default=0.0, help="network delay in front of PostgreSQL"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    report = measure(args.nodes, args.rounds, args.latency_ms)
    if args.json:
        print(json.dumps(report))
        return 0
    ms = report["tick_write_ms"]
    print(
        f"tick write of {args.nodes} changed nodes, one transaction (median of {args.rounds}; "
        f"PostgreSQL behind {args.latency_ms:g} ms of network):"
    )
    print(f"  SQLite      {ms['sqlite']:8.1f} ms")
    print(f"  PostgreSQL  {ms['postgres']:8.1f} ms  ({report['postgres_over_sqlite']}x SQLite)")
    print(
        f"  PostgreSQL, one statement per row: {report['postgres_row_by_row_ms']:.1f} ms "
        f"(executemany in pipeline mode is {report['pipeline_speedup']}x faster)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
