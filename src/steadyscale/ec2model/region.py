"""One region of EC2, as the model keeps it: each instance's true lifecycle (pending ->
running -> shutting-down -> terminated -> gone) on a timeline of events, launches and ids.

A backend (moto behind HTTP, or the in-memory store) asks it what a caller may see
(``visibility``), what throttles or fails a call (``gate``) and how many instances a launch
gets (``capacity``), and mirrors the state changes it reports. Time comes in as an
argument, randomness from streams seeded per region, so a run is reproducible from its seed.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Iterable
from enum import StrEnum

from steadyscale.ec2model import pricing, templates
from steadyscale.ec2model.capacity import CapacityBook
from steadyscale.ec2model.gate import CallGate
from steadyscale.ec2model.instances import (
    ACTIVE_STATES,
    SPOT_TERMINATION,
    USER_SHUTDOWN,
    InstanceState,
    StateChange,
    TrackedInstance,
    private_ip,
)
from steadyscale.ec2model.launch import Launch, LaunchRefusedError
from steadyscale.ec2model.settings import EmulatorSettings, Operation
from steadyscale.ec2model.visibility import Visibility


class EventKind(StrEnum):
    BOOTED = "booted"
    SHUTDOWN_DONE = "shutdown_done"
    INTERRUPT = "interrupt"
    EXPIRE = "expire"


class RegionModel:
    """Ground truth and fault state of one region of one emulated account."""

    def __init__(self, settings: EmulatorSettings, region: str, *, start: float = 0.0) -> None:
        self.settings = settings
        self.region = region
        seed = f"{settings.seed}/{region}"
        self._seed = seed
        self._launch_seq = itertools.count()
        self._id_rng = random.Random(f"{seed}/ids")
        self._event_seq = itertools.count()
        self.instances: dict[str, TrackedInstance] = {}
        self.gone: dict[str, TrackedInstance] = {}
        self._events: list[tuple[float, int, str, EventKind]] = []
        self.gate = CallGate(settings, seed)
        self.capacity = CapacityBook(settings.capacity, random.Random(f"{seed}/capacity"), seed)
        self.prices = pricing.PriceBook(settings.market, seed, start)
        self.templates = templates.TemplateBook(settings.market, seed)
        self.visibility = Visibility(
            settings,
            instances=self.instances,
            gone=self.gone,
            rng=random.Random(f"{seed}/stale"),
        )
        self.created_at = start
        # What a node health probe of an instance answers, when a test has set it.
        self.node_health: dict[str, bool] = {}

    def probe(self, instance_id: str) -> bool:
        """What a health probe of the instance finds: what a test set, else whether the
        instance truly runs (a pending or gone one refuses connections)."""
        if instance_id in self.node_health:
            return self.node_health[instance_id]
        tracked = self.instances.get(instance_id)
        return tracked is not None and tracked.state is InstanceState.RUNNING

    def set_node_health(self, instance_ids: Iterable[str], healthy: bool | None) -> None:
        """Make probes of the instances answer ``healthy``; None restores the default."""
        for instance_id in instance_ids:
            if healthy is None:
                self.node_health.pop(instance_id, None)
            else:
                self.node_health[instance_id] = healthy

    # ---------------------------------------------------------------- time

    def _schedule(self, at: float, instance_id: str, kind: EventKind) -> None:
        heapq.heappush(self._events, (at, next(self._event_seq), instance_id, kind))

    def advance(self, now: float) -> list[StateChange]:
        """Apply every event due by ``now``, in time order; return the changes to mirror."""
        changes: list[StateChange] = []
        while self._events and self._events[0][0] <= now:
            at, _, instance_id, kind = heapq.heappop(self._events)
            change = self._apply_event(at, instance_id, kind)
            if change is not None:
                changes.append(change)
        return changes

    def _apply_event(self, at: float, instance_id: str, kind: EventKind) -> StateChange | None:
        inst = self.instances.get(instance_id)
        if inst is None:
            return None
        if kind is EventKind.BOOTED:
            if inst.state is not InstanceState.PENDING:
                return None  # terminated or interrupted before it finished booting
            return self._set_state(inst, InstanceState.RUNNING, at, "boot finished")
        if kind is EventKind.INTERRUPT:
            return self._interrupt(inst, at)
        if kind is EventKind.SHUTDOWN_DONE:
            if inst.state is not InstanceState.SHUTTING_DOWN:
                return None
            inst.terminated_at = at
            self._schedule(
                at + self.settings.terminated_retention_seconds, instance_id, EventKind.EXPIRE
            )
            return self._set_state(inst, InstanceState.TERMINATED, at, "shutdown finished")
        # EXPIRE: EC2 stops listing a terminated instance after about an hour.
        if inst.state is not InstanceState.TERMINATED:
            return None
        del self.instances[instance_id]
        self.gone[instance_id] = inst
        inst.history.append((at, "gone", "terminated instance no longer listed"))
        return StateChange(instance_id, inst.state, None, "expired")

    def _set_state(
        self, inst: TrackedInstance, state: InstanceState, at: float, reason: str
    ) -> StateChange:
        old = inst.state
        was_active = old in ACTIVE_STATES
        inst.previous_state = old
        inst.state = state
        inst.stale_until = at + self.settings.stale_reads.window.sample(inst.rng)
        inst.history.append((at, state.value, reason))
        if state is InstanceState.RUNNING and inst.running_at is None:
            inst.running_at = at
        if was_active and state not in ACTIVE_STATES:
            self.capacity.release(inst)
        elif not was_active and state in ACTIVE_STATES:
            self.capacity.occupy(inst)
        return StateChange(inst.instance_id, old, state, reason)

    def _begin_shutdown(self, inst: TrackedInstance, at: float, reason: str) -> StateChange:
        inst.terminate_requested_at = at
        change = self._set_state(inst, InstanceState.SHUTTING_DOWN, at, reason)
        self._schedule(
            at + self.settings.shutdown.sample(inst.rng), inst.instance_id, EventKind.SHUTDOWN_DONE
        )
        return change

    def _interrupt(self, inst: TrackedInstance, at: float) -> StateChange | None:
        if inst.state not in ACTIVE_STATES:
            return None
        inst.interrupted = True
        return self._begin_shutdown(inst, at, SPOT_TERMINATION)

    # ---------------------------------------------------------------- launches

    def new_instance_id(self) -> str:
        """A fresh id in EC2's format, never one this region has used (seeded)."""
        while True:
            instance_id = f"i-{self._id_rng.getrandbits(68):017x}"
            if instance_id not in self.instances and instance_id not in self.gone:
                return instance_id

    def admit_launch(self, launch: Launch, now: float) -> int:
        """How many of MinCount..MaxCount EC2 would launch now: the instance-launch bucket
        caps MaxCount (below MinCount, the call is throttled), then capacity decides.
        Raises LaunchRefusedError."""
        max_count = launch.max_count
        budget = self.gate.resource_budget("RunInstances", now)
        if budget is not None:
            if budget < launch.min_count:
                raise LaunchRefusedError(
                    "RequestLimitExceeded", "Request limit exceeded.", status=503
                )
            max_count = min(max_count, budget)
        return self.capacity.admit(launch, max_count, now)

    def register_launch(self, launch: Launch, instance_ids: list[str], now: float) -> None:
        """Start tracking freshly launched instances, draw their delays, and charge the
        instance-launch bucket for them."""
        settings = self.settings
        spot_rate = settings.spot.interruption_rate_per_hour
        vcpus = launch.vcpus
        for instance_id in instance_ids:
            sequence = next(self._launch_seq)
            rng = random.Random(f"{self._seed}/instance/{sequence}")
            visible_at = {op: now + settings.visibility_for(op).sample(rng) for op in Operation}
            inst = TrackedInstance(
                instance_id=instance_id,
                instance_type=launch.instance_type,
                availability_zone=launch.availability_zone,
                market=launch.market,
                vcpus=vcpus,
                client_token=launch.client_token,
                launched_at=now,
                visible_at=visible_at,
                tags=dict(launch.tags),
                rng=rng,
                sequence=sequence,
                private_ip=private_ip(sequence),
                tag_ready_at=dict.fromkeys(launch.tags, visible_at[Operation.TAG_INDEX]),
                hourly_price=self.prices.price(*launch.pool, now),
            )
            inst.history.append((now, InstanceState.PENDING.value, "RunInstances"))
            self.instances[instance_id] = inst
            self.capacity.occupy(inst)
            self._schedule(now + settings.boot.sample(rng), instance_id, EventKind.BOOTED)
            if launch.market == "spot" and spot_rate > 0:
                self._schedule(
                    now + rng.expovariate(spot_rate / 3600.0), instance_id, EventKind.INTERRUPT
                )
        self.gate.consume_resources("RunInstances", len(instance_ids), now)

    # ---------------------------------------------------------------- mutations

    def tracks(self, instance_id: str) -> bool:
        return instance_id in self.instances

    def record_tags(self, instance_id: str, tags: dict[str, str], now: float) -> None:
        inst = self.instances.get(instance_id)
        if inst is None:
            return
        ready = now + self.settings.visibility_for(Operation.TAG_INDEX).sample(inst.rng)
        for key, value in tags.items():
            inst.tags[key] = value
            inst.tag_ready_at[key] = max(inst.tag_ready_at.get(key, ready), ready)

    def remove_tags(self, instance_id: str, keys: list[str]) -> None:
        inst = self.instances.get(instance_id)
        if inst is None:
            return
        for key in keys:
            inst.tags.pop(key, None)
            inst.tag_ready_at.pop(key, None)

    def request_terminate(
        self, instance_id: str, now: float
    ) -> tuple[InstanceState, InstanceState, StateChange | None]:
        """Terminate (idempotent). Returns (previous, current, change to mirror or None)."""
        inst = self.instances[instance_id]
        previous = inst.state
        if previous in (InstanceState.SHUTTING_DOWN, InstanceState.TERMINATED):
            return previous, previous, None
        change = self._begin_shutdown(inst, now, USER_SHUTDOWN)
        return previous, inst.state, change

    def interrupt(self, instance_id: str, now: float) -> StateChange | None:
        """Interrupt an instance now, as EC2 reclaims a spot instance."""
        inst = self.instances.get(instance_id)
        return None if inst is None else self._interrupt(inst, now)

    def record_state(self, instance_id: str, state: InstanceState, now: float, reason: str) -> None:
        """Mirror a state change the backend made itself (stop, start)."""
        inst = self.instances.get(instance_id)
        if inst is not None and inst.state is not state:
            self._set_state(inst, state, now, reason)

    # ---------------------------------------------------------------- ground truth

    def truth(self, *, include_gone: bool = False) -> list[TrackedInstance]:
        found = list(self.instances.values())
        if include_gone:
            found.extend(self.gone.values())
        return sorted(found, key=lambda inst: inst.sequence)
