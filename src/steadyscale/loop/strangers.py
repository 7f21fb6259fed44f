"""Strangers: instances tagged for our cluster that no record or open request explains
(launched by a lost ledger, say). Past the grace period they are terminated and reported.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from steadyscale.config import ClusterConfig
from steadyscale.core.instances import CloudInstance
from steadyscale.errors import CloudError
from steadyscale.loop.report import Reporter, TickReport
from steadyscale.providers.protocol import CloudProvider

log = logging.getLogger("steadyscale.autoscaler")


class Strangers:
    """When each stranger was first seen, while complete listings keep showing it."""

    def __init__(self, config: ClusterConfig, provider: CloudProvider, reporter: Reporter) -> None:
        self.config = config
        self.provider = provider
        self.reporter = reporter
        self._first_seen: dict[str, float] = {}

    def handle(self, found: Sequence[CloudInstance], report: TickReport, now: float) -> None:
        """Strangers in a complete listing are terminated once older than the grace period
        (from EC2's launch time, else from when we first saw them)."""
        seen_now = {inst.instance_id for inst in found}
        for stale in set(self._first_seen) - seen_now:
            del self._first_seen[stale]
        doomed = []
        for inst in found:
            first = self._first_seen.setdefault(inst.instance_id, now)
            born = inst.launch_time if inst.launch_time is not None else first
            if now - born >= self.config.gc_grace_seconds and inst.state != "shutting-down":
                doomed.append(inst.instance_id)
        if not doomed:
            return
        log.warning(
            "terminating %d instance(s) tagged for cluster %s that the ledger does not know: %s",
            len(doomed),
            self.config.cluster_name,
            ", ".join(doomed),
        )
        try:
            self.provider.terminate(doomed)
        except CloudError as exc:
            report.errors.append(f"gc terminate: {exc}")
            return
        self.reporter.emit(
            report,
            "gc",
            f"terminated {len(doomed)} cluster instance(s) the ledger "
            f"does not know: {', '.join(doomed[:5])}",
            len(doomed),
        )
