"""A record of every API call the emulator answered: action, outcome, latency, when it
was received and answered, and which replica of steadyscale sent it.

Counts by action and outcome are exact for the whole run; the individual records are kept
in a bounded ring so a long soak does not grow without limit.
"""

from __future__ import annotations

import re
import threading
from collections import Counter, deque
from dataclasses import asdict, dataclass
from typing import Any

_REPLICA = re.compile(r"(?:^|\s)steadyscale-replica/(\S+)")
# Actions that only read: everything else EC2 offers changes something.
_READ_PREFIXES = ("Describe", "Get", "List")


def replica_of(user_agent: str | None) -> str | None:
    """The replica id a ``steadyscale-replica/<id>`` token in a User-Agent names, if any."""
    found = _REPLICA.search(user_agent or "")
    return found.group(1) if found else None


def is_mutation(action: str) -> bool:
    """Whether an EC2 action changes something (anything but a read)."""
    return not action.startswith(_READ_PREFIXES)


@dataclass(frozen=True)
class CallRecord:
    at: float  # emulated seconds, when the answer was sent (or the connection dropped)
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
    # Which steadyscale replica sent it (its User-Agent's steadyscale-replica/<id>), and
    # when the request came in (emulated seconds): with ``at`` the window in which the
    # call could have acted on EC2.
    replica: str | None = None
    received_at: float | None = None

    @property
    def mutation(self) -> bool:
        return is_mutation(self.action)


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

    def to_json(self, limit: int = 1000, *, mutations_only: bool = False) -> dict[str, Any]:
        """Counts for the whole run and the last ``limit`` records kept (only those that
        change something with ``mutations_only``), each with ``mutation`` said."""
        with self._lock:
            kept = [r for r in self._records if r.mutation] if mutations_only else self._records
            recent = list(kept)[-limit:] if limit > 0 else []
            total = sum(self._counts.values())
        return {
            "total": total,
            "by_action": self.by_action(),
            "records": [{**asdict(r), "mutation": r.mutation} for r in recent],
        }
