"""The reconciler, pure: what EC2 showed becomes moves; invisible is never gone."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from steadyscale.core.changes import Retiring
from steadyscale.core.health import HealthVerdict
from steadyscale.core.instances import TAG_CLUSTER, TAG_REQUEST, CloudInstance
from steadyscale.core.lifecycle import CLEAR, NodeRecord, NodeUpdate, Status
from steadyscale.core.reconciler import Actions, Observation, reconcile
from steadyscale.core.resources import DemandItem
from tests.cluster import cluster_config

CONFIG = cluster_config(visibility_timeout_seconds=600, idle_timeout_minutes=1)
NOW = 10_000.0


def _record(
    status: Status, *, node_id: str = "n-1", instance_id: str | None = "i-1", **fields: Any
) -> NodeRecord:
    values: dict[str, Any] = {"launched_at": NOW - 10, "request_id": "r-1"}
    values.update(fields)
    return NodeRecord(
        node_id=node_id,
        node_type="cpu",
        status=status,
        created_at=NOW - 20,
        instance_id=instance_id,
        **values,
    )


def _run(
    records: list[NodeRecord],
    shown: dict[str, str] | None,
    *,
    demand: int = 1,
    complete: bool = True,
    extra: Sequence[CloudInstance] = (),
    open_requests: frozenset[str] = frozenset(),
    former: frozenset[str] = frozenset(),
) -> Actions:
    observation = None
    if shown is not None:
        instances = {
            iid: CloudInstance(instance_id=iid, state=state) for iid, state in shown.items()
        }
        instances.update({i.instance_id: i for i in extra})
        observation = Observation(instances=instances, listing_complete=complete)
    items = [DemandItem(bundle={"CPU": 2}, count=demand)] if demand else []
    return reconcile(
        now=NOW,
        config=CONFIG,
        records=records,
        demand=items,
        observation=observation,
        open_request_ids=open_requests,
        former_names=former,
    )


def _statuses(actions: Actions) -> dict[str, Status | None]:
    return {m.node_id: m.status for m in actions.moves if m.status is not None}


def test_a_launched_node_ec2_does_not_show_yet_stays_launched() -> None:
    actions = _run([_record(Status.LAUNCHED)], {})
    assert _statuses(actions) == {}
    assert actions.launch == {} and actions.terminate == ()


def test_unseen_past_the_visibility_timeout_is_lost_and_terminated_by_id() -> None:
    actions = _run([_record(Status.LAUNCHED, launched_at=NOW - 601)], {})
    assert _statuses(actions) == {"n-1": Status.LOST}
    assert actions.terminate == ("n-1",)
    assert actions.launch == {"cpu": 1}  # its work needs a node that exists


def test_shown_states_move_the_node_forward() -> None:
    assert _statuses(_run([_record(Status.LAUNCHED)], {"i-1": "pending"})) == {
        "n-1": Status.PENDING
    }
    moves = _run([_record(Status.LAUNCHED)], {"i-1": "running"}).moves
    assert moves[0].status is Status.RUNNING and moves[0].update.running_at == NOW


def test_a_stale_read_never_moves_a_node_backwards() -> None:
    actions = _run([_record(Status.READY)], {"i-1": "pending"})
    assert _statuses(actions) == {}
    assert actions.moves[0].update.last_seen_at == NOW


def test_a_flickering_listing_changes_nothing() -> None:
    record = _record(Status.READY, last_seen_at=NOW - 5, first_seen_at=NOW - 100)
    assert _statuses(_run([record], {}, complete=True)) == {}


def test_shutting_down_without_our_request_is_an_interruption() -> None:
    actions = _run([_record(Status.READY)], {"i-1": "shutting-down"})
    assert _statuses(actions) == {"n-1": Status.INTERRUPTED}
    assert actions.launch == {"cpu": 1}  # replaced


def test_terminating_becomes_terminated_only_when_ec2_says_so() -> None:
    record = _record(Status.TERMINATING, terminate_accepted_at=NOW - 5)
    assert _statuses(_run([record], {}, demand=0)) == {}
    assert _statuses(_run([record], {"i-1": "shutting-down"}, demand=0)) == {}
    assert _statuses(_run([record], {"i-1": "terminated"}, demand=0)) == {"n-1": Status.TERMINATED}


def test_a_terminate_ec2_has_not_accepted_is_sent_again() -> None:
    record = _record(Status.TERMINATING, terminate_accepted_at=None)
    assert _run([record], {}, demand=0).terminate == ("n-1",)
    accepted = _record(Status.TERMINATING, terminate_accepted_at=NOW - 5)
    assert _run([accepted], {}, demand=0).terminate == ()


def test_without_an_observation_nothing_passive_happens() -> None:
    actions = _run([_record(Status.LAUNCHED, launched_at=NOW - 10_000)], None)
    assert _statuses(actions) == {}


def test_unknown_instances_of_our_requests_are_adopted_others_are_strangers() -> None:
    ours = CloudInstance(
        instance_id="i-9", state="pending", tags={TAG_CLUSTER: "test", TAG_REQUEST: "r-2"}
    )
    stranger = CloudInstance(
        instance_id="i-8", state="running", tags={TAG_CLUSTER: "test", TAG_REQUEST: "r-unknown"}
    )
    foreign = CloudInstance(instance_id="i-7", state="running", tags={TAG_CLUSTER: "other"})
    actions = _run([], {}, extra=[ours, stranger, foreign], open_requests=frozenset({"r-2"}))
    assert [i.instance_id for i in actions.adopt] == ["i-9"]
    assert [i.instance_id for i in actions.strangers] == ["i-8"]


def test_unknown_instances_of_a_former_cluster_name_are_left_alone_unless_ours() -> None:
    """After a carry-over from ``old``: an instance of one of our open requests is adopted
    under either name; one the ledger cannot explain is neither adopted nor a stranger of
    this cluster (never terminated), only reported; names never carried are not looked at."""

    def tagged(instance_id: str, state: str, cluster: str, request: str) -> CloudInstance:
        tags = {TAG_CLUSTER: cluster, TAG_REQUEST: request}
        return CloudInstance(instance_id=instance_id, state=state, tags=tags)

    carried = _record(Status.READY, request_id="r-1")
    extra = [
        tagged("i-9", "pending", "old", "r-2"),  # our launch, its answer lost
        tagged("i-8", "running", "old", "r-unknown"),
        tagged("i-6", "shutting-down", "old", "r-unknown"),
        tagged("i-7", "running", "other", "r-unknown"),
    ]
    actions = _run(
        [carried],
        {"i-1": "running"},
        extra=extra,
        open_requests=frozenset({"r-2"}),
        former=frozenset({"old"}),
    )
    assert [i.instance_id for i in actions.adopt] == ["i-9"]
    assert [i.instance_id for i in actions.unclaimed] == ["i-8"]
    assert actions.strangers == () and actions.terminate == ()


def test_idle_time_is_tracked_for_scale_down() -> None:
    actions = _run([_record(Status.READY)], {"i-1": "running"}, demand=0)
    assert any(m.update.idle_since == NOW for m in actions.moves)
    idle = _record(Status.READY, idle_since=NOW - 61)
    assert _run([idle], {"i-1": "running"}, demand=0).terminate == ("n-1",)


def test_a_running_node_missing_from_a_listing_is_timed_from_the_first_miss() -> None:
    # Not seen for an hour (the daemon was down), then missing from one listing.
    record = _record(Status.READY, last_seen_at=NOW - 3600, first_seen_at=NOW - 4000)
    actions = _run([record], {}, complete=True)
    assert _statuses(actions) == {}
    assert actions.moves[0].update == NodeUpdate(missing_since=NOW)
    still = _record(Status.READY, last_seen_at=NOW - 3600, missing_since=NOW - 100)
    assert _statuses(_run([still], {}, complete=True)) == {}
    gone = _record(Status.READY, last_seen_at=NOW - 3600, missing_since=NOW - 601)
    assert _statuses(_run([gone], {}, complete=True)) == {"n-1": Status.LOST}
    back = _record(Status.READY, missing_since=NOW - 500)
    assert _run([back], {"i-1": "running"}).moves[0].update.missing_since is CLEAR


def test_an_interrupted_node_ec2_no_longer_shows_is_terminated_by_id() -> None:
    record = _record(Status.INTERRUPTED)
    assert _run([record], {}, demand=0).terminate == ("n-1",)
    assert _run([record], {"i-1": "shutting-down"}, demand=0).terminate == ()


CHECKED = cluster_config(
    available_node_types={
        "cpu": {
            "node_config": {"InstanceType": "m5.large", "ImageId": "ami-12345678"},
            "resources": {"CPU": 2},
            "max_workers": 10,
            "health_check": {"port": 8080, "path": "/ready", "failure_threshold": 2},
        }
    }
)


def _checked(record: NodeRecord, verdict: HealthVerdict | None) -> Actions:
    return reconcile(
        now=NOW,
        config=CHECKED,
        records=[record],
        demand=[DemandItem(bundle={"CPU": 2}, count=1)],
        observation=Observation(
            instances={"i-1": CloudInstance(instance_id="i-1", state="running")},
            listing_complete=True,
        ),
        health={} if verdict is None else {record.node_id: verdict},
    )


def test_a_running_node_without_a_health_check_is_ready_at_once() -> None:
    moves = _run([_record(Status.PENDING)], {"i-1": "running"}).moves
    assert [(m.status, m.reason) for m in moves if m.status] == [
        (Status.RUNNING, "EC2 shows it running"),
        (Status.READY, "running; its node type has no health check"),
    ]


def test_a_health_check_gates_ready() -> None:
    running = _record(Status.RUNNING, running_at=NOW - 30)
    assert _statuses(_checked(running, None)) == {}
    waiting = HealthVerdict(passed=False, failures=1, failing=False, probes=1)
    actions = _checked(running, waiting)
    assert _statuses(actions) == {} and actions.terminate == () and actions.launch == {}
    passed = HealthVerdict(passed=True, failures=0, failing=False, probes=2)
    moves = _checked(running, passed).moves
    assert [(m.status, m.reason) for m in moves if m.status] == [
        (Status.READY, "passed its health check (GET :8080/ready)")
    ]


def test_a_node_failing_its_health_check_is_terminated_and_replaced_at_once() -> None:
    failing = HealthVerdict(passed=False, failures=2, failing=True, probes=5)
    for status in (Status.RUNNING, Status.READY):
        actions = _checked(_record(status, running_at=NOW - 300), failing)
        assert actions.terminate == ("n-1",)
        assert actions.unhealthy == {
            "n-1": "failed 2 health checks in a row (GET :8080/ready); replacing it"
        }
        assert actions.launch == {"cpu": 1}
        assert _statuses(actions) == {}


def test_a_retiring_node_goes_with_its_reason_once_ready_nodes_hold_its_demand() -> None:
    old = _record(Status.READY, node_id="old", instance_id="i-old", running_at=NOW - 5)
    new = _record(Status.READY, node_id="new", instance_id="i-new", running_at=NOW - 5)
    retiring = Retiring(reasons={"old": "node type cpu's node_config changed (ImageId)"})
    shown = {"i-old": "running", "i-new": "running"}

    def run(records: list[NodeRecord]) -> Actions:
        observation = Observation(
            instances={i: CloudInstance(instance_id=i, state=s) for i, s in shown.items()},
            listing_complete=True,
        )
        return reconcile(
            now=NOW,
            config=CONFIG,
            records=records,
            demand=[DemandItem(bundle={"CPU": 2}, count=1)],
            observation=observation,
            retiring=retiring,
        )

    alone = run([old])
    assert alone.terminate == ()
    assert alone.launch == {"cpu": 1}  # its replacement; no new demand goes on it
    replaced = run([old, new])
    assert replaced.terminate == ("old",)
    assert replaced.retired == {
        "old": "retired: node type cpu's node_config changed (ImageId); its demand is on "
        "ready replacements"
    }
