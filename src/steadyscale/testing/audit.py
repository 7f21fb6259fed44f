"""Ground truth against the ledger: was anything launched twice, or never recorded?

Used by ``run``'s summary, the simulator's report and the crash harness, with the truth of
the embedded emulator or the in-memory backend.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from steadyscale.config.location import LedgerLocation
from steadyscale.core.instances import TAG_REQUEST
from steadyscale.store.ledger import Ledger


def audit(ledger: Ledger, launched: Sequence[tuple[str, str]]) -> tuple[int, list[str]]:
    """Compare what EC2 launched, as (instance id, request-id tag), with the ledger.

    Returns (instances beyond what their launch request asked for, ids the ledger never
    recorded): both are zero when nothing was launched twice and nothing was forgotten.
    """
    known = ledger.known_instance_ids()
    asked = {r.request_id: r.count for r in ledger.requests()}
    per_request: dict[str, int] = {}
    for _, request_id in launched:
        per_request[request_id] = per_request.get(request_id, 0) + 1
    over = sum(max(0, n - asked[rid]) for rid, n in per_request.items() if rid in asked)
    unrecorded = sorted(iid for iid, _ in launched if iid not in known)
    return over, unrecorded


def audit_truth(
    location: str | LedgerLocation, truth: Sequence[Mapping[str, Any]]
) -> tuple[int, list[str]]:
    """``audit`` of the ledger at ``location`` against the emulator's ground truth (its
    instances as the control API gives them, with their tags)."""
    ledger = Ledger(location)
    try:
        return audit(ledger, [(i["instance_id"], i["tags"].get(TAG_REQUEST, "")) for i in truth])
    finally:
        ledger.close()
