"""The event consumer: the messages the inbox received, parsed (``core.events``), matched to
the nodes they name, and turned into what a tick uses: sightings for the passive path and
marks (an interruption warning, a reason to replace a node) kept in the ledger.

A message is deleted only once its effect is in the ledger: a malformed one, a duplicate
or a stranger's at once; a mark once written; a state change once the tick's moves are
(``settle``). An event for an instance the ledger does not know is held while a launch
request waits for its answer (the id may be ours, not recorded yet), else dropped as a
stranger's. Nothing here concludes anything from an event that did not come.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field

from steadyscale.config import EventsConfig
from steadyscale.core.events import (
    Ec2Event,
    InterruptionWarning,
    Malformed,
    RebalanceRecommendation,
    ScheduledRetirement,
    StateChange,
    kind,
    parse_event,
    sightings,
    stale,
)
from steadyscale.core.instances import CloudInstance
from steadyscale.core.lifecycle import TERMINAL, NodeRecord
from steadyscale.errors import CloudError
from steadyscale.loop.inbox import Inbox
from steadyscale.loop.report import TickReport
from steadyscale.ops.event_metrics import EventMetrics
from steadyscale.retries.clock import Clock
from steadyscale.store.marks import MarkKind, Marks, NodeMark

log = logging.getLogger("steadyscale.events")

# Event ids remembered to drop duplicates: SQS redelivers within minutes, EventBridge's
# duplicates come close together.
_REMEMBERED = 50_000
# Early events held at most (the rest are a stranger's, dropped oldest first).
_MAX_HELD = 10_000


@dataclass
class _Held:
    event: Ec2Event
    receipt: str
    since: float


@dataclass
class Collected:
    """What this tick's events tell: sightings by instance id, and the marks they set."""

    sightings: Mapping[str, CloudInstance] = field(default_factory=dict)
    marks: list[NodeMark] = field(default_factory=list)


class EventConsumer:
    """Takes messages from the inbox each tick; deletes them once their effect is kept."""

    def __init__(
        self,
        config: EventsConfig,
        inbox: Inbox,
        marks: Marks,
        metrics: EventMetrics,
        clock: Clock,
        *,
        hold_seconds: float,
    ) -> None:
        self.config = config
        self.inbox = inbox
        self.marks = marks
        self.metrics = metrics
        self.clock = clock
        self.hold_seconds = hold_seconds
        self._handled: OrderedDict[str, None] = OrderedDict()
        self._held: dict[str, _Held] = {}
        # (receipt, event id) to delete once the tick's moves are written.
        self._done: list[tuple[str, str | None]] = []

    def flowing(self) -> bool:
        return self.inbox.flowing()

    def collect(
        self, records: Mapping[str, NodeRecord], *, awaiting: bool, report: TickReport
    ) -> Collected:
        """This tick's messages (and the held ones) against ``records`` (by instance id).
        ``awaiting``: some launch request waits for its answer, so an unknown id may yet
        be ours."""
        now = self.clock.now()
        if self._done:
            # The last tick ended before its moves were written: those messages are not
            # deleted; when they come back they are handled anew, not dropped as seen.
            for _, event_id in self._done:
                self._handled.pop(event_id or "", None)
            self._done = []
        fresh = self._receive(now)
        pending = [*self._held.values(), *fresh]
        self._held = {}
        changes: list[StateChange] = []
        marks: list[NodeMark] = []
        for item in pending:
            named = [records[i] for i in item.event.instance_ids if i in records]
            live = [r for r in named if r.status not in TERMINAL]
            if not named:
                self._unknown(item, now, awaiting=awaiting)
                continue
            self._remember(item.event.event_id)
            self._done.append((item.receipt, item.event.event_id))
            _handle(item.event, live, changes, marks, self.metrics)
        new = self.marks.add(marks)
        if len(new) < len(marks):
            self.metrics.duplicates.inc(len(marks) - len(new))
        if len(self._held) > _MAX_HELD:
            self._drop_oldest_held()
        if not changes:
            return Collected(marks=new)
        return Collected(sightings(changes), new)

    def _receive(self, now: float) -> list[_Held]:
        """The new messages, parsed; malformed ones and duplicates are done with at once."""
        fresh: list[_Held] = []
        taken: set[str] = set()  # event ids among this take's messages
        for message in self.inbox.take(self.config.max_events_per_tick):
            event = parse_event(message.body)
            if isinstance(event, Malformed):
                self.metrics.received.labels(event.kind).inc()
                log.warning("event message %s dropped: %s", message.message_id, event.reason)
                self._done.append((message.receipt, None))
                continue
            event_id = event.event_id
            if event_id in self._held:  # redelivered while held: its newest receipt
                self._held[event_id].receipt = message.receipt
                continue
            if event_id in self._handled or event_id in taken:
                self.metrics.duplicates.inc()
                self._done.append((message.receipt, None))
                continue
            label = kind(event)
            self.metrics.received.labels(label).inc()
            self.metrics.lag.labels(label).observe(max(0.0, now - event.time))
            taken.add(event_id)
            fresh.append(_Held(event, message.receipt, now))
        return fresh

    def _unknown(self, item: _Held, now: float, *, awaiting: bool) -> None:
        """An event naming no node the ledger knows: held while a launch answer may still
        name its instance, else a stranger's."""
        if awaiting and now - item.since < self.hold_seconds:
            self._held[item.event.event_id] = item
            return
        self.metrics.dropped.labels("stranger").inc()
        log.debug("event %s names no node of this cluster: dropped", item.event.event_id)
        self._remember(item.event.event_id)
        self._done.append((item.receipt, None))

    def _drop_oldest_held(self) -> None:
        oldest = sorted(self._held.values(), key=lambda h: h.since)
        for item in oldest[: len(self._held) - _MAX_HELD]:
            del self._held[item.event.event_id]
            self.metrics.dropped.labels("stranger").inc()
            self._done.append((item.receipt, None))

    def _remember(self, event_id: str) -> None:
        self._handled[event_id] = None
        if len(self._handled) > _REMEMBERED:
            self._handled.popitem(last=False)

    def settle(self, report: TickReport) -> None:
        """Delete the messages whose effect is in the ledger now. A failed delete only
        means they come back, and are handled again to the same effect."""
        done, self._done = self._done, []
        if not done:
            return
        try:
            self.inbox.delete([receipt for receipt, _ in done])
        except CloudError as exc:
            report.errors.append(f"event queue delete: {exc}")

    @property
    def held(self) -> int:
        return len(self._held)

    def close(self) -> None:
        self.inbox.close()


def _handle(
    event: Ec2Event,
    live: list[NodeRecord],
    changes: list[StateChange],
    marks: list[NodeMark],
    metrics: EventMetrics,
) -> None:
    """What one event about known nodes does: a sighting, or a mark per live node."""
    if isinstance(event, StateChange):
        if live and stale(live[0], event):
            metrics.dropped.labels("stale").inc()
        elif live:
            changes.append(event)
        return
    if isinstance(event, InterruptionWarning):
        marks.extend(
            NodeMark(r.node_id, MarkKind.WARNED, event.time, event.deadline, event.event_id)
            for r in live
        )
    elif isinstance(event, RebalanceRecommendation):
        marks.extend(
            NodeMark(r.node_id, MarkKind.REBALANCE, event.time, None, event.event_id) for r in live
        )
    elif isinstance(event, ScheduledRetirement):
        marks.extend(
            NodeMark(r.node_id, MarkKind.RETIREMENT, event.time, event.deadline, event.event_id)
            for r in live
        )
