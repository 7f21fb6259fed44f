"""Strangers: instances tagged for our cluster that no record or open request explains.

Only those the ledger proves unwanted (``core.unknown``: this ledger's id, a launch of its
own given up) are terminated, past the grace period. The others are unknown, not unwanted
(a lost ledger's, another ledger's, launched before ledgers had ids): each is reported
once in the log, counted in a metric and listed for ``steadyscale status``, and left
alone until ``steadyscale ledger adopt`` takes it over.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

from steadyscale.config import ClusterConfig
from steadyscale.core.instances import TAG_NODE_TYPE, CloudInstance
from steadyscale.core.sightings import GONE_STATES
from steadyscale.core.unknown import UNKNOWN, Standing, standing
from steadyscale.errors import CloudError
from steadyscale.loop.report import Reporter, TickReport
from steadyscale.ops.metrics import Metrics
from steadyscale.providers.protocol import CloudProvider
from steadyscale.store.ledger import UNKNOWN_INSTANCES, Ledger

log = logging.getLogger("steadyscale.autoscaler")

_WHY = {
    Standing.OTHER_LEDGER: "it carries another ledger's id",
    Standing.NO_LEDGER_ID: "it carries no ledger id",
    Standing.UNKNOWN_REQUEST: "it carries this ledger's id but a request it has no record of",
}


class Strangers:
    """When each stranger was first seen, while complete listings keep showing it, and the
    unknown ones said already."""

    def __init__(
        self,
        config: ClusterConfig,
        provider: CloudProvider,
        reporter: Reporter,
        *,
        ledger: Ledger,
        metrics: Metrics,
    ) -> None:
        self.config = config
        self.provider = provider
        self.reporter = reporter
        self.ledger = ledger
        self.metrics = metrics
        # Read once, as the launcher does: a ledger's id never changes under its daemon.
        self.ledger_id = ledger.ledger_id
        self._first_seen: dict[str, float] = {}
        self._said: set[str] = set()  # unknown instances warned about (once each)
        self._listed: list[dict[str, str | None]] | None = None  # as the ledger has them

    def handle(self, found: Sequence[CloudInstance], report: TickReport, now: float) -> None:
        """Strangers in a complete listing: the unwanted are terminated once older than the
        grace period (from EC2's launch time, else from when we first saw them); the
        unknown are reported and left alone."""
        seen_now = {inst.instance_id for inst in found}
        for stale in set(self._first_seen) - seen_now:
            del self._first_seen[stale]
        self._said &= seen_now
        ledger_id = self.ledger_id
        ours = [i for i in found if ledger_id is not None and i.ledger_id == ledger_id]
        requests = {r.request_id for r in self.ledger.requests()} if ours else set()
        doomed = []
        unknown: list[tuple[CloudInstance, Standing]] = []
        for inst in found:
            verdict = standing(inst, ledger_id=ledger_id, requests=requests)
            if verdict is not Standing.UNWANTED:
                if inst.state not in GONE_STATES:
                    unknown.append((inst, verdict))
                continue
            first = self._first_seen.setdefault(inst.instance_id, now)
            born = inst.launch_time if inst.launch_time is not None else first
            if now - born >= self.config.gc_grace_seconds and inst.state != "shutting-down":
                doomed.append(inst.instance_id)
        self._report_unknown(unknown)
        if doomed:
            self._terminate(doomed, report)

    def _report_unknown(self, unknown: list[tuple[CloudInstance, Standing]]) -> None:
        """Each unknown instance warned about once; the metric and the list ``status``
        reads kept current (the list written only when it changes)."""
        for reason in UNKNOWN:
            self.metrics.unknown_instances.labels(reason.value).set(
                sum(1 for _, v in unknown if v is reason)
            )
        for inst, verdict in unknown:
            if inst.instance_id not in self._said:
                self._said.add(inst.instance_id)
                log.warning(
                    "instance %s is tagged for cluster %s but the ledger cannot explain it "
                    "(%s): left alone; `steadyscale ledger adopt CONFIG` takes it over",
                    inst.instance_id,
                    self.config.cluster_name,
                    _WHY[verdict],
                )
        listed = [
            {
                "instance_id": inst.instance_id,
                "reason": verdict.value,
                "state": inst.state,
                "node_type": inst.tags.get(TAG_NODE_TYPE),
                "instance_type": inst.instance_type,
                "ledger_id": inst.ledger_id,
            }
            for inst, verdict in sorted(unknown, key=lambda u: u[0].instance_id)
        ]
        if listed != self._listed:
            self.ledger.set_meta(UNKNOWN_INSTANCES, json.dumps(listed))
            self._listed = listed

    def _terminate(self, doomed: list[str], report: TickReport) -> None:
        log.warning(
            "terminating %d instance(s) of cluster %s that this ledger launched and gave up: %s",
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
            f"terminated {len(doomed)} instance(s) this ledger launched and gave up: "
            f"{', '.join(doomed[:5])}",
            len(doomed),
        )
