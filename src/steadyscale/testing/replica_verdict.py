"""The verdict on a run of replicas: the emulator's ground truth against the ledger
(duplicates, instances never recorded, leaks) and its call log read as terms of replicas
(``testing.acting``: did two ever act in the same instant?)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from steadyscale.testing.acting import ActingReport, acting
from steadyscale.testing.audit import audit_truth


@dataclass
class ReplicaVerdict:
    launched: int  # distinct cluster instances EC2 ever had
    duplicates: int  # beyond what a launch request asked, or live beyond demand at capacity
    unrecorded: list[str]  # ids the ledger never recorded
    leaks: int  # cluster instances not terminated
    acting: ActingReport
    # Handovers quieter than this (emulated seconds) break I8; None: not checked.
    handover_floor: float | None = None

    def problems(self) -> list[str]:
        """What broke an invariant, in words; empty when nothing did."""
        found = [f"{o.describe()}" for o in self.acting.overlaps]
        if self.handover_floor is not None:
            found += [
                f"{h.describe()}: less than {self.handover_floor:.3f} s"
                for h in self.acting.hurried(self.handover_floor)
            ]
        if self.duplicates:
            found.append(f"{self.duplicates} duplicate instance(s)")
        if self.unrecorded:
            found.append(f"never recorded: {', '.join(self.unrecorded[:10])}")
        if self.leaks:
            found.append(f"{self.leaks} instance(s) left running")
        if self.acting.unnamed:
            found.append(f"{self.acting.unnamed} mutation(s) without a replica id")
        return found


def judge(
    truth: Sequence[Mapping[str, Any]],
    ledger_location: str,
    mutations: Iterable[Mapping[str, Any]],
    *,
    excess: int = 0,
    handover_floor: float | None = None,
) -> ReplicaVerdict:
    """The verdict from the cluster's instances as they really are (gone ones too), the
    ledger they were launched from, the mutations in the call log, and how many instances
    stayed wanted beyond demand once it was met (``excess``), and the quietest handover
    between replicas that keeps to I8 (``handover_floor``, emulated seconds)."""
    over, unrecorded = audit_truth(ledger_location, truth)
    return ReplicaVerdict(
        launched=len(truth),
        duplicates=over + excess,
        unrecorded=unrecorded,
        leaks=sum(1 for i in truth if i["state"] != "terminated"),
        acting=acting(mutations),
        handover_floor=handover_floor,
    )
