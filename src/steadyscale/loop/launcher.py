"""The launcher: new launches (the intent written before RunInstances or CreateFleet is
sent), resends of unanswered ones with the same ClientToken, what EC2 answered, and
adoption of instances of our open requests whose answer was lost. The fleet path's
requests and pools are ``loop.fleet``'s."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from steadyscale.config import ClusterConfig
from steadyscale.core.instances import CloudInstance
from steadyscale.core.lifecycle import HistoryEntry, NodeRecord, NodeUpdate, Status
from steadyscale.errors import CloudError
from steadyscale.loop.answers import Answers
from steadyscale.loop.book import Entries, NodeBook
from steadyscale.loop.carried import CarriedNodes
from steadyscale.loop.fleet import (
    FleetPlanner,
    fleet_spec,
    is_fleet,
)
from steadyscale.loop.hooks import CrashHook, no_crash
from steadyscale.loop.offerings import OfferingBook, Pool
from steadyscale.loop.pricing import PriceBook
from steadyscale.loop.report import Reporter, TickReport
from steadyscale.loop.templates import Templates
from steadyscale.ops.metrics import Metrics
from steadyscale.providers.protocol import CloudProvider, FleetResult, LaunchResult, LaunchSpec
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
        self.prices = PriceBook(provider, clock)
        self.fleets = FleetPlanner(
            config, offerings, Templates(config, provider, reporter), self.prices, reporter
        )
        self.answers = Answers(book, offerings, self.prices, reporter=reporter, metrics=metrics)

    def configure(self, config: ClusterConfig) -> None:
        """A new config (the daemon reloaded it): the fleet path reads it too."""
        self.config = config
        self.fleets.config = config
        self.fleets.templates.config = config

    def launch(self, launch: Mapping[str, int], report: TickReport, deadline: float) -> None:
        """Launch what the scheduler asked for, within EC2's instance bucket: the rest waits
        for the next tick, unrequested."""
        now = self.clock.now()
        budget = self.provider.launch_budget()
        for node_type, wanted in sorted(launch.items()):
            count = min(wanted, budget)
            if count <= 0 or self.clock.now() >= deadline:
                continue
            request = self._new(node_type, count, now, report)
            if request is None:
                continue  # waits a tick: its template is not shown yet, or no pool is open
            budget -= count
            records = self._intend(request, now)
            self.crash("intent_written")
            self._send(request, records, report)

    def _new(
        self, node_type: str, count: int, now: float, report: TickReport
    ) -> LaunchRequest | None:
        """A new launch request of a node type: one CreateFleet for a fleet node type, else
        one RunInstances into its first pool not set aside."""
        spec = self.config.available_node_types[node_type]
        if spec.is_fleet:
            return self.fleets.request(self._new_id("r"), node_type, count, now, report)
        pool = self.offerings.pool(node_type)
        request = _new_request(
            self._new_id("r"),
            node_type,
            count=count,
            now=now,
            pool=pool,
            node_config=spec.node_config,
        )
        self.offerings.remember(request.request_id, pool)
        return request

    def _intend(self, request: LaunchRequest, now: float) -> list[NodeRecord]:
        """Write a launch request and its nodes: the intent, its ClientToken and its
        parameters are durable before RunInstances or CreateFleet is sent."""
        node_type, count, request_id = request.node_type, request.count, request.request_id
        action = "CreateFleet" if is_fleet(request) else "RunInstances"
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
            self.book.move(record, Status.REQUESTED, f"{action} {request_id}", entries, requested)
            self.book.add(record)
        with self.ledger.transaction():
            self.ledger.save_request(request)
            self.ledger.save_nodes(records, entries)
        return records

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

    def _call(
        self, request: LaunchRequest, waiting: list[NodeRecord]
    ) -> LaunchResult | FleetResult:
        """Send a request: a resend uses the parameters of the first attempt, whatever the
        config says now (EC2 refuses the same ClientToken with other parameters)."""
        cluster_name = (
            self.carried.name_of(waiting[0].node_id) if self.carried and waiting else None
        )
        ledger_id = None if request.request_id in self.untagged else self.ledger_id
        if is_fleet(request):
            fleet = fleet_spec(request, cluster_name=cluster_name, ledger_id=ledger_id)
            return self.provider.launch_fleet(fleet)
        if request.spec is not None:
            node_config = json.loads(request.spec)
        else:
            node_config = dict(self.config.available_node_types[request.node_type].node_config)
        spec = LaunchSpec(
            request_id=request.request_id,
            client_token=request.client_token,
            node_type=request.node_type,
            count=request.count,
            node_config=node_config,
            subnet_id=request.subnet_id,
            cluster_name=cluster_name,
            ledger_id=ledger_id,
        )
        return self.provider.launch(spec)

    def _send(self, request: LaunchRequest, waiting: list[NodeRecord], report: TickReport) -> None:
        request.attempts += 1
        request.sent_at = self.clock.now()
        try:
            result = self._call(request, waiting)
        except CloudError as exc:
            self.answers.unanswered(request, waiting, exc, report)
            return
        self.crash("launch_sent")
        if isinstance(result, FleetResult):
            self.fleets.learn(
                fleet_spec(request, cluster_name=None, ledger_id=None), result, report
            )
        self.answers.fulfil(request, waiting, result.instances, report)
        self.crash("launch_recorded")

    def adopt(self, found: Sequence[CloudInstance], report: TickReport) -> None:
        """Instances of our open requests that we never got ids for (a lost answer)."""
        self.answers.adopt(found, report)
