"""The terminator: TERMINATING is durable before the call; refusals wait, then retry."""

from __future__ import annotations

from steadyscale.core.lifecycle import NodeRecord, Status
from steadyscale.loop.book import NodeBook
from steadyscale.loop.report import Reporter, TickReport
from steadyscale.loop.terminator import (
    FORGET_UNKNOWN_AFTER_SECONDS,
    TERMINATE_REFUSED_RETRY_SECONDS,
    Terminator,
)
from steadyscale.providers.protocol import TerminateResult
from steadyscale.retries.clock import FakeClock
from tests.loop.fakes import ScriptedEC2, ledger_with, node


def _terminator(
    ec2: ScriptedEC2, clock: FakeClock, *nodes: int, crash: list[str] | None = None
) -> tuple[Terminator, NodeBook]:
    book = NodeBook(ledger_with(*(node(n, Status.READY, running_at=0.0) for n in nodes)), clock)
    points = crash if crash is not None else []
    terminator = Terminator(
        ec2.as_provider(), book, reporter=Reporter(clock), clock=clock, crash=points.append
    )
    return terminator, book


def _status(record: NodeRecord) -> Status:
    return record.status


def test_terminating_is_written_before_the_call_and_the_crash_points_bracket_it() -> None:
    clock = FakeClock(100.0)
    points: list[str] = []
    seen_in_ledger: list[list[Status]] = []
    ec2 = ScriptedEC2()
    terminator, book = _terminator(ec2, clock, 1, 2, crash=points)

    def answer(ids: object) -> TerminateResult:
        seen_in_ledger.append([r.status for r in book.ledger.nodes()])
        points.append("call")
        return TerminateResult(states={"i-1": "shutting-down", "i-2": "terminated"})

    ec2.answer = answer
    report = TickReport(started_at=clock.now())
    terminator.terminate(["n-1", "n-2"], report, {"n-1": "failed its health check"})
    assert seen_in_ledger == [[Status.TERMINATING, Status.TERMINATING]]
    assert points == ["terminate_written", "call", "terminate_sent"]
    first, second = book.records["n-1"], book.records["n-2"]
    assert first.history[-1].reason == "failed its health check"
    assert (first.status, first.terminate_requested_at, first.terminate_accepted_at) == (
        Status.TERMINATING,
        100.0,
        100.0,
    )
    assert second.status is Status.TERMINATED
    assert [e.kind for e in report.events] == ["terminate", "terminated"]


def test_a_refused_termination_is_left_alone_until_its_retry_time() -> None:
    clock = FakeClock(100.0)
    ec2 = ScriptedEC2(answer=lambda ids: TerminateResult(states={}, refused={"i-1": "protected"}))
    terminator, book = _terminator(ec2, clock, 1)
    report = TickReport(started_at=clock.now())
    terminator.terminate(["n-1"], report)
    assert book.records["n-1"].last_error == "TerminateInstances refused: protected"
    assert report.events[-1].kind == "refused"
    clock.advance(TERMINATE_REFUSED_RETRY_SECONDS - 1)
    terminator.terminate(["n-1"], TickReport(started_at=clock.now()))
    assert [name for name, _ in ec2.calls] == ["terminate"]
    clock.advance(1)
    terminator.terminate(["n-1"], TickReport(started_at=clock.now()))
    assert [name for name, _ in ec2.calls] == ["terminate", "terminate"]


def test_an_id_ec2_no_longer_knows_is_terminated_only_long_after_launch() -> None:
    clock = FakeClock(FORGET_UNKNOWN_AFTER_SECONDS)  # launched at 0: not yet long enough
    ec2 = ScriptedEC2(answer=lambda ids: TerminateResult(states={}, not_found=tuple(ids)))
    terminator, book = _terminator(ec2, clock, 1)
    record = book.records["n-1"]
    terminator.terminate(["n-1"], TickReport(started_at=clock.now()))
    assert _status(record) is Status.TERMINATING
    assert record.last_error == "TerminateInstances: not found yet"
    clock.advance(1)
    terminator.terminate(["n-1"], TickReport(started_at=clock.now()))
    assert _status(record) is Status.TERMINATED
    assert [r.status for r in book.ledger.nodes(include_terminal=True)] == [Status.TERMINATED]
