"""Runs are reproducible from the seed."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from steadyscale.emulator import Emulator
from steadyscale.retries.clock import FakeClock
from tests.conftest import FakeEmulator, launch


def _run(emu: Emulator, clock: FakeClock, ec2: Any) -> tuple[list[Any], list[str]]:
    outcomes = []
    for _ in range(40):
        try:
            launch(ec2, 3)
            outcomes.append("ok")
        except ClientError as exc:
            outcomes.append(exc.response["Error"]["Code"])
        clock.advance(1)
    delays = [(i.visible_at, i.running_at and i.running_at - i.launched_at) for i in emu.truth()]
    return sorted(delays, key=repr), outcomes


def test_same_seed_same_delays_and_faults(fake_emulator: FakeEmulator) -> None:
    faults = {"errors": {"server_error_probability": 0.2, "lost_response_probability": 0.1}}
    first = _run(*fake_emulator("harsh", seed=7, **faults))
    again = _run(*fake_emulator("harsh", seed=7, **faults))
    other = _run(*fake_emulator("harsh", seed=8, **faults))
    assert first == again
    assert first != other
    assert set(first[1]) >= {"ok", "InternalError"}
