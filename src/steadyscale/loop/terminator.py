"""The terminator: queued nodes cancelled, others terminated by id (TERMINATING written
before TerminateInstances is sent), and terminations EC2 refused retried later."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from steadyscale.core.lifecycle import TERMINATE_REFUSED, UP, NodeRecord, NodeUpdate, Status
from steadyscale.errors import CloudError
from steadyscale.loop.book import Entries, NodeBook
from steadyscale.loop.hooks import CrashHook, no_crash
from steadyscale.loop.report import Reporter, TickReport
from steadyscale.providers.protocol import CloudProvider, TerminateResult
from steadyscale.retries.clock import Clock

# A terminate EC2 refused (termination protection, a policy) is tried again this often.
TERMINATE_REFUSED_RETRY_SECONDS = 300.0
# An id EC2 never knew, terminated this long after launch, is taken as gone.
FORGET_UNKNOWN_AFTER_SECONDS = 3600.0 + 600.0


class Terminator:
    """Cancels and terminates nodes; remembers until when a refused one is left alone."""

    def __init__(
        self,
        provider: CloudProvider,
        book: NodeBook,
        *,
        reporter: Reporter,
        clock: Clock,
        crash: CrashHook = no_crash,
    ) -> None:
        self.provider = provider
        self.book = book
        self.reporter = reporter
        self.clock = clock
        self.crash = crash
        self._refused_until: dict[str, float] = {}

    def cancel(self, node_ids: Sequence[str], report: TickReport) -> None:
        """Queued nodes no longer needed: nothing was sent for them."""
        if not node_ids:
            return
        entries: Entries = []
        records = [self.book.records[n] for n in node_ids]
        for record in records:
            self.book.move(record, Status.CANCELLED, "no longer needed before launch", entries)
        self.book.save(records, entries)
        self.reporter.emit(
            report, "cancel", f"{len(records)} queued node(s) no longer needed", len(records)
        )

    def terminate(
        self,
        node_ids: Sequence[str],
        report: TickReport,
        reasons: Mapping[str, str] | None = None,
    ) -> None:
        """Terminate by id, invisible nodes included; ``reasons`` by node id, else one
        from the node's status."""
        now = self.clock.now()
        node_ids = [n for n in node_ids if self._refused_until.get(n, 0.0) <= now]
        if not node_ids:
            return
        records = [self.book.records[n] for n in node_ids]
        entries: Entries = []
        fresh = self._mark(records, reasons or {}, now, entries)
        self.book.save(records, entries)  # durable before the call
        self.crash("terminate_written")
        if fresh:
            invisible = sum(1 for r in records if not r.seen)
            note = f" ({invisible} not visible yet)" if invisible else ""
            self.reporter.emit(report, "terminate", f"terminating {fresh} node(s){note}", fresh)
        by_instance = {r.instance_id: r for r in records if r.instance_id}
        try:
            result = self.provider.terminate(list(by_instance))
        except CloudError as exc:
            report.errors.append(f"terminate: {exc}")
            return
        self.crash("terminate_sent")
        self._answered(result, by_instance, report, now)

    def _mark(
        self,
        records: list[NodeRecord],
        reasons: Mapping[str, str],
        now: float,
        entries: Entries,
    ) -> int:
        """Move to TERMINATING the records not there yet; how many were."""
        fresh = 0
        requested = NodeUpdate(terminate_requested_at=now)
        for record in records:
            if record.status is not Status.TERMINATING:
                reason = reasons.get(record.node_id) or _reason(record.status)
                self.book.move(record, Status.TERMINATING, reason, entries, requested)
                fresh += 1
        return fresh

    def _answered(
        self,
        result: TerminateResult,
        by_instance: Mapping[str, NodeRecord],
        report: TickReport,
        now: float,
    ) -> None:
        """Record EC2's answer: accepted (terminated at once, maybe), refused (left alone
        for a while), or an id EC2 does not know (gone, long after its launch)."""
        entries: Entries = []
        done = 0
        accepted_now = NodeUpdate(terminate_accepted_at=self.clock.now())
        for instance_id, state in result.states.items():
            accepted = by_instance.get(instance_id)
            if accepted is None:
                continue
            accepted.apply(accepted_now)
            if state == "terminated":
                self.book.move(accepted, Status.TERMINATED, "EC2 says terminated", entries)
                done += 1
        for instance_id, why in result.refused.items():
            refused = by_instance.get(instance_id)
            if refused is not None:
                self._refused(refused, instance_id, why, report, now)
        unknown = NodeUpdate(last_error="TerminateInstances: not found yet")
        for instance_id in result.not_found:
            missing = by_instance.get(instance_id)
            if missing is None:
                continue
            missing.apply(unknown)
            if missing.launched_at is not None and (
                now - missing.launched_at > FORGET_UNKNOWN_AFTER_SECONDS
            ):
                reason = "EC2 no longer knows the id, long after launch"
                self.book.move(missing, Status.TERMINATED, reason, entries)
                done += 1
        self.book.save(list(by_instance.values()), entries)
        if done:
            self.reporter.emit(report, "terminated", f"{done} node(s) terminated", done)

    def _refused(
        self, record: NodeRecord, instance_id: str, why: str, report: TickReport, now: float
    ) -> None:
        record.apply(NodeUpdate(last_error=f"{TERMINATE_REFUSED}{why}"))
        self._refused_until[record.node_id] = now + TERMINATE_REFUSED_RETRY_SECONDS
        self.reporter.emit(
            report,
            "refused",
            f"{record.node_id} ({instance_id}) cannot be terminated: {why}; retrying every "
            f"{TERMINATE_REFUSED_RETRY_SECONDS:.0f}s",
            1,
        )


def _reason(status: Status) -> str:
    """Why a node with no reason of its own is terminated, by its status."""
    if status is Status.LOST:
        return "lost: terminating by id until EC2 confirms"
    if status is Status.INTERRUPTED:
        return "interrupted: terminating by id until EC2 confirms"
    if status in UP:
        return "idle past the idle timeout"
    return "not needed any more"
