"""The drain: a running node is let go by its workload before steadyscale terminates it.

Every node the loop terminates while EC2 runs it (idle, unhealthy, retired by a config
change, asked through the API) passes through here: when its node type has a ``drain:``
block or its workload ever reported usage for it, it moves to DRAINING (out of the
scheduler's view: no demand is placed on it, it is never chosen again), its hook runs in a
bounded worker pool (no tick waits on one), and it is terminated once drained: the
workload acked through the ledger, or the hook succeeded and the workload never reported
usage for it, or the drain timed out. Other nodes go at once, as they always did; nodes
not running in EC2 (queued, launched, pending, interrupted, lost) never drain: a reclaim
under way is not waited for.

``warn`` drains a node EC2 is about to reclaim: the hook runs, and EC2's own termination
moves it on. Drains under way live in memory; after a restart a DRAINING node drains on
from the time its move says (its timeout is not reset), left to EC2 if a warning's mark
says so, and its hook is called again.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from steadyscale.config import ClusterConfig
from steadyscale.config.drain import Drain
from steadyscale.core.lifecycle import UP, NodeRecord, Status
from steadyscale.core.usage import NodeUsage, Usage
from steadyscale.loop.book import Entries, NodeBook
from steadyscale.loop.drain_hooks import SUCCEEDED, HookCall, hook_call, run_hook
from steadyscale.loop.report import Reporter, TickReport
from steadyscale.ops.metrics import Metrics
from steadyscale.retries.clock import Clock
from steadyscale.store.marks import MarkKind, Marks

log = logging.getLogger("steadyscale.drain")

# Hooks running at once, at most: the rest wait their turn in the pool's queue.
DRAIN_WORKERS = 8
# How long a node drained only because its workload reports usage (no ``drain:`` block)
# waits for the workload's ack.
DEFAULT_DRAIN = Drain()
_IDLE = "idle past the idle timeout"


@dataclass
class _Drain:
    """One node's drain under way."""

    started_at: float
    reason: str  # why it is terminated once drained
    warned: bool  # EC2 reclaims it: never terminated by us
    hook: Future[str] | None = None


class Drainer:
    """Drains under way by node id, the nodes the workload ever reported on, the hooks'
    worker pool."""

    def __init__(
        self,
        config: ClusterConfig,
        book: NodeBook,
        *,
        reporter: Reporter,
        metrics: Metrics,
        clock: Clock,
        workers: int = DRAIN_WORKERS,
    ) -> None:
        self.config = config
        self.book = book
        self.reporter = reporter
        self.metrics = metrics
        self.clock = clock
        self.workers = workers
        # Node ids the workload reported usage for, while the book keeps them.
        self.heard: set[str] = set()
        self.reasons: dict[str, str] = {}  # why each node ``ready`` returned goes
        self._drains: dict[str, _Drain] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._resumed = False

    @property
    def draining(self) -> Mapping[str, float]:
        """When each drain under way started, by node id."""
        return {node_id: d.started_at for node_id, d in self._drains.items()}

    def usage(self, now: float) -> Usage:
        """The workload's live usage reports (read once a tick), as the scheduler takes them."""
        states = self.book.ledger.usage(now)
        self.heard.intersection_update(self.book.records)  # the book forgot the rest
        self.heard.update(states)
        reported = frozenset(
            name
            for name, t in self.config.available_node_types.items()
            if t.scale_down == "reported"
        )
        if not states and not reported:
            return Usage()
        return Usage({n: NodeUsage(s.busy, s.idle_since) for n, s in states.items()}, reported)

    def _drain_of(self, node_type: str) -> Drain | None:
        node_type_config = self.config.available_node_types.get(node_type)
        return None if node_type_config is None else node_type_config.drain

    def route(
        self, node_ids: Collection[str], reasons: Mapping[str, str], report: TickReport
    ) -> list[str]:
        """Of the nodes to terminate, those that go now; the others start draining."""
        records = self.book.records
        now: list[str] = []
        drain: list[str] = []
        for node_id in node_ids:
            record = records[node_id]
            wants = record.status in UP and (
                node_id in self.heard or self._drain_of(record.node_type) is not None
            )
            (drain if wants else now).append(node_id)
        self.start(drain, reasons, report)
        return now

    def start(
        self, node_ids: Collection[str], reasons: Mapping[str, str], report: TickReport
    ) -> None:
        """Move running nodes to DRAINING and start their hooks (others are left alone)."""
        self._start(node_ids, reasons, report, warned=False)

    def warn(self, node_ids: Collection[str], report: TickReport) -> None:
        """EC2 will reclaim these nodes: drain them (hook included) without ever
        terminating them ourselves; EC2's termination then moves them on."""
        for node_id in node_ids:
            if node_id in self._drains:
                self._drains[node_id].warned = True
        fresh = [n for n in node_ids if n not in self._drains]
        self._start(fresh, {}, report, warned=True, why="EC2 is about to reclaim it")

    def asked(self, report: TickReport) -> None:
        """Start the drains asked through the API (``Ledger.ask_drain``)."""
        asks = self.book.ledger.drain_asks()
        if asks:
            self._start(list(asks), {}, report, warned=False, why="drain asked by the workload")

    def _start(
        self,
        node_ids: Collection[str],
        reasons: Mapping[str, str],
        report: TickReport,
        *,
        warned: bool,
        why: str = _IDLE,
    ) -> None:
        records = self.book.records
        at = self.clock.now()
        entries: Entries = []
        moved: list[NodeRecord] = []
        for node_id in node_ids:
            record = records.get(node_id)
            if record is None or record.status not in UP:
                continue
            reason = reasons.get(node_id) or why
            self.book.move(record, Status.DRAINING, f"draining: {reason}", entries)
            self._drains[node_id] = _Drain(at, reason, warned)
            moved.append(record)
        if not moved:
            return
        self.book.save(moved, entries)  # durable before any hook is called
        for record in moved:
            self._run_hook(record)
        self.reporter.emit(report, "drain", f"draining {len(moved)} node(s)", len(moved))

    def _run_hook(self, record: NodeRecord) -> None:
        drain = self._drain_of(record.node_type)
        call = None if drain is None else hook_call(record, drain)
        if call is None:
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="steadyscale-drain")
        self._drains[record.node_id].hook = self._pool.submit(self._call, call)

    def _call(self, call: HookCall) -> str:
        """In a worker: run the hook and count its outcome."""
        outcome = run_hook(call)
        self.metrics.drain_hooks.labels(call.node_type, outcome).inc()
        return outcome

    def ready(self, now: float | None = None) -> list[str]:
        """The draining nodes drained by now (to terminate; why each goes in ``reasons``).
        Drains of nodes no longer draining (EC2 took them, say) are forgotten."""
        now = self.clock.now() if now is None else now
        self._resume(now)
        self.reasons = {}
        if not self._drains:
            return []
        records = self.book.records
        for node_id in list(self._drains):
            record = records.get(node_id)
            if record is None or record.status is not Status.DRAINING:
                del self._drains[node_id]
        acks = self.book.ledger.drain_acks() if self._drains else {}
        for node_id, drain in self._drains.items():
            if drain.warned:
                continue
            why = self._drained(node_id, drain, acks, now)
            if why is not None:
                self.reasons[node_id] = f"{why}; {drain.reason}"
        return list(self.reasons)

    def _drained(
        self, node_id: str, drain: _Drain, acks: Mapping[str, float], now: float
    ) -> str | None:
        if node_id in acks:
            return "drained: the workload acknowledged"
        hook = drain.hook
        if (
            hook is not None
            and hook.done()
            and not hook.cancelled()
            and node_id not in self.heard
            and hook.result() == SUCCEEDED
        ):
            return "drained: its drain hook succeeded"
        node_type = self.book.records[node_id].node_type
        timeout = (self._drain_of(node_type) or DEFAULT_DRAIN).timeout_seconds
        if now - drain.started_at >= timeout:
            return f"drain timed out after {timeout:g}s without an ack"
        return None

    def _resume(self, now: float) -> None:
        """Once, at the first tick: nodes left draining by an earlier run drain on, from
        when they started (the ledger has the move), still left to EC2 if it warned it
        will reclaim them; their hooks are called again (hooks are safe to repeat)."""
        if self._resumed:
            return
        self._resumed = True
        left = [
            r
            for r in self.book.records.values()
            if r.status is Status.DRAINING and r.node_id not in self._drains
        ]
        if not left:
            return
        ledger = self.book.ledger
        started = ledger.drains_started()
        warned = {m.node_id for m in Marks(ledger.store).all() if m.kind is MarkKind.WARNED}
        for record in left:
            at, why = started.get(record.node_id, (now, "draining before a restart"))
            reason = why.removeprefix("draining: ")
            # (A clock that ran ahead before the restart never makes a drain younger.)
            drain = _Drain(min(at, now), reason, record.node_id in warned)
            self._drains[record.node_id] = drain
            self._run_hook(record)

    def settle(self, timeout: float) -> bool:
        """Wait (in real time, at most ``timeout``) for the hooks under way to end: for
        harnesses that drive the loop on a fake clock. True when all have."""
        hooks = [d.hook for d in self._drains.values() if d.hook is not None]
        return not wait(hooks, timeout=timeout).not_done

    def close(self) -> None:
        """Stop taking hooks; those running finish in their threads."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
