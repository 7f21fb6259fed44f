"""The cloud provider protocol and the values that cross it. ``byid`` holds what every
backend answers it with alike (chunks of ids, by-id calls, terminate, lookups).

Every result is eventually consistent: an instance that RunInstances just returned may be
missing from ``list_cluster`` and ``describe`` for seconds or minutes, and a listing may
show a state older than the truth. Callers treat "not shown" as "not visible yet", never
as "gone"; ``lookup`` says so explicitly with ``NotVisibleYet``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from steadyscale.core.instances import CloudInstance

# Ids per lookup call; EC2 documents limits of this order for filter values.
LOOKUP_BATCH = 200


@dataclass(frozen=True)
class NotVisibleYet:
    """A lookup found nothing yet. Not an error: EC2 may simply not show it yet."""

    instance_id: str
    attempts: int
    reason: str = "not visible yet"


@dataclass(frozen=True)
class LaunchSpec:
    request_id: str
    client_token: str
    node_type: str
    count: int
    node_config: Mapping[str, Any]
    subnet_id: str | None = None
    # The cluster tag to launch under; None: the provider's. A resend of a launch first
    # sent under a former cluster name (carried over) carries that name: EC2 refuses a
    # ClientToken repeated with other tags.
    cluster_name: str | None = None
    # The launching ledger's id, tagged on the instances (``TAG_LEDGER``); None for a
    # request first sent before ledgers had ids: a resend carries the tags first sent.
    ledger_id: str | None = None


@dataclass(frozen=True)
class LaunchResult:
    """What RunInstances answered: between 1 and ``count`` instances."""

    instances: tuple[CloudInstance, ...]


@dataclass(frozen=True)
class TemplateVersion:
    """One version of a launch template, as EC2 shows it."""

    name: str
    template_id: str
    version: int
    data: Mapping[str, Any]  # LaunchTemplateData as sent


@dataclass(frozen=True)
class FleetOverride:
    """One pool a fleet may launch into: an instance type in a subnet (or AZ)."""

    instance_type: str
    subnet_id: str | None = None
    availability_zone: str | None = None
    priority: float | None = None  # for "prioritized": lower is preferred


@dataclass(frozen=True)
class FleetSpec:
    """One CreateFleet ``Type=instant``: ``count`` instances of one market across the
    overrides, chosen by EC2's ``allocation_strategy``, tagged at creation, idempotent by
    ``client_token`` as a ``LaunchSpec`` is."""

    request_id: str
    client_token: str
    node_type: str
    count: int
    launch_template: TemplateVersion  # the version to launch
    overrides: tuple[FleetOverride, ...]
    market: str  # "spot" | "on-demand"
    allocation_strategy: str  # EC2's names, e.g. "price-capacity-optimized"
    cluster_name: str | None = None
    ledger_id: str | None = None


@dataclass(frozen=True)
class FleetError:
    """A per-override error of a CreateFleet answer: why a pool gave nothing."""

    code: str  # e.g. "InsufficientInstanceCapacity"
    message: str
    instance_type: str | None = None
    availability_zone: str | None = None
    subnet_id: str | None = None


@dataclass(frozen=True)
class FleetResult:
    """What CreateFleet instant answered: between 0 and ``count`` instances, and the
    errors of the pools that did not give what was asked."""

    instances: tuple[CloudInstance, ...]  # each with instance_type, AZ, lifecycle set
    errors: tuple[FleetError, ...] = ()
    fleet_id: str | None = None


@dataclass(frozen=True)
class TerminateResult:
    states: Mapping[str, str]  # instance id -> state EC2 reported after the call
    not_found: tuple[str, ...] = ()  # ids EC2 said it does not know (yet, or any more)
    refused: Mapping[str, str] = field(default_factory=dict)  # id -> why EC2 refused it


@dataclass(frozen=True)
class ApiCall:
    """One cloud API call as the provider saw it, for metrics.

    ``error`` is the final error code (EC2's, or a transport error's name) when the call
    failed; ``retried`` the error codes of the attempts that were retried before the end.
    """

    action: str
    error: str | None = None
    retried: tuple[str, ...] = ()


class ApiObserver(Protocol):
    """Told about every API call a provider makes (``Metrics.api_call`` is one)."""

    def __call__(self, call: ApiCall, /) -> None: ...


@dataclass(frozen=True, kw_only=True)
class ClientOptions:
    """How a provider calls EC2, whatever the backend: attempts per call (retried on
    throttling and 5xx, as the SDK's standard mode), the deadline of a single-instance
    lookup, client-side token buckets per action as (capacity, refill per second) and how
    long a call may wait for its token, who hears of every call (the metrics), and which
    replica sends them (named in each call's User-Agent, so EC2's logs tell them apart)."""

    max_attempts: int = 3
    lookup_deadline: float = 5.0
    rate_limits: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    rate_limit_max_wait: float = 2.0
    observer: ApiObserver | None = None
    replica_id: str | None = None


DEFAULT_OPTIONS = ClientOptions()


def worst_check(*checks: str | None) -> str:
    """One word for an instance's status checks: "impaired" if any is, else the first
    known (EC2's "ok", "initializing", ...), else "unknown"."""
    known = [c for c in checks if c]
    return "impaired" if "impaired" in known else (known[0] if known else "unknown")


class CloudProvider(Protocol):
    """What the autoscaler needs from a cloud. Calls raise ``CloudError`` subclasses:
    ``Throttled``, ``CloudUnavailable`` (the call may have happened), ``CapacityUnavailable``,
    ``LaunchRejected``; ``ProviderSetupError`` when the cloud cannot be used at all."""

    cluster_name: str

    def preflight(self) -> None:
        """Check credentials and the endpoint with one cheap call."""

    def launch(self, spec: LaunchSpec) -> LaunchResult:
        """RunInstances with MinCount=1, MaxCount=count, ClientToken, tags at creation.
        Repeating a spec (same ClientToken) returns the same instances."""
        ...

    def launch_budget(self) -> int:
        """Instances that may be launched now without exceeding EC2's instance bucket."""
        ...

    def list_cluster(self) -> list[CloudInstance]:
        """Every instance tagged with the cluster, all states, all pages."""
        ...

    def describe(self, instance_ids: Sequence[str]) -> list[CloudInstance]:
        """Instances among ``instance_ids`` that EC2 shows now; unknown ids are omitted."""
        ...

    def describe_by_id(self, instance_ids: Sequence[str]) -> list[CloudInstance]:
        """Like ``describe``, through EC2's by-id view, which often shows a new instance
        sooner than listings do; ids EC2 does not know yet are omitted."""
        ...

    def lookup(self, instance_id: str) -> CloudInstance | NotVisibleYet:
        """One instance, retried with backoff under the lookup deadline."""
        ...

    def terminate(self, instance_ids: Sequence[str]) -> TerminateResult:
        """Terminate, idempotently. Ids EC2 does not know yet come back in ``not_found``."""
        ...

    def list_tagged(
        self, key: str, value: str, states: Sequence[str] | None = None
    ) -> list[CloudInstance]:
        """Every instance whose tag ``key`` is ``value`` (in ``states`` if given), all pages.
        A fresh instance, or a tag just set, may be missing for a while."""
        ...

    def instance_status(self, instance_ids: Sequence[str]) -> dict[str, str]:
        """EC2's status checks (DescribeInstanceStatus) of running instances among
        ``instance_ids``: "impaired" when the instance's or the system's check fails, else
        EC2's word ("ok", "initializing", ...). Ids EC2 does not show are left out."""
        ...

    def create_tags(self, instance_ids: Sequence[str], tags: Mapping[str, str]) -> list[str]:
        """Set ``tags`` on instances; returns the ids EC2 does not know yet (tag them later)."""
        ...

    def change_state(self, action: str, instance_ids: Sequence[str]) -> TerminateResult:
        """StopInstances or StartInstances; ids EC2 does not know yet come back in
        ``not_found``, and the answer's states are what EC2 reported after the call."""
        ...

    def calls_by_action(self) -> dict[str, int]:
        """API calls made so far, by EC2 action."""
        ...

    def launch_fleet(self, spec: FleetSpec) -> FleetResult:
        """CreateFleet ``Type=instant`` with tags at creation and the spec's ClientToken.
        Repeating a spec (same ClientToken) returns the same instances."""
        ...

    def launch_template_versions(self, name: str) -> list[TemplateVersion] | NotVisibleYet:
        """Every version of the launch template ``name``; ``NotVisibleYet`` while EC2 does
        not show it (``InvalidLaunchTemplateName.NotFoundException``, also right after its
        creation)."""
        ...

    def create_launch_template(
        self, name: str, data: Mapping[str, Any], client_token: str
    ) -> TemplateVersion:
        """CreateLaunchTemplate (version 1), idempotent by ``client_token``."""
        ...

    def create_launch_template_version(
        self, name: str, data: Mapping[str, Any], client_token: str
    ) -> TemplateVersion:
        """CreateLaunchTemplateVersion on the template ``name``, idempotent by
        ``client_token``."""
        ...

    def spot_prices(self, instance_types: Sequence[str]) -> dict[tuple[str, str], float]:
        """The latest spot price of each (instance type, AZ), in USD per hour."""
        ...


@runtime_checkable
class SendGated(Protocol):
    """A provider whose client may retry a call by itself: ``check`` is asked right before
    each attempt of a call that changes EC2 goes out (it raises to send nothing), so a
    retry never goes out after the leader stopped trusting its lease."""

    def gate_sends(self, check: Callable[[], None]) -> None: ...
