"""The nodes carried over from a former cluster name: listed by it while one is live, that
name dropped once none is, and unknown instances of it said once, left alone."""

from __future__ import annotations

import logging

import pytest

from steadyscale.core.instances import TAG_CLUSTER, CloudInstance
from steadyscale.core.lifecycle import Status
from steadyscale.loop.carried import CarriedNodes
from steadyscale.store.ownership import carried, set_carried
from tests.loop.fakes import ledger_with, node


def test_a_former_name_is_listed_until_none_of_its_nodes_is_live(
    caplog: pytest.LogCaptureFixture,
) -> None:
    first, second, own = node(1, Status.READY), node(2, Status.READY), node(3, Status.READY)
    ledger = ledger_with(first, second, own)
    set_carried(ledger, {"old": {"n-1", "n-2"}})
    book = CarriedNodes(ledger)
    assert book.names() == {"old"}
    assert book.name_of("n-1") == "old" and book.name_of("n-3") is None
    first.status = Status.TERMINATED
    records = {r.node_id: r for r in (first, second, own)}
    book.prune(records)
    assert book.names() == {"old"} and carried(ledger) == {"old": {"n-2"}}
    del records["n-2"]  # finished long ago: no longer in memory
    with caplog.at_level(logging.INFO, logger="steadyscale.autoscaler"):
        book.prune(records)
    assert book.names() == frozenset() and carried(ledger) == {}
    assert "former cluster name old any more: it is no longer listed" in caplog.text
    assert CarriedNodes(ledger).names() == frozenset()  # as a restarted daemon reads it


def test_unknown_instances_of_a_former_name_are_said_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    book = CarriedNodes(ledger_with())
    stray = CloudInstance("i-9", "running", tags={TAG_CLUSTER: "old"})
    with caplog.at_level(logging.WARNING, logger="steadyscale.autoscaler"):
        book.leave_alone([stray])
        book.leave_alone([stray])
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "leaving alone 1 instance(s) tagged for former cluster name(s) old that the ledger "
        "does not know (not adopted, not terminated): i-9"
    ]
