"""A replica's leadership on the injected clock: taken, renewed well inside the lease,
trusted only until renewal start + TTL - margin, lost at once when a renewal fails or the
trust runs out, and EC2 mutations refused from that instant."""

from __future__ import annotations

import pytest

from steadyscale.ec2model.settings import build_settings
from steadyscale.loop.gated import LeaderGatedProvider
from steadyscale.loop.leadership import (
    Leadership,
    LeaderState,
    LeaseTiming,
    NotLeadingError,
    Role,
)
from steadyscale.providers.memory import MemoryProvider
from steadyscale.providers.protocol import LaunchSpec
from steadyscale.retries.clock import FakeClock
from tests.loop.fakes import TableLease

TIMING = LeaseTiming(ttl_seconds=15, renew_interval_seconds=5, margin_seconds=2)


def _leadership(
    row: dict[str, object] | None = None, holder: str = "a"
) -> tuple[Leadership, TableLease, FakeClock, list[LeaderState]]:
    clock = FakeClock(100.0)
    lease = TableLease(holder, {} if row is None else row)
    changes: list[LeaderState] = []
    return Leadership(lease, clock, TIMING, on_change=changes.append), lease, clock, changes


def test_a_follower_takes_a_free_lease_and_trusts_it_for_ttl_minus_margin() -> None:
    leadership, _, clock, changes = _leadership()
    state = leadership.step()
    assert state.role is Role.LEADER and state.epoch == 1
    assert state.trusted_until == 100.0 + 15 - 2
    assert [c.role for c in changes] == [Role.LEADER]
    leadership.check()  # may act
    clock.advance(12.9)
    assert leadership.trusted()
    clock.advance(0.1)
    assert not leadership.trusted()


def test_a_held_lease_keeps_a_replica_following_and_unable_to_act() -> None:
    leadership, lease, _, _ = _leadership({"holder": "b", "epoch": 4})
    assert leadership.step().role is Role.FOLLOWER
    assert lease.asked == ["acquire"]
    with pytest.raises(NotLeadingError, match="not the leader"):
        leadership.check()


def test_a_follower_tries_again_right_after_the_holders_lease_expires() -> None:
    leadership, lease, clock, _ = _leadership({"holder": "b", "epoch": 4, "expires_in": 1.5})
    leadership.step()
    assert leadership.due_in() == pytest.approx(1.55)  # not a whole renewal interval
    lease.row.update(holder=None, expires_in=None)  # b's lease expired
    clock.advance(1.55)
    assert leadership.step().epoch == 5


def test_the_leader_renews_every_interval_and_its_trust_counts_from_before_the_call() -> None:
    leadership, lease, clock, _ = _leadership()
    leadership.step()
    clock.advance(4.9)
    leadership.step()
    assert lease.asked == ["acquire"]  # not due yet
    clock.advance(0.1)
    state = leadership.step()
    assert lease.asked == ["acquire", "renew"]
    assert state.trusted_until == 105.0 + 13
    assert leadership.due_in() == 5.0


def test_a_failed_renewal_drops_the_leadership_at_once() -> None:
    leadership, lease, clock, changes = _leadership()
    leadership.step()
    lease.row.update(holder="b", epoch=2)  # a successor took over
    clock.advance(5)
    state = leadership.step()
    assert state.role is Role.FOLLOWER and "renewed" in state.reason
    assert [c.role for c in changes] == [Role.LEADER, Role.FOLLOWER]
    with pytest.raises(NotLeadingError):
        leadership.check()


def test_an_unreachable_database_is_not_leading_and_the_next_step_retakes_a_new_epoch() -> None:
    leadership, lease, clock, _ = _leadership()
    leadership.step()
    lease.answers = False
    clock.advance(5)
    assert leadership.step().role is Role.FOLLOWER
    lease.answers = True
    state = leadership.step()  # at once: a lost leader tries again without waiting
    assert state.role is Role.LEADER and state.epoch == 2


def test_past_the_trust_deadline_a_leader_stops_even_without_an_answer() -> None:
    # A renewal that never came back (a paused process, a partition): the leader must
    # stop by its own clock, before the database lets a successor in.
    leadership, _, clock, changes = _leadership()
    leadership.step()
    clock.advance(13)
    with pytest.raises(NotLeadingError, match="no longer trusted"):
        leadership.check()
    assert leadership.state.role is Role.FOLLOWER
    assert changes[-1].reason == "the lease was not renewed in time"


def test_a_loss_reported_for_an_old_epoch_leaves_the_new_one_alone() -> None:
    leadership, lease, _, _ = _leadership()
    leadership.step()
    leadership.lose(1, "the ledger fenced a write off")
    assert leadership.step().epoch == 2
    leadership.lose(1, "late news of epoch 1")
    assert leadership.trusted() and lease.row["epoch"] == 2


def test_release_hands_the_lease_over() -> None:
    leadership, lease, _, _ = _leadership()
    leadership.step()
    leadership.release()
    assert lease.row["holder"] is None and not leadership.trusted()


# ---------------------------------------------------------------------- the EC2 gate

SPEC = LaunchSpec(
    request_id="r-1",
    client_token="ss-r-1",
    node_type="cpu",
    count=1,
    node_config={"InstanceType": "m5.large", "ImageId": "ami-12345678"},
)


def test_the_gate_sends_no_mutation_once_the_trust_ran_out_but_still_reads() -> None:
    leadership, _, clock, _ = _leadership()
    memory = MemoryProvider(cluster_name="c1", clock=clock, settings=build_settings(profile="none"))
    gated = LeaderGatedProvider(memory, leadership.check)
    with pytest.raises(NotLeadingError):
        gated.launch(SPEC)  # a follower sends nothing
    leadership.step()
    launched = gated.launch(SPEC)
    ids = [i.instance_id for i in launched.instances]
    clock.advance(13)  # the tick ran past the deadline
    with pytest.raises(NotLeadingError):
        gated.terminate(ids)
    with pytest.raises(NotLeadingError):
        gated.create_tags(ids, {"k": "v"})
    with pytest.raises(NotLeadingError):
        gated.change_state("StopInstances", ids)
    assert gated.describe_by_id(ids)  # reads still go out
    calls = memory.calls_by_action()
    assert calls.get("RunInstances") == 1
    assert not {"TerminateInstances", "CreateTags", "StopInstances"} & set(calls)
