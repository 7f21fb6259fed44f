"""What the Ray node provider must remember across a restart of Ray's autoscaler.

Launches sent without an answer yet (their ClientToken and parameters), instances that
RunInstances returned but EC2 does not list yet, and terminations EC2
refused as NotFound (a fresh id), live in a small SQLite file: a new provider reads them
back, so it still reports the invisible nodes (Ray does not launch them again) and still
terminates what it was asked to. This module does not import Ray.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS launches (
    instance_id TEXT PRIMARY KEY,
    tags TEXT NOT NULL,
    private_ip TEXT,
    launched_at REAL NOT NULL,
    lifecycle TEXT
);
CREATE TABLE IF NOT EXISTS intents (
    request_id TEXT PRIMARY KEY,
    intent TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS terminations (
    instance_id TEXT PRIMARY KEY,
    action TEXT NOT NULL,
    since REAL NOT NULL
);
"""


@dataclass(frozen=True)
class PendingLaunch:
    """An instance RunInstances returned that no listing has shown yet."""

    instance_id: str
    tags: dict[str, str]
    private_ip: str | None
    launched_at: float
    # "spot" or "on-demand" from the RunInstances answer; None in a file written before
    # this was kept, and then the node is terminated rather than stopped.
    lifecycle: str | None = None


@dataclass(frozen=True)
class LaunchIntent:
    """A RunInstances about to be sent, or sent without an answer yet: resent with the same
    ClientToken and parameters until EC2 answers, so EC2 launches it once."""

    request_id: str
    client_token: str
    node_type: str
    count: int
    node_config: dict[str, Any]
    subnet_id: str | None
    tags: dict[str, str]  # the instance tags as EC2 shows them
    created_at: float


@dataclass(frozen=True)
class PendingTermination:
    """A TerminateInstances or StopInstances EC2 has not accepted yet (NotFound, throttled)."""

    instance_id: str
    action: str
    since: float


class ProviderState:
    """The SQLite file behind ``state_path``; ``":memory:"`` keeps it in this process only."""

    def __init__(self, path: str | Path) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(launches)")}
        if "lifecycle" not in columns:  # a file from before lifecycles were kept
            self._db.execute("ALTER TABLE launches ADD COLUMN lifecycle TEXT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def add_launches(self, launches: list[PendingLaunch]) -> None:
        with self._lock:
            self._db.executemany(
                "INSERT OR REPLACE INTO launches"
                " (instance_id, tags, private_ip, launched_at, lifecycle) VALUES (?, ?, ?, ?, ?)",
                [
                    (
                        p.instance_id,
                        json.dumps(p.tags, sort_keys=True),
                        p.private_ip,
                        p.launched_at,
                        p.lifecycle,
                    )
                    for p in launches
                ],
            )

    def forget_launches(self, instance_ids: list[str]) -> None:
        with self._lock:
            self._db.executemany(
                "DELETE FROM launches WHERE instance_id = ?", [(i,) for i in instance_ids]
            )

    def launches(self) -> list[PendingLaunch]:
        with self._lock:
            rows = self._db.execute(
                "SELECT instance_id, tags, private_ip, launched_at, lifecycle FROM launches"
            ).fetchall()
        return [
            PendingLaunch(
                instance_id=r[0],
                tags=dict(json.loads(r[1])),
                private_ip=r[2],
                launched_at=float(r[3]),
                lifecycle=r[4],
            )
            for r in rows
        ]

    def add_intent(self, intent: LaunchIntent) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO intents VALUES (?, ?)",
                (intent.request_id, json.dumps(asdict(intent), sort_keys=True)),
            )

    def forget_intents(self, request_ids: list[str]) -> None:
        with self._lock:
            self._db.executemany(
                "DELETE FROM intents WHERE request_id = ?", [(i,) for i in request_ids]
            )

    def intents(self) -> list[LaunchIntent]:
        with self._lock:
            rows = self._db.execute("SELECT intent FROM intents").fetchall()
        return [LaunchIntent(**json.loads(r[0])) for r in rows]

    def add_terminations(self, pending: list[PendingTermination]) -> None:
        with self._lock:
            # A retried termination keeps the time it was first asked for.
            self._db.executemany(
                "INSERT OR IGNORE INTO terminations VALUES (?, ?, ?)",
                [(p.instance_id, p.action, p.since) for p in pending],
            )

    def forget_terminations(self, instance_ids: list[str]) -> None:
        with self._lock:
            self._db.executemany(
                "DELETE FROM terminations WHERE instance_id = ?", [(i,) for i in instance_ids]
            )

    def terminations(self) -> list[PendingTermination]:
        with self._lock:
            rows = self._db.execute(
                "SELECT instance_id, action, since FROM terminations"
            ).fetchall()
        return [PendingTermination(instance_id=r[0], action=r[1], since=float(r[2])) for r in rows]
