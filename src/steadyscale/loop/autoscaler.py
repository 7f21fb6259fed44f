"""The loop: observe (list and look up), decide (reconcile, pure), act (launch, terminate).

A tick never raises: any error is logged and reported, and the next tick starts from the
ledger. Every decision is written to the ledger before it is acted on, and every answer
from EC2 as soon as it arrives.
"""

from __future__ import annotations

import json
import logging
import operator
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from steadyscale.config import ClusterConfig
from steadyscale.core.health import HealthVerdict
from steadyscale.core.instances import TAG_REQUEST, CloudInstance
from steadyscale.core.lifecycle import (
    ACTIVE,
    HAS_INSTANCE,
    NO_UPDATE,
    STARTING,
    TERMINAL,
    UP,
    HistoryEntry,
    NodeRecord,
    NodeUpdate,
    Status,
)
from steadyscale.core.reconciler import Actions, Move, Observation, reconcile
from steadyscale.core.resources import DemandItem
from steadyscale.errors import (
    CapacityUnavailable,
    CloudError,
    LaunchRejected,
)
from steadyscale.ops.health import HealthChecker, prober_for
from steadyscale.ops.metrics import Metrics
from steadyscale.providers.protocol import LOOKUP_BATCH, CloudProvider, LaunchSpec
from steadyscale.providers.wire import market_of
from steadyscale.retries.clock import Clock
from steadyscale.store.ledger import LaunchRequest, Ledger
from steadyscale.testing.crashpoints import crashpoint

log = logging.getLogger("steadyscale.autoscaler")

# A terminate EC2 refused (termination protection, a policy) is tried again this often.
TERMINATE_REFUSED_RETRY_SECONDS = 300.0
# An id EC2 never knew, terminated this long after launch, is taken as gone.
FORGET_UNKNOWN_AFTER_SECONDS = 3600.0 + 600.0
# Finished nodes leave memory this long after they finished (the ledger keeps them, and
# their ids stay in known_ids): a daemon that runs for months walks only recent records.
KEEP_FINISHED_SECONDS = 3600.0
_TRANSITIONAL = frozenset({Status.TERMINATING, Status.LOST, Status.INTERRUPTED})
_STATUS_AND_TYPE = operator.attrgetter("status", "node_type")


@dataclass(frozen=True)
class Event:
    """Something a person watching the autoscaler wants to know."""

    at: float
    kind: str  # "demand", "launch", "visible", "running", "terminate", "terminated", ...
    message: str
    count: int = 0


@dataclass
class TickReport:
    started_at: float
    duration: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    demanded_bundles: int = 0
    unmet: int = 0
    infeasible: int = 0
    errors: list[str] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    settled: bool = False
    capacity_met: bool = False


def _market_of(spec: str | None) -> str:
    """The market a launch request used, from the parameters it was sent with."""
    return market_of(json.loads(spec) if spec else None)


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:20]}"


class Autoscaler:
    def __init__(
        self,
        config: ClusterConfig,
        provider: CloudProvider,
        ledger: Ledger,
        clock: Clock,
        *,
        on_event: Callable[[Event], None] | None = None,
        metrics: Metrics | None = None,
        health: HealthChecker | None = None,
        new_ids: Callable[[str], str] = new_id,
    ) -> None:
        self.config = config
        self._new_id = new_ids  # a seeded source makes a simulation reproducible
        self.provider = provider
        self.ledger = ledger
        self.clock = clock
        self.on_event = on_event
        self.metrics = metrics or Metrics(
            clock, stale_after_seconds=config.metrics.stale_after_seconds(config)
        )
        # Instance ids a lookup did not find yet, to count those found later.
        self._not_visible: set[str] = set()
        # Probes of node types with a health check: to the nodes' private IPs, or with the
        # emulator to its endpoint, or with the memory backend to its model (never to an
        # emulated instance's made-up address).
        self.health = health or HealthChecker(
            prober_for(
                config,
                getattr(provider, "endpoint_url", None),
                in_process=getattr(provider, "probe_node", None),
            ),
            clock,
        )
        if self.health.on_result is None:
            self.health.on_result = lambda node_type, passed: self.metrics.health_checks.labels(
                node_type, "pass" if passed else "fail"
            ).inc()
        self._checked = any(
            t.health_check is not None for t in config.available_node_types.values()
        )
        self.records: dict[str, NodeRecord] = {r.node_id: r for r in ledger.nodes()}
        # Every instance id the ledger ever recorded, terminal nodes included: an id in
        # here is never given to a second node.
        self.known_ids: set[str] = ledger.known_instance_ids()
        # (node type, subnet, market) pools set aside after a capacity error, until a time.
        self._unavailable: dict[tuple[str, str | None, str], float] = {}
        # Where each launch request went, to know which pool an interruption hit.
        self._request_pools: dict[str, tuple[str | None, str]] = {
            r.request_id: (r.subnet_id, _market_of(r.spec)) for r in ledger.requests()
        }
        self.interruptions = 0
        self._stranger_first_seen: dict[str, float] = {}
        self._last_listing: float | None = None
        self._published: dict[str, Any] | None = None  # the last progress left for status
        self._refused_until: dict[str, float] = {}
        self.ticks = 0

    # ------------------------------------------------------------------ helpers

    def _emit(self, report: TickReport, kind: str, message: str, count: int = 0) -> None:
        event = Event(self.clock.now(), kind, message, count)
        report.events.append(event)
        log.info("%s: %s", kind, message)
        if self.on_event is not None:
            self.on_event(event)

    def _save(
        self, records: Sequence[NodeRecord], entries: Sequence[tuple[str, HistoryEntry]] = ()
    ) -> None:
        with self.ledger.transaction():
            self.ledger.save_nodes(records, entries)

    def _move(
        self,
        record: NodeRecord,
        status: Status,
        reason: str,
        entries: list[tuple[str, HistoryEntry]],
        update: NodeUpdate = NO_UPDATE,
    ) -> None:
        entries.append((record.node_id, record.move(status, self.clock.now(), reason, update)))

    def active_records(self) -> list[NodeRecord]:
        return [r for r in self.records.values() if r.status not in TERMINAL]

    def counts(self) -> dict[str, int]:
        tally = Counter(record.status for record in self.records.values())
        return {status.value: n for status, n in tally.items()}

    # ------------------------------------------------------------------ tick

    def tick(self) -> TickReport:
        """One observe-decide-act round. Never raises: errors go into the report."""
        report = TickReport(started_at=self.clock.now())
        self.ticks += 1
        crashed = False
        try:
            self._tick(report)
        except Exception as exc:  # a tick must never take the loop down
            log.exception("tick failed")
            report.errors.append(f"{type(exc).__name__}: {exc}")
            crashed = True
        report.duration = self.clock.now() - report.started_at
        if not report.counts:  # the tick ended before it summed up
            report.counts = self.counts()
        self.metrics.nodes(self.records.values(), self.config.available_node_types)
        self.metrics.tick(
            duration=report.duration,
            errors=len(report.errors),
            demanded=report.demanded_bundles,
            unmet=report.unmet,
            infeasible=report.infeasible,
            crashed=crashed,
        )
        return report

    def _tick(self, report: TickReport) -> None:
        now = self.clock.now()
        deadline = now + self.config.max_tick_seconds
        demand = self.ledger.demand()
        report.demanded_bundles = sum(item.count for item in demand)
        observation = self._observe(report)
        requests = {r.request_id: r for r in self.ledger.requests(open_only=True)}
        # Nodes waiting on an answer from RunInstances, by launch request (one pass a tick).
        waiting: dict[str, list[NodeRecord]] = {}
        for record in self.records.values():
            if record.status is Status.REQUESTED and record.request_id:
                waiting.setdefault(record.request_id, []).append(record)
        open_ids = frozenset(waiting)
        self._unavailable = {p: until for p, until in self._unavailable.items() if until > now}
        verdicts: dict[str, HealthVerdict] = {}
        if self._checked:
            verdicts = self.health.poll(
                (r for r in self.records.values() if r.status in UP),
                self.config.available_node_types,
            )
        actions = reconcile(
            now=now,
            config=self.config,
            records=self.active_records(),
            demand=demand,
            observation=observation,
            open_request_ids=open_ids,
            unavailable_types=self._unavailable_types(),
            known_instance_ids=frozenset(self.known_ids),
            health=verdicts,
        )
        self._apply_moves(actions.moves, report)
        for node_id in actions.seen:  # in memory only, like every last_seen_at update
            self.records[node_id].last_seen_at = now
        self._adopt(actions.adopt, report)
        if observation is not None and observation.listing_complete:
            self._strangers(actions.strangers, report, now)
        report.unmet = actions.decision.unmet
        report.infeasible = sum(i.count for i in actions.decision.infeasible)
        self._cancel(actions.cancel, report)
        for node_id, why in actions.unhealthy.items():
            record = self.records[node_id]
            self.metrics.unhealthy_replaced.labels(record.node_type).inc()
            self._emit(report, "unhealthy", f"{node_id} ({record.instance_id}) {why}", 1)
        if self.clock.now() < deadline:
            self._terminate(actions.terminate, report, actions.unhealthy)
        if self.clock.now() < deadline:
            self._resend(requests, waiting, report, deadline)
        if self.clock.now() < deadline:
            self._launch(actions.launch, report, deadline)
        self._summarize(actions, report, demand)
        self._publish_progress(report)
        if observation is not None and observation.listing_complete:
            self._forget_finished(now)

    def _forget_finished(self, now: float) -> None:
        """Drop from memory the nodes finished more than KEEP_FINISHED_SECONDS ago (once
        per full listing, so the walk is rare)."""
        cutoff = now - KEEP_FINISHED_SECONDS
        done = [
            node_id
            for node_id, r in self.records.items()
            if r.status in TERMINAL and r.history and r.history[-1].at < cutoff
        ]
        for node_id in done:
            del self.records[node_id]

    def _publish_progress(self, report: TickReport) -> None:
        """Leave where demand stands in the ledger for ``steadyscale status`` (another
        process): written only when it changes, so a steady cluster writes nothing."""
        progress = {
            "unmet": report.unmet,
            "infeasible": report.infeasible,
            "capacity_met": report.capacity_met,
        }
        if progress != self._published:
            with self.ledger.transaction():
                self.ledger.save_progress({**progress, "since": report.started_at})
            self._published = progress

    # ------------------------------------------------------------------ observe

    def _observe(self, report: TickReport) -> Observation | None:
        """What EC2 shows of our nodes, for as few calls as that takes.

        The full cluster listing runs every ``listing_interval_seconds``, or when more nodes
        are in motion than one lookup covers; otherwise only nodes in motion are looked up
        (instance-id filter). Starting nodes the filter does not show after two ticks are
        also asked for by id, EC2's fastest view of a new instance.
        """
        now = self.clock.now()
        moving = [
            r
            for r in self.records.values()
            if r.instance_id and r.status in HAS_INSTANCE and r.status not in UP
        ]
        full = (
            self._last_listing is None
            or now - self._last_listing >= self.config.listing_interval_seconds
            or len(moving) > LOOKUP_BATCH
        )
        instances: dict[str, CloudInstance] = {}
        complete = False
        failed = False
        if full:
            try:
                for inst in self.provider.list_cluster():
                    instances[inst.instance_id] = inst
                complete = True
                self._last_listing = now
            except CloudError as exc:
                failed = True
                report.errors.append(f"listing: {exc}")
        # Nodes in motion, and running ones a complete listing left out (a flicker, or
        # worse): look each up before anything is concluded from its absence.
        absent = [
            r
            for r in self.records.values()
            if complete and r.status in UP and r.instance_id and r.instance_id not in instances
        ]
        wanted = [
            r.instance_id
            for r in [*moving, *absent]
            if r.instance_id is not None and r.instance_id not in instances
        ]
        if wanted:
            try:
                for inst in self.provider.describe(wanted):
                    instances[inst.instance_id] = inst
            except CloudError as exc:
                failed = True
                report.errors.append(f"lookup: {exc}")
        straggle = 2 * self.config.loop_interval_seconds
        stragglers = [
            r.instance_id
            for r in [*moving, *absent]
            if r.instance_id is not None
            and r.instance_id not in instances
            and r.status in (Status.LAUNCHED, Status.PENDING, *UP)
            and r.launched_at is not None
            and now - r.launched_at >= straggle
        ]
        if stragglers and not failed:
            try:
                for inst in self.provider.describe_by_id(stragglers):
                    instances[inst.instance_id] = inst
            except CloudError as exc:
                report.errors.append(f"lookup by id: {exc}")
        looked = {r.instance_id for r in [*moving, *absent] if r.instance_id is not None}
        # A lookup that failed found nothing, but learned nothing either: not counted.
        missing = set() if failed else {i for i in wanted if i not in instances}
        found_late = {i for i in self._not_visible if i in instances}
        self.metrics.lookups(not_visible=len(missing), found_late=len(found_late))
        self._not_visible = ((self._not_visible - found_late) & looked) | missing
        if failed and not instances:
            return None
        return Observation(instances=instances, listing_complete=complete)

    # ------------------------------------------------------------------ act

    def _apply_moves(self, moves: Sequence[Move], report: TickReport) -> None:
        if not moves:
            return
        changed: list[NodeRecord] = []
        entries: list[tuple[str, HistoryEntry]] = []
        tally: dict[Status, int] = {}
        for move in moves:
            record = self.records[move.node_id]
            update = move.update
            if record.first_seen_at is None and update.first_seen_at is not None:
                self.metrics.first_seen(record, self.clock.now())
            if move.status is not None and move.status is not record.status:
                self._move(record, move.status, move.reason, entries, update)
                self.metrics.moved(record, move.status, self.clock.now())
                tally[move.status] = tally.get(move.status, 0) + 1
                if move.status in (Status.LOST, Status.INTERRUPTED):
                    self._emit(
                        report,
                        move.status.value,
                        f"{record.node_id} ({record.instance_id}): {move.reason}",
                        1,
                    )
                if move.status is Status.INTERRUPTED:
                    self.interruptions += 1
                    pool = self._request_pools.get(record.request_id or "")
                    if (
                        pool is not None
                        and pool[1] == "spot"
                        and record.node_type in (self.config.available_node_types)
                    ):
                        self._set_aside(record.node_type, pool, "interrupted", report)
            else:
                record.apply(update)
                if move.status is None and update.memory_only:
                    continue  # only the time it was last seen: not worth a write
            changed.append(record)
        if changed:
            self._save(changed, entries)
        for status, label in (
            (Status.PENDING, "visible"),
            (Status.RUNNING, "running"),
            (Status.READY, "ready"),
            (Status.TERMINATED, "terminated"),
        ):
            if tally.get(status):
                self._emit(report, label, f"{tally[status]} node(s) {label}", tally[status])

    def _adopt(self, found: Sequence[CloudInstance], report: TickReport) -> None:
        """Instances of our open requests that we never got ids for (a lost answer)."""
        for inst in found:
            request_id = inst.tags.get(TAG_REQUEST)
            waiting = [
                r
                for r in self.records.values()
                if r.request_id == request_id and r.status is Status.REQUESTED
            ]
            if not waiting:
                continue
            self._record_launch(waiting[0], inst, "adopted: found by its request-id tag")
            self.metrics.launched.labels(waiting[0].node_type).inc()
            self._emit(
                report,
                "adopt",
                f"{inst.instance_id} adopted into "
                f"{waiting[0].node_id} (its launch answer was lost)",
                1,
            )

    def _strangers(self, found: Sequence[CloudInstance], report: TickReport, now: float) -> None:
        """Cluster instances no record or request explains: terminated once they are older
        than the grace period (from EC2's launch time, else from when we first saw them)."""
        seen_now = {inst.instance_id for inst in found}
        for stale in set(self._stranger_first_seen) - seen_now:
            del self._stranger_first_seen[stale]
        doomed = []
        for inst in found:
            first = self._stranger_first_seen.setdefault(inst.instance_id, now)
            born = inst.launch_time if inst.launch_time is not None else first
            if now - born >= self.config.gc_grace_seconds and inst.state != "shutting-down":
                doomed.append(inst.instance_id)
        if not doomed:
            return
        log.warning(
            "terminating %d instance(s) tagged for cluster %s that the ledger does not know: %s",
            len(doomed),
            self.config.cluster_name,
            ", ".join(doomed),
        )
        try:
            self.provider.terminate(doomed)
        except CloudError as exc:
            report.errors.append(f"gc terminate: {exc}")
            return
        self._emit(
            report,
            "gc",
            f"terminated {len(doomed)} cluster instance(s) the ledger "
            f"does not know: {', '.join(doomed[:5])}",
            len(doomed),
        )

    def _assign(
        self,
        record: NodeRecord,
        inst: CloudInstance,
        reason: str,
        entries: list[tuple[str, HistoryEntry]],
    ) -> None:
        """Give a REQUESTED node its instance, from what EC2 said about it."""
        self.known_ids.add(inst.instance_id)
        update = NodeUpdate(
            instance_id=inst.instance_id,
            instance_type=inst.instance_type,
            availability_zone=inst.availability_zone,
            private_ip=inst.private_ip,
            launched_at=self.clock.now(),
        )
        self._move(record, Status.LAUNCHED, reason, entries, update)

    def _record_launch(self, record: NodeRecord, inst: CloudInstance, reason: str) -> None:
        entries: list[tuple[str, HistoryEntry]] = []
        self._assign(record, inst, reason, entries)
        self._save([record], entries)

    def _cancel(self, node_ids: Sequence[str], report: TickReport) -> None:
        if not node_ids:
            return
        entries: list[tuple[str, HistoryEntry]] = []
        records = [self.records[n] for n in node_ids]
        for record in records:
            self._move(record, Status.CANCELLED, "no longer needed before launch", entries)
        self._save(records, entries)
        self._emit(
            report, "cancel", f"{len(records)} queued node(s) no longer needed", len(records)
        )

    def _terminate(
        self, node_ids: Sequence[str], report: TickReport, reasons: Mapping[str, str] | None = None
    ) -> None:
        now = self.clock.now()
        node_ids = [n for n in node_ids if self._refused_until.get(n, 0.0) <= now]
        if not node_ids:
            return
        records = [self.records[n] for n in node_ids]
        entries: list[tuple[str, HistoryEntry]] = []
        fresh = 0
        for record in records:
            if record.status is not Status.TERMINATING:
                reason = (reasons or {}).get(record.node_id) or (
                    "lost: terminating by id until EC2 confirms"
                    if record.status is Status.LOST
                    else "interrupted: terminating by id until EC2 confirms"
                    if record.status is Status.INTERRUPTED
                    else "idle past the idle timeout"
                    if record.status in UP
                    else "not needed any more"
                )
                update = NodeUpdate(terminate_requested_at=now)
                self._move(record, Status.TERMINATING, reason, entries, update)
                fresh += 1
        self._save(records, entries)  # durable before the call
        crashpoint("terminate_written")
        if fresh:
            invisible = sum(1 for r in records if not r.seen)
            note = f" ({invisible} not visible yet)" if invisible else ""
            self._emit(report, "terminate", f"terminating {fresh} node(s){note}", fresh)
        by_instance = {r.instance_id: r for r in records if r.instance_id}
        try:
            result = self.provider.terminate(list(by_instance))
        except CloudError as exc:
            report.errors.append(f"terminate: {exc}")
            return
        crashpoint("terminate_sent")
        entries = []
        done = 0
        for instance_id, state in result.states.items():
            accepted = by_instance.get(instance_id)
            if accepted is None:
                continue
            accepted.apply(NodeUpdate(terminate_accepted_at=self.clock.now()))
            if state == "terminated":
                self._move(accepted, Status.TERMINATED, "EC2 says terminated", entries)
                done += 1
        for instance_id, why in result.refused.items():
            refused = by_instance.get(instance_id)
            if refused is None:
                continue
            refused.apply(NodeUpdate(last_error=f"TerminateInstances refused: {why}"))
            self._refused_until[refused.node_id] = now + TERMINATE_REFUSED_RETRY_SECONDS
            self._emit(
                report,
                "refused",
                f"{refused.node_id} ({instance_id}) cannot be "
                f"terminated: {why}; retrying every "
                f"{TERMINATE_REFUSED_RETRY_SECONDS:.0f}s",
                1,
            )
        for instance_id in result.not_found:
            missing = by_instance.get(instance_id)
            if missing is None:
                continue
            missing.apply(NodeUpdate(last_error="TerminateInstances: not found yet"))
            if missing.launched_at is not None and (
                now - missing.launched_at > FORGET_UNKNOWN_AFTER_SECONDS
            ):
                self._move(
                    missing,
                    Status.TERMINATED,
                    "EC2 no longer knows the id, long after launch",
                    entries,
                )
                done += 1
        self._save(list(by_instance.values()), entries)
        if done:
            self._emit(report, "terminated", f"{done} node(s) terminated", done)

    def _resend(
        self,
        requests: dict[str, LaunchRequest],
        waiting_by_request: dict[str, list[NodeRecord]],
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

    def _launch(self, launch: Mapping[str, int], report: TickReport, deadline: float) -> None:
        now = self.clock.now()
        budget = self.provider.launch_budget()
        for node_type, wanted in sorted(launch.items()):
            # Within EC2's instance bucket: the rest waits for the next tick, unrequested.
            count = min(wanted, budget)
            if count <= 0 or self.clock.now() >= deadline:
                continue
            budget -= count
            subnet_id, market = self._pool(node_type)
            node_config = dict(self.config.available_node_types[node_type].node_config)
            if market == "spot":
                node_config["InstanceMarketOptions"] = {"MarketType": "spot"}
            request_id = self._new_id("r")
            request = LaunchRequest(
                request_id=request_id,
                node_type=node_type,
                count=count,
                client_token=f"ss-{request_id}",
                status="open",
                created_at=now,
                subnet_id=subnet_id,
                spec=json.dumps(node_config, sort_keys=True),
            )
            self._request_pools[request_id] = (subnet_id, market)
            records = [
                NodeRecord(
                    node_id=self._new_id("n"),
                    node_type=node_type,
                    status=Status.QUEUED,
                    created_at=now,
                )
                for _ in range(count)
            ]
            entries: list[tuple[str, HistoryEntry]] = []
            for record in records:
                record.history.append(HistoryEntry(Status.QUEUED, now, "demand needs it"))
                entries.append((record.node_id, record.history[-1]))
                self._move(
                    record,
                    Status.REQUESTED,
                    f"RunInstances {request_id}",
                    entries,
                    NodeUpdate(request_id=request_id),
                )
                self.records[record.node_id] = record
            # The intent, its ClientToken and its parameters are durable before
            # RunInstances is sent.
            with self.ledger.transaction():
                self.ledger.save_request(request)
                self.ledger.save_nodes(records, entries)
            crashpoint("intent_written")
            self._send(request, records, report)

    def _pools(self, node_type: str) -> list[tuple[str | None, str]]:
        """Where a node type can launch, in order of preference: (subnet or None for EC2's
        choice, market). Spot pools first, then on-demand if the type allows falling back."""
        spec = self.config.available_node_types[node_type]
        config = spec.node_config
        subnets: list[str | None] = (
            [None]
            if config.get("SubnetId") or config.get("NetworkInterfaces")
            else list(self.config.provider.subnets) or [None]
        )
        markets = [spec.market]
        if spec.market == "spot" and spec.spot_fallback_to_on_demand:
            markets.append("on-demand")
        return [(subnet, market) for market in markets for subnet in subnets]

    def _pool(self, node_type: str) -> tuple[str | None, str]:
        """The first of the type's pools not set aside after a capacity error."""
        pools = self._pools(node_type)
        for subnet, market in pools:
            if (node_type, subnet, market) not in self._unavailable:
                return subnet, market
        return pools[0]

    def _unavailable_types(self) -> frozenset[str]:
        """Node types whose every pool is set aside: the scheduler falls back to others."""
        return frozenset(
            name
            for name in self.config.available_node_types
            if all(
                (name, subnet, market) in self._unavailable for subnet, market in self._pools(name)
            )
        )

    def _set_aside(
        self, node_type: str, pool: tuple[str | None, str], why: str, report: TickReport
    ) -> None:
        ttl = self.config.unavailable_offering_ttl_seconds
        key = (node_type, pool[0], pool[1])
        if key not in self._unavailable:
            where = pool[0] or "EC2's choice of subnet"
            self._emit(
                report,
                "unavailable",
                f"{node_type} {pool[1]} in {where} set aside for {ttl:.0f}s: {why}",
            )
        self._unavailable[key] = self.clock.now() + ttl

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
        )
        try:
            result = self.provider.launch(spec)
        except CloudError as exc:
            final = isinstance(exc, (CapacityUnavailable, LaunchRejected))
            request.error = exc.code
            entries: list[tuple[str, HistoryEntry]] = []
            if final:
                request.status = "done"
                if request.node_type in self.config.available_node_types:
                    self._set_aside(
                        request.node_type,
                        (request.subnet_id, _market_of(request.spec)),
                        exc.code,
                        report,
                    )
                failed = NodeUpdate(last_error=f"{exc.code}: {exc.message}")
                for record in waiting:
                    self._move(
                        record, Status.LAUNCH_FAILED, f"RunInstances: {exc.code}", entries, failed
                    )
                self._emit(
                    report,
                    "launch_failed",
                    f"{request.node_type} x{len(waiting)}: {exc.code} (will fall back "
                    "or retry later)",
                    len(waiting),
                )
            else:
                report.errors.append(
                    f"launch {request.request_id}: {exc.code} (will resend "
                    "with the same ClientToken)"
                )
            with self.ledger.transaction():
                self.ledger.save_request(request)
                self.ledger.save_nodes(waiting, entries)
            return
        crashpoint("launch_sent")
        self._fulfil(request, waiting, result.instances, report)
        crashpoint("launch_recorded")

    def _fulfil(
        self,
        request: LaunchRequest,
        waiting: list[NodeRecord],
        instances: Sequence[CloudInstance],
        report: TickReport,
    ) -> None:
        new = [inst for inst in instances if inst.instance_id not in self.known_ids]
        entries: list[tuple[str, HistoryEntry]] = []
        for record, inst in zip(waiting, new, strict=False):
            self._assign(record, inst, f"RunInstances {request.request_id} answered", entries)
        short = waiting[len(new) :]
        if short and request.node_type in self.config.available_node_types:
            self._set_aside(
                request.node_type,
                (request.subnet_id, _market_of(request.spec)),
                f"launched {len(instances)} of {request.count}",
                report,
            )
        for record in short:
            self._move(
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
            self._emit(
                report,
                "launch",
                f"{launched} x {request.node_type} launched by one RunInstances "
                "(ids known, not visible yet)",
                launched,
            )
        if short:
            self._emit(
                report,
                "shortfall",
                f"{len(short)} x {request.node_type} not launched (partial fulfilment); requeued",
                len(short),
            )

    def _summarize(
        self, actions: Actions, report: TickReport, demand: Sequence[DemandItem]
    ) -> None:
        busy = actions.decision.busy
        # One pass over the records (there may be ten thousand), in C; it also gives the
        # tick's counts by status.
        tally = Counter(map(_STATUS_AND_TYPE, self.records.values()))
        counts: dict[str, int] = {}
        of_type: Counter[str] = Counter()
        for (status, node_type), n in tally.items():
            counts[status.value] = counts.get(status.value, 0) + n
            if status in ACTIVE:
                of_type[node_type] += n
        report.counts = counts
        starting = any(status in STARTING for status, _ in tally)
        transitional = starting or any(status in _TRANSITIONAL for status, _ in tally)
        busy_of_type = Counter(
            r.node_type for r in map(self.records.__getitem__, busy) if r.status in ACTIVE
        )
        report.capacity_met = (
            report.demanded_bundles > 0
            and actions.decision.unmet == 0
            and not starting
            and not actions.launch
        )
        idle_beyond_min = any(
            of_type[name] > max(node_type.min_workers, busy_of_type[name])
            for name, node_type in self.config.available_node_types.items()
        )
        report.settled = (
            not transitional
            and not actions.launch
            and not actions.terminate
            and not actions.cancel
            and actions.decision.unmet == 0
            and not idle_beyond_min
            and not report.errors
        )

    # ------------------------------------------------------------------ run

    def run(
        self,
        *,
        stop: threading.Event | None = None,
        until: Callable[[TickReport], bool] | None = None,
        before_tick: Callable[[], None] | None = None,
        max_ticks: int | None = None,
    ) -> TickReport | None:
        """Tick every ``loop_interval_seconds`` until ``stop`` is set or ``until`` says so."""
        report: TickReport | None = None
        ticks = 0
        while not (stop is not None and stop.is_set()):
            if before_tick is not None:
                before_tick()
            started = self.clock.now()
            report = self.tick()
            ticks += 1
            if until is not None and until(report):
                return report
            if max_ticks is not None and ticks >= max_ticks:
                return report
            wait = self.config.loop_interval_seconds - (self.clock.now() - started)
            if wait > 0:
                self._wait(wait, stop)
        return report

    def _wait(self, seconds: float, stop: threading.Event | None) -> None:
        if stop is None:
            self.clock.sleep(seconds)
            return
        # Sleep in slices so a stop request is honoured promptly.
        end = self.clock.now() + seconds
        while not stop.is_set():
            remaining = end - self.clock.now()
            if remaining <= 0:
                return
            self.clock.sleep(min(remaining, 0.2))


__all__ = ["Autoscaler", "Event", "TickReport"]
