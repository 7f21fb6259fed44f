"""What EC2 answered a launch: instances given to the waiting nodes (with their pool's
price), a shortfall failed and requeued, a final refusal failing the request's nodes (and
setting its pool aside), and instances of a request whose answer was lost adopted by their
request-id tag."""

from __future__ import annotations

import json
from collections.abc import Sequence

from steadyscale.core.instances import TAG_REQUEST, CloudInstance
from steadyscale.core.lifecycle import NodeRecord, NodeUpdate, Status
from steadyscale.errors import CapacityUnavailable, CloudError, LaunchRejected
from steadyscale.loop.book import Entries, NodeBook
from steadyscale.loop.fleet import TEMPLATE_NOT_VISIBLE, fleet_market, is_fleet
from steadyscale.loop.offerings import OfferingBook, request_pool
from steadyscale.loop.pricing import PriceBook
from steadyscale.loop.report import Reporter, TickReport
from steadyscale.ops.metrics import Metrics
from steadyscale.providers.wire import market_of
from steadyscale.store.ledger import LaunchRequest


class Answers:
    """Records EC2's answers to launch requests in the book and the ledger."""

    def __init__(
        self,
        book: NodeBook,
        offerings: OfferingBook,
        prices: PriceBook,
        *,
        reporter: Reporter,
        metrics: Metrics,
    ) -> None:
        self.book = book
        self.ledger = book.ledger
        self.offerings = offerings
        self.prices = prices
        self.reporter = reporter
        self.metrics = metrics
        self.clock = reporter.clock

    def unanswered(
        self, request: LaunchRequest, waiting: list[NodeRecord], exc: CloudError, report: TickReport
    ) -> None:
        """RunInstances failed: refused for good (capacity, limits), its nodes failed and
        its pool set aside; else it is resent with the same ClientToken next tick."""
        request.error = exc.code
        entries: Entries = []
        fleet = is_fleet(request)
        final = isinstance(exc, (CapacityUnavailable, LaunchRejected))
        if final and not (fleet and exc.code in TEMPLATE_NOT_VISIBLE):
            request.status = "done"
            if not fleet:
                self.offerings.set_aside(request.node_type, request_pool(request), exc.code, report)
            failed = NodeUpdate(last_error=f"{exc.code}: {exc.message}")
            for record in waiting:
                self.book.move(
                    record, Status.LAUNCH_FAILED, f"{_action(request)}: {exc.code}", entries, failed
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

    def fulfil(
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
        action = _action(request)
        for record, inst in zip(waiting, new, strict=False):
            self.assign(
                record, inst, f"{action} {request.request_id} answered", entries, _market(request)
            )
        short = waiting[len(new) :]
        if short and not is_fleet(request):
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
                f"{launched} x {request.node_type} launched by one {action} "
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
            self.assign(waiting[0], inst, "adopted: found by its request-id tag", entries)
            self.book.save([waiting[0]], entries)
            self.metrics.launched.labels(waiting[0].node_type).inc()
            self.reporter.emit(
                report,
                "adopt",
                f"{inst.instance_id} adopted into "
                f"{waiting[0].node_id} (its launch answer was lost)",
                1,
            )

    def assign(
        self,
        record: NodeRecord,
        inst: CloudInstance,
        reason: str,
        entries: Entries,
        market: str | None = None,
    ) -> None:
        """Give a REQUESTED node its instance, from what EC2 said about it."""
        self.book.known_ids.add(inst.instance_id)
        update = NodeUpdate(
            instance_id=inst.instance_id,
            instance_type=inst.instance_type,
            availability_zone=inst.availability_zone,
            private_ip=inst.private_ip,
            launched_at=self.clock.now(),
            hourly_price=self.prices.of(inst, market),
        )
        self.book.move(record, Status.LAUNCHED, reason, entries, update)


def _market(request: LaunchRequest) -> str:
    """The market a request asked for (how a node's price is read when EC2's answer does
    not say)."""
    if request.spec is None:
        return "on-demand"
    return fleet_market(request) if is_fleet(request) else market_of(json.loads(request.spec))


def _action(request: LaunchRequest) -> str:
    return "CreateFleet" if is_fleet(request) else "RunInstances"
