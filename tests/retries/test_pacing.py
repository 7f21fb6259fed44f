"""Client-side pacing: a short wait for a token is slept, a long one skips the call, and a
launch never waits (it goes out at a later tick, its intent already in the ledger)."""

from __future__ import annotations

import pytest

from steadyscale.errors import Throttled
from steadyscale.retries.clock import FakeClock
from steadyscale.retries.pacing import ClientPacer


@pytest.mark.parametrize("action", ["RunInstances", "CreateFleet"])
def test_a_launch_without_a_token_now_is_skipped_without_sleeping(action: str) -> None:
    clock = FakeClock(0.0)
    pacer = ClientPacer(clock, {action: (1, 2.0)}, max_wait=2.0)
    pacer.pace(action)
    with pytest.raises(Throttled) as caught:
        pacer.pace(action)  # the next token is half a second away
    assert caught.value.code == "ClientThrottled"
    assert clock.sleeps == []
    clock.advance(0.5)
    pacer.pace(action)


def test_other_calls_still_wait_briefly_for_their_token() -> None:
    clock = FakeClock(0.0)
    pacer = ClientPacer(clock, {"DescribeInstances": (1, 2.0)}, max_wait=2.0)
    pacer.pace("DescribeInstances")
    pacer.pace("DescribeInstances")
    assert clock.sleeps == [pytest.approx(0.5)]
