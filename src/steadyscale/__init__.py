"""steadyscale: an EC2 autoscaler that stays correct while EC2 is eventually consistent.

This package also ships an EC2 emulator (``steadyscale.emulator``) that reproduces EC2's
eventual consistency and faults on top of moto.
"""

__version__ = "0.1.0"
