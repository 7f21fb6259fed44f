"""The metrics of EC2's events (the ``events`` block): what arrived, what was dropped and
why, how late it was handled, and whether interruptions were warned and replaced in time."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

# An event reaches the queue in seconds; a held early event or a backlog takes minutes.
EVENT_LAG_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600)


class EventMetrics:
    """Series of the event consumer, on the autoscaler's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.received = Counter(
            "steadyscale_events_received",
            "EC2 events received from the queue, by type (malformed and unknown: not acted on).",
            ["type"],
            registry=r,
        )
        self.duplicates = Counter(
            "steadyscale_events_duplicates_dropped",
            "Events dropped as duplicates (an event id handled before, or a mark already set).",
            registry=r,
        )
        self.dropped = Counter(
            "steadyscale_events_dropped",
            "Events that changed nothing, by why: stale (older than the node's last move), "
            "stranger (an instance the ledger never knew).",
            ["reason"],
            registry=r,
        )
        self.lag = Histogram(
            "steadyscale_event_lag_seconds",
            "From an event's time (EC2's) to the tick that handled it.",
            ["type"],
            buckets=EVENT_LAG_BUCKETS,
            registry=r,
        )
        self.interruptions = Counter(
            "steadyscale_interruptions",
            "Spot interruptions by whether an interruption warning came first (yes, no).",
            ["warned"],
            registry=r,
        )
        self.replaced_before_reclaim = Counter(
            "steadyscale_replacements_ready_before_reclaim",
            "Warned interruptions whose replacement was ready before EC2 took the node.",
            registry=r,
        )
        self.receive_errors = Counter(
            "steadyscale_events_receive_errors",
            "Receives from the event queue that failed (polling carries on meanwhile).",
            registry=r,
        )
