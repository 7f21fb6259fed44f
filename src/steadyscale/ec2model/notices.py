"""What EC2 tells a listener about an instance, and what it tells ahead of what it does:
a state-change event on each true change, a spot interruption warning ``warning_seconds``
before the interruption (a rebalance recommendation, sometimes, before that), AWS Health's
notice of a scheduled retirement ahead of its deadline, and failing status checks.

The notices of a launch are planned on the region's timeline from their own seeded stream
(the instance's stream, and with it every other delay, is left as it was); tests and
operators trigger them through ``warn``, ``recommend_rebalance``, ``retire`` and ``impair``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping

from steadyscale.ec2model.events import DetailType, EmittedEvent, EventFeed, retirement_detail
from steadyscale.ec2model.instances import ACTIVE_STATES, TrackedInstance
from steadyscale.ec2model.settings import EmulatorSettings, Operation
from steadyscale.ec2model.timeline import EventKind
from steadyscale.ec2model.visibility import Visibility

Schedule = Callable[[float, str, EventKind], None]


class Notices:
    """The events of one region's instances, emitted into its ``feed``."""

    def __init__(
        self,
        settings: EmulatorSettings,
        *,
        region: str,
        account: str,
        seed: str,
        instances: Mapping[str, TrackedInstance],
        visibility: Visibility,
        schedule: Schedule,
    ) -> None:
        self.settings = settings.events
        self.feed = EventFeed(
            self.settings.delivery, region, account, random.Random(f"{seed}/events/delivery")
        )
        self._rng = random.Random(f"{seed}/events")
        self._instances = instances
        self._visibility = visibility
        self._schedule = schedule

    def _emit(
        self, detail_type: DetailType, inst: TrackedInstance, detail: dict[str, object], at: float
    ) -> EmittedEvent:
        listed = self._visibility.is_visible(inst.instance_id, Operation.LISTING, at)
        detail = {"instance-id": inst.instance_id, **detail}
        return self.feed.emit(detail_type, inst.instance_id, detail, at, listed=listed)

    def state_changed(self, inst: TrackedInstance, at: float) -> None:
        """The state-change event of a true change (the instance now shows ``state``)."""
        self._emit(DetailType.STATE_CHANGE, inst, {"state": inst.state.value}, at)

    # ---------------------------------------------------------------- planned at launch

    def plan_launch(self, inst: TrackedInstance, now: float, interrupt_at: float | None) -> None:
        """Schedule the notices of a fresh instance: its spot interruption (at
        ``interrupt_at``) with its warning and perhaps a rebalance recommendation before,
        a retirement, a failed status check."""
        knobs = self.settings
        rng = self._rng
        iid = inst.instance_id
        if interrupt_at is not None:
            warn_at = max(now, interrupt_at - knobs.warning_seconds)
            lead = knobs.rebalance.lead.sample(rng)
            # Scheduled in the order they come when they fall due at the same instant.
            if rng.random() < knobs.rebalance.probability:
                self._schedule(max(now, warn_at - lead), iid, EventKind.REBALANCE)
            self._schedule(warn_at, iid, EventKind.WARN)
            self._schedule(interrupt_at, iid, EventKind.INTERRUPT)
        if knobs.retirement.rate_per_hour > 0:
            at = now + rng.expovariate(knobs.retirement.rate_per_hour / 3600.0)
            self._schedule(at, iid, EventKind.RETIRE_NOTICE)
        if knobs.impairment.rate_per_hour > 0:
            at = now + rng.expovariate(knobs.impairment.rate_per_hour / 3600.0)
            self._schedule(at, iid, EventKind.IMPAIR)

    def apply(self, kind: EventKind, inst: TrackedInstance, at: float) -> None:
        """A planned notice falls due; an instance already going away gets none."""
        if inst.state not in ACTIVE_STATES:
            return
        if kind is EventKind.WARN:
            self._warning(inst, at)
        elif kind is EventKind.REBALANCE:
            self._emit(DetailType.REBALANCE, inst, {}, at)
        elif kind is EventKind.RETIRE_NOTICE:
            self._announce_retirement(inst, at, self.settings.retirement.lead.sample(self._rng))
        elif kind is EventKind.IMPAIR:
            inst.impaired = True

    def _warning(self, inst: TrackedInstance, at: float) -> None:
        self._emit(DetailType.SPOT_WARNING, inst, {"instance-action": "terminate"}, at)

    def _announce_retirement(self, inst: TrackedInstance, at: float, lead: float) -> None:
        deadline = at + lead
        detail = retirement_detail(self.feed.region, inst.instance_id, at, deadline)
        listed = self._visibility.is_visible(inst.instance_id, Operation.LISTING, at)
        self.feed.emit(DetailType.HEALTH, inst.instance_id, detail, at, listed=listed)
        self._schedule(deadline, inst.instance_id, EventKind.RETIRE)

    # ---------------------------------------------------------------- triggered

    def _active(self, instance_ids: Iterable[str]) -> list[TrackedInstance]:
        found = (self._instances.get(i) for i in instance_ids)
        return [i for i in found if i is not None and i.state in ACTIVE_STATES]

    def warn(self, instance_ids: Iterable[str], now: float) -> list[str]:
        """Warn of a spot interruption now; EC2 interrupts ``warning_seconds`` later.
        Returns the instances warned (those still running or pending)."""
        hit = self._active(instance_ids)
        for inst in hit:
            self._warning(inst, now)
            self._schedule(
                now + self.settings.warning_seconds, inst.instance_id, EventKind.INTERRUPT
            )
        return [i.instance_id for i in hit]

    def recommend_rebalance(self, instance_ids: Iterable[str], now: float) -> list[str]:
        """Emit rebalance recommendations now (nothing else follows by itself)."""
        hit = self._active(instance_ids)
        for inst in hit:
            self._emit(DetailType.REBALANCE, inst, {}, now)
        return [i.instance_id for i in hit]

    def retire(self, instance_ids: Iterable[str], now: float, lead: float | None) -> list[str]:
        """Announce retirements now; EC2 takes each instance ``lead`` seconds later (drawn
        from the retirement knob when None)."""
        hit = self._active(instance_ids)
        for inst in hit:
            chosen = self.settings.retirement.lead.sample(self._rng) if lead is None else lead
            self._announce_retirement(inst, now, chosen)
        return [i.instance_id for i in hit]

    def impair(self, instance_ids: Iterable[str], impaired: bool) -> list[str]:
        """Make the instances' status checks fail (or pass again)."""
        hit = self._active(instance_ids)
        for inst in hit:
            inst.impaired = impaired
        return [i.instance_id for i in hit]
