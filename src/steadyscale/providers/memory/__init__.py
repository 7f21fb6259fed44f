"""The in-memory EC2 backend: the emulator's consistency-and-fault model without HTTP or
moto, fast enough to simulate tens of thousands of instances. ``provider`` answers the
provider protocol (``fleet`` its CreateFleet, launch templates and spot prices); ``calls``
makes its calls as the SDK would; ``views`` shows instances; ``zones`` places launches.
"""

from steadyscale.providers.memory.provider import MemoryProvider

__all__ = ["MemoryProvider"]
