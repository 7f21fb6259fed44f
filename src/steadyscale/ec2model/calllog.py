"""A record of every API call the emulator answered: action, outcome, latency.

Counts by action and outcome are exact for the whole run; the individual records are kept
in a bounded ring so a long soak does not grow without limit.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class CallRecord:
    at: float  # emulated seconds
    region: str
    action: str
    outcome: str  # "ok", an EC2 error code, or "timeout"
    status: int  # HTTP status sent (0 when the connection was dropped)
    latency_ms: float
    fault: str | None = None  # the injected fault, if any
    instances: int = 0  # instances launched or terminated by the call
    # The request's top-level parameter names (no values: they may hold user data), and the
    # resource types its TagSpecifications tag: what IAM authorises a call by.
    parameters: tuple[str, ...] = ()
    tagged_resource_types: tuple[str, ...] = ()


class CallLog:
    def __init__(self, keep: int = 200_000) -> None:
        self._lock = threading.Lock()
        self._records: deque[CallRecord] = deque(maxlen=keep)
        self._counts: Counter[tuple[str, str]] = Counter()

    def add(self, record: CallRecord) -> None:
        with self._lock:
            self._records.append(record)
            self._counts[(record.action, record.outcome)] += 1

    def records(self, action: str | None = None) -> list[CallRecord]:
        with self._lock:
            return [r for r in self._records if action is None or r.action == action]

    def count(self, action: str | None = None, outcome: str | None = None) -> int:
        with self._lock:
            return sum(
                n
                for (a, o), n in self._counts.items()
                if (action is None or a == action) and (outcome is None or o == outcome)
            )

    def by_action(self) -> dict[str, dict[str, int]]:
        """``{action: {outcome: count}}`` for the whole run."""
        with self._lock:
            result: dict[str, dict[str, int]] = {}
            for (action, outcome), n in sorted(self._counts.items()):
                result.setdefault(action, {})[outcome] = n
            return result

    def to_json(self, limit: int = 1000) -> dict[str, Any]:
        with self._lock:
            recent = list(self._records)[-limit:] if limit > 0 else []
            total = sum(self._counts.values())
        return {
            "total": total,
            "by_action": self.by_action(),
            "records": [asdict(r) for r in recent],
        }
