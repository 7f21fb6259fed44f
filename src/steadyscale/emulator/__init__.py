"""An EC2 endpoint that behaves like real EC2: eventually consistent, throttled, faulty.

moto's EC2 does the bookkeeping (``ec2``, the only user of moto's private API); the model
(``steadyscale.ec2model``) decides what a caller may see and when; ``dispatch`` is the WSGI
application each request goes through, ``control`` serves the ground truth and fault
injection, and ``server`` serves it all on 127.0.0.1 (``Emulator``). The server, and with
it moto, is imported only when ``Emulator`` is first used, so code that only reads
emulator settings stays quick to start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from steadyscale.ec2model.distribution import Distribution
from steadyscale.ec2model.gate import Fault
from steadyscale.ec2model.instances import InstanceState, TrackedInstance
from steadyscale.ec2model.settings import (
    PROFILES,
    EmulatorSettings,
    Operation,
    build_settings,
)

if TYPE_CHECKING:
    from steadyscale.emulator.server import Emulator

__all__ = [
    "PROFILES",
    "Distribution",
    "Emulator",
    "EmulatorSettings",
    "Fault",
    "InstanceState",
    "Operation",
    "TrackedInstance",
    "build_settings",
]


def __getattr__(name: str) -> Any:
    if name == "Emulator":
        from steadyscale.emulator.server import Emulator  # noqa: PLC0415

        return Emulator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
