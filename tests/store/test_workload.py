"""What the workload tells the ledger, on SQLite and PostgreSQL: usage reports with a TTL,
by node id or instance id, refused whole for an unknown node; drains asked and acked."""

from __future__ import annotations

import pytest

from steadyscale.core.lifecycle import NodeRecord, NodeUpdate, Status
from steadyscale.store.ledger import Ledger, LedgerError
from steadyscale.store.workload import UnknownNodeError, UsageReport, UsageState
from tests.ledgers import LedgerAt


def _ledger(ledger_at: LedgerAt, **statuses: Status) -> Ledger:
    """A ledger with node ``n-<i>`` (instance ``i-<i>``) per keyword, in that status."""
    ledger = Ledger(ledger_at("l.db"))
    records = [
        NodeRecord(
            node_id=f"n-{name}",
            node_type="cpu",
            status=status,
            created_at=1.0,
            instance_id=f"i-{name}",
            running_at=1.0,
        )
        for name, status in statuses.items()
    ]
    with ledger.transaction():
        ledger.save_nodes(records)
    return ledger


def _report(node: str, busy: bool, ttl: float = 30.0, **extra: object) -> UsageReport:
    return UsageReport(node=node, busy=busy, ttl_seconds=ttl, reporter="pool", **extra)  # type: ignore[arg-type]


def test_usage_is_kept_by_node_id_whether_named_by_node_or_instance(ledger_at: LedgerAt) -> None:
    ledger = _ledger(ledger_at, a=Status.READY, b=Status.RUNNING)
    ledger.report_usage(
        [_report("n-a", True, bundles=({"CPU": 2.0},)), _report("i-b", False, ttl=10.0)], at=100.0
    )
    assert ledger.usage(105.0) == {
        "n-a": UsageState(True, ({"CPU": 2.0},), 100.0, 130.0, None, "pool"),
        "n-b": UsageState(False, (), 100.0, 110.0, 100.0, "pool"),
    }
    ledger.close()


def test_a_report_past_its_ttl_is_gone(ledger_at: LedgerAt) -> None:
    ledger = _ledger(ledger_at, a=Status.READY)
    ledger.report_usage([_report("n-a", True, ttl=10.0)], at=100.0)
    assert set(ledger.usage(109.9)) == {"n-a"}
    assert ledger.usage(110.0) == {}
    ledger.close()


def test_idle_since_holds_while_reports_say_idle_and_resets_after_busy(
    ledger_at: LedgerAt,
) -> None:
    ledger = _ledger(ledger_at, a=Status.READY)
    ledger.report_usage([_report("n-a", False)], at=100.0)
    ledger.report_usage([_report("i-a", False)], at=110.0)
    assert ledger.usage(111.0)["n-a"].idle_since == 100.0
    ledger.report_usage([_report("n-a", True)], at=120.0)
    assert ledger.usage(121.0)["n-a"].idle_since is None
    ledger.report_usage([_report("n-a", False)], at=130.0)
    assert ledger.usage(131.0)["n-a"].idle_since == 130.0
    # A gap longer than the TTL starts the idleness again.
    ledger.report_usage([_report("n-a", False, ttl=5.0)], at=200.0)
    assert ledger.usage(201.0)["n-a"].idle_since == 200.0
    ledger.close()


def test_a_report_naming_an_unknown_node_is_refused_whole(ledger_at: LedgerAt) -> None:
    ledger = _ledger(ledger_at, a=Status.READY, gone=Status.TERMINATED)
    with pytest.raises(UnknownNodeError) as caught:
        ledger.report_usage(
            [_report("n-a", True), _report("i-nope", True), _report("n-gone", False)], at=1.0
        )
    assert isinstance(caught.value, LedgerError)
    assert caught.value.nodes == ("i-nope", "n-gone")
    assert "no live node i-nope, n-gone" in str(caught.value)
    assert ledger.usage(2.0) == {}
    ledger.close()


def test_a_usage_report_needs_a_positive_ttl() -> None:
    with pytest.raises(ValueError, match="ttl_seconds"):
        _report("n-a", True, ttl=0)


def test_only_a_draining_node_takes_an_ack(ledger_at: LedgerAt) -> None:
    ledger = _ledger(ledger_at, a=Status.DRAINING, b=Status.READY)
    assert ledger.ack_drain("i-a", by="pool", at=50.0) is True
    assert ledger.ack_drain("n-b", by="pool", at=50.0) is False
    assert ledger.ack_drain("n-nope", by="pool", at=50.0) is False
    assert ledger.drain_acks() == {"n-a": 50.0}
    ledger.close()


def test_acks_are_forgotten_once_the_node_is_not_draining(ledger_at: LedgerAt) -> None:
    ledger = _ledger(ledger_at, a=Status.DRAINING)
    ledger.ack_drain("n-a", by="pool", at=50.0)
    [record] = ledger.nodes()
    record.move(Status.TERMINATING, 51.0, "drained", NodeUpdate(terminate_requested_at=51.0))
    with ledger.transaction():
        ledger.save_nodes([record])
    assert ledger.drain_acks() == {}
    ledger.close()


def test_a_drain_asked_for_a_live_node_waits_for_the_loop(ledger_at: LedgerAt) -> None:
    ledger = _ledger(ledger_at, a=Status.READY, d=Status.DRAINING)
    assert ledger.ask_drain("i-a", by="api", at=7.0) == "n-a"
    assert ledger.ask_drain("n-d", by="api", at=7.0) == "n-d"
    assert ledger.drain_asks() == {"n-a": 7.0}  # n-d drains already
    with pytest.raises(UnknownNodeError):
        ledger.ask_drain("n-nope", by="api", at=7.0)
    ledger.close()


def test_clear_forgets_usage_and_drains(ledger_at: LedgerAt) -> None:
    ledger = _ledger(ledger_at, a=Status.DRAINING)
    ledger.report_usage([_report("n-a", True)], at=1.0)
    ledger.ack_drain("n-a", by="pool", at=1.0)
    ledger.clear()
    assert ledger.usage(2.0) == {} and ledger.drain_acks() == {}
    ledger.close()
