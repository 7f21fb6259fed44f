"""What the Ray node provider must remember across a restart of Ray's autoscaler.

Launches sent without an answer yet (their ClientToken and parameters), instances that
RunInstances returned but EC2 does not list yet, and terminations EC2
refused as NotFound (a fresh id), live in a small SQLite file: a new provider reads them
back, so it still reports the invisible nodes (Ray does not launch them again) and still
terminates what it was asked to. The file has an id (a UUID4, ``ledger_id`` in its meta
table, as the ledger has) that every instance it launches carries as a tag: a provider can
tell its own instances from those a lost or other state file launched. This module does
not import Ray.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from steadyscale.store.sqlite import MEMORY, Schema, Store, statements

_LEDGER_ID = "ledger_id"
# Until when a new file that adopted a live cluster holds launches (``ray.adoption``): a
# provider restarted on the same file within the hold keeps it.
_HOLD_UNTIL = "launch_hold_until"

SCHEMA = Schema(
    name="state file",
    migrations={
        1: statements(
            """
            CREATE TABLE IF NOT EXISTS launches (
                instance_id TEXT PRIMARY KEY,
                tags TEXT NOT NULL,
                private_ip TEXT,
                launched_at REAL NOT NULL
            );
            CREATE TABLE IF NOT EXISTS terminations (
                instance_id TEXT PRIMARY KEY,
                action TEXT NOT NULL,
                since REAL NOT NULL
            );
            """
        ),
        # Each launch's lifecycle, so a restarted provider stops only on-demand nodes.
        2: ["ALTER TABLE launches ADD COLUMN lifecycle TEXT"],
        # Launches written before RunInstances is sent, resent until EC2 answers. A file
        # from before the schema had versions may have the table already.
        3: [
            "CREATE TABLE IF NOT EXISTS intents (request_id TEXT PRIMARY KEY, intent TEXT NOT NULL)"
        ],
    },
    # A file from before the schema had versions (no meta table): its tables say how far
    # it got.
    unversioned={
        1: "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'launches'",
        2: "SELECT 1 FROM pragma_table_info('launches') WHERE name = 'lifecycle'",
    },
    unreadable_hint="move it aside only if you are sure no instance it tracks is still running",
)


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


def _has_data(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except FileNotFoundError:
        return False


class StateFile:
    """The SQLite file behind ``state_path``; ``":memory:"`` keeps it in this process only.

    Not the ledger's single writer: a provider Ray restarts in the same process opens the
    file again while the old one may still hold it open.
    """

    def __init__(self, path: str | Path) -> None:
        # A file that was not there (or empty) is new: whatever a former file knew is lost.
        self.is_new = str(path) == MEMORY or not _has_data(Path(path))
        # FULL, SQLite's default and what this file always had: an intent is on disk before
        # RunInstances is sent, even across a power cut.
        self._db = Store(path, SCHEMA, synchronous="FULL")
        # OR IGNORE: a provider opening the same file at the same time may have set it.
        self._db.execute(
            "INSERT OR IGNORE INTO meta VALUES (?, ?)", (_LEDGER_ID, str(uuid.uuid4()))
        )
        rows = self._db.rows("SELECT value FROM meta WHERE key = ?", (_LEDGER_ID,))
        self.ledger_id: str = str(rows[0][0])

    def close(self) -> None:
        self._db.close()

    def hold_until(self) -> float | None:
        rows = self._db.rows("SELECT value FROM meta WHERE key = ?", (_HOLD_UNTIL,))
        return float(rows[0][0]) if rows else None

    def set_hold_until(self, at: float) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (_HOLD_UNTIL, str(at)))

    def add_launches(self, launches: list[PendingLaunch]) -> None:
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
        self._db.executemany(
            "DELETE FROM launches WHERE instance_id = ?", [(i,) for i in instance_ids]
        )

    def launches(self) -> list[PendingLaunch]:
        rows = self._db.rows(
            "SELECT instance_id, tags, private_ip, launched_at, lifecycle FROM launches"
        )
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
        self._db.execute(
            "INSERT OR IGNORE INTO intents VALUES (?, ?)",
            (intent.request_id, json.dumps(asdict(intent), sort_keys=True)),
        )

    def forget_intents(self, request_ids: list[str]) -> None:
        self._db.executemany(
            "DELETE FROM intents WHERE request_id = ?", [(i,) for i in request_ids]
        )

    def intents(self) -> list[LaunchIntent]:
        rows = self._db.rows("SELECT intent FROM intents")
        return [LaunchIntent(**json.loads(r[0])) for r in rows]

    def add_terminations(self, pending: list[PendingTermination]) -> None:
        # A retried termination keeps the time it was first asked for.
        self._db.executemany(
            "INSERT OR IGNORE INTO terminations VALUES (?, ?, ?)",
            [(p.instance_id, p.action, p.since) for p in pending],
        )

    def forget_terminations(self, instance_ids: list[str]) -> None:
        self._db.executemany(
            "DELETE FROM terminations WHERE instance_id = ?", [(i,) for i in instance_ids]
        )

    def terminations(self) -> list[PendingTermination]:
        rows = self._db.rows("SELECT instance_id, action, since FROM terminations")
        return [PendingTermination(instance_id=r[0], action=r[1], since=float(r[2])) for r in rows]
