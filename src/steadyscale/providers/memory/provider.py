"""``CloudProvider`` on the in-process region model: the emulator's behaviour, no HTTP.

Every call is answered straight from ``RegionModel`` on the caller's clock, so lag, stale
reads, flickering listings, throttling, capacity, lost answers and timeouts are the
emulator's own, drawn from the same seed. Calls are shaped like the boto3 provider's
(pages of 1000, lookups by the ``instance-id`` filter, by-id calls that fail on an unknown
id, the same RunInstances parameters), and their error codes become our errors through the
same ``cloud_error`` mapping.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from steadyscale.core.instances import TAG_CLUSTER, CloudInstance
from steadyscale.ec2model.calllog import CallLog
from steadyscale.ec2model.gate import Fault
from steadyscale.ec2model.instances import InstanceState, TrackedInstance
from steadyscale.ec2model.launch import ClientTokens, Launch, LaunchRefusedError, fingerprint
from steadyscale.ec2model.region import RegionModel
from steadyscale.ec2model.settings import EmulatorSettings, Operation
from steadyscale.errors import cloud_error
from steadyscale.providers.byid import (
    LookupPolicy,
    call_in_chunks,
    chunks,
    lookup_until_visible,
    terminate_in_chunks,
)
from steadyscale.providers.memory.calls import ModelCalls
from steadyscale.providers.memory.fleet import FleetCalls
from steadyscale.providers.memory.views import InstanceViews, launched
from steadyscale.providers.memory.zones import Zones
from steadyscale.providers.protocol import (
    DEFAULT_OPTIONS,
    LOOKUP_BATCH,
    ApiObserver,
    ClientOptions,
    LaunchResult,
    LaunchSpec,
    NotVisibleYet,
    TerminateResult,
)
from steadyscale.providers.wire import instance_tags, market_of, run_instances_params
from steadyscale.retries.clock import Clock
from steadyscale.retries.pacing import ClientPacer

PAGE_SIZE = 1000
TERMINATE_CHUNK = 1000
_STATE_TARGETS = {"StopInstances": InstanceState.STOPPED, "StartInstances": InstanceState.RUNNING}


class MemoryProvider(FleetCalls):
    """``CloudProvider`` on an in-process ``RegionModel``. Not thread-safe: one caller."""

    def __init__(
        self,
        *,
        cluster_name: str,
        clock: Clock,
        settings: EmulatorSettings,
        region: str = "us-east-1",
        options: ClientOptions = DEFAULT_OPTIONS,
    ) -> None:
        self.cluster_name = cluster_name
        self.region = region
        self.settings = settings
        self.model = RegionModel(settings, region, start=clock.now())
        self._clock = clock
        self._pacer = ClientPacer(clock, options.rate_limits, options.rate_limit_max_wait)
        self._calls = ModelCalls(
            model=self.model,
            clock=clock,
            pacer=self._pacer,
            rng=random.Random(f"{settings.seed}/{region}/client"),
            max_attempts=options.max_attempts,
            observer=options.observer,
        )
        self._lookup_policy = LookupPolicy(clock, options.lookup_deadline, self._calls.rng)
        self._views = InstanceViews(self.model.visibility)
        # The ids launched under each ClientToken, with the fingerprint of its parameters.
        self._tokens: ClientTokens[tuple[str, ...]] = ClientTokens()
        self._zones = Zones(region)
        self._protected: set[str] = set()

    # ------------------------------------------------------------------ calls and ground truth

    @property
    def calls(self) -> CallLog:
        """Every call attempt, as the emulator's call log records it."""
        return self._calls.log

    @property
    def observer(self) -> ApiObserver | None:
        """Who hears of every call (the metrics). Kept by the calls, not by a bound method
        of this provider: a cycle would keep a finished simulation's whole model alive
        until the next full garbage collection."""
        return self._calls.observer

    @observer.setter
    def observer(self, observer: ApiObserver | None) -> None:
        self._calls.observer = observer

    def calls_by_action(self) -> dict[str, int]:
        return dict(self._calls.counts)

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
        self.model.gate.inject(Fault(fault), action, count)

    # ------------------------------------------------------------------ launches

    def preflight(self) -> None:
        """Nothing to check: the model is in this process."""

    def launch(self, spec: LaunchSpec) -> LaunchResult:
        params = run_instances_params(spec, self.cluster_name)
        launch = Launch(
            instance_type=str(params.get("InstanceType") or "m1.small"),
            availability_zone=self._zones.zone_of(spec),
            market=market_of(params),
            min_count=1,
            max_count=spec.count,
            client_token=spec.client_token,
            tags=instance_tags(params),
        )
        params_fingerprint = fingerprint(params)
        protect = bool(spec.node_config.get("DisableApiTermination"))
        model = self.model

        def run(now: float) -> LaunchResult:
            try:
                previous = self._tokens.replay(spec.client_token, params_fingerprint)
                if previous is not None:
                    # EC2 answers a repeated token with the original response.
                    return launched(model, previous)
                count = model.admit_launch(launch, now)
            except LaunchRefusedError as refused:
                raise cloud_error(refused.code, refused.message, refused.status) from None
            ids = [model.new_instance_id() for _ in range(count)]
            model.register_launch(launch, ids, now)
            if protect:
                self._protected.update(ids)
            self._tokens.remember(spec.client_token, params_fingerprint, tuple(ids))
            model.advance(now)
            return launched(model, ids)

        result = self._calls.call("RunInstances", run)
        self._pacer.charge_launch(len(result.instances))
        return result

    # ------------------------------------------------------------------ reads

    def _pages(self, shown: list[CloudInstance]) -> list[CloudInstance]:
        """Charge one DescribeInstances per further page of 1000 (the first is charged)."""
        for _ in range(1, max(1, -(-len(shown) // PAGE_SIZE))):
            self._calls.call("DescribeInstances", lambda now: None)
        return shown

    def list_cluster(self) -> list[CloudInstance]:
        return self.list_tagged(TAG_CLUSTER, self.cluster_name)

    def list_tagged(
        self, key: str, value: str, states: Sequence[str] | None = None
    ) -> list[CloudInstance]:
        visibility = self.model.visibility
        wanted = None if not states else frozenset(states)

        def listing(now: float) -> list[CloudInstance]:
            # EC2 filters on the true state; a stale read may still show an older one.
            return [
                self._views.shown(inst, now)
                for inst in visibility.listed(now, tag_key=key, tag_value=value)
                if wanted is None or inst.state.value in wanted
            ]

        return self._pages(self._calls.call("DescribeInstances", listing))

    def describe(self, instance_ids: Sequence[str]) -> list[CloudInstance]:
        model = self.model
        visibility = model.visibility
        found: list[CloudInstance] = []
        for chunk in chunks(instance_ids, LOOKUP_BATCH):

            def by_filter(now: float, chosen: list[str] = chunk) -> list[CloudInstance]:
                shown = []
                for instance_id in chosen:
                    inst = model.instances.get(instance_id)
                    if (
                        inst is None
                        or not visibility.is_visible(instance_id, Operation.LISTING, now)
                        or visibility.flickers(instance_id)
                    ):
                        continue
                    shown.append(self._views.shown(inst, now))
                return shown

            found.extend(self._calls.call("DescribeInstances", by_filter))
        return found

    def describe_by_id(self, instance_ids: Sequence[str]) -> list[CloudInstance]:
        model = self.model
        found: list[CloudInstance] = []

        def by_id(chosen: list[str], now: float) -> list[CloudInstance]:
            return [self._views.shown(model.instances[i], now) for i in chosen]

        for chunk in chunks(instance_ids, LOOKUP_BATCH):
            answer, _ = self._calls.by_id(
                "DescribeInstances", chunk, by_id, Operation.DESCRIBE_BY_ID
            )
            found.extend(answer or [])
        return found

    def lookup(self, instance_id: str) -> CloudInstance | NotVisibleYet:
        return lookup_until_visible(self.describe, instance_id, self._lookup_policy)

    # ------------------------------------------------------------------ changes

    def create_tags(self, instance_ids: Sequence[str], tags: Mapping[str, str]) -> list[str]:
        model = self.model
        not_found: list[str] = []

        def tag(chosen: list[str], now: float) -> None:
            for instance_id in chosen:
                model.record_tags(instance_id, dict(tags), now)
                self._views.forget(instance_id)  # its tags changed

        for chunk in chunks(instance_ids, TERMINATE_CHUNK):
            _, dropped = self._calls.by_id("CreateTags", chunk, tag, Operation.CREATE_TAGS)
            not_found.extend(dropped)
        return not_found

    def change_state(self, action: str, instance_ids: Sequence[str]) -> TerminateResult:
        """Stop or start at once (as the emulator does), for instances EC2 shows."""
        if action not in _STATE_TARGETS:
            raise ValueError(f"change_state does not do {action}")
        model = self.model
        target = _STATE_TARGETS[action]

        def change(chosen: list[str], now: float) -> dict[str, str]:
            answer = {}
            for instance_id in chosen:
                model.record_state(instance_id, target, now, action)
                answer[instance_id] = model.instances[instance_id].state.value
            return answer

        def call(chosen: list[str]) -> tuple[dict[str, str], list[str]]:
            answer, dropped = self._calls.by_id(action, chosen, change, Operation.TERMINATE)
            return answer or {}, dropped

        return call_in_chunks(call, instance_ids, chunk_size=TERMINATE_CHUNK)

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
            answer, dropped = self._calls.by_id(
                "TerminateInstances", chosen, terminate, Operation.TERMINATE, resources=True
            )
            return answer or {}, dropped

        return terminate_in_chunks(call, instance_ids, chunk_size=TERMINATE_CHUNK)
