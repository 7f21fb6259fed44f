"""pytest fixtures for the EC2 emulator, registered as a pytest plugin on install.

``ec2_emulator_factory(profile, clock=..., **settings)`` starts emulators that stop at the
end of the test; ``ec2_emulator`` is one with profile ``none`` (moto's behaviour). The
plugin loads in every pytest run of an environment that has steadyscale installed, so it
imports the emulator (and moto) only inside the fixtures, when a test asks for one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from steadyscale.emulator.server import Emulator
    from steadyscale.retries.clock import Clock

EmulatorFactory = Callable[..., "Emulator"]


@pytest.fixture
def ec2_emulator_factory() -> Iterator[EmulatorFactory]:
    from steadyscale.ec2model.settings import build_settings  # noqa: PLC0415
    from steadyscale.emulator.server import Emulator  # noqa: PLC0415

    started: list[Emulator] = []

    def make(
        profile: str = "none",
        *,
        clock: Clock | None = None,
        assignments: list[str] | None = None,
        **overrides: Any,
    ) -> Emulator:
        settings = build_settings(profile=profile, overrides=overrides, assignments=assignments)
        emulator = Emulator(settings, clock=clock).start()
        started.append(emulator)
        return emulator

    yield make
    for emulator in started:
        emulator.stop()


@pytest.fixture
def ec2_emulator(ec2_emulator_factory: EmulatorFactory) -> Emulator:
    return ec2_emulator_factory("none")
