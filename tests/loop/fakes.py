"""A scripted EC2 for the loop's rooms: it answers what a test says and records the calls."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from steadyscale.core.instances import CloudInstance
from steadyscale.core.lifecycle import NodeRecord, Status
from steadyscale.providers.protocol import CloudProvider, TerminateResult
from steadyscale.store.ledger import Ledger


@dataclass
class ScriptedEC2:
    """The few provider calls the rooms make, answered from ``shown`` and ``answer``."""

    shown: dict[str, CloudInstance] = field(default_factory=dict)
    answer: Callable[[Sequence[str]], TerminateResult] = lambda ids: TerminateResult(
        states=dict.fromkeys(ids, "shutting-down")
    )
    # What the cluster listing answers, when it is not everything shown (or raises).
    listing: Callable[[], list[CloudInstance]] | None = None
    calls: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)

    def list_cluster(self) -> list[CloudInstance]:
        self.calls.append(("list_cluster", ()))
        return self.listing() if self.listing is not None else list(self.shown.values())

    def list_tagged(self, key: str, value: str) -> list[CloudInstance]:
        self.calls.append(("list_tagged", (key, value)))
        return [i for i in self.shown.values() if i.tags.get(key) == value]

    def describe(self, instance_ids: Sequence[str]) -> list[CloudInstance]:
        self.calls.append(("describe", tuple(instance_ids)))
        return [self.shown[i] for i in instance_ids if i in self.shown]

    def describe_by_id(self, instance_ids: Sequence[str]) -> list[CloudInstance]:
        self.calls.append(("describe_by_id", tuple(instance_ids)))
        return [self.shown[i] for i in instance_ids if i in self.shown]

    def terminate(self, instance_ids: Sequence[str]) -> TerminateResult:
        self.calls.append(("terminate", tuple(instance_ids)))
        return self.answer(instance_ids)

    def as_provider(self) -> CloudProvider:
        return cast(CloudProvider, self)  # only the calls the room under test makes


def node(
    n: int,
    status: Status,
    *,
    launched_at: float | None = 0.0,
    **fields: Any,
) -> NodeRecord:
    """Node ``n-<n>`` on instance ``i-<n>``, in ``status``."""
    return NodeRecord(
        node_id=f"n-{n}",
        node_type="cpu",
        status=status,
        created_at=0.0,
        request_id=f"r-{n}",
        instance_id=f"i-{n}",
        launched_at=launched_at,
        **fields,
    )


def ledger_with(*records: NodeRecord) -> Ledger:
    ledger = Ledger(":memory:")
    with ledger.transaction():
        ledger.save_nodes(records)
    return ledger


@dataclass
class TableLease:
    """The lease row in a dict, as the database keeps it: ``holder`` is who asks."""

    holder: str
    row: dict[str, object]
    answers: bool = True  # False: the database cannot be reached
    asked: list[str] = field(default_factory=list)

    def acquire(self) -> int | None:
        self.asked.append("acquire")
        if not self.answers or self.row.get("holder") not in (None, self.holder):
            return None
        epoch = int(str(self.row.get("epoch", 0))) + 1
        self.row.update(holder=self.holder, epoch=epoch)
        return epoch

    def renew(self, epoch: int) -> bool:
        self.asked.append("renew")
        return self.answers and self.row.get("epoch") == epoch

    def release(self, epoch: int) -> None:
        if self.row.get("epoch") == epoch:
            self.row["holder"] = None

    def expires_in(self) -> float | None:
        expires = self.row.get("expires_in")
        return None if expires is None else float(str(expires))
