"""steadyscale: an EC2 autoscaler that stays correct while EC2 is eventually consistent.

This package also ships an EC2 emulator (``steadyscale.emulator``) that reproduces EC2's
eventual consistency and faults on top of moto. The packages and their layers are
described in CONTRIBUTING.md.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    # One source for the version: pyproject.toml, read from the installed metadata.
    __version__ = version("steadyscale")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"
