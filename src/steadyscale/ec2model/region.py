"""EC2's consistency and fault model, independent of any server or backend.

It owns, per region, each instance's true lifecycle (pending -> running -> shutting-down ->
terminated -> gone), the moment each operation can first see it, stale reads, capacity
pools, throttling buckets and injected faults. A backend (moto behind HTTP, or an in-memory
store) asks it what a caller may see and applies the state changes it reports. Time comes
in as an argument, randomness from seeded streams, so a run is reproducible from its seed.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from steadyscale.ec2model.settings import EmulatorSettings, Operation
from steadyscale.retries.tokenbucket import TokenBucket


class InstanceState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SHUTTING_DOWN = "shutting-down"
    TERMINATED = "terminated"
    STOPPING = "stopping"
    STOPPED = "stopped"


STATE_CODES: dict[InstanceState, int] = {
    InstanceState.PENDING: 0,
    InstanceState.RUNNING: 16,
    InstanceState.SHUTTING_DOWN: 32,
    InstanceState.TERMINATED: 48,
    InstanceState.STOPPING: 64,
    InstanceState.STOPPED: 80,
}

# States that still occupy capacity (and would be billed).
ACTIVE_STATES = frozenset({InstanceState.PENDING, InstanceState.RUNNING, InstanceState.STOPPING})


class Fault(StrEnum):
    """A server-side fault that hits one API call."""

    SERVER_ERROR = "server_error"  # nothing done; 500 InternalError or 503 Unavailable
    LOST_RESPONSE = "lost_response"  # done; the client gets 500 InternalError
    TIMEOUT = "timeout"  # done; the client never gets an answer


class EventKind(StrEnum):
    BOOTED = "booted"
    SHUTDOWN_DONE = "shutdown_done"
    INTERRUPT = "interrupt"
    EXPIRE = "expire"


@dataclass(frozen=True)
class StateChange:
    """A transition the backend must mirror; ``new_state`` None means the record is gone."""

    instance_id: str
    old_state: InstanceState
    new_state: InstanceState | None
    reason: str


@dataclass
class TrackedInstance:
    """The ground truth of one instance, plus the delays drawn for it."""

    instance_id: str
    instance_type: str
    availability_zone: str
    market: str
    vcpus: int
    client_token: str | None
    launched_at: float
    visible_at: dict[Operation, float]
    tags: dict[str, str]
    rng: random.Random
    sequence: int = 0  # launch order within the region
    private_ip: str = ""
    state: InstanceState = InstanceState.PENDING
    previous_state: InstanceState | None = None
    stale_until: float = 0.0
    running_at: float | None = None
    terminate_requested_at: float | None = None
    terminated_at: float | None = None
    interrupted: bool = False
    tag_ready_at: dict[str, float] = field(default_factory=dict)
    history: list[tuple[float, str, str]] = field(default_factory=list)

    @property
    def pool(self) -> tuple[str, str, str]:
        return (self.instance_type, self.availability_zone, self.market)

    def to_json(self) -> dict[str, Any]:
        return {
            "instance_id": self.instance_id,
            "sequence": self.sequence,
            "state": self.state.value,
            "instance_type": self.instance_type,
            "availability_zone": self.availability_zone,
            "market": self.market,
            "client_token": self.client_token,
            "private_ip": self.private_ip,
            "tags": dict(self.tags),
            "launched_at": self.launched_at,
            "visible_at": {op.value: t for op, t in self.visible_at.items()},
            "running_at": self.running_at,
            "terminate_requested_at": self.terminate_requested_at,
            "terminated_at": self.terminated_at,
            "interrupted": self.interrupted,
            "history": [
                {"at": at, "state": state, "reason": reason} for at, state, reason in self.history
            ],
        }


class LaunchRefusedError(Exception):
    """EC2 refuses a launch: capacity, vCPU or instance limits."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class PendingFault:
    action: str  # an EC2 action name, or "*" for any
    fault: Fault


class RegionModel:
    """Ground truth and fault state of one region of one emulated account."""

    def __init__(self, settings: EmulatorSettings, region: str, *, start: float = 0.0) -> None:
        self.settings = settings
        self.region = region
        seed = f"{settings.seed}/{region}"
        self._seed = seed
        self._fault_rng = random.Random(f"{seed}/faults")
        self._stale_rng = random.Random(f"{seed}/stale")
        self._capacity_rng = random.Random(f"{seed}/capacity")
        self._launch_seq = itertools.count()
        self._id_rng = random.Random(f"{seed}/ids")
        self._event_seq = itertools.count()
        self.instances: dict[str, TrackedInstance] = {}
        self.gone: dict[str, TrackedInstance] = {}
        self._events: list[tuple[float, int, str, EventKind]] = []
        self._pool_usage: Counter[tuple[str, str, str]] = Counter()
        self._on_demand_vcpus = 0
        self._active_count = 0
        self._shortage_until: dict[tuple[str, str, str], float] = {}
        self._injected: deque[PendingFault] = deque()
        scale = settings.throttling.scale
        self._request_buckets = {
            name: TokenBucket(b.capacity * scale, b.refill_per_second * scale)
            for name, b in settings.throttling.request_buckets.items()
        }
        self._resource_buckets = {
            name: TokenBucket(b.capacity * scale, b.refill_per_second * scale)
            for name, b in settings.throttling.resource_buckets.items()
        }
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
            if inst.state not in ACTIVE_STATES:
                return None
            inst.interrupted = True
            return self._begin_shutdown(inst, at, "Server.SpotInstanceTermination")
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
            self._release(inst)
        elif not was_active and state in ACTIVE_STATES:
            self._occupy(inst)
        return StateChange(inst.instance_id, old, state, reason)

    def _occupy(self, inst: TrackedInstance) -> None:
        self._pool_usage[inst.pool] += 1
        self._active_count += 1
        if inst.market == "on-demand":
            self._on_demand_vcpus += inst.vcpus

    def _release(self, inst: TrackedInstance) -> None:
        self._pool_usage[inst.pool] -= 1
        self._active_count -= 1
        if inst.market == "on-demand":
            self._on_demand_vcpus -= inst.vcpus

    def _begin_shutdown(self, inst: TrackedInstance, at: float, reason: str) -> StateChange:
        inst.terminate_requested_at = at
        change = self._set_state(inst, InstanceState.SHUTTING_DOWN, at, reason)
        self._schedule(
            at + self.settings.shutdown.sample(inst.rng), inst.instance_id, EventKind.SHUTDOWN_DONE
        )
        return change

    # ---------------------------------------------------------------- launches

    def new_instance_id(self) -> str:
        """A fresh id in EC2's format, never one this region has used (seeded)."""
        while True:
            instance_id = f"i-{self._id_rng.getrandbits(68):017x}"
            if instance_id not in self.instances and instance_id not in self.gone:
                return instance_id

    def register_launch(
        self,
        *,
        instance_ids: list[str],
        instance_type: str,
        availability_zone: str,
        market: str,
        vcpus: int,
        client_token: str | None,
        tags: dict[str, str],
        now: float,
    ) -> None:
        """Start tracking freshly launched instances and draw their delays."""
        settings = self.settings
        spot_rate = settings.spot.interruption_rate_per_hour
        for instance_id in instance_ids:
            sequence = next(self._launch_seq)
            rng = random.Random(f"{self._seed}/instance/{sequence}")
            visible_at = {op: now + settings.visibility_for(op).sample(rng) for op in Operation}
            inst = TrackedInstance(
                instance_id=instance_id,
                instance_type=instance_type,
                availability_zone=availability_zone,
                market=market,
                vcpus=vcpus,
                client_token=client_token,
                launched_at=now,
                visible_at=visible_at,
                tags=dict(tags),
                rng=rng,
                sequence=sequence,
                private_ip=_private_ip(sequence),
                tag_ready_at=dict.fromkeys(tags, visible_at[Operation.TAG_INDEX]),
            )
            inst.history.append((now, InstanceState.PENDING.value, "RunInstances"))
            self.instances[instance_id] = inst
            self._occupy(inst)
            boot = settings.boot.sample(rng)
            self._schedule(now + boot, instance_id, EventKind.BOOTED)
            if market == "spot" and spot_rate > 0:
                self._schedule(
                    now + rng.expovariate(spot_rate / 3600.0), instance_id, EventKind.INTERRUPT
                )

    def _pool_limit(self, pool: tuple[str, str, str]) -> int | None:
        itype, zone, market = pool
        best: tuple[int, int] | None = None  # (specificity, size)
        for key, size in self.settings.capacity.pools.items():
            parts = key.split("/")
            want_market = parts[2] if len(parts) == 3 else "*"
            candidates = ((parts[0], itype), (parts[1], zone), (want_market, market))
            if all(pattern in ("*", value) for pattern, value in candidates):
                specificity = sum(pattern != "*" for pattern, _ in candidates)
                if best is None or specificity > best[0]:
                    best = (specificity, size)
        if best is not None:
            return best[1]
        return self.settings.capacity.default_pool_size

    def admit_launch(
        self,
        *,
        instance_type: str,
        availability_zone: str,
        market: str,
        vcpus: int,
        min_count: int,
        max_count: int,
        now: float,
    ) -> int:
        """How many of MinCount..MaxCount EC2 would launch now, or raise LaunchRefusedError."""
        pool = (instance_type, availability_zone, market)
        capacity = self.settings.capacity
        if now < self._shortage_until.get(pool, float("-inf")):
            raise _insufficient_capacity(instance_type, availability_zone)
        if capacity.shortage_probability and (
            self._capacity_rng.random() < capacity.shortage_probability
        ):
            spell = capacity.shortage_duration.sample(self._capacity_rng)
            self._shortage_until[pool] = now + spell
            raise _insufficient_capacity(instance_type, availability_zone)
        allowed = max_count
        limit = self._pool_limit(pool)
        if limit is not None:
            allowed = min(allowed, limit - self._pool_usage[pool])
            if allowed < min_count:
                raise _insufficient_capacity(instance_type, availability_zone)
        if capacity.instance_limit is not None:
            room = capacity.instance_limit - self._active_count
            allowed = min(allowed, room)
            if allowed < min_count:
                raise LaunchRefusedError(
                    "InstanceLimitExceeded",
                    f"You have requested more instances ({min_count}) than your current "
                    f"instance limit of {capacity.instance_limit} allows.",
                )
        if capacity.vcpu_limit is not None and market == "on-demand" and vcpus > 0:
            room = (capacity.vcpu_limit - self._on_demand_vcpus) // vcpus
            allowed = min(allowed, room)
            if allowed < min_count:
                raise LaunchRefusedError(
                    "VcpuLimitExceeded",
                    "You have requested more vCPU capacity than your current vCPU limit of "
                    f"{capacity.vcpu_limit} allows for the instance bucket that the specified "
                    "instance type belongs to.",
                )
        return allowed

    # ---------------------------------------------------------------- visibility

    def tracks(self, instance_id: str) -> bool:
        return instance_id in self.instances

    def is_visible(self, instance_id: str, operation: Operation, now: float) -> bool:
        """Whether ``operation`` sees the instance. Unknown ids (not ours) are always visible."""
        inst = self.instances.get(instance_id)
        if inst is None:
            return instance_id not in self.gone
        return now >= inst.visible_at[operation]

    def tags_indexed(self, instance_id: str, keys: list[str] | None, now: float) -> bool:
        """Whether tag filters on ``keys`` (None: any key) can match the instance yet."""
        inst = self.instances.get(instance_id)
        if inst is None:
            return True
        if keys is None:
            return all(now >= t for t in inst.tag_ready_at.values())
        return all(now >= inst.tag_ready_at.get(key, float("-inf")) for key in keys)

    def observed_state(self, instance_id: str, now: float) -> InstanceState | None:
        """The state a read shows: the true one, or shortly after a change maybe the old one."""
        inst = self.instances.get(instance_id)
        if inst is None:
            return None
        stale = self.settings.stale_reads
        if (
            inst.previous_state is not None
            and now < inst.stale_until
            and stale.probability > 0
            and self._stale_rng.random() < stale.probability
        ):
            return inst.previous_state
        return inst.state

    def listed(self, now: float, *, tag_key: str, tag_value: str) -> list[TrackedInstance]:
        """What a listing filtered on one tag shows now: instances visible to listings,
        their tag indexed, and not dropped by a flicker. One pass, for big regions."""
        listing = Operation.LISTING
        flicker = self.settings.stale_reads.listing_flicker_probability
        draw = self._stale_rng.random
        shown = []
        for inst in self.instances.values():
            if (
                inst.tags.get(tag_key) != tag_value
                or now < inst.visible_at[listing]
                or now < inst.tag_ready_at.get(tag_key, float("-inf"))
            ):
                continue
            if flicker > 0 and draw() < flicker:
                continue
            shown.append(inst)
        return shown

    def flickers(self, instance_id: str) -> bool:
        """Whether this listing drops an instance it could show (a flickering listing)."""
        chance = self.settings.stale_reads.listing_flicker_probability
        return chance > 0 and instance_id in self.instances and (self._stale_rng.random() < chance)

    # ---------------------------------------------------------------- mutations

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
        change = self._begin_shutdown(inst, now, "Client.UserInitiatedShutdown")
        return previous, inst.state, change

    def interrupt(self, instance_id: str, now: float) -> StateChange | None:
        """Interrupt an instance now, as EC2 reclaims a spot instance."""
        inst = self.instances.get(instance_id)
        if inst is None or inst.state not in ACTIVE_STATES:
            return None
        inst.interrupted = True
        return self._begin_shutdown(inst, now, "Server.SpotInstanceTermination")

    def record_state(self, instance_id: str, state: InstanceState, now: float, reason: str) -> None:
        """Mirror a state change the backend made itself (stop, start)."""
        inst = self.instances.get(instance_id)
        if inst is not None and inst.state is not state:
            self._set_state(inst, state, now, reason)

    # ---------------------------------------------------------------- throttling and faults

    def throttle(self, action: str, now: float, resources: int = 0) -> bool:
        """True when the call must be refused with RequestLimitExceeded."""
        if not self.settings.throttling.enabled:
            return False
        bucket = self._request_buckets.get(action)
        if bucket is None:
            non_mutating = action.startswith(("Describe", "Get", "List"))
            bucket = self._request_buckets.get("non-mutating" if non_mutating else "mutating")
        if bucket is not None and not bucket.try_take(now):
            return True
        resource_bucket = self._resource_buckets.get(action)
        return (
            resources > 0
            and resource_bucket is not None
            and not resource_bucket.try_take(now, min(resources, resource_bucket.capacity))
        )

    def resource_budget(self, action: str, now: float) -> int | None:
        """Resources (instances) the action's resource bucket allows now; None: no limit."""
        bucket = self._resource_buckets.get(action)
        if not self.settings.throttling.enabled or bucket is None:
            return None
        return int(bucket.available(now) + 1e-9)

    def consume_resources(self, action: str, count: int, now: float) -> None:
        """EC2 depletes a resource bucket by the resources a call affected."""
        bucket = self._resource_buckets.get(action)
        if self.settings.throttling.enabled and bucket is not None and count > 0:
            bucket.try_take(now, min(count, bucket.available(now)))

    def inject(self, fault: Fault, action: str = "*", count: int = 1) -> None:
        """Make the next ``count`` calls of ``action`` (or any, with ``*``) hit ``fault``."""
        for _ in range(count):
            self._injected.append(PendingFault(action, fault))

    def draw_fault(self, action: str) -> Fault | None:
        for pending in self._injected:
            if pending.action in ("*", action):
                self._injected.remove(pending)
                return pending.fault
        errors = self.settings.errors
        roll = self._fault_rng.random()
        if roll < errors.server_error_probability:
            return Fault.SERVER_ERROR
        roll -= errors.server_error_probability
        if roll < errors.lost_response_probability:
            return Fault.LOST_RESPONSE
        roll -= errors.lost_response_probability
        if roll < errors.timeout_probability:
            return Fault.TIMEOUT
        return None

    # ---------------------------------------------------------------- ground truth

    def truth(self, *, include_gone: bool = False) -> list[TrackedInstance]:
        found = list(self.instances.values())
        if include_gone:
            found.extend(self.gone.values())
        return sorted(found, key=lambda inst: inst.sequence)


def _private_ip(sequence: int) -> str:
    """A made-up address in 10.0.0.0/8, unique per launch; nothing ever connects to it."""
    n = sequence + 10
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


def _insufficient_capacity(instance_type: str, zone: str) -> LaunchRefusedError:
    return LaunchRefusedError(
        "InsufficientInstanceCapacity",
        f"We currently do not have sufficient {instance_type} capacity in the Availability "
        f"Zone you requested ({zone}). Our system will be working on provisioning additional "
        "capacity. You can currently get capacity by not specifying an Availability Zone in "
        "your request or choosing a different Availability Zone.",
    )
