"""The loop: observe (list and look up), decide (reconcile, pure), act (launch, terminate).

``Autoscaler`` assembles the rooms that keep state across ticks (the node book, the
observer, the offering book, the launcher, the terminator, the strangers, the nodes a
config change retires, the progress report) and runs one tick through them. A tick never
raises: any error is logged and reported, and the next tick starts from the ledger. Every
decision is written to the ledger before it is acted on, and every answer from EC2 as soon
as it arrives.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from steadyscale.config import ClusterConfig
from steadyscale.core.feasibility import explain_infeasible
from steadyscale.core.health import HealthVerdict
from steadyscale.core.lifecycle import UP, NodeRecord
from steadyscale.core.reconciler import Actions, reconcile
from steadyscale.loop.book import NodeBook
from steadyscale.loop.carried import CarriedNodes
from steadyscale.loop.drain import Drainer
from steadyscale.loop.hooks import CrashHook, no_crash
from steadyscale.loop.launcher import Launcher, new_id
from steadyscale.loop.mover import Mover
from steadyscale.loop.observer import Observer
from steadyscale.loop.offerings import OfferingBook
from steadyscale.loop.report import (
    Event,
    InfeasibleNotice,
    Progress,
    Reporter,
    TickReport,
    summarize,
)
from steadyscale.loop.retirement import Retirement
from steadyscale.loop.strangers import Strangers
from steadyscale.loop.terminator import Terminator
from steadyscale.ops.health import HealthChecker
from steadyscale.ops.metrics import Metrics
from steadyscale.providers.protocol import CloudProvider
from steadyscale.retries.clock import Clock
from steadyscale.store.ledger import Ledger

log = logging.getLogger("steadyscale.autoscaler")


class Autoscaler:
    """One cluster's loop. Its collaborators are built by the caller (``app.runtime``):
    the provider, the ledger, the clock, the metrics, the health checker, the crash hook."""

    def __init__(
        self,
        config: ClusterConfig,
        provider: CloudProvider,
        ledger: Ledger,
        clock: Clock,
        *,
        metrics: Metrics,
        health: HealthChecker,
        on_event: Callable[[Event], None] | None = None,
        new_ids: Callable[[str], str] = new_id,
        crash: CrashHook = no_crash,
        stop_on: tuple[type[Exception], ...] = (),
    ) -> None:
        self.provider = provider
        # Errors that end a tick and reach the caller: a replica that may no longer act
        # (not leading, its writes fenced off) must stop, not carry on with the next step.
        self.stop_on = stop_on
        self.ledger = ledger
        self.clock = clock
        self.metrics = metrics
        self.health = health
        self.ticks = 0
        self.book = NodeBook(ledger, clock)
        self.carried = CarriedNodes(ledger)
        self.reporter = Reporter(clock, on_event)
        self.offerings = OfferingBook(config, clock, self.reporter, ledger.requests())
        self.observer = Observer(config, provider, clock, metrics)
        self.mover = Mover(self.book, self.offerings, self.reporter, metrics, clock)
        self.launcher = Launcher(
            config,
            provider,
            self.book,
            self.offerings,
            reporter=self.reporter,
            metrics=metrics,
            clock=clock,
            new_ids=new_ids,
            crash=crash,
            carried=self.carried,
        )
        self.terminator = Terminator(
            provider, self.book, reporter=self.reporter, clock=clock, crash=crash
        )
        self.strangers = Strangers(config, provider, self.reporter, ledger=ledger, metrics=metrics)
        self.progress = Progress(ledger)
        self.infeasible = InfeasibleNotice(self.reporter)
        self.retirement = Retirement(self.book, self.reporter)
        self.drainer = Drainer(
            config, self.book, reporter=self.reporter, metrics=metrics, clock=clock
        )
        self.config = config

    @property
    def config(self) -> ClusterConfig:
        return self._config

    @config.setter
    def config(self, config: ClusterConfig) -> None:
        """A new config reaches every room that reads one, from the next tick on; the
        nodes it renames are re-labelled, those it replaces retire."""
        self._config = config
        self.retirement.start(config)
        self.offerings.config = config
        self.observer.config = config
        self.launcher.configure(config)
        self.strangers.config = config
        self.drainer.config = config
        # Health checks are polled only when some node type has one.
        self._checked = any(
            t.health_check is not None for t in config.available_node_types.values()
        )

    @property
    def records(self) -> dict[str, NodeRecord]:
        return self.book.records

    @property
    def known_ids(self) -> set[str]:
        return self.book.known_ids

    @property
    def interruptions(self) -> int:
        return self.mover.interruptions

    def active_records(self) -> list[NodeRecord]:
        return self.book.active()

    def counts(self) -> dict[str, int]:
        return self.book.counts()

    # ------------------------------------------------------------------ tick

    def tick(self) -> TickReport:
        """One observe-decide-act round. Never raises: errors go into the report."""
        report = TickReport(started_at=self.clock.now())
        self.ticks += 1
        crashed = False
        try:
            self._tick(report)
        except self.stop_on:
            raise
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
            infeasible_demand=report.infeasible_demand,
            crashed=crashed,
        )
        return report

    def _tick(self, report: TickReport) -> None:
        now = self.clock.now()
        deadline = now + self.config.max_tick_seconds
        demand = self.ledger.demand()
        report.demanded_bundles = sum(item.count for item in demand)
        # Observe.
        former = self.carried.names()
        observation = self.observer.observe(self.book.records.values(), report, former)
        complete = observation is not None and observation.listing_complete
        requests = {r.request_id: r for r in self.ledger.requests(open_only=True)}
        waiting = self.book.waiting_by_request()  # one pass a tick
        self.offerings.expire(now)
        verdicts: dict[str, HealthVerdict] = {}
        if self._checked:
            verdicts = self.health.poll(
                (r for r in self.book.records.values() if r.status in UP),
                self.config.available_node_types,
            )
        # Decide.
        actions = reconcile(
            now=now,
            config=self.config,
            records=self.book.active(),
            demand=demand,
            observation=observation,
            open_request_ids=frozenset(waiting),
            unavailable_types=self.offerings.unavailable_types(),
            known_instance_ids=frozenset(self.book.known_ids),
            health=verdicts,
            retiring=self.retirement.retiring(report),
            former_names=former,
            usage=self.drainer.usage(now),
        )
        # Act.
        self.mover.apply(actions.moves, report)
        self.book.saw(actions.seen, now)
        self._unknown_instances(actions, report, now, complete=complete)
        report.unmet = actions.decision.unmet
        # From the demand, not only what the scheduler could not place: a bundle no
        # configured type fits is never met, even while a node of a type since removed
        # holds it.
        report.infeasible_demand = explain_infeasible(demand, self.config.available_node_types)
        report.infeasible = sum(i.count for i in report.infeasible_demand)
        self.infeasible.note(report)
        self.terminator.cancel(actions.cancel, report)
        for node_id, why in actions.unhealthy.items():
            record = self.book.records[node_id]
            self.metrics.unhealthy_replaced.labels(record.node_type).inc()
            self.reporter.emit(report, "unhealthy", f"{node_id} ({record.instance_id}) {why}", 1)
        if self.clock.now() < deadline:
            self._terminate(actions, report)
        if self.clock.now() < deadline:
            self.launcher.resend(requests, waiting, report, deadline)
        if self.clock.now() < deadline:
            self.launcher.launch(actions.launch, report, deadline)
        summarize(report, actions, self.book.records, self.config.available_node_types)
        self.progress.publish(report)
        if complete:
            self.book.forget_finished(now)
            self.carried.prune(self.book.records)

    def _terminate(self, actions: Actions, report: TickReport) -> None:
        """Terminate what the decision lets go: running nodes through their drain (those
        drained by now go too), the others at once."""
        terminate = self.retirement.release(actions.terminate, actions.retired, report)
        reasons = {**actions.unhealthy, **actions.retired}
        terminate = self.drainer.route(terminate, reasons, report)
        self.drainer.asked(report)
        drained = self.drainer.ready()
        reasons.update(self.drainer.reasons)
        self.terminator.terminate([*terminate, *drained], report, reasons)

    def _unknown_instances(
        self, actions: Actions, report: TickReport, now: float, *, complete: bool
    ) -> None:
        """Instances no record knows: those of our open requests are adopted, this
        cluster's strangers handled (from complete listings only), and a former name's
        others left alone."""
        self.launcher.adopt(actions.adopt, report)
        if complete:
            self.strangers.handle(actions.strangers, report, now)
        self.carried.leave_alone(actions.unclaimed)

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
