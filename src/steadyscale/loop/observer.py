"""The observer: what EC2 shows of our nodes this tick, for as few calls as that takes.

It keeps the listing's cadence (a full cluster listing every ``listing_interval_seconds``,
lookups of the nodes in motion between) and which ids a lookup has not found yet.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

from steadyscale.config import ClusterConfig
from steadyscale.core.instances import TAG_CLUSTER, CloudInstance
from steadyscale.core.lifecycle import HAS_INSTANCE, UP, NodeRecord, Status
from steadyscale.core.reconciler import Observation
from steadyscale.errors import CloudError
from steadyscale.loop.report import TickReport
from steadyscale.ops.metrics import Metrics
from steadyscale.providers.protocol import LOOKUP_BATCH, CloudProvider
from steadyscale.retries.clock import Clock

# Statuses whose node, unseen two ticks after launch, is also asked for by id.
_STRAGGLING = frozenset({Status.LAUNCHED, Status.PENDING, *UP})
# Running in EC2 and not about to change by our doing: found by the listing, not looked
# up each tick (a draining node stays so for minutes).
_SETTLED = frozenset({*UP, Status.DRAINING})
_MOVING = HAS_INSTANCE - _SETTLED

Lookup = Callable[[Sequence[str]], list[CloudInstance]]


class Observer:
    """Lists the cluster or looks nodes up, and counts the ids EC2 shows late."""

    def __init__(
        self, config: ClusterConfig, provider: CloudProvider, clock: Clock, metrics: Metrics
    ) -> None:
        self.config = config
        self.provider = provider
        self.clock = clock
        self.metrics = metrics
        self._last_listing: float | None = None
        # Instance ids a lookup did not find yet, to count those found later.
        self._not_visible: set[str] = set()

    def observe(
        self,
        records: Collection[NodeRecord],
        report: TickReport,
        former: Collection[str] = (),
        events_interval: float | None = None,
    ) -> Observation | None:
        """The full cluster listing runs every ``listing_interval_seconds``, or when more
        nodes are in motion than one lookup covers; otherwise only nodes in motion are
        looked up (instance-id filter). Starting nodes the filter does not show after two
        ticks are also asked for by id, EC2's fastest view of a new instance. None when
        the calls failed and showed nothing. ``former``: cluster names some live node was
        launched under (carried over); the full listing lists each of them too. With events
        flowing, ``events_interval`` replaces the listing's, and a node in motion is looked
        up only once nothing showed it for ``listing_interval_seconds`` (the observation says
        which ids it asked)."""
        now = self.clock.now()
        moving = [r for r in records if r.instance_id and r.status in _MOVING]
        if events_interval is not None:
            # The events move them meanwhile; one a lost event left behind is looked up
            # once nothing showed it for as long as polling would leave it.
            patience = min(events_interval, self.config.listing_interval_seconds)
            moving = [r for r in moving if now - _last_shown(r) >= patience]
        full = (
            self._last_listing is None
            or now - self._last_listing >= (events_interval or self.config.listing_interval_seconds)
            or len(moving) > LOOKUP_BATCH
        )
        instances: dict[str, CloudInstance] = {}
        complete = full and self._list(instances, report, now, former)
        failed = full and not complete
        # Nodes in motion, and running ones a complete listing left out (a flicker, or
        # worse): look each up before anything is concluded from its absence.
        absent = [
            r
            for r in records
            if complete
            and r.status in _SETTLED
            and r.instance_id
            and r.instance_id not in instances
        ]
        looked = [*moving, *absent]
        wanted = [
            r.instance_id
            for r in looked
            if r.instance_id is not None and r.instance_id not in instances
        ]
        if wanted and not _fetch(self.provider.describe, wanted, instances, report, "lookup"):
            failed = True
        stragglers = [] if failed else self._stragglers(looked, instances, now)
        if stragglers:
            _fetch(self.provider.describe_by_id, stragglers, instances, report, "lookup by id")
        self._count_late(looked, wanted, instances, failed)
        if failed and not instances:
            return None
        asked = None if events_interval is None else frozenset([*wanted, *stragglers])
        return Observation(instances=instances, listing_complete=complete, asked=asked)

    def _stragglers(
        self, looked: list[NodeRecord], instances: dict[str, CloudInstance], now: float
    ) -> list[str]:
        """Starting nodes the filter has not shown two ticks after launch."""
        return [
            r.instance_id
            for r in looked
            if r.instance_id is not None
            and r.instance_id not in instances
            and r.status in _STRAGGLING
            and r.launched_at is not None
            and now - r.launched_at >= 2 * self.config.loop_interval_seconds
        ]

    def _list(
        self,
        instances: dict[str, CloudInstance],
        report: TickReport,
        now: float,
        former: Collection[str],
    ) -> bool:
        """The whole cluster listing into ``instances``, and one listing per former name
        (EC2 cannot retag an instance); True when all completed."""
        try:
            for inst in self.provider.list_cluster():
                instances[inst.instance_id] = inst
            for name in sorted(former):
                for inst in self.provider.list_tagged(TAG_CLUSTER, name):
                    instances[inst.instance_id] = inst
        except CloudError as exc:
            report.errors.append(f"listing: {exc}")
            return False
        self._last_listing = now
        return True

    def _count_late(
        self,
        looked: list[NodeRecord],
        wanted: list[str],
        instances: dict[str, CloudInstance],
        failed: bool,
    ) -> None:
        """Count the wanted ids not shown yet, and those not shown before that are now."""
        looked_ids = {r.instance_id for r in looked if r.instance_id is not None}
        # A lookup that failed found nothing, but learned nothing either: not counted.
        missing = set() if failed else {i for i in wanted if i not in instances}
        found_late = {i for i in self._not_visible if i in instances}
        self.metrics.lookups(not_visible=len(missing), found_late=len(found_late))
        self._not_visible = ((self._not_visible - found_late) & looked_ids) | missing


def _last_shown(record: NodeRecord) -> float:
    """When EC2 last showed the node (a listing, a lookup or an event), else its launch."""
    return record.last_seen_at or record.launched_at or record.created_at


def _fetch(
    lookup: Lookup,
    instance_ids: list[str],
    instances: dict[str, CloudInstance],
    report: TickReport,
    what: str,
) -> bool:
    """One lookup into ``instances``; False (and an error in the report) when it failed."""
    try:
        for inst in lookup(instance_ids):
            instances[inst.instance_id] = inst
    except CloudError as exc:
        report.errors.append(f"{what}: {exc}")
        return False
    return True
