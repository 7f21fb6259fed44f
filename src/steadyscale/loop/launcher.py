"""The launcher: new launches (the intent written before RunInstances is sent), resends of
unanswered ones with the same ClientToken, what EC2 answered, and adoption of instances of
our open requests whose answer was lost."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from steadyscale.config import ClusterConfig
from steadyscale.core.instances import TAG_REQUEST, CloudInstance
from steadyscale.core.lifecycle import HistoryEntry, NodeRecord, NodeUpdate, Status
from steadyscale.errors import CapacityUnavailable, CloudError, LaunchRejected
from steadyscale.loop.book import Entries, NodeBook
from steadyscale.loop.carried import CarriedNodes
from steadyscale.loop.hooks import CrashHook, no_crash
from steadyscale.loop.offerings import OfferingBook, Pool, request_pool
from steadyscale.loop.report import Reporter, TickReport
from steadyscale.ops.metrics import Metrics
from steadyscale.providers.protocol import CloudProvider, LaunchSpec
from steadyscale.providers.wire import with_market
from steadyscale.retries.clock import Clock
from steadyscale.store.ledger import LaunchRequest


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:20]}"


def _new_request(
    request_id: str,
    node_type: str,
    *,
    count: int,
    now: float,
    pool: Pool,
    node_config: Mapping[str, Any],
) -> LaunchRequest:
    """A launch request into ``pool``: its ClientToken derives from its id, and its
    parameters (the node type's, with the pool's market) are kept for every resend."""
    params = with_market(node_config, pool.market)
    return LaunchRequest(
        request_id=request_id,
        node_type=node_type,
        count=count,
        client_token=f"ss-{request_id}",
        status="open",
        created_at=now,
        subnet_id=pool.subnet,
        spec=json.dumps(params, sort_keys=True),
    )


class Launcher:
    """Sends launch requests and records their answers; the requests live in the ledger."""

    def __init__(
        self,
        config: ClusterConfig,
        provider: CloudProvider,
        book: NodeBook,
        offerings: OfferingBook,
        *,
        reporter: Reporter,
        metrics: Metrics,
        clock: Clock,
        new_ids: Callable[[str], str] = new_id,
        crash: CrashHook = no_crash,
        carried: CarriedNodes | None = None,
    ) -> None:
        self.config = config
        self.provider = provider
        self.book = book
        self.carried = carried  # nodes launched under a former cluster name
        self.ledger = book.ledger
        self.offerings = offerings
        self.reporter = reporter
        self.metrics = metrics
        self.clock = clock
        self._new_id = new_ids  # a seeded source makes a simulation reproducible
        self.crash = crash
        self.ledger_id, self.untagged = self.ledger.ledger_id, self.ledger.untagged_requests()

    def launch(self, launch: Mapping[str, int], report: TickReport, deadline: float) -> None:
        """Launch what the scheduler asked for, within EC2's instance bucket: the rest waits
        for the next tick, unrequested."""
        now = self.clock.now()
        budget = self.provider.launch_budget()
        for node_type, wanted in sorted(launch.items()):
            count = min(wanted, budget)
            if count <= 0 or self.clock.now() >= deadline:
                continue
            budget -= count
            request, records = self._intend(node_type, count, now)
            self.crash("intent_written")
            self._send(request, records, report)

    def _intend(
        self, node_type: str, count: int, now: float
    ) -> tuple[LaunchRequest, list[NodeRecord]]:
        """Write a launch request and its nodes: the intent, its ClientToken and its
        parameters are durable before RunInstances is sent."""
        pool = self.offerings.pool(node_type)
        node_config = self.config.available_node_types[node_type].node_config
        request = _new_request(
            self._new_id("r"), node_type, count=count, now=now, pool=pool, node_config=node_config
        )
        request_id = request.request_id
        self.offerings.remember(request_id, pool)
        records = [
            NodeRecord(
                node_id=self._new_id("n"), node_type=node_type, status=Status.QUEUED, created_at=now
            )
            for _ in range(count)
        ]
        entries: Entries = []
        requested = NodeUpdate(request_id=request_id)
        for record in records:
            record.history.append(HistoryEntry(Status.QUEUED, now, "demand needs it"))
            entries.append((record.node_id, record.history[-1]))
            self.book.move(
                record, Status.REQUESTED, f"RunInstances {request_id}", entries, requested
            )
            self.book.add(record)
        with self.ledger.transaction():
            self.ledger.save_request(request)
            self.ledger.save_nodes(records, entries)
        return request, records

    def resend(
        self,
        requests: Mapping[str, LaunchRequest],
        waiting_by_request: Mapping[str, list[NodeRecord]],
        report: TickReport,
        deadline: float,
    ) -> None:
        """Requests sent before without a definitive answer: same ClientToken again."""
        for request in requests.values():
            if self.clock.now() >= deadline:
                return
            # Adoption earlier in this tick may have given some of them their instance.
            waiting = sorted(
                (
                    r
                    for r in waiting_by_request.get(request.request_id, [])
                    if r.status is Status.REQUESTED
                ),
                key=lambda r: r.node_id,
            )
            if not waiting:
                request.status = "done"
                with self.ledger.transaction():
                    self.ledger.save_request(request)
                continue
            self._send(request, waiting, report)

    def _send(self, request: LaunchRequest, waiting: list[NodeRecord], report: TickReport) -> None:
        # A resend uses the parameters of the first attempt, whatever the config says now:
        # EC2 refuses the same ClientToken with other parameters.
        if request.spec is not None:
            node_config = json.loads(request.spec)
        else:
            node_config = dict(self.config.available_node_types[request.node_type].node_config)
        request.attempts += 1
        request.sent_at = self.clock.now()
        spec = LaunchSpec(
            request_id=request.request_id,
            client_token=request.client_token,
            node_type=request.node_type,
            count=request.count,
            node_config=node_config,
            subnet_id=request.subnet_id,
            cluster_name=(
                self.carried.name_of(waiting[0].node_id) if self.carried and waiting else None
            ),
            ledger_id=None if request.request_id in self.untagged else self.ledger_id,
        )
        try:
            result = self.provider.launch(spec)
        except CloudError as exc:
            self._unanswered(request, waiting, exc, report)
            return
        self.crash("launch_sent")
        self._fulfil(request, waiting, result.instances, report)
        self.crash("launch_recorded")

    def _unanswered(
        self, request: LaunchRequest, waiting: list[NodeRecord], exc: CloudError, report: TickReport
    ) -> None:
        """RunInstances failed: refused for good (capacity, limits), its nodes failed and
        its pool set aside; else it is resent with the same ClientToken next tick."""
        request.error = exc.code
        entries: Entries = []
        if isinstance(exc, (CapacityUnavailable, LaunchRejected)):
            request.status = "done"
            self.offerings.set_aside(request.node_type, request_pool(request), exc.code, report)
            failed = NodeUpdate(last_error=f"{exc.code}: {exc.message}")
            for record in waiting:
                self.book.move(
                    record, Status.LAUNCH_FAILED, f"RunInstances: {exc.code}", entries, failed
                )
            self.reporter.emit(
                report,
                "launch_failed",
                f"{request.node_type} x{len(waiting)}: {exc.code} (will fall back or retry later)",
                len(waiting),
            )
        else:
            report.errors.append(
                f"launch {request.request_id}: {exc.code} (will resend with the same ClientToken)"
            )
        with self.ledger.transaction():
            self.ledger.save_request(request)
            self.ledger.save_nodes(waiting, entries)

    def _fulfil(
        self,
        request: LaunchRequest,
        waiting: list[NodeRecord],
        instances: Sequence[CloudInstance],
        report: TickReport,
    ) -> None:
        """Give the waiting nodes the instances EC2 launched; those short of one failed
        (their pool is set aside, their demand requeued)."""
        new = [inst for inst in instances if inst.instance_id not in self.book.known_ids]
        entries: Entries = []
        for record, inst in zip(waiting, new, strict=False):
            self._assign(record, inst, f"RunInstances {request.request_id} answered", entries)
        short = waiting[len(new) :]
        if short:
            self.offerings.set_aside(
                request.node_type,
                request_pool(request),
                f"launched {len(instances)} of {request.count}",
                report,
            )
        for record in short:
            self.book.move(
                record,
                Status.LAUNCH_FAILED,
                f"EC2 launched {len(instances)} of {request.count}; shortfall requeued",
                entries,
            )
        request.status = "done"
        request.launched = len(instances)
        request.error = None
        with self.ledger.transaction():
            self.ledger.save_request(request)
            self.ledger.save_nodes(waiting, entries)
        launched = min(len(new), len(waiting))
        if launched:
            self.metrics.launched.labels(request.node_type).inc(launched)
            self.reporter.emit(
                report,
                "launch",
                f"{launched} x {request.node_type} launched by one RunInstances "
                "(ids known, not visible yet)",
                launched,
            )
        if short:
            self.reporter.emit(
                report,
                "shortfall",
                f"{len(short)} x {request.node_type} not launched (partial fulfilment); requeued",
                len(short),
            )

    def adopt(self, found: Sequence[CloudInstance], report: TickReport) -> None:
        """Instances of our open requests that we never got ids for (a lost answer)."""
        for inst in found:
            request_id = inst.tags.get(TAG_REQUEST)
            waiting = [
                r
                for r in self.book.records.values()
                if r.request_id == request_id and r.status is Status.REQUESTED
            ]
            if not waiting:
                continue
            entries: Entries = []
            self._assign(waiting[0], inst, "adopted: found by its request-id tag", entries)
            self.book.save([waiting[0]], entries)
            self.metrics.launched.labels(waiting[0].node_type).inc()
            self.reporter.emit(
                report,
                "adopt",
                f"{inst.instance_id} adopted into "
                f"{waiting[0].node_id} (its launch answer was lost)",
                1,
            )

    def _assign(
        self, record: NodeRecord, inst: CloudInstance, reason: str, entries: Entries
    ) -> None:
        """Give a REQUESTED node its instance, from what EC2 said about it."""
        self.book.known_ids.add(inst.instance_id)
        update = NodeUpdate(
            instance_id=inst.instance_id,
            instance_type=inst.instance_type,
            availability_zone=inst.availability_zone,
            private_ip=inst.private_ip,
            launched_at=self.clock.now(),
        )
        self.book.move(record, Status.LAUNCHED, reason, entries, update)
