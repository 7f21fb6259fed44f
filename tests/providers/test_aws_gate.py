"""A replica's EC2 gate covers every attempt of a call that changes EC2: botocore resends
a call by itself (an answer lost, a 500), and a resend may come after the leader stopped
trusting its lease; it is checked as it goes out, as the first attempt was."""

from __future__ import annotations

import pytest

from steadyscale.emulator import Emulator, Fault, build_settings
from steadyscale.loop.gated import LeaderGatedProvider
from steadyscale.loop.leadership import NotLeadingError
from steadyscale.providers.protocol import LaunchSpec
from steadyscale.retries.clock import FakeClock
from tests.cluster import QUIET_ERRORS
from tests.providers.emulated import emulated_provider

SPEC = LaunchSpec(
    "r-1", "ss-r-1", "cpu", 1, {"InstanceType": "m5.large", "ImageId": "ami-12345678"}
)


class Trust:
    """A leadership's check that lets ``attempts`` mutation attempts out, then no more
    (its trust ran out between two attempts of one call)."""

    def __init__(self, attempts: int) -> None:
        self.left = attempts
        self.asked = 0

    def check(self) -> None:
        self.asked += 1
        if self.left <= 0:
            raise NotLeadingError("lease of epoch 1 no longer trusted")
        self.left -= 1


def test_a_resend_after_the_trust_ran_out_is_not_sent() -> None:
    clock = FakeClock(1_700_000_000.0)
    settings = build_settings(profile="none", overrides={"errors": QUIET_ERRORS})
    with Emulator(settings, clock=clock) as emu:
        provider = emulated_provider(emu.endpoint_url, clock, max_attempts=3, seed=1)
        # The gate lets the call in and its first attempt out; the answer is lost (500),
        # botocore resends, and the trust has run out by then.
        trust = Trust(attempts=2)
        gated = LeaderGatedProvider(provider, trust.check)
        emu.inject(Fault.LOST_RESPONSE, "RunInstances")
        with pytest.raises(NotLeadingError):
            gated.launch(SPEC)
        assert trust.asked == 3  # at the call, then at each of its two attempts
        assert emu.calls.count("RunInstances") == 1  # the resend never went out
        # Trusted again (a new term): every attempt goes out as before.
        trust.left = 10
        assert len(gated.launch(SPEC).instances) == 1
        assert emu.calls.count("RunInstances") == 2
