"""The in-memory EC2 backend: the emulator's consistency-and-fault model without HTTP or moto.

Every call is answered straight from ``RegionModel`` on the caller's clock, so lag, stale
reads, flickering listings, throttling, capacity, lost answers and timeouts are the
emulator's own, drawn from the same seed. Calls are shaped like the boto3 provider's
(pages of 1000, lookups by the ``instance-id`` filter, by-id calls that fail on an unknown
id), retried like botocore's standard mode, and their error codes become our errors through
the same ``cloud_error`` mapping. Fast enough to simulate tens of thousands of instances.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar, cast

from steadyscale.core.instances import TAG_CLUSTER, CloudInstance
from steadyscale.ec2model.calllog import CallLog, CallRecord
from steadyscale.ec2model.catalogue import instance_vcpus
from steadyscale.ec2model.region import (
    Fault,
    InstanceState,
    LaunchRefusedError,
    RegionModel,
    TrackedInstance,
)
from steadyscale.ec2model.settings import EmulatorSettings, Operation
from steadyscale.errors import (
    CloudError,
    CloudUnavailable,
    SteadyscaleError,
    Throttled,
    cloud_error,
)
from steadyscale.providers.protocol import (
    LOOKUP_BATCH,
    NOT_FOUND,
    ApiCall,
    ApiObserver,
    LaunchResult,
    LaunchSpec,
    LookupPolicy,
    NotVisibleYet,
    TerminateResult,
    call_dropping_unknown,
    call_in_chunks,
    chunks,
    lookup_until_visible,
    terminate_in_chunks,
)
from steadyscale.providers.wire import instance_tags, market_of, run_instances_params
from steadyscale.retries.backoff import Backoff
from steadyscale.retries.clock import Clock
from steadyscale.retries.pacing import ClientPacer

T = TypeVar("T")

PAGE_SIZE = 1000
TERMINATE_CHUNK = 1000
_SPOT_REASON = "Server.SpotInstanceTermination"
# botocore's standard retry mode: full jitter on 2^attempt seconds, at most 20 s.
_SDK_BACKOFF = Backoff(base=1.0, cap=20.0)


class MemoryProvider:
    """``CloudProvider`` on an in-process ``RegionModel``. Not thread-safe: one caller."""

    def __init__(
        self,
        *,
        cluster_name: str,
        clock: Clock,
        settings: EmulatorSettings,
        region: str = "us-east-1",
        max_attempts: int = 3,
        lookup_deadline: float = 5.0,
        rate_limits: Mapping[str, tuple[float, float]] | None = None,
        rate_limit_max_wait: float = 2.0,
        observer: ApiObserver | None = None,
    ) -> None:
        self.cluster_name = cluster_name
        self.observer = observer
        self.region = region
        self.settings = settings
        self.model = RegionModel(settings, region, start=clock.now())
        self.calls = CallLog(keep=2_000_000)
        self._clock = clock
        self._max_attempts = max_attempts
        self._pacer = ClientPacer(clock, rate_limits, rate_limit_max_wait)
        self._rng = random.Random(f"{settings.seed}/{region}/client")
        self._lookup_policy = LookupPolicy(clock, lookup_deadline, self._rng)
        self._error_rng = random.Random(f"{settings.seed}/{region}/server")
        self._calls: Counter[str] = Counter()
        # ClientToken -> (fingerprint of the parameters, ids launched under it)
        self._tokens: dict[str, tuple[str, tuple[str, ...]]] = {}
        self._zones: dict[str, str] = {}  # subnet id -> availability zone
        self._protected: set[str] = set()
        # One view per (instance, state shown), so a listing of 10,000 unchanged instances
        # allocates nothing new.
        self._views: dict[str, tuple[str, CloudInstance]] = {}

    # ------------------------------------------------------------------ plumbing

    def _record(
        self, action: str, outcome: str, status: int, fault: Fault | None = None, instances: int = 0
    ) -> None:
        self.calls.add(
            CallRecord(
                at=self._clock.now(),
                region=self.region,
                action=action,
                outcome=outcome,
                status=status,
                latency_ms=0.0,
                fault=fault.value if fault else None,
                instances=instances,
            )
        )

    def _call(self, action: str, work: Callable[[float], T], *, resources: int = 0) -> T:
        """One API call as the SDK makes it: paced, then attempted up to ``max_attempts``
        times while EC2 throttles or fails; each attempt is throttled, faulted and
        answered by the model at the clock's current time."""
        self._pacer.pace(action)
        self._calls[action] += 1
        attempt = 0
        retried: list[str] = []
        while True:
            attempt += 1
            error = self._attempt(action, work, resources)
            if not isinstance(error, CloudError):
                if self.observer is not None:
                    self.observer(ApiCall(action, None, tuple(retried)))
                return error
            retryable = isinstance(error, (Throttled, CloudUnavailable))
            if not retryable or attempt >= self._max_attempts:
                if self.observer is not None:
                    self.observer(ApiCall(action, error.code, tuple(retried)))
                raise error
            retried.append(error.code)
            self._clock.sleep(_SDK_BACKOFF.delay(attempt - 1, self._rng))

    def _attempt(self, action: str, work: Callable[[float], T], resources: int) -> T | CloudError:
        now = self._clock.now()
        model = self.model
        model.advance(now)
        if model.throttle(action, now, resources):
            self._record(action, "RequestLimitExceeded", 503)
            return Throttled("RequestLimitExceeded", "Request limit exceeded.")
        fault = model.draw_fault(action)
        if fault is Fault.SERVER_ERROR:
            code, status = (
                ("InternalError", 500) if self._error_rng.random() < 0.5 else ("Unavailable", 503)
            )
            self._record(action, code, status, fault)
            return CloudUnavailable(code, "An internal error has occurred. Try again.")
        refused: CloudError | None = None
        try:
            answer: T | None = work(now)
        except CloudError as exc:
            answer, refused = None, exc
        instances = len(answer.instances) if isinstance(answer, LaunchResult) else 0
        # A lost answer or a timeout hides whatever EC2 answered, an error included.
        if fault is Fault.LOST_RESPONSE:
            self._record(action, "InternalError", 500, fault, instances)
            return CloudUnavailable("InternalError", "An internal error has occurred.")
        if fault is Fault.TIMEOUT:
            self._clock.sleep(self.settings.errors.timeout_seconds)
            self._record(action, "timeout", 0, fault, instances)
            return CloudUnavailable("ReadTimeoutError", "Read timeout on endpoint URL")
        if refused is not None:
            status = 503 if isinstance(refused, Throttled) else 400
            self._record(action, refused.code, status, fault)
            return refused
        self._record(action, "ok", 200, None, instances)
        return cast(T, answer)

    def calls_by_action(self) -> dict[str, int]:
        return dict(self._calls)

    def launch_budget(self) -> int:
        return self._pacer.launch_budget()

    def truth(self, *, include_gone: bool = True) -> list[TrackedInstance]:
        """Ground truth: every instance as it really is, untouched by any fault."""
        self.model.advance(self._clock.now())
        return self.model.truth(include_gone=include_gone)

    def probe_node(self, instance_id: str) -> bool:
        """What a health probe of the instance finds; never sent to its made-up address."""
        self.model.advance(self._clock.now())
        return self.model.probe(instance_id)

    def set_node_health(self, instance_ids: Sequence[str], healthy: bool | None) -> None:
        self.model.set_node_health(instance_ids, healthy)

    def interrupt(self, instance_ids: Sequence[str]) -> list[str]:
        """Interrupt instances now, as EC2 reclaims spot capacity."""
        now = self._clock.now()
        self.model.advance(now)
        return [c.instance_id for i in instance_ids if (c := self.model.interrupt(i, now))]

    def inject(self, fault: Fault | str, action: str = "*", count: int = 1) -> None:
        """Make the next ``count`` calls of ``action`` hit ``fault``."""
        self.model.inject(Fault(fault), action, count)

    # ------------------------------------------------------------------ views

    def _view(self, inst: TrackedInstance, now: float) -> CloudInstance:
        state = self.model.observed_state(inst.instance_id, now) or inst.state
        cached = self._views.get(inst.instance_id)
        if cached is not None and cached[0] == state.value:
            return cached[1]
        reason = None
        if inst.interrupted and state in (InstanceState.SHUTTING_DOWN, InstanceState.TERMINATED):
            reason = _SPOT_REASON
        elif state in (InstanceState.SHUTTING_DOWN, InstanceState.TERMINATED):
            reason = "Client.UserInitiatedShutdown"
        view = CloudInstance(
            instance_id=inst.instance_id,
            state=state.value,
            instance_type=inst.instance_type,
            availability_zone=inst.availability_zone,
            private_ip=inst.private_ip,
            tags=dict(inst.tags),
            state_reason=reason,
            launch_time=inst.launched_at,
            lifecycle="spot" if inst.market == "spot" else None,
        )
        self._views[inst.instance_id] = (state.value, view)
        return view

    def _not_found(self, missing: Sequence[str]) -> SteadyscaleError:
        listed = ", ".join(missing)
        return cloud_error(NOT_FOUND, f"The instance IDs '{listed}' do not exist")

    def _known_only(
        self,
        action: str,
        ids: list[str],
        work: Callable[[list[str], float], T],
        operation: Operation,
        resources: bool = False,
    ) -> tuple[T | None, list[str]]:
        """A by-id call: one unknown id fails it, naming the ids; drop those and call again,
        exactly as the boto3 provider does."""

        def call(chosen: list[str]) -> T:
            def attempt(now: float) -> T:
                missing = [
                    i
                    for i in chosen
                    if not self.model.tracks(i) or not self.model.is_visible(i, operation, now)
                ]
                if missing:
                    raise self._not_found(missing)
                return work(chosen, now)

            return self._call(action, attempt, resources=len(chosen) if resources else 0)

        return call_dropping_unknown(call, ids)

    # ------------------------------------------------------------------ protocol

    def preflight(self) -> None:
        """Nothing to check: the model is in this process."""

    def _zone(self, spec: LaunchSpec, config: Mapping[str, Any]) -> str:
        placement = config.get("Placement")
        if isinstance(placement, dict) and placement.get("AvailabilityZone"):
            return str(placement["AvailabilityZone"])
        subnet = spec.subnet_id or config.get("SubnetId")
        if not subnet:
            return f"{self.region}a"
        if subnet not in self._zones:
            self._zones[subnet] = f"{self.region}{'abcdef'[len(self._zones) % 6]}"
        return self._zones[subnet]

    def launch(self, spec: LaunchSpec) -> LaunchResult:
        config = dict(spec.node_config)
        fingerprint = json.dumps(
            {
                "node_type": spec.node_type,
                "count": spec.count,
                "config": config,
                "subnet": spec.subnet_id,
            },
            sort_keys=True,
            default=str,
        )
        params = run_instances_params(spec, self.cluster_name)
        instance_type = str(params.get("InstanceType") or "m1.small")
        market = market_of(params)
        tags = instance_tags(params)
        zone = self._zone(spec, config)
        protect = bool(config.get("DisableApiTermination"))

        def run(now: float) -> LaunchResult:
            model = self.model
            previous = self._tokens.get(spec.client_token)
            if previous is not None:
                if previous[0] != fingerprint:
                    raise cloud_error(
                        "IdempotentParameterMismatch",
                        "The client token you have provided is associated with a resource "
                        "that is already deleted or has different parameters.",
                    )
                # EC2 answers a repeated token with the original response.
                return LaunchResult(
                    instances=tuple(
                        self._launched_view(model.instances.get(i) or model.gone[i])
                        for i in previous[1]
                    )
                )
            max_count = spec.count
            budget = model.resource_budget("RunInstances", now)
            if budget is not None:
                if budget < 1:
                    raise cloud_error("RequestLimitExceeded", "Request limit exceeded.", 503)
                max_count = min(max_count, budget)
            try:
                count = model.admit_launch(
                    instance_type=instance_type,
                    availability_zone=zone,
                    market=market,
                    vcpus=instance_vcpus(instance_type),
                    min_count=1,
                    max_count=max_count,
                    now=now,
                )
            except LaunchRefusedError as refused:
                raise cloud_error(refused.code, refused.message) from None
            ids = [model.new_instance_id() for _ in range(count)]
            model.register_launch(
                instance_ids=ids,
                instance_type=instance_type,
                availability_zone=zone,
                market=market,
                vcpus=instance_vcpus(instance_type),
                client_token=spec.client_token,
                tags=tags,
                now=now,
            )
            model.consume_resources("RunInstances", len(ids), now)
            if protect:
                self._protected.update(ids)
            self._tokens[spec.client_token] = (fingerprint, tuple(ids))
            model.advance(now)
            return LaunchResult(
                instances=tuple(self._launched_view(model.instances[i]) for i in ids)
            )

        result = self._call("RunInstances", run)
        self._pacer.charge_launch(len(result.instances))
        return result

    @staticmethod
    def _launched_view(inst: TrackedInstance) -> CloudInstance:
        """What a RunInstances answer says of an instance: pending, with its tags."""
        return CloudInstance(
            instance_id=inst.instance_id,
            state=InstanceState.PENDING.value,
            instance_type=inst.instance_type,
            availability_zone=inst.availability_zone,
            private_ip=inst.private_ip,
            tags=dict(inst.tags),
            launch_time=inst.launched_at,
            lifecycle="spot" if inst.market == "spot" else None,
        )

    def _pages(self, shown: list[CloudInstance]) -> list[CloudInstance]:
        """Charge one DescribeInstances per further page of 1000 (the first is charged)."""
        for _ in range(1, max(1, -(-len(shown) // PAGE_SIZE))):
            self._call("DescribeInstances", lambda now: None)
        return shown

    def list_cluster(self) -> list[CloudInstance]:
        return self.list_tagged(TAG_CLUSTER, self.cluster_name)

    def list_tagged(
        self, key: str, value: str, states: Sequence[str] | None = None
    ) -> list[CloudInstance]:
        model = self.model
        wanted = None if not states else frozenset(states)

        def listing(now: float) -> list[CloudInstance]:
            # EC2 filters on the true state; a stale read may still show an older one.
            return [
                self._view(inst, now)
                for inst in model.listed(now, tag_key=key, tag_value=value)
                if wanted is None or inst.state.value in wanted
            ]

        return self._pages(self._call("DescribeInstances", listing))

    def create_tags(self, instance_ids: Sequence[str], tags: Mapping[str, str]) -> list[str]:
        model = self.model
        not_found: list[str] = []

        def tag(chosen: list[str], now: float) -> None:
            for instance_id in chosen:
                model.record_tags(instance_id, dict(tags), now)
                self._views.pop(instance_id, None)  # its tags changed

        for chunk in chunks(instance_ids, TERMINATE_CHUNK):
            _, dropped = self._known_only("CreateTags", chunk, tag, Operation.CREATE_TAGS)
            not_found.extend(dropped)
        return not_found

    def change_state(self, action: str, instance_ids: Sequence[str]) -> TerminateResult:
        """Stop or start at once (as the emulator does), for instances EC2 shows."""
        targets = {"StopInstances": InstanceState.STOPPED, "StartInstances": InstanceState.RUNNING}
        if action not in targets:
            raise ValueError(f"change_state does not do {action}")
        model = self.model

        def change(chosen: list[str], now: float) -> dict[str, str]:
            answer = {}
            for instance_id in chosen:
                model.record_state(instance_id, targets[action], now, action)
                answer[instance_id] = model.instances[instance_id].state.value
            return answer

        def call(chosen: list[str]) -> tuple[dict[str, str], list[str]]:
            answer, dropped = self._known_only(action, chosen, change, Operation.TERMINATE)
            return answer or {}, dropped

        return call_in_chunks(call, instance_ids, chunk_size=TERMINATE_CHUNK)

    def describe(self, instance_ids: Sequence[str]) -> list[CloudInstance]:
        model = self.model
        found: list[CloudInstance] = []
        for chunk in chunks(instance_ids, LOOKUP_BATCH):

            def by_filter(now: float, chosen: list[str] = chunk) -> list[CloudInstance]:
                shown = []
                for instance_id in chosen:
                    inst = model.instances.get(instance_id)
                    if (
                        inst is None
                        or not model.is_visible(instance_id, Operation.LISTING, now)
                        or model.flickers(instance_id)
                    ):
                        continue
                    shown.append(self._view(inst, now))
                return shown

            found.extend(self._call("DescribeInstances", by_filter))
        return found

    def describe_by_id(self, instance_ids: Sequence[str]) -> list[CloudInstance]:
        model = self.model
        found: list[CloudInstance] = []

        def by_id(chosen: list[str], now: float) -> list[CloudInstance]:
            return [self._view(model.instances[i], now) for i in chosen]

        for chunk in chunks(instance_ids, LOOKUP_BATCH):
            answer, _ = self._known_only(
                "DescribeInstances", chunk, by_id, Operation.DESCRIBE_BY_ID
            )
            found.extend(answer or [])
        return found

    def lookup(self, instance_id: str) -> CloudInstance | NotVisibleYet:
        return lookup_until_visible(self.describe, instance_id, self._lookup_policy)

    def terminate(self, instance_ids: Sequence[str]) -> TerminateResult:
        model = self.model

        def terminate(chosen: list[str], now: float) -> dict[str, str]:
            protected = [i for i in chosen if i in self._protected]
            if protected:  # the whole call fails, as on EC2
                raise cloud_error(
                    "OperationNotPermitted",
                    f"The instance '{protected[0]}' may not be terminated. Modify its "
                    "'disableApiTermination' instance attribute and try again.",
                )
            answer = {}
            for instance_id in chosen:
                _, current, _ = model.request_terminate(instance_id, now)
                answer[instance_id] = current.value
            model.advance(now)
            return answer

        def call(chosen: list[str]) -> tuple[dict[str, str], list[str]]:
            answer, dropped = self._known_only(
                "TerminateInstances", chosen, terminate, Operation.TERMINATE, resources=True
            )
            return answer or {}, dropped

        return terminate_in_chunks(call, instance_ids, chunk_size=TERMINATE_CHUNK)
