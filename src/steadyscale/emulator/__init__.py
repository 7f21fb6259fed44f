"""An EC2 endpoint that behaves like real EC2: eventually consistent, throttled, faulty.

moto's EC2 does the bookkeeping; ``model`` decides what a caller may see and when;
``server`` serves it over HTTP on 127.0.0.1. See ``Emulator`` for in-process use.
"""

from steadyscale.emulator.model import Fault, InstanceState, TrackedInstance
from steadyscale.emulator.server import Emulator
from steadyscale.emulator.settings import (
    PROFILES,
    Distribution,
    EmulatorSettings,
    Operation,
    build_settings,
)

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
