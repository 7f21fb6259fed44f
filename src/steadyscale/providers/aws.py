"""The EC2 provider on boto3: real AWS, or any EC2-compatible endpoint (the emulator).

Launches carry their tags at creation (TagSpecifications) and a ClientToken from the
ledger, with MinCount=1/MaxCount=n. Lookups never use InstanceIds (one unknown id fails
the whole call): they use the ``instance-id`` filter, which omits what EC2 does not show
yet. botocore's standard retry mode handles throttling and 5xx; what still fails becomes
one of our ``CloudError`` types.
"""

from __future__ import annotations

import random
import re
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
    ReadTimeoutError,
)

from steadyscale.core.instances import TAG_CLUSTER, CloudInstance
from steadyscale.ec2model.calllog import is_mutation
from steadyscale.errors import (
    CloudError,
    CloudUnavailable,
    LaunchRejected,
    ProviderSetupError,
    Throttled,
    cloud_error,
)
from steadyscale.providers.aws_fleet import FleetApi
from steadyscale.providers.boto import new_client
from steadyscale.providers.byid import (
    LookupPolicy,
    StatesCall,
    call_dropping_unknown,
    call_in_chunks,
    chunks,
    lookup_until_visible,
    terminate_in_chunks,
)
from steadyscale.providers.protocol import (
    DEFAULT_OPTIONS,
    LOOKUP_BATCH,
    ApiCall,
    ClientOptions,
    LaunchResult,
    LaunchSpec,
    NotVisibleYet,
    TerminateResult,
    worst_check,
)
from steadyscale.providers.wire import run_instances_params
from steadyscale.retries.clock import Clock
from steadyscale.retries.pacing import ClientPacer

TERMINATE_CHUNK = 1000
STATUS_BATCH = 100
PAGE_SIZE = 1000


def _instance(raw: dict[str, Any]) -> CloudInstance:
    tags = {t["Key"]: t.get("Value", "") for t in raw.get("Tags", []) or []}
    reason = raw.get("StateReason") or {}
    launched = raw.get("LaunchTime")
    return CloudInstance(
        instance_id=raw["InstanceId"],
        state=raw.get("State", {}).get("Name", "pending"),
        instance_type=raw.get("InstanceType"),
        availability_zone=(raw.get("Placement") or {}).get("AvailabilityZone"),
        private_ip=raw.get("PrivateIpAddress"),
        tags=tags,
        state_reason=reason.get("Code"),
        launch_time=launched.timestamp() if isinstance(launched, datetime) else None,
        public_ip=raw.get("PublicIpAddress"),
        lifecycle=raw.get("InstanceLifecycle"),
    )


def translate(exc: Exception) -> Exception:
    """Turn a botocore error into ours; anything unexpected stays as it is."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "Unknown"))
        message = str(error.get("Message", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400) or 400)
        return cloud_error(code, message, status)
    if isinstance(exc, ParamValidationError):
        # Refused before anything was sent: final, never "maybe launched".
        return LaunchRejected("InvalidParameter", " ".join(str(exc).split()))
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return ProviderSetupError(
            "no AWS credentials found; set AWS_PROFILE or AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, or run on a machine with an instance role"
        )
    if isinstance(exc, NoRegionError):
        return ProviderSetupError("no AWS region; set provider.region in the config")
    if isinstance(exc, EndpointConnectionError):
        return CloudUnavailable("EndpointConnectionError", str(exc))
    if isinstance(exc, (ConnectionClosedError, ReadTimeoutError)):
        return CloudUnavailable(type(exc).__name__, str(exc))
    if isinstance(exc, BotoCoreError):
        return CloudUnavailable(type(exc).__name__, str(exc))
    return exc


def user_agent_extra(options: ClientOptions) -> str:
    """What steadyscale adds to botocore's User-Agent: itself, and the replica if named."""
    if options.replica_id is None:
        return "steadyscale"
    return f"steadyscale steadyscale-replica/{options.replica_id}"


class EC2Provider(FleetApi):
    def __init__(
        self,
        *,
        cluster_name: str,
        region: str,
        clock: Clock,
        options: ClientOptions = DEFAULT_OPTIONS,
        endpoint_url: str | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        credentials: dict[str, str] | None = None,
        seed: int | None = None,
    ) -> None:
        self.cluster_name = cluster_name
        self.region = region
        self.endpoint_url = endpoint_url
        self._clock = clock
        self._lookup_policy = LookupPolicy(clock, options.lookup_deadline, random.Random(seed))
        self._calls: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._pacer = ClientPacer(clock, options.rate_limits, options.rate_limit_max_wait)
        config = Config(
            retries={"mode": "standard", "total_max_attempts": options.max_attempts},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            user_agent_extra=user_agent_extra(options),
        )
        self._ec2: Any = new_client(
            "ec2",
            region=region,
            endpoint_url=endpoint_url,
            config=config,
            credentials=credentials,
        )
        self.observer = options.observer
        # Error codes of the attempts of the call in progress, per thread (botocore's
        # needs-retry event fires after every attempt, the last one included).
        self._attempts = threading.local()
        self._ec2.meta.events.register("needs-retry.ec2", self._on_attempt)

    # ------------------------------------------------------------------ plumbing

    def launch_budget(self) -> int:
        return self._pacer.launch_budget()

    def _charge_instances(self, launched: int) -> None:
        self._pacer.charge_launch(launched)

    def gate_sends(self, check: Callable[[], None]) -> None:
        """``SendGated``: botocore's before-send event of each call that changes EC2
        (``is_mutation``, the emulator's call log's rule) asks ``check``, for every
        attempt, retries included (what it raises fails the call, never retried)."""

        def before_send(event_name: str, **_: Any) -> None:
            if is_mutation(event_name.rpartition(".")[2]):
                check()  # returns None: botocore then sends the request itself

        self._ec2.meta.events.register(
            "before-send.ec2", before_send, unique_id="steadyscale-leader-gate"
        )

    def _on_attempt(
        self, response: Any = None, caught_exception: Exception | None = None, **_: Any
    ) -> None:
        """botocore's needs-retry hook: note the error code of a failed attempt."""
        code: str | None = None
        if caught_exception is not None:
            code = type(caught_exception).__name__
        elif response is not None and response[0].status_code >= 300:
            code = str((response[1].get("Error") or {}).get("Code", response[0].status_code))
        if code is not None and hasattr(self._attempts, "codes"):
            self._attempts.codes.append(code)

    def _call(self, action: str, **params: Any) -> Any:
        self._pacer.pace(action)
        with self._lock:
            self._calls[action] += 1
        method = getattr(self._ec2, re.sub(r"(?<!^)(?=[A-Z])", "_", action).lower())
        self._attempts.codes = []
        try:
            answer = method(**params)
        except Exception as exc:
            codes: list[str] = self._attempts.codes
            translated = translate(exc)
            if self.observer is not None:
                error = (
                    str(exc.response.get("Error", {}).get("Code", "Unknown"))
                    if isinstance(exc, ClientError)
                    else translated.code
                    if isinstance(translated, CloudError)
                    else type(exc).__name__
                )
                # The last failed attempt is the error itself; the ones before were retried.
                self.observer(ApiCall(action, error, tuple(codes[:-1])))
            if translated is exc:
                raise
            raise translated from None
        if self.observer is not None:
            self.observer(ApiCall(action, None, tuple(self._attempts.codes)))
        return answer

    def calls_by_action(self) -> dict[str, int]:
        with self._lock:
            return dict(self._calls)

    def _describe_pages(self, filters: list[dict[str, Any]]) -> list[CloudInstance]:
        found: list[CloudInstance] = []
        token: str | None = None
        while True:
            params: dict[str, Any] = {"Filters": filters, "MaxResults": PAGE_SIZE}
            if token:
                params["NextToken"] = token
            page = self._call("DescribeInstances", **params)
            for reservation in page.get("Reservations", []):
                found.extend(_instance(raw) for raw in reservation.get("Instances", []))
            token = page.get("NextToken")
            if not token:
                return found

    # ------------------------------------------------------------------ protocol

    def preflight(self) -> None:
        try:
            self._call(
                "DescribeInstances",
                MaxResults=5,
                Filters=[{"Name": f"tag:{TAG_CLUSTER}", "Values": [self.cluster_name]}],
            )
        except CloudUnavailable as exc:
            where = self.endpoint_url or f"EC2 in {self.region}"
            raise ProviderSetupError(f"cannot reach {where}: {exc.message}") from None
        except Throttled:
            pass  # reachable, and busy
        except LaunchRejected as exc:
            raise ProviderSetupError(
                f"EC2 refuses DescribeInstances ({exc.code}): {exc.message}; the daemon "
                "needs the permissions `steadyscale iam-policy` lists"
            ) from None

    def launch(self, spec: LaunchSpec) -> LaunchResult:
        answer = self._call("RunInstances", **run_instances_params(spec, self.cluster_name))
        self._pacer.charge_launch(len(answer.get("Instances", [])))
        instances = tuple(_instance(raw) for raw in answer.get("Instances", []))
        return LaunchResult(instances=instances)

    def list_cluster(self) -> list[CloudInstance]:
        return self.list_tagged(TAG_CLUSTER, self.cluster_name)

    def list_tagged(
        self, key: str, value: str, states: Sequence[str] | None = None
    ) -> list[CloudInstance]:
        """Every instance whose tag ``key`` is ``value`` (in ``states`` if given), all pages."""
        filters: list[dict[str, Any]] = [{"Name": f"tag:{key}", "Values": [value]}]
        if states:
            filters.append({"Name": "instance-state-name", "Values": list(states)})
        return self._describe_pages(filters)

    def describe(self, instance_ids: Sequence[str]) -> list[CloudInstance]:
        found: list[CloudInstance] = []
        for chunk in chunks(instance_ids, LOOKUP_BATCH):
            found.extend(self._describe_pages([{"Name": "instance-id", "Values": chunk}]))
        return found

    def _known_only(
        self, action: str, ids: list[str], param: str = "InstanceIds", **extra: Any
    ) -> tuple[Any, list[str]]:
        """Call ``action`` on ``ids``; while EC2 names ids it does not know (which fails the
        whole call), drop those and call again. Returns (answer or None, dropped ids)."""
        return call_dropping_unknown(
            lambda chosen: self._call(action, **{param: chosen}, **extra), ids
        )

    def instance_status(self, instance_ids: Sequence[str]) -> dict[str, str]:
        """By id (EC2's by-id view), ids it does not know yet dropped, 100 at a time."""
        statuses: dict[str, str] = {}
        for chunk in chunks(instance_ids, STATUS_BATCH):
            answer, _ = self._known_only("DescribeInstanceStatus", list(chunk))
            for raw in (answer or {}).get("InstanceStatuses", []) or []:
                statuses[raw["InstanceId"]] = worst_check(
                    (raw.get("InstanceStatus") or {}).get("Status"),
                    (raw.get("SystemStatus") or {}).get("Status"),
                )
        return statuses

    def describe_by_id(self, instance_ids: Sequence[str]) -> list[CloudInstance]:
        """Instances among ``instance_ids`` EC2 shows by id (its fastest view of a new one).

        One unknown id fails a whole by-id call, naming the ids it does not know: those are
        dropped and the call repeated for the rest, so usually two calls per batch at most.
        """
        found: list[CloudInstance] = []
        for chunk in chunks(instance_ids, LOOKUP_BATCH):
            answer, _ = self._known_only("DescribeInstances", chunk)
            for reservation in (answer or {}).get("Reservations", []):
                found.extend(_instance(raw) for raw in reservation.get("Instances", []))
        return found

    def lookup(self, instance_id: str) -> CloudInstance | NotVisibleYet:
        return lookup_until_visible(self.describe, instance_id, self._lookup_policy)

    def _states_call(self, action: str, key: str, default: str) -> StatesCall:
        """``action`` on some ids, dropping those EC2 does not know: (the state EC2 reported
        for each id under ``key`` of its answer, the dropped ids)."""

        def call(chosen: list[str]) -> tuple[dict[str, str], list[str]]:
            answer, dropped = self._known_only(action, chosen)
            reported = {
                item["InstanceId"]: item.get("CurrentState", {}).get("Name", default)
                for item in (answer or {}).get(key, [])
            }
            return reported, dropped

        return call

    def terminate(self, instance_ids: Sequence[str]) -> TerminateResult:
        call = self._states_call("TerminateInstances", "TerminatingInstances", "shutting-down")
        return terminate_in_chunks(call, instance_ids, chunk_size=TERMINATE_CHUNK)

    def create_tags(self, instance_ids: Sequence[str], tags: Mapping[str, str]) -> list[str]:
        """Set ``tags`` on instances; returns the ids EC2 does not know yet (tag them later)."""
        not_found: list[str] = []
        pairs = [{"Key": key, "Value": value} for key, value in tags.items()]
        for chunk in chunks(instance_ids, TERMINATE_CHUNK):
            _, dropped = self._known_only("CreateTags", chunk, param="Resources", Tags=pairs)
            not_found.extend(dropped)
        return not_found

    def change_state(self, action: str, instance_ids: Sequence[str]) -> TerminateResult:
        """StopInstances or StartInstances; ids EC2 does not know yet come back in
        ``not_found``. The answer's states are what EC2 reported after the call."""
        if action not in ("StopInstances", "StartInstances"):
            raise ValueError(f"change_state does not do {action}")
        key = "StoppingInstances" if action == "StopInstances" else "StartingInstances"
        call = self._states_call(action, key, "")
        return call_in_chunks(call, instance_ids, chunk_size=TERMINATE_CHUNK)


__all__ = ["CloudError", "EC2Provider", "translate"]
