"""Error types shared across steadyscale. The CLI turns each into one clear line."""

from __future__ import annotations


class SteadyscaleError(Exception):
    """Base class for errors that carry a message meant for the user."""


class ConfigError(SteadyscaleError):
    """A configuration value is wrong. ``path`` names the key, like ``errors.timeout_seconds``."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)


class EmulatorStartError(SteadyscaleError):
    """The emulator could not start (for example, its port is in use)."""
