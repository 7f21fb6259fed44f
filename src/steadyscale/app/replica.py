"""``steadyscale run`` as one replica among several on a PostgreSQL ledger: it follows
until it takes the lease, leads while it keeps it, and follows again the moment it may
no longer trust it.

A replica that becomes leader fences the ledger's writes with its epoch and builds its
autoscaler afresh from the ledger, as a restart does (crash recovery: open launch
requests are resent under their own ClientTokens, so an ex-leader's launch in flight and
the new leader's resend yield the same instances). A leader that loses the lease (a
renewal refused, its trust deadline passed, a write fenced off, the ledger unreachable)
drops its autoscaler at once; a follower keeps /healthz and /metrics answering. The
lease is renewed by a thread of its own, so a long tick cannot outlive it unnoticed: the
EC2 gate (``loop.gated``) refuses every mutation past the trust deadline.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from steadyscale.loop.autoscaler import Event, TickReport
from steadyscale.loop.leadership import Leadership, LeaderState, Role

if TYPE_CHECKING:
    from steadyscale.app.daemon import Run
    from steadyscale.app.replication import Replication

log = logging.getLogger("steadyscale.replica")

# The keeper looks at the lease at least this often (real seconds), so a stop request or
# a trust deadline is noticed promptly.
_KEEPER_POLL = 0.2


class LeaseKeeper:
    """A thread that renews the lease (or tries to take it) whenever due."""

    def __init__(self, leadership: Leadership) -> None:
        self.leadership = leadership
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="steadyscale-lease", daemon=True)

    def start(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.leadership.step()
            except Exception:  # the keeper must outlive any surprise; the next step retries
                log.exception("lease step failed")
            self._stop.wait(min(max(self.leadership.due_in(), 0.01), _KEEPER_POLL))


class Replica:
    """One replica's loop over a ``Run``: each ``iteration()`` follows or ticks."""

    def __init__(self, run: Run, replication: Replication) -> None:
        self.run = run
        self.replication = replication
        self.leadership = replication.leadership
        self.metrics = run.runtime.metrics
        self.epoch: int | None = None  # the epoch the autoscaler was built under

    def iteration(self) -> TickReport | None:
        """Tick if this replica may act, else stand by; the tick's report, if one ran."""
        state = self.leadership.state
        if not self.leadership.trusted() or state.epoch is None:
            if state.role is Role.LEADER:
                self.leadership.lose(state.epoch, "the lease was not renewed in time")
            self._follow(self.leadership.state)
            return None
        try:
            if self.run.autoscaler is None or self.epoch != state.epoch:
                self._lead(state.epoch)
            self.run.before_tick()
            if self.run.autoscaler is None or self.run.stop.is_set():
                return None
            return self.run.autoscaler.tick()
        except self.replication.stop_on as exc:
            self.leadership.lose(state.epoch, f"{type(exc).__name__}: {exc}")
            self._follow(self.leadership.state)
            return None

    def _lead(self, epoch: int) -> None:
        """Fence the ledger with ``epoch``, then recover: a new autoscaler from the ledger."""
        self.run.autoscaler = None
        self.replication.fence(epoch)
        self.replication.on_lead()
        self.epoch = epoch
        self.run.new_autoscaler()
        self.metrics.leader.set(leading=True, epoch=epoch)
        self._say("leader", f"leading with lease epoch {epoch}; recovered from the ledger")

    def _follow(self, state: LeaderState) -> None:
        if self.run.autoscaler is not None or self.epoch is not None:
            self.run.autoscaler = None
            self.replication.fence(None)  # a follower writes nothing
            self._say("follower", f"stopped leading epoch {self.epoch}: {state.reason}")
            self.epoch = None
        self.metrics.leader.set(leading=False, epoch=None)
        self.metrics.standing_by()
        run = self.run
        if run.max_seconds is not None and run.clock.now() - run.start >= run.max_seconds:
            run.stop.set()

    def _say(self, kind: str, message: str) -> None:
        log.warning("%s", message)
        if not self.run.quiet:
            self.run.printer.event(Event(self.run.clock.now(), kind, message))

    def wait(self, started: float) -> None:
        """Until the next tick is due; a follower checks for the lease every tick too."""
        run = self.run
        end = started + run.runtime.config.loop_interval_seconds
        while not run.stop.is_set():
            remaining = end - run.clock.now()
            if remaining <= 0:
                return
            run.clock.sleep(min(remaining, 0.2))


def run_replica(run: Run, replication: Replication) -> None:
    """Run ``run`` as a replica until it is stopped or its scenario is done; a clean stop
    hands the lease over at once."""
    replica = Replica(run, replication)
    keeper = LeaseKeeper(replication.leadership).start()
    try:
        while not run.stop.is_set():
            started = run.clock.now()
            report = replica.iteration()
            if report is not None and run.until(report):
                return
            replica.wait(started)
    finally:
        keeper.stop()
        run.autoscaler = None
        replication.leadership.release()
        replication.fence(None)


__all__ = ["LeaseKeeper", "Replica", "Role", "run_replica"]
